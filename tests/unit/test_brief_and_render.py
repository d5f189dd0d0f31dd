import json

from fake_openai import design_for

from atlas.cli.render import render_task
from atlas.design.brief import CONFIGURE_PROVIDER_HINT, build_brief
from atlas.models import Source, TaskMessage
from atlas.tasks.document import TaskDocument


def test_brief_lists_sources_and_says_how_to_configure_a_provider():
    sources = [
        Source(id="c1", text="word " * 200, title="Logging", section="Sinks", source="k.md", score=0.51234, label="S1")
    ]
    brief = build_brief(TaskMessage(prompt="Design logging"), sources, "no LLM provider is configured.")
    assert brief.kind == "brief" and brief.next_step == CONFIGURE_PROVIDER_HINT
    assert brief.sources[0].label == "S1" and len(brief.sources[0].excerpt) <= 400
    assert "no LLM provider is configured" in brief.summary


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
        "llm_attempts": [{"entry": "openai/m", "outcome": "transient"}, {"entry": "openai/m", "outcome": "ok"}],
    }
    text = render_task(TaskDocument.parse(document))
    assert "SUCCEEDED" in text and "## Components" in text and "[S1]" in text and "Collector → Log store" in text
    assert "Cost: 0.0123 USD  tokens: input 1200, cached input 200, output 300  LLM attempts: 2" in text
    assert json.loads(TaskDocument.parse(document).to_json_line()) == document


def test_render_failed_task_shows_error():
    failed = {"task_id": "t2", "status": "failed", "error": {"code": "invalid_task", "message": "bad"}}
    text = render_task(TaskDocument.parse(failed))
    assert "Error [invalid_task]: bad" in text


def test_streamed_text_is_shown_as_it_grows_and_restarts_when_an_entry_falls_back(capsys):
    from atlas.cli.follow import show_partial

    shown = ("", "")
    for entry, text in [
        ("openai/a", '{"ti'),
        ("openai/a", '{"title": "A'),
        ("openai/a", '{"title": "A'),  # polled again, nothing new
        ("openai/b", '{"tit'),  # a fallback starts over
        ("openai/b", '{"title": "B"}'),
    ]:
        shown = show_partial(shown, entry, text)
    err = capsys.readouterr().err
    assert err == '── streaming from openai/a ──\n{"title": "A\n── streaming from openai/b ──\n{"title": "B"}'
    assert shown == ("openai/b", '{"title": "B"}')
