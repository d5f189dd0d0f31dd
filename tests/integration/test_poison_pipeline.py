"""Poison input at the pipeline entry, against the Firestore emulator: arbitrary envelopes, bytes and JSON go
through ``process_event``; each ends acknowledged (never an exception), as a failed record under the task id
when one can be known, else as a structured log line."""

import base64
import itertools
import json
import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atlas.config import ChainEntry
from atlas.errors import InvalidTaskError
from atlas.llm.chain import ProviderChain
from atlas.tasks.envelope import PushedMessage, decode_task
from atlas.tasks.pipeline import Outcome, PipelineDeps, process_event

pytestmark = pytest.mark.integration

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=15,
)
BODY = st.one_of(
    st.binary(max_size=512),
    JSON.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(
        st.sampled_from(["prompt", "task_id", "constraints", "cloud", "budget_usd_per_month", "extra"]),
        JSON,
        max_size=5,
    ).map(lambda v: json.dumps(v).encode()),
)
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
_ids = itertools.count()


class NoSources:
    def search(self, query, *, top_k, filter=None):
        return []


@pytest.fixture
def deps(store):
    # An unconfigured provider: a valid task that slips through degrades at once, with no network.
    chain = ProviderChain([ChainEntry(provider="openai", model="gpt-4o-mini")], environ={})
    return PipelineDeps(store=store, retriever=NoSources(), chain=chain, top_k=3)


def envelope(data: bytes, message_id: str, attributes=None) -> dict:
    return {
        "message": {"data": base64.b64encode(data).decode(), "messageId": message_id, "attributes": attributes or {}}
    }


def expected_id(event: dict, event_id: str) -> str | None:
    """The id the pipeline should record a failure under, by the decoder's own rules."""
    try:
        pushed = PushedMessage.from_event_data(event)
    except InvalidTaskError as exc:
        return exc.task_id
    try:
        return decode_task(pushed).task_id
    except InvalidTaskError as exc:
        return exc.task_id


def assert_handled(event, deps, store, caplog, event_id="evt-0"):
    caplog.clear()
    outcome = process_event(event, event_id=event_id, deps=deps)  # must not raise
    assert outcome in (Outcome.REJECTED, Outcome.DEGRADED, Outcome.DUPLICATE), outcome
    if outcome is Outcome.REJECTED:
        task_id = expected_id(event, event_id)
        if task_id is None:
            assert any(r.levelno == logging.ERROR and "no usable task id" in r.getMessage() for r in caplog.records)
        else:
            document = store.get(task_id)
            assert document is not None and document.status == "failed", (task_id, document)
            assert document.error.code == "invalid_task" and document.error.message


@PROPERTY
@given(body=BODY)
def test_arbitrary_bodies_are_acknowledged_and_recorded(deps, store, caplog, body):
    assert_handled(envelope(body, f"poison-{next(_ids)}"), deps, store, caplog)


@PROPERTY
@given(
    event=st.one_of(
        JSON,
        st.fixed_dictionaries({"message": JSON}),
        st.builds(
            lambda data, mid, attrs: {"message": {"data": data, "messageId": mid, "attributes": attrs}},
            st.text(max_size=40) | JSON,
            st.text(max_size=20) | JSON,
            JSON | st.dictionaries(st.text(max_size=300), st.text(max_size=300), max_size=8),
        ),
    )
)
def test_arbitrary_envelopes_are_acknowledged(deps, store, caplog, event):
    assert_handled(event, deps, store, caplog)


@pytest.mark.parametrize(
    ("data", "attributes", "reason"),
    [
        (bytes(range(256)) * 4, {}, "not UTF-8"),
        (b'{"prompt": "p"}' + b"\x00", {}, "not valid JSON"),
        (b'{"prompt": 7, "cloud": ["gcp"]}', {}, "'prompt'"),
        (b'{"prompt": "p", "color": "red"}', {}, "unknown field 'color'"),
        (b'{"prompt": ""}', {}, "'prompt'"),
        (json.dumps({"prompt": "x" * 8001}).encode(), {}, "'prompt'"),
        (b"[" * 20_000 + b"]" * 20_000, {}, "nested too deeply"),
        (b"{not json", {"big": "v" * 500_000, **{f"k{i}": "x" * 100 for i in range(200)}}, "not valid JSON"),
    ],
)
def test_explicit_poison_is_recorded_as_failed(deps, store, caplog, data, attributes, reason):
    message_id = f"explicit-{next(_ids)}"
    assert_handled(envelope(data, message_id, attributes), deps, store, caplog)
    assert reason in store.get(message_id).error.message


def test_poison_redelivered_is_acknowledged_again_without_clobbering(deps, store, caplog):
    event = envelope(b"\xff\xfe", "again-1")
    assert process_event(event, event_id="e", deps=deps) is Outcome.REJECTED
    assert process_event(event, event_id="e", deps=deps) is Outcome.REJECTED
    assert store.get("again-1").attempts == 1
