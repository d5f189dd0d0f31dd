"""Writes an instance's running totals to Cloud Monitoring without ever breaking its write limits.

Cloud Monitoring rejects a point written less than 5 seconds after the previous point of the same time
series, and two instances writing one series collide. So:

- each instance writes its own series: a ``generic_task`` resource whose ``task_id`` is this instance's
  id (metric labels stay bounded: status, provider, model, never a task id);
- the request path calls :meth:`MetricsExporter.flush_if_due` after each task; it writes only when the
  interval (at least 5 s) has passed since the last write, and only the series that changed, all with one
  end time, in requests of at most 200 series;
- at shutdown (SIGTERM, then ``atexit``) :meth:`MetricsExporter.flush_at_shutdown` writes once more,
  first waiting out what is left of the 5 seconds.

A skipped or failed write loses nothing: the next one carries the running totals. The client is built
on the first write, so a process without credentials starts (and counts) and only logs the failure.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from atlas import limits
from atlas.observability.metrics import Distribution, InstanceMetrics, SeriesKey, SeriesValue

log = logging.getLogger("atlas.observability.metrics")

MIN_WRITE_SPACING_S = limits.MIN_METRICS_INTERVAL_S  # Cloud Monitoring's limit: one point per series per 5 s
MAX_SERIES_PER_REQUEST = 200  # CreateTimeSeries takes at most 200 series a call
WRITE_TIMEOUT_S = 5.0
SHUTDOWN_WAIT_CAP_S = MIN_WRITE_SPACING_S + 0.5


def instance_id() -> str:
    """An id for this process, unique across instances and restarts (Cloud Run's hostname is not)."""
    revision = os.environ.get("K_REVISION", "local")
    return f"{revision}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def monitoring_client(endpoint: str | None) -> Any:
    """Cloud Monitoring's MetricServiceClient; ``endpoint`` (host:port) is a local, insecure gRPC server."""
    from google.cloud import monitoring_v3

    if not endpoint:
        return monitoring_v3.MetricServiceClient()
    import grpc
    from google.cloud.monitoring_v3.services.metric_service.transports import MetricServiceGrpcTransport

    return monitoring_v3.MetricServiceClient(
        transport=MetricServiceGrpcTransport(channel=grpc.insecure_channel(endpoint))
    )


@dataclass(frozen=True)
class Resource:
    """The ``generic_task`` monitored resource that names this instance."""

    project_id: str
    location: str
    job: str
    task_id: str
    namespace: str = "atlas"

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": "generic_task",
            "labels": {
                "project_id": self.project_id,
                "location": self.location,
                "namespace": self.namespace,
                "job": self.job,
                "task_id": self.task_id,
            },
        }


class MetricsExporter:
    def __init__(
        self,
        metrics: InstanceMetrics,
        *,
        resource: Resource,
        client_factory: Callable[[], Any],
        interval_s: float = limits.METRICS_INTERVAL_S,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if interval_s < MIN_WRITE_SPACING_S:
            raise ValueError(f"the metrics interval must be at least {MIN_WRITE_SPACING_S} s (Cloud Monitoring)")
        self.metrics = metrics
        self.resource = resource
        self._client_factory = client_factory
        self._client: Any = None
        self._interval_s = interval_s
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._last_end: float | None = None  # end time of the last write attempt
        self._written: dict[SeriesKey, int] = {}  # version of each series as last written
        self.writes = 0
        self.failed_writes = 0

    def flush_if_due(self) -> bool:
        """Write what changed if the interval has passed; never blocks on another thread's write."""
        if not self._due(self._interval_s):
            return False
        if not self._lock.acquire(blocking=False):
            return False
        try:
            return self._flush(self._interval_s)
        finally:
            self._lock.release()

    def flush_at_shutdown(self) -> bool:
        """The last write: wait out the rest of the 5 s since the previous one, then write what changed."""
        if not self._lock.acquire(timeout=SHUTDOWN_WAIT_CAP_S * 2):
            return False
        try:
            if not self._pending():
                return False
            if self._last_end is not None:
                wait = self._last_end + MIN_WRITE_SPACING_S - self._clock()
                if wait > 0:
                    self._sleep(min(wait + 0.05, SHUTDOWN_WAIT_CAP_S))
            return self._flush(MIN_WRITE_SPACING_S)
        finally:
            self._lock.release()

    def _due(self, spacing_s: float) -> bool:
        return self._last_end is None or self._clock() - self._last_end >= spacing_s

    def _pending(self) -> list[SeriesValue]:
        return [s for s in self.metrics.snapshot() if self._written.get(s.key) != s.version]

    def _flush(self, spacing_s: float) -> bool:
        if not self._due(spacing_s):
            return False
        changed = self._pending()
        if not changed:
            return False
        end = self._clock()
        self._last_end = end  # even if the write fails: the next one must still keep its distance
        try:
            if self._client is None:
                self._client = self._client_factory()
            for start in range(0, len(changed), MAX_SERIES_PER_REQUEST):
                batch = changed[start : start + MAX_SERIES_PER_REQUEST]
                self._client.create_time_series(
                    name=f"projects/{self.resource.project_id}",
                    time_series=[self._time_series(s, end) for s in batch],
                    timeout=WRITE_TIMEOUT_S,
                )
                for series in batch:
                    self._written[series.key] = series.version
        except Exception as exc:  # noqa: BLE001 - metrics must never fail a task; the next write carries totals
            self.failed_writes += 1
            log.warning("metrics write failed (the next write carries the totals): %s", exc)
            return False
        self.writes += 1
        return True

    def _time_series(self, series: SeriesValue, end: float) -> dict[str, Any]:
        spec = series.spec
        interval: dict[str, Any] = {"end_time": _timestamp(end)}
        if spec.kind == "CUMULATIVE":
            interval["start_time"] = _timestamp(self.metrics.start_time)
        return {
            "metric": {"type": self.metrics.catalog.metric_type(spec.name), "labels": series.labels},
            "resource": self.resource.as_dict(),
            "metric_kind": spec.kind,
            "value_type": spec.value_type,
            "unit": spec.unit,
            "points": [{"interval": interval, "value": _typed_value(spec.value_type, series.value)}],
        }


def _timestamp(seconds: float) -> dict[str, int]:
    whole = int(seconds)
    return {"seconds": whole, "nanos": int((seconds - whole) * 1e9)}


def _typed_value(value_type: str, value: Any) -> dict[str, Any]:
    if value_type == "INT64":
        return {"int64_value": int(value)}
    if value_type == "DOUBLE":
        return {"double_value": float(value)}
    assert isinstance(value, Distribution)
    return {
        "distribution_value": {
            "count": value.count,
            "mean": value.mean,
            "sum_of_squared_deviation": value.sum_of_squared_deviation,
            "bucket_options": _bucket_options(value.buckets.options),
            "bucket_counts": value.bucket_counts,
        }
    }


def _bucket_options(options: dict[str, dict[str, float]]) -> dict[str, Any]:
    if "exponential" in options:
        return {"exponential_buckets": options["exponential"]}
    return {"linear_buckets": options["linear"]}


_exporters: list[MetricsExporter] = []
_hooks_installed = False


def flush_on_shutdown(exporter: MetricsExporter) -> None:
    """Have ``exporter`` write once more when the process exits."""
    _exporters.append(exporter)


def install_shutdown_hooks() -> None:
    """At exit, flush every exporter this process built. Call at import, in the main thread.

    Under gunicorn (functions-framework's server) a worker handles SIGTERM itself and leaves through
    ``sys.exit``, which runs ``atexit``; a server that leaves SIGTERM at its default would die without it,
    so there SIGTERM becomes a ``SystemExit``.
    """
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_flush_all)
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _exit_on_sigterm)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _flush_all() -> None:
    for exporter in _exporters:
        exporter.flush_at_shutdown()
