"""Running totals of one instance: cumulative counters, distributions and gauges, aggregated in memory.

Cloud Monitoring takes at most one point per time series every 5 seconds, so an instance never writes a
point per event: it adds each event to a running total here, and :mod:`atlas.observability.export` writes the
totals that changed, at most once per interval. A write that is skipped or fails loses nothing, because
the next one carries the running total. Which metrics exist, their kinds, labels and buckets come from
``metrics_catalog.json`` (Terraform creates the descriptors from the same file).
"""

from __future__ import annotations

import bisect
import json
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

MAX_LABEL_CHARS = 100  # label values are bounded: provider, model, status, codes; never task ids


@dataclass(frozen=True)
class Buckets:
    """Bucket bounds of a distribution, as Cloud Monitoring's exponential or linear BucketOptions."""

    options: dict[str, dict[str, float]]
    bounds: tuple[float, ...]  # the N+1 finite bounds; bucket 0 is underflow, bucket N+1 overflow

    @classmethod
    def from_spec(cls, spec: dict[str, dict[str, float]]) -> Buckets:
        if "exponential" in spec:
            e = spec["exponential"]
            n = int(e["num_finite_buckets"])
            bounds = tuple(e["scale"] * e["growth_factor"] ** i for i in range(n + 1))
        elif "linear" in spec:
            lin = spec["linear"]
            n = int(lin["num_finite_buckets"])
            bounds = tuple(lin["offset"] + lin["width"] * i for i in range(n + 1))
        else:
            raise ValueError(f"unknown bucket options {spec}")
        return cls(options=spec, bounds=bounds)

    def index(self, value: float) -> int:
        return bisect.bisect_right(self.bounds, value)


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: str  # CUMULATIVE or GAUGE
    value_type: str  # INT64, DOUBLE or DISTRIBUTION
    unit: str
    labels: tuple[str, ...]
    buckets: Buckets | None = None


@dataclass(frozen=True)
class Catalog:
    prefix: str
    resource_type: str
    metrics: dict[str, MetricSpec]

    def metric_type(self, name: str) -> str:
        return self.prefix + name


@cache
def catalog() -> Catalog:
    """The metrics Atlas writes (``metrics_catalog.json``, shipped inside the package)."""
    raw = json.loads(
        resources.files("atlas.observability").joinpath("metrics_catalog.json").read_text(encoding="utf-8")
    )
    metrics = {
        m["name"]: MetricSpec(
            name=m["name"],
            kind=m["kind"],
            value_type=m["value_type"],
            unit=m["unit"],
            labels=tuple(m["labels"]),
            buckets=Buckets.from_spec(m["buckets"]) if "buckets" in m else None,
        )
        for m in raw["metrics"]
    }
    return Catalog(prefix=raw["prefix"], resource_type=raw["resource_type"], metrics=metrics)


@dataclass
class Distribution:
    """Count, mean, sum of squared deviations (Welford) and bucket counts, as Cloud Monitoring keeps them."""

    buckets: Buckets
    count: int = 0
    mean: float = 0.0
    sum_of_squared_deviation: float = 0.0
    bucket_counts: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.bucket_counts:
            self.bucket_counts = [0] * (len(self.buckets.bounds) + 1)

    def add(self, value: float) -> None:
        self.count += 1
        delta = value - self.mean
        self.mean += delta / self.count
        self.sum_of_squared_deviation += delta * (value - self.mean)
        self.bucket_counts[self.buckets.index(value)] += 1

    def copy(self) -> Distribution:
        return Distribution(
            self.buckets, self.count, self.mean, self.sum_of_squared_deviation, list(self.bucket_counts)
        )


Value = int | float | Distribution
SeriesKey = tuple[str, tuple[tuple[str, str], ...]]  # (metric name, sorted label pairs)


@dataclass(frozen=True)
class SeriesValue:
    """One series' total at the moment of a snapshot; ``version`` tells whether it changed since."""

    key: SeriesKey
    spec: MetricSpec
    value: Value
    version: int

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.key[1])


class InstanceMetrics:
    """The running totals of every series this instance has touched, safe to share between threads."""

    def __init__(self, metrics_catalog: Catalog | None = None, clock: Callable[[], float] = time.time) -> None:
        self.catalog = metrics_catalog or catalog()
        self.start_time = clock()  # the start of every cumulative series of this instance
        self._lock = threading.Lock()
        self._values: dict[SeriesKey, Value] = {}
        self._versions: dict[SeriesKey, int] = {}

    def add(self, name: str, amount: float = 1, **labels: str) -> None:
        """Add to a cumulative counter (INT64 or DOUBLE)."""
        spec, key = self._key(name, labels, kinds=("INT64", "DOUBLE"))
        if amount < 0 or spec.kind != "CUMULATIVE":
            raise ValueError(f"{name}: a cumulative counter only grows")
        with self._lock:
            current = self._values.get(key, 0)
            assert not isinstance(current, Distribution)
            self._values[key] = current + (int(amount) if spec.value_type == "INT64" else float(amount))
            self._bump(key)

    def observe(self, name: str, value: float, **labels: str) -> None:
        """Add one value to a distribution."""
        spec, key = self._key(name, labels, kinds=("DISTRIBUTION",))
        if not math.isfinite(value):
            return
        assert spec.buckets is not None
        with self._lock:
            current = self._values.get(key)
            if not isinstance(current, Distribution):
                current = self._values[key] = Distribution(spec.buckets)
            current.add(value)
            self._bump(key)

    def set(self, name: str, value: float, **labels: str) -> None:
        """Set a gauge."""
        spec, key = self._key(name, labels, kinds=("INT64", "DOUBLE"))
        if spec.kind != "GAUGE":
            raise ValueError(f"{name} is not a gauge")
        with self._lock:
            self._values[key] = value
            self._bump(key)

    def snapshot(self) -> list[SeriesValue]:
        """Every series with a copy of its current value and version."""
        with self._lock:
            return [
                SeriesValue(
                    key=key,
                    spec=self.catalog.metrics[key[0]],
                    value=value.copy() if isinstance(value, Distribution) else value,
                    version=self._versions[key],
                )
                for key, value in self._values.items()
            ]

    def total(self, name: str, **labels: str) -> float:
        """The sum of a counter's series whose labels include ``labels`` (for tests and reports)."""
        with self._lock:
            return sum(
                (v.count if isinstance(v, Distribution) else v)
                for (metric, pairs), v in self._values.items()
                if metric == name and labels.items() <= dict(pairs).items()
            )

    def _bump(self, key: SeriesKey) -> None:
        self._versions[key] = self._versions.get(key, 0) + 1

    def _key(self, name: str, labels: dict[str, str], *, kinds: Iterable[str]) -> tuple[MetricSpec, SeriesKey]:
        spec = self.catalog.metrics.get(name)
        if spec is None:
            raise KeyError(f"no metric {name!r} in metrics_catalog.json")
        if spec.value_type not in kinds:
            raise ValueError(f"{name} is a {spec.value_type} metric")
        unknown = set(labels) - set(spec.labels)
        if unknown:
            raise ValueError(f"{name} has no label(s) {sorted(unknown)}; its labels are {list(spec.labels)}")
        pairs = tuple((k, str(labels.get(k, ""))[:MAX_LABEL_CHARS]) for k in sorted(spec.labels))
        return spec, (name, pairs)


def entry_labels(entry_label: str) -> dict[str, Any]:
    """``provider/model`` (a chain entry's label) as the provider and model labels."""
    provider, _, model = entry_label.partition("/")
    return {"provider": provider, "model": model}
