"""Decoding a pushed Pub/Sub message into a validated :class:`~atlas.models.TaskMessage`.

Everything that can be wrong with a message (not base64, not UTF-8, not JSON, not an object, a missing
or oversized prompt, an unknown field) becomes an :class:`~atlas.errors.InvalidTaskError` with a reason a
person can act on, and with the task id under which the failure can be recorded when one is known.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from atlas.errors import InvalidTaskError
from atlas.models import MAX_PROMPT_CHARS, TASK_ID_PATTERN, TaskMessage

MAX_MESSAGE_BYTES = 64 * 1024
_TASK_ID_RE = re.compile(TASK_ID_PATTERN)


@dataclass(frozen=True)
class PushedMessage:
    """The parts of a Pub/Sub message the worker uses, as functions-framework hands them over."""

    message_id: str
    data: bytes
    attributes: Mapping[str, str] = field(default_factory=dict)
    publish_time: str | None = None

    @classmethod
    def from_event_data(cls, event_data: Mapping[str, Any]) -> PushedMessage:
        """Build from a CloudEvent's ``data`` (``{"message": {...}}``); a broken shape is an invalid task."""
        message = event_data.get("message") if isinstance(event_data, Mapping) else None
        if not isinstance(message, Mapping):
            raise InvalidTaskError("the event carries no Pub/Sub message")
        message_id = str(message.get("messageId") or message.get("message_id") or "")
        encoded = message.get("data") or ""
        try:
            data = base64.b64decode(encoded, validate=True) if encoded else b""
        except (binascii.Error, ValueError, TypeError) as exc:
            raise InvalidTaskError("the message data is not valid base64", task_id=_usable_id(message_id)) from exc
        attributes = message.get("attributes") or {}
        if not isinstance(attributes, Mapping):
            attributes = {}
        return cls(
            message_id=message_id,
            data=data,
            attributes={str(k): str(v) for k, v in attributes.items()},
            publish_time=message.get("publishTime"),
        )


@dataclass(frozen=True)
class DecodedTask:
    task_id: str
    message: TaskMessage


def decode_task(pushed: PushedMessage) -> DecodedTask:
    """Validate ``pushed`` as a task; raise InvalidTaskError with the best task id known."""
    fallback_id = _usable_id(pushed.message_id)
    payload = message_object(pushed.data, task_id=fallback_id)
    claimed_id = payload.get("task_id")
    task_id = claimed_id if isinstance(claimed_id, str) and _TASK_ID_RE.match(claimed_id) else fallback_id
    try:
        message = TaskMessage.model_validate(payload)
    except ValidationError as exc:
        raise InvalidTaskError(_describe(exc), task_id=task_id, prompt=_readable_prompt(payload)) from exc
    if task_id is None:
        raise InvalidTaskError("the message has neither a valid 'task_id' nor a Pub/Sub message id")
    return DecodedTask(task_id=task_id, message=message)


def message_object(data: bytes, *, task_id: str | None = None) -> dict[str, Any]:
    """``data`` as a JSON object within the size limit; raise InvalidTaskError (naming ``task_id``) saying why not."""
    if not data:
        raise InvalidTaskError("the message has no data: publish a JSON object with a 'prompt'", task_id=task_id)
    if len(data) > MAX_MESSAGE_BYTES:
        raise InvalidTaskError(
            f"the message is {len(data)} bytes; at most {MAX_MESSAGE_BYTES} are accepted", task_id=task_id
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidTaskError(
            f"the message data is not UTF-8 text (invalid byte at position {exc.start})", task_id=task_id
        ) from exc
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidTaskError(
            f"the message data is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})",
            task_id=task_id,
        ) from exc
    except RecursionError as exc:  # "[[[[...": Python's parser gives up on deep nesting
        raise InvalidTaskError("the message data is JSON nested too deeply to be a task", task_id=task_id) from exc
    if not isinstance(payload, dict):
        raise InvalidTaskError(
            f"the message data must be a JSON object with a 'prompt', not a JSON {type(payload).__name__}",
            task_id=task_id,
        )
    return payload


def _readable_prompt(payload: Mapping[str, Any]) -> str | None:
    """The payload's prompt when it is text worth keeping (on an otherwise invalid task), else None."""
    prompt = payload.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return None
    return prompt[:MAX_PROMPT_CHARS]


def _usable_id(candidate: str | None) -> str | None:
    return candidate if candidate and _TASK_ID_RE.match(candidate) else None


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "message"
        if error["type"] == "extra_forbidden":
            problems.append(f"unknown field '{where}' (allowed: {', '.join(TaskMessage.model_fields)})")
        elif error["type"] == "missing":
            problems.append(f"'{where}' is required")
        else:
            problems.append(f"'{where}': {error['msg']}")
    return "invalid task: " + "; ".join(problems)
