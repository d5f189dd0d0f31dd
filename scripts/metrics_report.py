#!/usr/bin/env python3
"""A picture of a local run's metrics, for the people who would rather look than read.

Reads the points the local MetricService kept (``infra/local/metric_service.py --points-file``; the local
stack writes ``.atlas/stack/metrics.jsonl``, the load test its own) and draws one PNG: the task latency
histogram, tasks by status over time, tokens over time, cost over time, fallbacks and LLM errors, and
stage latency. The same totals are printed as one JSON object on stdout (summed over every instance:
each series holds one instance's running total, so the sum of the series' last values is the whole).

    python scripts/metrics_report.py .atlas/stack/metrics.jsonl --out .atlas/metrics-report.png

The last line it prints (on stderr, after the totals) says where it wrote the PNG.

An instance writes its last counts at its next write or at shutdown, so a report of a running stack can lag
behind it (the report says so at its foot); ``make down`` stops the stack and the instances write the rest.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "shared"), str(REPO / "infra" / "local")]

from metric_points import accepted, ends_by_series, last_points, read_points, scalar, totals  # noqa: E402

from atlas.observability.metrics import Buckets  # noqa: E402


def over_time(
    points: list[dict[str, Any]], metric: str, group: Callable[[dict[str, str]], str]
) -> dict[str, list[tuple[float, float]]]:
    """For each group, the sum over instances of the running totals, at each time any of them wrote."""
    latest: dict[str, dict[str, float]] = defaultdict(dict)  # group -> series -> its last value
    curves: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for point in accepted(points, metric):
        name = group(point["labels"])
        latest[name][point["series"]] = scalar(point)
        curves[name].append((point["end"], sum(latest[name].values())))
    return dict(curves)


def merged_histogram(points: list[dict[str, Any]], metric: str) -> tuple[list[float], list[int], float, int]:
    """Bucket bounds, summed bucket counts, overall mean and count of a distribution across instances."""
    counts: list[int] = []
    bounds: list[float] = []
    total, weighted = 0, 0.0
    for point in last_points(points, metric).values():
        dist = point["value"]["distribution_value"]
        options = dist["bucket_options"]
        if "exponential_buckets" in options:
            spec = {"exponential": options["exponential_buckets"]}
        else:  # proto JSON leaves a zero offset out
            spec = {"linear": {"offset": 0.0, **options["linear_buckets"]}}
        bounds = list(Buckets.from_spec(spec).bounds)
        these = [int(c) for c in dist.get("bucket_counts", [])]
        counts = [a + b for a, b in zip(counts + [0] * (len(these) - len(counts)), these, strict=False)] or these
        count = int(dist.get("count", 0))
        total += count
        weighted += float(dist.get("mean", 0.0)) * count
    return bounds, counts, (weighted / total if total else math.nan), total


def percentile(bounds: list[float], counts: list[int], q: float) -> float | None:
    """An upper bound of the q-quantile from bucket counts (the bucket's upper edge)."""
    total = sum(counts)
    if not total:
        return None
    seen = 0
    for index, count in enumerate(counts):
        seen += count
        if seen >= q * total:
            return bounds[min(index, len(bounds) - 1)]
    return bounds[-1]


def latency_bars(bounds: list[float], counts: list[int]) -> list[tuple[float, float, int]]:
    """(left edge, width, count) of every non-empty bucket, the underflow and overflow buckets included, so
    the bars add up to every task however fast or slow it was. The underflow bar spans one bucket below the
    first bound (down to 0 on a linear scale), the overflow bar one bucket above the last."""
    if not bounds:
        return []
    ratio = bounds[1] / bounds[0] if len(bounds) > 1 and bounds[0] > 0 else None
    step = bounds[1] - bounds[0] if len(bounds) > 1 else 1.0
    edges = [bounds[0] / ratio if ratio else max(bounds[0] - step, 0.0), *bounds]
    edges.append(bounds[-1] * ratio if ratio else bounds[-1] + step)
    bars = []
    for index, count in enumerate(counts[: len(edges) - 1]):
        if count:
            bars.append((edges[index], edges[index + 1] - edges[index], count))
    return bars


def _none(ax: Any, title: str) -> None:
    """An empty panel: its title and "none", no axes to read meaning into."""
    ax.set_title(title)
    ax.text(0.5, 0.5, "none", ha="center", va="center", fontsize="large", color="grey", transform=ax.transAxes)
    ax.set_axis_off()


LAG_NOTE = (
    "An instance writes its last counts at its next write (every 5 s at most while it works) or at shutdown: "
    "a report of a running stack can lag behind it; `make down` writes the rest."
)


def summary(points: list[dict[str, Any]]) -> dict[str, Any]:
    bounds, counts, mean, n = merged_histogram(points, "task/latency")
    gaps = [b - a for ends in ends_by_series(points).values() for a, b in zip(ends, ends[1:], strict=False)]
    return {
        "points_accepted": sum(1 for p in points if not p.get("rejected")),
        "writes_rejected": sum(1 for p in points if p.get("rejected")),
        "series": len(ends_by_series(points)),
        "instances": len({p["resource"]["task_id"] for p in points}),
        "min_seconds_between_points_of_a_series": round(min(gaps), 3) if gaps else None,
        "tasks": totals(points, "tasks", "status"),
        "deliveries": totals(points, "deliveries", "outcome"),
        "task_latency_s": {
            "count": n,
            "mean": round(mean, 3) if n else None,
            "p50_at_most": percentile(bounds, counts, 0.5),
            "p95_at_most": percentile(bounds, counts, 0.95),
        },
        "llm_tokens": totals(points, "llm/tokens", "kind"),
        "llm_cost_usd": {k: round(v, 6) for k, v in totals(points, "llm/cost", "model").items()},
        "llm_fallbacks": totals(points, "llm/fallbacks", "reason"),
        "llm_errors": totals(points, "llm/errors", "error_class"),
    }


def draw(points: list[dict[str, Any]], out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start = min((p["end"] for p in points), default=0.0)
    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    fig.suptitle(title)

    ax = axes[0][0]
    bounds, counts, mean, n = merged_histogram(points, "task/latency")
    heading = f"Task latency, publish to terminal ({n} tasks)"
    bars = latency_bars(bounds, counts)
    if n and bars:
        ax.bar([b[0] for b in bars], [b[2] for b in bars], width=[b[1] for b in bars], align="edge")
        if bars[0][0] > 0:
            ax.set_xscale("log")
        ax.axvline(mean, color="red", linestyle="--", label=f"mean {mean:.2f} s")
        ax.legend()
        ax.set(title=heading, xlabel="seconds", ylabel="tasks")
    else:
        _none(ax, heading)

    for ax, metric, label, heading, unit in (
        (axes[0][1], "tasks", "status", "Tasks finished (all instances)", "tasks"),
        (axes[0][2], "llm/tokens", "kind", "LLM tokens", "tokens"),
        (axes[1][0], "llm/cost", "model", "LLM cost", "USD"),
    ):
        curves = over_time(points, metric, lambda labels, key=label: labels.get(key, ""))
        if not curves:
            _none(ax, heading)
            continue
        for name, curve in sorted(curves.items()):
            ax.step([t - start for t, _ in curve], [v for _, v in curve], where="post", label=name or "(none)")
        ax.set(title=heading, xlabel="seconds into the run", ylabel=unit)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")

    ax = axes[1][1]
    fallbacks = {f"fallback: {k}": v for k, v in totals(points, "llm/fallbacks", "reason").items()}
    errors = {f"error: {k}": v for k, v in totals(points, "llm/errors", "error_class").items()}
    problems = {**fallbacks, **errors}
    if problems:
        ax.barh(list(problems), list(problems.values()))
        ax.set(title="LLM fallbacks and errors", xlabel="count")
    else:
        _none(ax, "LLM fallbacks and errors")

    ax = axes[1][2]
    stages = sorted({p["labels"].get("stage", "") for p in accepted(points, "stage/latency")})
    p50s, p95s = [], []
    for stage in stages:
        subset = [p for p in points if p.get("labels", {}).get("stage") == stage]
        b, c, _, _ = merged_histogram(subset, "stage/latency")
        p50s.append(percentile(b, c, 0.5) or 0)
        p95s.append(percentile(b, c, 0.95) or 0)
    x = range(len(stages))
    if stages:
        ax.bar([i - 0.2 for i in x], p50s, width=0.4, label="p50 (at most)")
        ax.bar([i + 0.2 for i in x], p95s, width=0.4, label="p95 (at most)")
        ax.set_xticks(list(x), stages)
        ax.set(title="Stage latency", ylabel="seconds")
        ax.legend()
    else:
        _none(ax, "Stage latency")

    fig.text(0.5, 0.005, LAG_NOTE, ha="center", va="bottom", fontsize="small", color="dimgrey")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("points", type=Path, nargs="?", default=REPO / ".atlas" / "stack" / "metrics.jsonl")
    parser.add_argument("--out", type=Path, default=REPO / ".atlas" / "metrics-report.png", help="the PNG to write")
    parser.add_argument("--title", default="Atlas: a local run's metrics")
    args = parser.parse_args(argv)
    if not args.points.is_file():
        print(f"metrics_report: no points file at {args.points}; run the stack or scripts/loadtest.py", file=sys.stderr)
        return 2
    points = read_points(args.points)
    if not points:
        print(f"metrics_report: {args.points} holds no points yet", file=sys.stderr)
        return 2
    draw(points, args.out, args.title)
    print(json.dumps(summary(points)), flush=True)
    print(f"metrics_report: {LAG_NOTE}", file=sys.stderr)
    print(f"metrics_report: wrote the PNG to {args.out.resolve()}; open it in an image viewer", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
