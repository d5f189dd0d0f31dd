import base64

import pytest

from atlas.errors import InvalidTaskError
from atlas.tasks.envelope import MAX_MESSAGE_BYTES, PushedMessage, decode_task


def pushed(data: bytes, message_id: str = "m-1") -> PushedMessage:
    return PushedMessage(message_id=message_id, data=data)


def test_valid_task_uses_message_id_by_default():
    decoded = decode_task(pushed(b'{"prompt": "Design a cache"}'))
    assert decoded.task_id == "m-1"
    assert decoded.message.prompt == "Design a cache"


def test_client_task_id_wins_over_message_id():
    decoded = decode_task(pushed(b'{"prompt": "p", "task_id": "my-task"}'))
    assert decoded.task_id == "my-task"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "no data"),
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe\x00binary", "not UTF-8"),
        (b'["prompt"]', "JSON object"),
        (b'"just a string"', "JSON object"),
        (b'{"cloud": "gcp"}', "'prompt' is required"),
        (b'{"prompt": "p", "priority": 1}', "unknown field 'priority'"),
        (b'{"prompt": ""}', "'prompt'"),
        (b'{"prompt": "' + b"x" * 9000 + b'"}', "'prompt'"),
        (b"x" * (MAX_MESSAGE_BYTES + 1), "at most"),
    ],
)
def test_bad_input_gets_a_clear_reason_and_a_task_id(data, reason):
    with pytest.raises(InvalidTaskError) as caught:
        decode_task(pushed(data))
    assert reason in caught.value.reason
    assert caught.value.task_id == "m-1"


def test_failed_task_is_recorded_under_the_clients_task_id_when_valid():
    with pytest.raises(InvalidTaskError) as caught:
        decode_task(pushed(b'{"task_id": "client-7", "prompt": ""}'))
    assert caught.value.task_id == "client-7"


def test_invalid_client_task_id_falls_back_to_message_id():
    with pytest.raises(InvalidTaskError) as caught:
        decode_task(pushed(b'{"task_id": "a/b", "prompt": "p"}'))
    assert caught.value.task_id == "m-1"
    assert "task_id" in caught.value.reason


def test_unknown_field_reason_lists_the_allowed_fields():
    with pytest.raises(InvalidTaskError) as caught:
        decode_task(pushed(b'{"prompt": "p", "promt": "typo"}'))
    assert "allowed: prompt, task_id" in caught.value.reason


def test_event_data_is_decoded_from_base64():
    data = base64.b64encode(b'{"prompt": "p"}').decode()
    message = PushedMessage.from_event_data({"message": {"data": data, "messageId": "42", "attributes": {"a": "b"}}})
    assert message.data == b'{"prompt": "p"}' and message.message_id == "42" and message.attributes == {"a": "b"}


def test_event_without_message_is_invalid():
    with pytest.raises(InvalidTaskError):
        PushedMessage.from_event_data({"nothing": 1})


def test_event_with_broken_base64_is_invalid_with_message_id():
    with pytest.raises(InvalidTaskError) as caught:
        PushedMessage.from_event_data({"message": {"data": "***", "messageId": "43"}})
    assert caught.value.task_id == "43"
