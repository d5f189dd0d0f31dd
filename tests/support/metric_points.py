"""Reading what the local MetricService kept: the last value of each series, totals across instances."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

PREFIX = "custom.googleapis.com/atlas/"


def last_points(points: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The latest accepted point of each series."""
    last: dict[str, dict[str, Any]] = {}
    for point in points:
        if not point.get("rejected") and (point["series"] not in last or point["end"] >= last[point["series"]]["end"]):
            last[point["series"]] = point
    return last


def number(point: dict[str, Any]) -> float:
    value = point["value"]
    if "distribution_value" in value:
        return float(value["distribution_value"].get("count", 0))
    return float(next(iter(value.values())))


def total(points: list[dict[str, Any]], metric: str, **labels: str) -> float:
    """The sum over every instance's series of ``metric`` whose labels include ``labels``."""
    return sum(
        number(point)
        for point in last_points(points).values()
        if point["metric"] == PREFIX + metric and labels.items() <= point["labels"].items()
    )


def ends_by_series(points: list[dict[str, Any]]) -> dict[str, list[float]]:
    ends: dict[str, list[float]] = defaultdict(list)
    for point in points:
        if not point.get("rejected"):
            ends[point["series"]].append(point["end"])
    return {series: sorted(values) for series, values in ends.items()}
