import json

from fake_openai import design_for

from atlas.brief import CONFIGURE_PROVIDER_HINT, build_brief
from atlas.models import Source, TaskMessage
from atlas.render import render_task, to_json_line


def test_brief_lists_sources_and_says_how_to_configure_a_provider():
    sources = [
        Source(id="c1", text="word " * 200, title="Logging", section="Sinks", source="k.md", score=0.51234, label="S1")
    ]
    brief = build_brief(TaskMessage(prompt="Design logging"), sources, "no LLM provider is configured.")
    assert brief["kind"] == "brief" and brief["next_step"] == CONFIGURE_PROVIDER_HINT
    assert brief["sources"][0]["label"] == "S1" and len(brief["sources"][0]["excerpt"]) <= 400
    assert "no LLM provider is configured" in brief["summary"]


def test_render_design_shows_sections_and_json_line_round_trips():
    document = {
        "task_id": "t1",
        "status": "succeeded",
        "prompt": "p",
        "provider": "openai",
        "model": "m",
        "result": {"kind": "design", **design_for('<source id="S1"')},
        "timings_ms": {"total_ms": 12.0},
        "usage": {"input_tokens": 1200, "cached_input_tokens": 200, "output_tokens": 300},
        "cost_usd": 0.012345,
        "llm_attempts": [{"outcome": "transient"}, {"outcome": "ok"}],
    }
    text = render_task(document)
    assert "SUCCEEDED" in text and "## Components" in text and "[S1]" in text and "Collector → Log store" in text
    assert "Cost: 0.0123 USD  tokens: input 1200, cached input 200, output 300  LLM attempts: 2" in text
    assert json.loads(to_json_line(document)) == document


def test_render_failed_task_shows_error():
    text = render_task({"task_id": "t2", "status": "failed", "error": {"code": "invalid_task", "message": "bad"}})
    assert "Error [invalid_task]: bad" in text


class _Documents:
    """Task documents as successive polls would return them (Firestore itself is exercised end to end)."""

    def __init__(self, *documents):
        self._documents = list(documents)

    def get_raw(self, task_id):
        return self._documents.pop(0) if len(self._documents) > 1 else self._documents[0]


def test_follow_shows_the_design_growing_and_restarts_when_an_entry_falls_back(capsys, monkeypatch):
    from atlas import cli

    monkeypatch.setattr(cli, "POLL_INTERVAL_S", 0)
    running = {"task_id": "t", "status": "running", "stage": "generating"}
    documents = _Documents(
        {**running, "partial_entry": "openai/a", "partial": '{"ti'},
        {**running, "partial_entry": "openai/a", "partial": '{"title": "A'},
        {**running, "partial_entry": "openai/b", "partial": '{"tit'},
        {**running, "partial_entry": "openai/b", "partial": '{"title": "B"}'},
        {"task_id": "t", "status": "succeeded", "stage": "done"},
    )
    document = cli.follow_task(documents, "t", timeout_s=10)
    err = capsys.readouterr().err
    assert document["status"] == "succeeded"
    assert '── streaming from openai/a ──\n{"title": "A\n── streaming from openai/b ──\n{"title": "B"}' in err
    assert err.rstrip().endswith("succeeded · done")
