"""Poison input at the decoder: whatever arrives, decoding ends in a task or an InvalidTaskError, never a crash.

Property-based (hypothesis) over arbitrary bytes, arbitrary JSON, arbitrary attribute maps and arbitrary
envelope shapes, plus explicit cases for what breaks decoders most often: huge attributes, binary data, wrong
types, unknown fields, empty and oversized prompts.
"""

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atlas.errors import InvalidTaskError
from atlas.models import MAX_PROMPT_CHARS
from atlas.tasks.envelope import MAX_MESSAGE_BYTES, DecodedTask, PushedMessage, decode_task

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20,
)
# Objects that look like tasks: the real field names with values of any type, plus unknown fields.
TASKISH = st.dictionaries(
    st.sampled_from(["prompt", "task_id", "constraints", "cloud", "budget_usd_per_month", "priority", ""])
    | st.text(max_size=8),
    JSON,
    max_size=6,
)
ANY_VALUE = JSON | st.binary(max_size=40)
ENVELOPE = st.one_of(
    JSON,
    st.fixed_dictionaries({"message": JSON}),
    st.fixed_dictionaries(
        {
            "message": st.fixed_dictionaries(
                {},
                optional={
                    "data": st.text(max_size=60)
                    | st.binary(max_size=30).map(lambda b: base64.b64encode(b).decode())
                    | JSON,
                    "messageId": JSON,
                    "message_id": JSON,
                    "attributes": JSON | st.dictionaries(st.text(max_size=20), st.text(max_size=50), max_size=5),
                    "publishTime": JSON,
                },
            )
        }
    ),
)


def decode_or_reject(pushed: PushedMessage) -> DecodedTask | InvalidTaskError:
    try:
        decoded = decode_task(pushed)
    except InvalidTaskError as exc:
        assert exc.reason, "a rejection must say why"
        return exc
    assert decoded.task_id and decoded.message.prompt
    return decoded


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=2048), message_id=st.text(max_size=40))
def test_arbitrary_bytes_decode_or_are_rejected_with_a_reason(data, message_id):
    decode_or_reject(PushedMessage(message_id=message_id, data=data))


@settings(max_examples=300, deadline=None)
@given(payload=JSON | TASKISH)
def test_arbitrary_json_decodes_or_is_rejected_under_the_message_id(payload):
    outcome = decode_or_reject(PushedMessage(message_id="msg-1", data=json.dumps(payload).encode()))
    if isinstance(outcome, InvalidTaskError):
        # The id under which the failure is recorded: the body's valid task_id, else the message id.
        assert outcome.task_id is not None


@settings(max_examples=300, deadline=None)
@given(event=ENVELOPE)
def test_arbitrary_envelopes_build_a_message_or_are_rejected(event):
    try:
        pushed = PushedMessage.from_event_data(event)
    except InvalidTaskError as exc:
        assert exc.reason
        return
    assert isinstance(pushed.data, bytes) and isinstance(pushed.message_id, str)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in pushed.attributes.items())
    decode_or_reject(pushed)


@settings(max_examples=100, deadline=None)
@given(attributes=st.dictionaries(st.text(max_size=300), ANY_VALUE, max_size=20))
def test_arbitrary_attribute_maps_do_not_change_the_outcome(attributes):
    event = {
        "message": {
            "data": base64.b64encode(b'{"prompt": "Design a cache"}').decode(),
            "messageId": "m-9",
            "attributes": attributes,
        }
    }
    pushed = PushedMessage.from_event_data(event)
    assert decode_task(pushed).task_id == "m-9"


def test_huge_attributes_are_tolerated():
    event = {
        "message": {
            "data": base64.b64encode(b'{"prompt": "p"}').decode(),
            "messageId": "m-1",
            "attributes": {"k" * 256: "v" * 1_000_000, **{f"a{i}": "x" for i in range(100)}},
        }
    }
    assert decode_task(PushedMessage.from_event_data(event)).task_id == "m-1"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (bytes(range(256)), "not UTF-8"),
        (b"\x00" * 64, "not valid JSON"),
        (b'{"prompt": 42}', "'prompt'"),
        (b'{"prompt": ["a"]}', "'prompt'"),
        (b'{"prompt": null}', "'prompt'"),
        (b'{"prompt": "p", "constraints": "not a list"}', "'constraints'"),
        (b'{"prompt": "p", "budget_usd_per_month": "cheap"}', "'budget_usd_per_month'"),
        (b'{"prompt": "p", "cloud": "mars"}', "'cloud'"),
        (b'{"prompt": "p", "__proto__": {}}', "unknown field '__proto__'"),
        (b'{"prompt": "   "}', "'prompt'"),
        (json.dumps({"prompt": "x" * (MAX_PROMPT_CHARS + 1)}).encode(), "'prompt'"),
        (b" " * (MAX_MESSAGE_BYTES + 1), "at most"),
        (b"[" * 100_000, "at most"),
        (b"[" * 10_000 + b"]" * 10_000, "nested too deeply"),
    ],
)
def test_explicit_poison_gets_a_clear_reason(data, reason):
    outcome = decode_or_reject(PushedMessage(message_id="m-1", data=data))
    assert isinstance(outcome, InvalidTaskError) and reason in outcome.reason
    assert outcome.task_id == "m-1"


@pytest.mark.parametrize("event", [None, [], "text", 42, {"message": None}, {"message": []}, {"message": "x"}])
def test_envelope_without_a_message_is_invalid(event):
    with pytest.raises(InvalidTaskError, match="no Pub/Sub message"):
        PushedMessage.from_event_data(event)


def test_unusable_message_id_leaves_the_task_id_unknown():
    with pytest.raises(InvalidTaskError) as caught:
        decode_task(PushedMessage(message_id="../../etc", data=b"{"))
    assert caught.value.task_id is None
