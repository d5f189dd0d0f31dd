"""The task document's one schema and the pure decisions about a task: no emulator needed.

``decide_outcome`` says what a generation means for its task; the store's writes set only fields the schema
knows, so every writer and every reader agree on a field's name and shape."""

from __future__ import annotations

import pytest
from fake_openai import design_for

from atlas.design.schema import Design
from atlas.errors import ContentRefusedError, LLMUnavailableError
from atlas.llm.attempts import Attempt
from atlas.llm.chain import ChainFailure, Fallback, Generation
from atlas.llm.pricing import Usage
from atlas.llm.retry import FailureKind
from atlas.models import Lease, Source, TaskError, TaskMessage, TaskStatus
from atlas.tasks.document import (
    AttemptRecord,
    BudgetNote,
    ContextReport,
    DeliveryReport,
    FallbackRecord,
    Spend,
    Stage,
    TaskDocument,
    TokenUsage,
)
from atlas.tasks.outcome import decide_outcome, spend_of
from atlas.tasks.store import delivery_fields, new_task_fields

TASK = TaskMessage(prompt="Design logging", cloud="gcp")
SOURCES = [Source(id="a", text="ship logs", title="Logging", source="k.md", score=0.9, label="S1")]
DESIGN = Design.model_validate(design_for('<source id="S1"'))
ATTEMPT = Attempt("openai/gpt-4o-mini", 1, "ok", "", Usage(100, 20, 10), False, 0.001, True, 12.0)


def failure(*kinds: FailureKind, configured: bool = True) -> ChainFailure:
    fallbacks = [Fallback(f"openai/m{i}", kind, "why") for i, kind in enumerate(kinds)]
    return ChainFailure(reason="every LLM provider failed", fallbacks=fallbacks, configured=configured)


def decide(generation, *, delivery=1, max_deliveries=5):
    return decide_outcome(TASK, SOURCES, generation, delivery=delivery, max_deliveries=max_deliveries)


def test_a_design_succeeds_with_its_provider_and_model():
    verdict = decide(Generation(attempts=[ATTEMPT], value=DESIGN, provider="openai", model="gpt-4o-mini"))
    assert verdict.status is TaskStatus.SUCCEEDED and verdict.error is None
    assert verdict.result.kind == "design" and verdict.result.title == DESIGN.title
    assert (verdict.provider, verdict.model) == ("openai", "gpt-4o-mini")


def test_refusal_by_every_entry_that_answered_fails_the_task():
    verdict = decide(failure(FailureKind.REFUSAL, FailureKind.COOLDOWN, FailureKind.REFUSAL))
    assert verdict.status is None and isinstance(verdict.error, ContentRefusedError)


def test_an_outage_goes_back_to_pubsub_until_the_last_delivery_then_degrades_with_a_brief():
    outage = failure(FailureKind.TRANSIENT, FailureKind.BROKEN_STREAM)
    assert isinstance(decide(outage, delivery=4).error, LLMUnavailableError)
    last = decide(outage, delivery=5)
    assert last.status is TaskStatus.DEGRADED and last.result.kind == "brief"
    assert "(delivery 5 of 5)" in last.notice and "OPENAI_API_KEY" in last.notice
    assert [s.label for s in last.result.sources] == ["S1"]


def test_without_a_configured_provider_the_task_degrades_at_once_and_says_what_to_set():
    verdict = decide(ChainFailure(reason="no LLM provider is configured.", configured=False), delivery=1)
    assert verdict.status is TaskStatus.DEGRADED and "delivery" not in verdict.notice
    assert verdict.result.next_step.startswith("Set OPENAI_API_KEY")


def test_a_permanent_failure_of_every_entry_degrades_on_the_first_delivery():
    verdict = decide(failure(FailureKind.PERMANENT, FailureKind.CONTEXT_LENGTH), delivery=1)
    assert verdict.status is TaskStatus.DEGRADED


def test_spend_records_each_attempt_with_its_delivery_and_nothing_without_a_request():
    spend = spend_of(Generation(attempts=[ATTEMPT, ATTEMPT], value=DESIGN), delivery=3)
    assert spend.cost_usd == pytest.approx(0.002) and spend.usage == TokenUsage(
        input_tokens=200, cached_input_tokens=40, output_tokens=20
    )
    assert [a.delivery for a in spend.attempts] == [3, 3] and spend.attempts[0].entry == "openai/gpt-4o-mini"
    assert spend_of(ChainFailure(reason="none", configured=False), delivery=1) is None


def _top_level(fields: dict) -> set[str]:
    return {key.split(".")[0] for key in fields}


def test_what_a_delivery_writes_is_fields_of_the_schema_and_its_spend_adds_up():
    report = DeliveryReport(
        timings_ms={"retrieval_ms": 1.0},
        sources=SOURCES,
        context=ContextReport(kept=1),
        fallbacks=[FallbackRecord(entry="a/b", kind="transient", reason="429")],
        budget=BudgetNote(day="2026-12-01", limit_usd=1.0, spent_usd=2.0, action="cheapest", entries=["a/b"]),
        result=decide(Generation(value=DESIGN)).result,
        provider="openai",
        model="m",
        notice="n",
        spend=Spend(
            cost_usd=0.5, usage=TokenUsage(input_tokens=3), attempts=[AttemptRecord(entry="a/b", outcome="ok")]
        ),
    )
    fields = delivery_fields(report)
    assert _top_level(fields) <= set(TaskDocument.model_fields)
    assert {"cost_usd", "usage.input_tokens", "llm_attempts"} <= set(fields) and "spend" not in fields
    assert fields["result"]["data_flows"][0]["from"] == "Collector"  # stored by alias, as the schema reads it


def test_a_new_task_is_written_as_the_schema_reads_it():
    created = TaskDocument(
        task_id="t1",
        status=TaskStatus.RUNNING,
        stage=Stage.CLAIMED,
        prompt=TASK.prompt,
        hints=TASK.hints(),
        attempts=1,
        lease=Lease(owner="me", expires_at="2026-12-01T00:00:00Z"),
    )
    fields = new_task_fields(created)
    assert _top_level(fields) <= set(TaskDocument.model_fields)
    assert {k: v for k, v in fields.items() if k not in ("created_at", "updated_at")} == created.stored()
    assert TaskDocument.parse(created.stored()).task_message() == TASK


def test_the_json_line_is_what_was_stored():
    stored = {
        "task_id": "t1",
        "status": "failed",
        "stage": "rejected",
        "error": {"code": "invalid_task", "message": "bad"},
        "raw_excerpt": "{not json",
    }
    document = TaskDocument.parse(stored)
    assert document.stage is Stage.REJECTED and document.error == TaskError(code="invalid_task", message="bad")
    assert document.to_json_line() == (
        '{"error": {"code": "invalid_task", "message": "bad"}, "raw_excerpt": "{not json", "stage": "rejected", '
        '"status": "failed", "task_id": "t1"}'
    )

