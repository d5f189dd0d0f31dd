import importlib.util

import pytest

from atlas.tasks.document import TaskDocument
from stack import REPO

spec = importlib.util.spec_from_file_location("cost_report", REPO / "scripts" / "cost_report.py")
cost_report_module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cost_report_module)


def task(task_id, status, cost, attempts=()):
    return TaskDocument.parse({"task_id": task_id, "status": status, "cost_usd": cost, "llm_attempts": list(attempts)})


def attempt(entry, outcome, input_tokens, cached, output, cost):
    usage = {"input_tokens": input_tokens, "cached_input_tokens": cached, "output_tokens": output}
    return {"entry": entry, "outcome": outcome, "usage": usage, "cost_usd": cost}


def test_cost_is_taken_apart_by_task_entry_kind_and_failed_attempts():
    documents = [
        task(
            "t1",
            "succeeded",
            0.0195 + 0.005342,
            [
                attempt("openai_compatible/gpt-4.1", "broken_stream", 1847, 0, 206, 0.005342),
                attempt("openai/gpt-4o-mini", "ok", 100_000, 20_000, 10_000, 0.0195),
            ],
        ),
        task("t2", "degraded", 0.0),
        task("t3", "running", 1.0),  # not finished: not counted
    ]
    report = cost_report_module.cost_report(documents)
    assert report["tasks"] == 2 and report["total_usd"] == pytest.approx(0.024842)
    assert report["failed_attempts"] == 1 and report["failed_attempts_usd"] == pytest.approx(0.005342)
    assert report["by_entry_usd"]["openai/gpt-4o-mini"] == pytest.approx(0.0195)
    kinds = report["by_token_kind_usd"]
    # gpt-4o-mini: 80k fresh input at 0.15, 20k cached at 0.075, 10k output at 0.6 (USD per 1M tokens)
    assert kinds["cached_input"] == pytest.approx(20_000 * 0.075 / 1e6)
    assert kinds["input"] == pytest.approx(80_000 * 0.15 / 1e6 + 1847 * 2.0 / 1e6)
    assert kinds["output"] == pytest.approx(10_000 * 0.6 / 1e6 + 206 * 8.0 / 1e6)
    assert report["per_task_usd"]["max"] == pytest.approx(0.024842)
    assert report["tokens"] == {"input_tokens": 101_847, "cached_input_tokens": 20_000, "output_tokens": 10_206}
