"""Running totals, and their export under Cloud Monitoring's rules, against the local MetricService."""

from __future__ import annotations

import statistics
import threading

import pytest
from google.api_core.exceptions import InvalidArgument
from metric_points import read_points, total

from atlas import config
from atlas.errors import ConfigError
from atlas.observability.export import MetricsExporter, Resource, monitoring_client
from atlas.observability.metrics import InstanceMetrics
from atlas.tasks.task_metrics import TaskMetrics, seconds_since


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def exporter_for(metric_service, metrics: InstanceMetrics, clock: Clock, **options) -> MetricsExporter:
    return MetricsExporter(
        metrics,
        resource=Resource("test-atlas", "global", "atlas-worker", "instance-1"),
        client_factory=options.pop("client_factory", lambda: monitoring_client(metric_service.endpoint)),
        clock=clock,
        sleep=clock.sleep,
        interval_s=options.pop("interval_s", 5.0),
    )


def test_counters_from_many_threads_add_up_exactly():
    metrics = InstanceMetrics()

    def work() -> None:
        for _ in range(1000):
            metrics.add("tasks", status="succeeded")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert metrics.total("tasks", status="succeeded") == 8000


def test_distribution_keeps_count_mean_deviation_and_buckets():
    metrics = InstanceMetrics()
    values = [0.01, 0.2, 0.2, 3.5, 40.0, 900.0]
    for value in values:
        metrics.observe("task/latency", value, status="succeeded")
    [series] = metrics.snapshot()
    dist = series.value
    assert dist.count == len(values)
    assert dist.mean == pytest.approx(statistics.mean(values))
    assert dist.sum_of_squared_deviation == pytest.approx(statistics.pvariance(values) * len(values))
    assert sum(dist.bucket_counts) == len(values) and dist.bucket_counts[0] == 1  # 0.01 s is below 0.05 s


def test_a_label_outside_the_catalogue_is_refused():
    with pytest.raises(ValueError, match="no label"):
        InstanceMetrics().add("tasks", status="succeeded", task_id="t-1")
    with pytest.raises(KeyError):
        InstanceMetrics().add("no/such/metric")


def test_writes_come_at_most_once_per_interval_and_carry_only_what_changed(metric_service):
    clock, metrics = Clock(), InstanceMetrics(clock=Clock(1_799_999_000.0))
    exporter = exporter_for(metric_service, metrics, clock)
    tasks = TaskMetrics(metrics)
    tasks.finished("succeeded")
    tasks.retrieval_hits(6)
    assert exporter.flush_if_due()
    tasks.finished("succeeded")
    clock.sleep(4.9)
    assert not exporter.flush_if_due()  # within 5 s: skipped, nothing lost
    clock.sleep(0.2)
    assert exporter.flush_if_due()
    assert not exporter.flush_if_due()
    points = read_points(metric_service.points_file)
    assert metric_service.rejected == 0
    assert [p["metric"].rsplit("/", 1)[1] for p in points] == ["tasks", "hits", "tasks"]  # hits did not change
    assert total(points, "tasks", status="succeeded") == 2


def test_shutdown_write_waits_out_the_five_seconds(metric_service):
    clock = Clock()
    metrics = InstanceMetrics(clock=Clock(clock.now - 60))
    exporter = exporter_for(metric_service, metrics, clock, interval_s=30)
    metrics.add("tasks", status="failed", error_code="invalid_task")
    assert exporter.flush_if_due()
    clock.sleep(1.0)
    metrics.add("tasks", status="failed", error_code="invalid_task")
    assert exporter.flush_at_shutdown()
    assert clock.now >= 1_800_000_005.0
    assert metric_service.rejected == 0 and metric_service.accepted == 2


def test_a_failed_write_loses_nothing(metric_service):
    clock, metrics = Clock(), InstanceMetrics(clock=Clock(1_799_999_000.0))
    calls = []

    def flaky_factory():
        calls.append(1)
        if len(calls) == 1:
            raise OSError("no credentials yet")
        return monitoring_client(metric_service.endpoint)

    exporter = exporter_for(metric_service, metrics, clock, client_factory=flaky_factory)
    metrics.add("llm/cost", 0.25, provider="openai", model="gpt-4o-mini")
    assert not exporter.flush_if_due() and exporter.failed_writes == 1
    metrics.add("llm/cost", 0.5, provider="openai", model="gpt-4o-mini")
    clock.sleep(5)
    assert exporter.flush_if_due()
    assert total(read_points(metric_service.points_file), "llm/cost") == pytest.approx(0.75)


def test_more_than_200_series_go_in_several_requests(metric_service):
    clock, metrics = Clock(), InstanceMetrics(clock=Clock(1_799_999_000.0))
    for index in range(250):
        metrics.add("llm/tokens", 10, provider="openai", model=f"model-{index}", kind="input")
    assert exporter_for(metric_service, metrics, clock).flush_if_due()
    assert metric_service.accepted == 250 and metric_service.rejected == 0


def test_the_local_metric_service_rejects_a_second_point_within_five_seconds(metric_service):
    client = monitoring_client(metric_service.endpoint)

    def series(end: float, value: int) -> dict:
        return {
            "metric": {"type": "custom.googleapis.com/atlas/deliveries", "labels": {"outcome": "succeeded"}},
            "resource": Resource("p", "global", "atlas-worker", "i").as_dict(),
            "metric_kind": "CUMULATIVE",
            "value_type": "INT64",
            "points": [
                {
                    "interval": {"start_time": {"seconds": 100}, "end_time": {"seconds": int(end)}},
                    "value": {"int64_value": value},
                }
            ],
        }

    client.create_time_series(name="projects/p", time_series=[series(200, 1)])
    with pytest.raises(InvalidArgument, match="more frequently"):
        client.create_time_series(name="projects/p", time_series=[series(204, 2)])
    with pytest.raises(InvalidArgument, match="went down"):
        client.create_time_series(name="projects/p", time_series=[series(210, 0)])
    with pytest.raises(InvalidArgument, match="twice in one request"):
        client.create_time_series(name="projects/p", time_series=[series(220, 3), series(220, 3)])
    assert metric_service.accepted == 2 and metric_service.rejected == 3


def test_exporter_and_settings_refuse_an_interval_under_five_seconds(monkeypatch):
    with pytest.raises(ValueError, match="at least 5"):
        MetricsExporter(
            InstanceMetrics(), resource=Resource("p", "global", "j", "i"), client_factory=object, interval_s=2
        )
    monkeypatch.setenv("ATLAS_PROJECT", "p")
    monkeypatch.setenv("ATLAS_RETRIEVAL_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("ATLAS_METRICS_INTERVAL_S", "3")
    with pytest.raises(ConfigError, match="ATLAS_METRICS_INTERVAL_S"):
        config.load(config.WorkerSettings)


def test_latency_counts_from_the_publish_time():
    assert seconds_since("2000-01-01T00:00:00Z") > 8e8
    assert seconds_since("not a time") is None and seconds_since(None) is None
