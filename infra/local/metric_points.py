"""Reading what the local MetricService kept (its JSON lines): series, their last values, sums over instances.

Each series holds one instance's running total, so the whole service's total of a metric is the sum of
its series' last values. Used by ``scripts/metrics_report.py``, ``scripts/loadtest.py`` and the tests.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

PREFIX = "custom.googleapis.com/atlas/"


def read_points(points_file: Path) -> list[dict[str, Any]]:
    """The JSON lines a MetricService wrote (accepted points and rejections)."""
    if not points_file.exists():
        return []
    return [json.loads(line) for line in points_file.read_text(encoding="utf-8").splitlines() if line.strip()]


def accepted(points: list[dict[str, Any]], metric: str | None = None) -> list[dict[str, Any]]:
    """The accepted points (of one metric, given its name without the prefix), oldest first."""
    chosen = [p for p in points if not p.get("rejected") and (metric is None or p["metric"] == PREFIX + metric)]
    return sorted(chosen, key=lambda p: p["end"])


def scalar(point: dict[str, Any]) -> float:
    """A point's value as a number: a distribution counts its values."""
    value = point["value"]
    if "distribution_value" in value:
        return float(value["distribution_value"].get("count", 0))
    return float(next(iter(value.values())))


def last_points(points: list[dict[str, Any]], metric: str | None = None) -> dict[str, dict[str, Any]]:
    """The latest accepted point of each series."""
    return {point["series"]: point for point in accepted(points, metric)}


def total(points: list[dict[str, Any]], metric: str, **labels: str) -> float:
    """The sum over every instance's series of ``metric`` whose labels include ``labels``."""
    return sum(
        scalar(point) for point in last_points(points, metric).values() if labels.items() <= point["labels"].items()
    )


def totals(points: list[dict[str, Any]], metric: str, label: str) -> dict[str, float]:
    """``metric``'s total for each value of ``label``."""
    summed: dict[str, float] = defaultdict(float)
    for point in last_points(points, metric).values():
        summed[point["labels"].get(label, "")] += scalar(point)
    return dict(summed)


def ends_by_series(points: list[dict[str, Any]]) -> dict[str, list[float]]:
    """The end times of each series' accepted points, in order."""
    ends: dict[str, list[float]] = defaultdict(list)
    for point in accepted(points):
        ends[point["series"]].append(point["end"])
    return dict(ends)
