"""The task pipeline with real Firestore (emulator), the real index, and a local OpenAI-compatible server."""

import threading
import time

import pytest

from atlas.config import ChainEntry
from atlas.errors import LeaseLostError, LLMUnavailableError, RetrievalUnavailableError
from atlas.llm.budget import DailyBudget
from atlas.llm.chain import ProviderChain
from atlas.llm.retry import RetryPolicy
from atlas.models import TaskError, TaskMessage
from atlas.tasks.envelope import PushedMessage
from atlas.tasks.pipeline import Outcome, PipelineDeps, process_event, process_message
from atlas.tasks.progress import PartialWriter
from atlas.tasks.retrieval_client import RetrievalClient
from support.retriever import IndexRetriever

PROMPT = b'{"prompt": "Design a logging architecture for microservices"}'
FAST = RetryPolicy(attempts_per_entry=2, base_delay_s=0.05, max_delay_s=0.1, retry_after_cap_s=0.1)


@pytest.fixture
def deps_for(store, knowledge_index, fake_openai):
    def build(*models, llm=True, retriever=None, **limits):
        entries = [ChainEntry(provider="openai_compatible", model=m, base_url=fake_openai.base_url) for m in models]
        if not entries:
            entries = [ChainEntry(provider="openai_compatible", model="fake", base_url=fake_openai.base_url)]
        if not llm:
            entries = [ChainEntry(provider="openai", model="gpt-4o-mini")]
        chain = ProviderChain(entries, environ={}, policy=FAST)
        return PipelineDeps(
            store=store,
            retriever=retriever or IndexRetriever(knowledge_index),
            chain=chain,
            top_k=5,
            **limits,
        )

    return build


def test_valid_task_succeeds_with_a_cited_design_sources_and_timings(deps_for, store):
    assert process_message(PushedMessage("m1", PROMPT), deps_for()) is Outcome.SUCCEEDED
    document = store.get("m1")
    assert document.status == "succeeded" and document.design is not None
    assert document.provider == "openai_compatible" and document.usage.input_tokens == 1200
    assert document.cost_usd == 0 and document.llm_attempts[0].outcome == "ok"
    assert "partial" not in document.model_fields_set  # the streamed text gives way to the result
    kept_for = document.expire_at - document.finished_at  # Firestore's TTL field
    assert 29.9 < kept_for.total_seconds() / 86400 <= 30
    assert [s.label for s in document.sources] == ["S1", "S2", "S3", "S4", "S5"]
    assert document.sources[0].source in {"knowledge/logging-pipelines.md", "knowledge/log-storage-and-search.md"}
    cited = {c.source_id for c in document.design.citations}
    assert cited and cited <= {s.label for s in document.sources}
    assert {"retrieval_ms", "generation_ms", "total_ms"} <= set(document.timings_ms)
    assert document.lease is None and document.finished_at is not None


def test_without_a_provider_the_task_is_degraded_with_a_brief(deps_for, store):
    assert process_message(PushedMessage("m2", PROMPT), deps_for(llm=False)) is Outcome.DEGRADED
    document = store.get("m2")
    assert document.status == "degraded" and document.brief is not None
    assert len(document.brief.sources) == 5 and "OPENAI_API_KEY" in document.notice


def test_duplicate_delivery_generates_once(deps_for, store, fake_openai):
    deps = deps_for()
    assert process_message(PushedMessage("m3", PROMPT), deps) is Outcome.SUCCEEDED
    assert process_message(PushedMessage("m3", PROMPT), deps) is Outcome.DUPLICATE
    assert len(fake_openai.completions()) == 1


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"constraints": ["x"]}', "'prompt' is required"),
        (b'{"prompt": "p", "unknown": 1}', "unknown field"),
        (b'{"prompt": ""}', "'prompt'"),
        (b'{"prompt": "' + b"x" * 8001 + b'"}', "'prompt'"),
        (b"\xc3\x28 not utf-8", "not UTF-8"),
    ],
)
def test_bad_input_is_recorded_as_failed_and_acknowledged(deps_for, store, fake_openai, data, reason):
    assert process_message(PushedMessage("bad-1", data), deps_for()) is Outcome.REJECTED
    document = store.get("bad-1")
    assert document.status == "failed" and document.error.code == "invalid_task" and reason in document.error.message
    assert fake_openai.completions() == []


def test_broken_envelope_without_usable_id_is_logged_and_acknowledged(deps_for, caplog):
    assert process_event({"garbage": True}, event_id="", deps=deps_for()) is Outcome.REJECTED
    assert "no usable task id" in caplog.text


def test_every_provider_rate_limited_releases_the_task_for_retry(deps_for, store, fake_openai):
    fake_openai.script("status:429", "status:429")
    with pytest.raises(LLMUnavailableError):
        process_message(PushedMessage("m4", PROMPT), deps_for())
    released = store.get("m4")
    assert released.status == "queued" and released.last_error.code == "llm_unavailable"
    assert [a.outcome for a in released.llm_attempts] == ["transient", "transient"]
    assert process_message(PushedMessage("m4", PROMPT), deps_for()) is Outcome.SUCCEEDED
    document = store.get("m4")
    assert document.attempts == 2 and [a.delivery for a in document.llm_attempts] == [1, 1, 2]


def test_on_the_last_delivery_every_provider_failing_degrades_with_every_failure_recorded(deps_for, store, fake_openai):
    fake_openai.default_for("a", "status:503")
    fake_openai.default_for("b", "cut")
    deps = deps_for("a", "b", max_delivery_attempts=2)
    with pytest.raises(LLMUnavailableError):
        process_message(PushedMessage("m6", PROMPT), deps)
    assert process_message(PushedMessage("m6", PROMPT), deps_for("a", "b", max_delivery_attempts=2)) is (
        Outcome.DEGRADED
    )
    document = store.get("m6")
    assert document.status == "degraded" and document.brief is not None
    assert [(f.entry, f.kind) for f in document.fallbacks] == [
        ("openai_compatible/a", "transient"),
        ("openai_compatible/b", "broken_stream"),
    ]
    assert "delivery 2 of 2" in document.notice


def test_three_entry_chain_ends_on_the_third_with_fallbacks_and_cost(deps_for, store, fake_openai):
    fake_openai.default_for("gpt-4o", "status:429")
    fake_openai.default_for("gpt-4.1", "cut")
    fake_openai.usage = {"prompt_tokens": 100_000, "cached_tokens": 20_000, "completion_tokens": 10_000}
    outcome = process_message(PushedMessage("m7", PROMPT), deps_for("gpt-4o", "gpt-4.1", "gpt-4o-mini"))
    assert outcome is Outcome.SUCCEEDED
    document = store.get("m7")
    assert document.model == "gpt-4o-mini"
    assert [f.kind for f in document.fallbacks] == ["transient", "broken_stream"]
    attempts = document.llm_attempts
    assert [(a.entry.split("/")[1], a.outcome) for a in attempts] == [
        ("gpt-4o", "transient"),
        ("gpt-4o", "transient"),
        ("gpt-4.1", "broken_stream"),
        ("gpt-4o-mini", "ok"),
    ]
    cut = attempts[2]
    assert cut.usage_estimated and cut.cost_usd > 0  # what the broken stream cost, estimated
    mini = 0.08 * 0.15 + 0.02 * 0.075 + 0.01 * 0.60  # USD: 80k uncached, 20k cached input, 10k output
    assert attempts[3].cost_usd == pytest.approx(mini)
    assert document.cost_usd == pytest.approx(mini + cut.cost_usd)
    assert document.usage.output_tokens == 10_000 + cut.usage.output_tokens


def test_streamed_output_is_written_to_the_task_while_it_grows(deps_for, store, fake_openai):
    fake_openai.chunk_delay_s = 0.25  # 12 pieces: about 3 s of streaming
    seen: list[str] = []
    done = threading.Event()

    def watch():
        while not done.is_set():
            document = store.get("m8")
            if document is not None and document.partial and (not seen or seen[-1] != document.partial):
                seen.append(document.partial)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        assert process_message(PushedMessage("m8", PROMPT), deps_for()) is Outcome.SUCCEEDED
    finally:
        done.set()
        watcher.join()
    assert 2 <= len(seen) <= 5  # about once a second, not once a chunk
    assert all(later.startswith(earlier) for earlier, later in zip(seen, seen[1:], strict=False))
    assert "partial" not in store.get("m8").model_fields_set


def test_content_refused_by_every_entry_fails_the_task(deps_for, store, fake_openai):
    fake_openai.script("refuse", "refuse")
    assert process_message(PushedMessage("m9", PROMPT), deps_for("a", "b")) is Outcome.FAILED
    document = store.get("m9")
    assert document.error.code == "content_refused" and len(document.llm_attempts) == 2


def test_daily_budget_spent_fails_tasks_with_budget_exhausted(
    deps_for, store, firestore_client, collection_name, fake_openai
):
    fake_openai.usage = {"prompt_tokens": 100_000, "cached_tokens": 0, "completion_tokens": 10_000}
    budget = DailyBudget(firestore_client, f"{collection_name}-budget", limit_usd=0.01)
    deps = deps_for("gpt-4o-mini", budget=budget)
    assert process_message(PushedMessage("b1", PROMPT), deps) is Outcome.SUCCEEDED  # spends 0.021 USD
    assert budget.state().spent_usd == pytest.approx(0.021)
    assert process_message(PushedMessage("b2", PROMPT), deps) is Outcome.FAILED
    document = store.get("b2")
    assert document.error.code == "budget_exhausted" and "ATLAS_DAILY_BUDGET_USD" in document.error.message
    assert len(fake_openai.completions()) == 1


def test_over_budget_moves_to_the_cheapest_entry_when_so_configured(deps_for, store, firestore_client, collection_name):
    budget = DailyBudget(firestore_client, f"{collection_name}-budget", limit_usd=0.01)
    budget.charge(0.02)
    deps = deps_for("gpt-4o", "llama-local", budget=budget, over_budget="cheapest")
    assert process_message(PushedMessage("b3", PROMPT), deps) is Outcome.SUCCEEDED
    document = store.get("b3")
    assert document.model == "llama-local" and document.budget.action == "cheapest"


def test_sources_are_deduplicated_and_packed_to_the_input_budget(deps_for, store):
    assert process_message(PushedMessage("c1", PROMPT), deps_for(input_token_budget=1200)) is Outcome.SUCCEEDED
    document = store.get("c1")
    context = document.context
    assert context.estimated_tokens <= 1200 and context.kept == len(document.sources) < 5
    assert [s.label for s in document.sources] == [f"S{i + 1}" for i in range(len(document.sources))]


def test_partial_writes_are_throttled_renew_the_lease_and_stop_when_it_is_lost(store):
    store.claim("p1", TaskMessage(prompt="x"), message_id="m", owner="me", lease_s=30)
    now = [0.0]
    writer = PartialWriter(store, "p1", owner="me", lease_s=600, clock=lambda: now[0])
    writer("a/m", '{"ti')
    writer("a/m", '{"title')  # within the second: not written
    now[0] = 1.5
    writer("a/m", '{"title": "x"')
    writer("b/m", "")  # a new attempt clears at once
    document = store.get("p1")
    assert writer.writes == 3 and document.partial == "" and document.partial_entry == "b/m"
    assert (document.lease.expires_at - document.updated_at).total_seconds() > 500
    store.claim("p1", TaskMessage(prompt="x"), message_id="m", owner="other", lease_s=30)  # not expired: busy
    store.release("p1", owner="me", error=TaskError(code="t", message="t"))
    store.claim("p1", TaskMessage(prompt="x"), message_id="m", owner="other", lease_s=30)
    now[0] = 3.0
    with pytest.raises(LeaseLostError):
        writer("b/m", '{"title": "y"')


def test_retrieval_down_is_transient(deps_for, store):
    deps = deps_for(retriever=RetrievalClient("http://127.0.0.1:9", timeout_s=2))
    with pytest.raises(RetrievalUnavailableError):
        process_message(PushedMessage("m5", PROMPT), deps)
    assert store.get("m5").status == "queued"
