#!/usr/bin/env python3
"""A local Cloud Monitoring MetricService (insecure gRPC) that enforces the rules of the real one.

Cloud Monitoring has no emulator, and a fake that accepts everything hides the rule that matters most:
at most one point per time series every 5 seconds. This one serves
``google.monitoring.v3.MetricService`` on a local port and, for each series of a ``CreateTimeSeries``
call, rejects (as the real service does, while still keeping the other series of the call):

- a point less than ``--spacing-s`` (5 s) after the previous point of the same series;
- a series given twice in one call, or with other than one point;
- a metric with no descriptor (the descriptors of ``metrics_catalog.json`` are created at start, as
  Terraform does), a label the descriptor does not have, or a kind or value type that is not its own;
- a resource that is not a ``generic_task`` with all five of its labels;
- a cumulative point whose start is not before its end, or whose value went down since the same start.

Every accepted point and every rejected series is appended to ``--points-file`` as one JSON line, which
``scripts/metrics_report.py`` and the tests read. The local stack starts it unless
``ATLAS_MONITORING_ENDPOINT`` is already set::

    python infra/local/metric_service.py --port 8090 --points-file .atlas/metrics.jsonl
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from google.api import metric_pb2
from google.cloud.monitoring_v3.types import metric_service
from google.protobuf import empty_pb2, json_format

from atlas import limits
from atlas.observability.metrics import catalog

SERVICE = "google.monitoring.v3.MetricService"
MIN_SPACING_S = limits.MIN_METRICS_INTERVAL_S  # Cloud Monitoring's rule, which this service enforces
GENERIC_TASK_LABELS = frozenset({"project_id", "location", "namespace", "job", "task_id"})
_KINDS = {metric_pb2.MetricDescriptor.CUMULATIVE: "CUMULATIVE", metric_pb2.MetricDescriptor.GAUGE: "GAUGE"}
_VALUE_TYPES = {
    metric_pb2.MetricDescriptor.INT64: "INT64",
    metric_pb2.MetricDescriptor.DOUBLE: "DOUBLE",
    metric_pb2.MetricDescriptor.DISTRIBUTION: "DISTRIBUTION",
}


def catalog_descriptors() -> dict[str, dict[str, Any]]:
    """The descriptors Terraform creates (terraform/monitoring.tf reads the same catalogue)."""
    atlas = catalog()
    return {
        atlas.metric_type(spec.name): {"kind": spec.kind, "value_type": spec.value_type, "labels": set(spec.labels)}
        for spec in atlas.metrics.values()
    }


class MetricStore:
    """The rules and the record: every accepted point and every rejection, in memory and in a JSONL file."""

    def __init__(self, points_file: Path | None, spacing_s: float = MIN_SPACING_S) -> None:
        self.spacing_s = spacing_s
        self.points_file = points_file
        self.endpoint = ""  # host:port, once served
        self.descriptors = catalog_descriptors()
        self._lock = threading.Lock()
        self._last: dict[str, tuple[float, float, float]] = {}  # series -> (start, end, value)
        self.accepted = 0
        self.rejected = 0
        self._file = points_file.open("a", encoding="utf-8") if points_file else None

    def create_time_series(self, request: Any) -> list[str]:
        """Keep the valid series of a CreateTimeSeries request; return why each other one was rejected."""
        errors: list[str] = []
        seen: set[str] = set()
        with self._lock:
            for index, series in enumerate(request.time_series):
                key = _series_key(series)
                problem = "the same time series is given twice in one request" if key in seen else None
                seen.add(key)
                problem = problem or self._problem(series, key)
                record = _describe(series, key)
                if problem:
                    self.rejected += 1
                    errors.append(f"timeSeries[{index}] ({key}): {problem}")
                    self._append({**record, "rejected": True, "reason": problem})
                    continue
                point = series.points[0]
                self._last[key] = (
                    _seconds(point.interval.start_time),
                    _seconds(point.interval.end_time),
                    _number(point),
                )
                self.accepted += 1
                self._append(record)
        return errors

    def _problem(self, series: Any, key: str) -> str | None:
        descriptor = self.descriptors.get(series.metric.type)
        if descriptor is None:
            return f"no metric descriptor for {series.metric.type} (Terraform creates them from metrics_catalog.json)"
        extra = set(series.metric.labels) - descriptor["labels"]
        if extra:
            return f"labels {sorted(extra)} are not in the descriptor of {series.metric.type}"
        kind, value_type = _KINDS.get(series.metric_kind), _VALUE_TYPES.get(series.value_type)
        if (kind, value_type) != (descriptor["kind"], descriptor["value_type"]):
            return (
                f"{kind} {value_type} does not match the descriptor ({descriptor['kind']} {descriptor['value_type']})"
            )
        if series.resource.type != "generic_task" or set(series.resource.labels) != GENERIC_TASK_LABELS:
            return f"the resource must be generic_task with labels {sorted(GENERIC_TASK_LABELS)}"
        if len(series.points) != 1:
            return f"a time series must have exactly one point, not {len(series.points)}"
        point = series.points[0]
        start, end = _seconds(point.interval.start_time), _seconds(point.interval.end_time)
        if kind == "CUMULATIVE" and not start < end:
            return "a cumulative point's start time must be earlier than its end time"
        last = self._last.get(key)
        if last is None:
            return None
        if end - last[1] < self.spacing_s:
            return (
                "One or more points were written more frequently than the maximum sampling period configured for "
                f"the metric ({end - last[1]:.3f} s after the previous point; the minimum is {self.spacing_s:g} s)"
            )
        if kind == "CUMULATIVE" and start == last[0] and _number(point) < last[2]:
            return "a cumulative value went down without a new start time"
        return None

    def _append(self, record: dict[str, Any]) -> None:
        if self._file is not None:
            self._file.write(json.dumps({"received_at": time.time(), **record}) + "\n")
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def _series_key(series: Any) -> str:
    metric_labels = ",".join(f"{k}={v}" for k, v in sorted(series.metric.labels.items()))
    resource_labels = ",".join(f"{k}={v}" for k, v in sorted(series.resource.labels.items()))
    return f"{series.metric.type}{{{metric_labels}}} {series.resource.type}{{{resource_labels}}}"


def _seconds(timestamp: Any) -> float:
    return timestamp.seconds + timestamp.nanos / 1e9


def _number(point: Any) -> float:
    value = point.value
    which = value.WhichOneof("value")
    if which == "distribution_value":
        return float(value.distribution_value.count)
    return float(getattr(value, which)) if which else 0.0


def _describe(series: Any, key: str) -> dict[str, Any]:
    point = series.points[0] if series.points else None
    record: dict[str, Any] = {
        "series": key,
        "metric": series.metric.type,
        "labels": dict(series.metric.labels),
        "resource": dict(series.resource.labels),
        "kind": _KINDS.get(series.metric_kind, str(series.metric_kind)),
        "value_type": _VALUE_TYPES.get(series.value_type, str(series.value_type)),
    }
    if point is not None:
        record["start"] = _seconds(point.interval.start_time)
        record["end"] = _seconds(point.interval.end_time)
        record["value"] = json_format.MessageToDict(point.value, preserving_proto_field_name=True)
    return record


def serve(store: MetricStore, host: str = "127.0.0.1", port: int = 0) -> tuple[grpc.Server, int]:
    """Start the gRPC server in background threads; returns it and the port it listens on."""
    request_type = metric_service.CreateTimeSeriesRequest.pb()
    descriptor_request = metric_service.CreateMetricDescriptorRequest.pb()
    get_request = metric_service.GetMetricDescriptorRequest.pb()

    def create_time_series(request: Any, context: grpc.ServicerContext) -> empty_pb2.Empty:
        errors = store.create_time_series(request)
        if errors:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{len(errors)} of {len(request.time_series)} time series were rejected: " + "; ".join(errors),
            )
        return empty_pb2.Empty()

    def create_metric_descriptor(request: Any, context: grpc.ServicerContext) -> metric_pb2.MetricDescriptor:
        d = request.metric_descriptor
        with store._lock:
            store.descriptors[d.type] = {
                "kind": _KINDS.get(d.metric_kind),
                "value_type": _VALUE_TYPES.get(d.value_type),
                "labels": {label.key for label in d.labels},
            }
        return d

    def get_metric_descriptor(request: Any, context: grpc.ServicerContext) -> metric_pb2.MetricDescriptor:
        metric_type = request.name.split("/metricDescriptors/", 1)[-1]
        found = store.descriptors.get(metric_type)
        if found is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no metric descriptor {metric_type}")
        return metric_pb2.MetricDescriptor(type=metric_type)

    handlers = {
        "CreateTimeSeries": grpc.unary_unary_rpc_method_handler(
            create_time_series,
            request_deserializer=request_type.FromString,
            response_serializer=empty_pb2.Empty.SerializeToString,
        ),
        "CreateMetricDescriptor": grpc.unary_unary_rpc_method_handler(
            create_metric_descriptor,
            request_deserializer=descriptor_request.FromString,
            response_serializer=metric_pb2.MetricDescriptor.SerializeToString,
        ),
        "GetMetricDescriptor": grpc.unary_unary_rpc_method_handler(
            get_metric_descriptor,
            request_deserializer=get_request.FromString,
            response_serializer=metric_pb2.MetricDescriptor.SerializeToString,
        ),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    bound = server.add_insecure_port(f"{host}:{port}")
    server.start()
    store.endpoint = f"{host}:{bound}"
    return server, bound


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port (printed)")
    parser.add_argument("--points-file", type=Path, help="append every point and rejection here (JSON lines)")
    parser.add_argument("--spacing-s", type=float, default=MIN_SPACING_S, help="minimum seconds between points")
    args = parser.parse_args(argv)
    if args.points_file:
        args.points_file.parent.mkdir(parents=True, exist_ok=True)
    store = MetricStore(args.points_file, spacing_s=args.spacing_s)
    server, port = serve(store, args.host, args.port)
    print(f"MetricService listening on {args.host}:{port}", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stopped.wait()
    server.stop(grace=2).wait()
    store.close()
    print(f"MetricService stopped: {store.accepted} points accepted, {store.rejected} rejected", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
