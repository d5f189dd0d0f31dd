"""scripts/metrics_report.py tells the truth: every task in the latency histogram, "none" on an empty panel,
the lag of a running stack's report said on the picture and on the terminal."""

import sys

import pytest

from stack import REPO

sys.path.insert(0, str(REPO / "scripts"))
import metrics_report  # noqa: E402

PREFIX = "custom.googleapis.com/atlas/"
EXPONENTIAL = {"scale": 0.5, "growth_factor": 2.0, "num_finite_buckets": 4}  # bounds 0.5 .. 8 s


def latency_point(counts: list[int], mean: float) -> dict:
    return {
        "metric": PREFIX + "task/latency",
        "series": "task/latency|i1",
        "end": 100.0,
        "labels": {},
        "resource": {"task_id": "i1"},
        "value": {
            "distribution_value": {
                "count": sum(counts),
                "mean": mean,
                "bucket_counts": [str(c) for c in counts],
                "bucket_options": {"exponential_buckets": EXPONENTIAL},
            }
        },
    }


@pytest.mark.parametrize(
    "counts",
    [[3, 0, 0, 0, 0, 0], [2, 1, 0, 4, 0, 1], [0, 0, 0, 0, 0, 5], [0, 1, 1, 1, 1, 0]],
)
def test_the_histogram_bars_add_up_to_every_task_underflow_and_overflow_included(counts):
    bounds, merged, _, n = metrics_report.merged_histogram([latency_point(counts, 1.0)], "task/latency")
    bars = metrics_report.latency_bars(bounds, merged)
    assert sum(count for _, _, count in bars) == n == sum(counts)
    assert all(left > 0 and width > 0 for left, width, _ in bars)  # drawable on the log scale


def test_tasks_faster_than_the_first_bucket_are_drawn_and_counted_in_the_title(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = []
    monkeypatch.setattr(plt, "close", figures.append)
    metrics_report.draw([latency_point([3, 0, 0, 0, 0, 0], 0.1)], tmp_path / "r.png", "t")
    axes = figures[0].axes
    histogram = axes[0]
    assert histogram.get_title() == "Task latency, publish to terminal (3 tasks)"
    assert sum(patch.get_height() for patch in histogram.patches) == 3
    # Every other panel has no data: it says "none" and draws no axis.
    for ax in axes[1:]:
        assert not ax.axison and [t.get_text() for t in ax.texts] == ["none"], ax.get_title()
    note = " ".join(t.get_text() for t in figures[0].texts)
    assert "at its next write" in note and "at shutdown" in note and "`make down` writes the rest" in note
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"


def test_the_terminal_says_the_report_can_lag_and_where_the_png_is(tmp_path, capsys):
    import json

    points = tmp_path / "points.jsonl"
    points.write_text(json.dumps(latency_point([0, 2, 0, 0, 0, 0], 0.7)) + "\n")
    assert metrics_report.main([str(points), "--out", str(tmp_path / "r.png")]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["task_latency_s"]["count"] == 2
    err = captured.err.strip().splitlines()
    assert "a report of a running stack can lag" in err[-2]
    assert err[-1].startswith(f"metrics_report: wrote the PNG to {(tmp_path / 'r.png').resolve()}")
