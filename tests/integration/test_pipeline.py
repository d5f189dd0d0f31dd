"""The task pipeline with real Firestore (emulator), the real index, and a local OpenAI-compatible server."""

import pytest

from atlas.config import ChainEntry
from atlas.envelope import PushedMessage
from atlas.errors import LLMUnavailableError, RetrievalUnavailableError
from atlas.llm import ProviderChain
from atlas.pipeline import Outcome, PipelineDeps, process_event, process_message
from atlas.retrieval_client import RetrievalClient
from support.retriever import IndexRetriever

PROMPT = b'{"prompt": "Design a logging architecture for microservices"}'


@pytest.fixture
def deps_for(store, knowledge_index, fake_openai):
    def build(*, llm=True, retriever=None):
        entries = (ChainEntry(provider="openai_compatible", model="fake", base_url=fake_openai.base_url),)
        chain = ProviderChain(entries if llm else (ChainEntry(provider="openai", model="gpt-4o-mini"),), environ={})
        return PipelineDeps(
            store=store, retriever=retriever or IndexRetriever(knowledge_index), chain=chain, top_k=5, lease_s=60
        )

    return build


def test_valid_task_succeeds_with_a_cited_design_sources_and_timings(deps_for, store):
    assert process_message(PushedMessage("m1", PROMPT), deps_for()) is Outcome.SUCCEEDED
    document = store.get("m1")
    assert document.status == "succeeded" and document.result["kind"] == "design"
    assert document.provider == "openai_compatible" and document.usage["input_tokens"] == 1200
    assert [s.label for s in document.sources] == ["S1", "S2", "S3", "S4", "S5"]
    assert document.sources[0].source == "knowledge/logging-pipelines.md"
    cited = {c["source_id"] for c in document.result["citations"]}
    assert cited and cited <= {s.label for s in document.sources}
    assert {"retrieval_ms", "generation_ms", "total_ms"} <= set(document.timings_ms)
    assert document.lease is None and document.finished_at is not None


def test_without_a_provider_the_task_is_degraded_with_a_brief(deps_for, store):
    assert process_message(PushedMessage("m2", PROMPT), deps_for(llm=False)) is Outcome.DEGRADED
    document = store.get("m2")
    assert document.status == "degraded" and document.result["kind"] == "brief"
    assert len(document.result["sources"]) == 5 and "OPENAI_API_KEY" in document.notice


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
    fake_openai.script("status:429")
    with pytest.raises(LLMUnavailableError):
        process_message(PushedMessage("m4", PROMPT), deps_for())
    raw = store.get_raw("m4")
    assert raw["status"] == "queued" and raw["last_error"]["code"] == "llm_unavailable"
    assert process_message(PushedMessage("m4", PROMPT), deps_for()) is Outcome.SUCCEEDED
    assert store.get("m4").attempts == 2


def test_retrieval_down_is_transient(deps_for, store):
    deps = deps_for(retriever=RetrievalClient("http://127.0.0.1:9", timeout_s=2))
    with pytest.raises(RetrievalUnavailableError):
        process_message(PushedMessage("m5", PROMPT), deps)
    assert store.get_raw("m5")["status"] == "queued"
