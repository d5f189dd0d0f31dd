"""Structured logs in Cloud Logging's JSON format: one JSON object per line on stdout.

Cloud Run and Cloud Functions parse ``severity`` and ``message``, index the
``logging.googleapis.com/labels`` map and join a line to its request's trace through
``logging.googleapis.com/trace``. A request binds its trace, execution id and task id once with
:func:`log_context`, and every line logged inside it carries them; a single call can add more with
``extra={"labels": {...}, "fields": {...}}``.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

LABELS_KEY = "logging.googleapis.com/labels"
TRACE_KEY = "logging.googleapis.com/trace"
SPAN_KEY = "logging.googleapis.com/spanId"
SAMPLED_KEY = "logging.googleapis.com/trace_sampled"
# W3C trace context: version-traceid-parentid-flags (https://www.w3.org/TR/trace-context/)
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
# Google's older header: TRACE_ID/SPAN_ID;o=OPTIONS (the span id is decimal)
_CLOUD_TRACE = re.compile(r"^([0-9a-f]{32})(?:/(\d+))?(?:;o=([01]))?$")
# Where a Pub/Sub message carries its publisher's trace (OpenTelemetry in the client libraries)
TRACE_ATTRIBUTES = ("googclient_traceparent", "traceparent")

_context: ContextVar[tuple[dict[str, str], dict[str, Any]]] = ContextVar("atlas_log_context", default=({}, {}))
_configured = False


class CloudLoggingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        bound_labels, bound_fields = _context.get()
        entry: dict[str, Any] = {
            "severity": record.levelname if record.levelname != "WARN" else "WARNING",
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
            **bound_fields,
        }
        labels = {**bound_labels, **{k: str(v) for k, v in (getattr(record, "labels", None) or {}).items()}}
        if labels:
            entry[LABELS_KEY] = labels
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


@contextmanager
def log_context(labels: Mapping[str, object] | None = None, fields: Mapping[str, Any] | None = None) -> Iterator[None]:
    """Every line logged inside (in this thread or task) carries these labels and fields too."""
    bound_labels, bound_fields = _context.get()
    token = _context.set(
        ({**bound_labels, **{k: str(v) for k, v in (labels or {}).items()}}, {**bound_fields, **(fields or {})})
    )
    try:
        yield
    finally:
        _context.reset(token)


def trace_fields(
    project: str, headers: Mapping[str, str], attributes: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The Cloud Logging trace fields of a request: from its ``traceparent`` header, else Google's
    ``X-Cloud-Trace-Context``, else a trace the message's publisher put in its attributes; {} if none."""
    candidates = [headers.get("traceparent")]
    candidates += [(attributes or {}).get(name) for name in TRACE_ATTRIBUTES]
    for value in candidates:
        match = _TRACEPARENT.match((value or "").strip().lower())
        if match and set(match.group(1)) != {"0"}:
            trace_id, span_id, flags = match.groups()
            return {
                TRACE_KEY: f"projects/{project}/traces/{trace_id}",
                SPAN_KEY: span_id,
                SAMPLED_KEY: bool(int(flags, 16) & 1),
            }
    match = _CLOUD_TRACE.match((headers.get("X-Cloud-Trace-Context") or "").strip().lower())
    if match:
        trace_id, span, sampled = match.groups()
        fields: dict[str, Any] = {TRACE_KEY: f"projects/{project}/traces/{trace_id}"}
        if span:
            fields[SPAN_KEY] = f"{int(span):016x}"
        if sampled:
            fields[SAMPLED_KEY] = sampled == "1"
        return fields
    return {}
