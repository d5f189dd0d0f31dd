"""Dead letters: what Pub/Sub gave up on after the subscription's last delivery attempt.

Pub/Sub forwards such a message to the dead-letter topic with its data and attributes, under a **new
message id**, and adds ``CloudPubSubDeadLetterSource*`` attributes (the emulator does too: checked by
experiment, see tests/integration/test_dead_letters.py). A dead letter is recognised by those attributes
and traced to its task by the body's ``task_id`` or, for a task whose id was the original message id, by
the original publish time (``CloudPubSubDeadLetterSourceTopicPublishTime``), which the claim stores on
the task as ``publish_time``.

The handler records the task ``failed`` with code ``dead_lettered``, the reason (the task's
``last_error``) and the attempt counts, and acknowledges. ``atlas replay-dlq`` republishes after a fix
with ``task_id`` written into the body, so that the replay runs under the same task id
(:mod:`atlas.tasks.replay`).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from atlas.errors import InvalidTaskError, TaskBusyError
from atlas.models import TASK_ID_PATTERN, TaskMessage, TaskStatus
from atlas.tasks.document import DEAD_LETTERED, DeadLetterRecord
from atlas.tasks.envelope import PushedMessage, message_object
from atlas.tasks.store import DeadLetterResult, TaskStore
from atlas.tasks.task_metrics import TaskMetrics

log = logging.getLogger("atlas.tasks.dead_letter")

ATTR_PREFIX = "CloudPubSubDeadLetterSource"
ATTR_DELIVERY_COUNT = f"{ATTR_PREFIX}DeliveryCount"
ATTR_SUBSCRIPTION = f"{ATTR_PREFIX}Subscription"
ATTR_SUBSCRIPTION_PROJECT = f"{ATTR_PREFIX}SubscriptionProject"
ATTR_PUBLISH_TIME = f"{ATTR_PREFIX}TopicPublishTime"
_TASK_ID_RE = re.compile(TASK_ID_PATTERN)


class DeadLetterOutcome(StrEnum):
    RECORDED = "recorded"
    ALREADY_TERMINAL = "already_terminal"
    UNKNOWN_TASK = "unknown_task"  # no task id could be traced: logged, acknowledged


@dataclass(frozen=True)
class DeadLetter:
    """A dead letter as read from the dead-letter topic."""

    pushed: PushedMessage
    body: dict[str, Any] | None  # the JSON object, when the data is one
    delivery_count: int | None
    subscription: str | None
    source_publish_time: str | None

    @classmethod
    def of(cls, pushed: PushedMessage) -> DeadLetter:
        attributes = pushed.attributes
        count = attributes.get(ATTR_DELIVERY_COUNT, "")
        return cls(
            pushed=pushed,
            body=_json_object(pushed.data),
            delivery_count=int(count) if count.isdigit() else None,
            subscription=attributes.get(ATTR_SUBSCRIPTION),
            source_publish_time=attributes.get(ATTR_PUBLISH_TIME),
        )

    @property
    def is_dead_letter(self) -> bool:
        return any(key.startswith(ATTR_PREFIX) for key in self.pushed.attributes)

    @property
    def task_message(self) -> TaskMessage | None:
        try:
            return TaskMessage.model_validate(self.body) if self.body is not None else None
        except ValidationError:
            return None

    @property
    def original_attributes(self) -> dict[str, str]:
        """The attributes the publisher set (Pub/Sub's dead-letter ones removed), for a replay."""
        return {k: v for k, v in self.pushed.attributes.items() if not k.startswith(ATTR_PREFIX)}

    def record(self) -> DeadLetterRecord:
        """What the task keeps of its dead letter (``dead_letter`` on the document)."""
        return DeadLetterRecord(
            subscription=self.subscription,
            source_publish_time=self.source_publish_time,
            dead_letter_message_id=self.pushed.message_id,
            delivery_count=self.delivery_count,
        )

    def task_id(self, store: TaskStore) -> str | None:
        """The body's task_id, else the task first published at the original publish time."""
        claimed = (self.body or {}).get("task_id")
        if isinstance(claimed, str) and _TASK_ID_RE.match(claimed):
            return claimed
        if self.source_publish_time:
            found = store.find_by_publish_time(self.source_publish_time)
            if len(found) == 1:
                return found[0]
            if found:
                log.error(
                    "dead letter matches several tasks published at the same time; not recorded",
                    extra={"fields": {"publish_time": self.source_publish_time, "tasks": found}},
                )
        return None

    def replay_body(self, task_id: str) -> bytes:
        """The original body with ``task_id`` set, so that the replay keeps the task's id."""
        return json.dumps({**(self.body or {}), "task_id": task_id}, ensure_ascii=False).encode()


def _json_object(data: bytes) -> dict[str, Any] | None:
    try:
        return message_object(data)
    except InvalidTaskError:
        return None


def handle_dead_letter_event(
    event_data: Mapping[str, Any], *, event_id: str, store: TaskStore, metrics: TaskMetrics | None = None
) -> DeadLetterOutcome:
    """Record the task of a pushed dead letter as failed; raise TaskBusyError while a delivery still runs it."""
    try:
        pushed = PushedMessage.from_event_data(event_data)
    except InvalidTaskError as exc:
        log.error("dead letter with a broken envelope; acknowledged: %s", exc, extra={"labels": {"event_id": event_id}})
        return DeadLetterOutcome.UNKNOWN_TASK
    letter = DeadLetter.of(pushed)
    labels = {"message_id": pushed.message_id}
    task_id = letter.task_id(store)
    if task_id is None:
        log.error(
            "dead letter of an unknown task; acknowledged",
            extra={
                "labels": labels,
                "fields": {
                    **letter.record().model_dump(exclude={"claims"}),
                    "raw_excerpt": pushed.data[:200].decode("utf-8", errors="replace"),
                },
            },
        )
        return DeadLetterOutcome.UNKNOWN_TASK
    labels["task_id"] = task_id
    result = store.dead_letter(task_id, record=letter.record(), message=letter.task_message)
    if result is DeadLetterResult.BUSY:
        raise TaskBusyError(f"dead-lettered task {task_id} is still running under a live lease")
    if result is DeadLetterResult.ALREADY_TERMINAL:
        log.info("dead letter of a task that already finished; left alone", extra={"labels": labels})
        return DeadLetterOutcome.ALREADY_TERMINAL
    if metrics is not None:
        metrics.finished(TaskStatus.FAILED.value, error_code=DEAD_LETTERED, publish_time=letter.source_publish_time)
    log.warning(
        "task dead-lettered after %s deliveries; recorded as failed",
        letter.delivery_count,
        extra={"labels": labels, "fields": letter.record().model_dump(exclude={"claims"})},
    )
    return DeadLetterOutcome.RECORDED
