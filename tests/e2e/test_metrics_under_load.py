"""Metrics end to end: two worker instances behind the stack's front end write to the local MetricService,
which enforces Cloud Monitoring's one point per series per 5 seconds and keeps every point."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from metric_points import PREFIX, ends_by_series, last_points, read_points, total

from stack import REPO
from support.running_stack import running_stack

pytestmark = pytest.mark.e2e
LOAD_S = 22  # 20 s or more of two instances writing: several write intervals of each
TASK_EVERY_S = 0.5


def test_two_instances_under_load_never_break_the_write_limit_and_sum_to_the_tasks(
    emulators, fake_openai, model_dir, tmp_path
):
    fake_openai.default_for("gpt-4o", "status:400")  # every task: one permanent error, then a fallback
    with running_stack(
        emulators,
        tmp_path / "stack",
        base_url=fake_openai.base_url,
        models=("gpt-4o", "gpt-4o-mini"),
        worker_env={"ATLAS_LLM_COOLDOWN_S": "0"},
        worker_instances=2,
    ) as (state, store):
        from google.cloud import pubsub_v1

        publisher = pubsub_v1.PublisherClient()
        topic = publisher.topic_path(state.project, state.topic)
        started = time.monotonic()
        task_ids = []
        while time.monotonic() - started < LOAD_S:
            task_id = f"load-{len(task_ids)}"
            body = f'{{"prompt": "Design a logging architecture, variant {len(task_ids)}", "task_id": "{task_id}"}}'
            publisher.publish(topic, body.encode()).result(timeout=30)
            task_ids.append(task_id)
            time.sleep(TASK_EVERY_S)
        documents = []
        deadline = time.monotonic() + 120
        for task_id in task_ids:
            while (document := store.get(task_id)) is None or document.status != "succeeded":
                assert time.monotonic() < deadline, (task_id, document)
                time.sleep(0.2)
            documents.append(document)
        points_file = state.metrics_points
    # The stack has stopped: each instance wrote its final totals at SIGTERM.
    points = read_points(Path(points_file))
    assert points and not [p for p in points if p.get("rejected")]
    for series, ends in ends_by_series(points).items():
        gaps = [b - a for a, b in zip(ends, ends[1:], strict=False)]
        assert all(gap >= 5.0 for gap in gaps), (series, gaps)

    n = len(task_ids)
    instances = {p["resource"]["task_id"] for p in last_points(points).values() if p["metric"] == PREFIX + "tasks"}
    assert len(instances) == 2, instances
    assert total(points, "tasks") == total(points, "tasks", status="succeeded") == n
    assert total(points, "deliveries", outcome="succeeded") == n
    assert total(points, "task/latency", status="succeeded") == n
    assert total(points, "stage/latency", stage="generation") >= n
    assert total(points, "retrieval/hits") >= n
    assert total(points, "llm/errors", provider="openai_compatible", model="gpt-4o", error_class="permanent") >= n
    assert total(points, "llm/fallbacks", model="gpt-4o", reason="permanent") == n
    for kind in ("input", "cached_input", "output"):
        field = f"{kind}_tokens"
        assert total(points, "llm/tokens", kind=kind) == sum(getattr(d.usage, field) for d in documents), kind
    assert total(points, "llm/cost", model="gpt-4o-mini") == pytest.approx(sum(d.cost_usd for d in documents))
    assert LOAD_S >= 20 and n >= 20

    # The report draws the same run and prints the same totals.
    report = tmp_path / "report.png"
    out = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "metrics_report.py"), points_file, "--out", str(report)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert out.stderr.strip().splitlines()[-1].startswith(f"metrics_report: wrote the PNG to {report.resolve()}")
    assert report.stat().st_size > 10_000 and report.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert summary["tasks"] == {"succeeded": n} and summary["writes_rejected"] == 0 and summary["instances"] >= 2
    assert summary["task_latency_s"]["count"] == n and summary["min_seconds_between_points_of_a_series"] >= 5
