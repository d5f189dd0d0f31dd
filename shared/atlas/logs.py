"""Structured logs in Cloud Logging's JSON format: one JSON object per line on stdout.

Cloud Run and Cloud Functions parse ``severity`` and ``message`` and index the
``logging.googleapis.com/labels`` map, so task ids go there, never into the message text alone.
Pass ``extra={"labels": {...}, "fields": {...}}`` to a logger call to add them.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

_configured = False


class CloudLoggingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "severity": record.levelname if record.levelname != "WARN" else "WARNING",
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        labels = getattr(record, "labels", None)
        if labels:
            entry["logging.googleapis.com/labels"] = {k: str(v) for k, v in labels.items()}
        fields = getattr(record, "fields", None)
        if fields:
            entry.update(fields)
        if record.exc_info:
            entry["stack_trace"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO") -> None:
    """Send the root logger's records to stdout as JSON lines (once per process)."""
    global _configured
    root = logging.getLogger()
    root.setLevel(level)
    if _configured:
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(CloudLoggingFormatter())
    root.handlers[:] = [handler]
    _configured = True
