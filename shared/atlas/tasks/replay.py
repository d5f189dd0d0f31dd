"""Replaying dead letters after a fix (``atlas replay-dlq``): each dead-lettered task republished under its id.

Dead letters are pulled from the inspection subscription on the dead-letter topic. Each task is reopened first
(failed ``dead_lettered`` → queued, the earlier error kept in ``history``) so that the replay is not taken for
a duplicate, and the body gets ``task_id`` so that the id survives the new message id. A dead letter is
acknowledged once republished (or when its task already ended another way); the others are handed back at
once (ack deadline 0) for a later run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from atlas.tasks.dead_letter import DeadLetter
from atlas.tasks.envelope import PushedMessage
from atlas.tasks.store import ReopenResult, TaskStore

Action = Literal["replayed", "already_finished", "pending", "would_replay", "unknown_task"]
ACKNOWLEDGED: frozenset[Action] = frozenset({"replayed", "already_finished"})
PULL_BATCH = 100


@dataclass
class ReplaySummary:
    pulled: int = 0
    replayed: int = 0
    skipped_finished: int = 0  # the task ended some other way: acknowledged, not replayed
    left_pending: int = 0  # its dead letter is not recorded yet (or dry run): left for a later run
    unknown: int = 0  # no task id could be traced: left on the subscription
    tasks: list[dict[str, str]] = field(default_factory=list)

    def count(self, action: Action, entry: dict[str, str]) -> None:
        self.pulled += 1
        if action == "replayed":
            self.replayed += 1
        elif action == "already_finished":
            self.skipped_finished += 1
        elif action == "unknown_task":
            self.unknown += 1
        else:
            self.left_pending += 1
        self.tasks.append({**entry, "action": action})

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Replayer:
    """Where dead letters come from and go to; ``dry_run`` changes nothing and acknowledges nothing."""

    subscriber: Any  # pubsub_v1.SubscriberClient
    publisher: Any  # pubsub_v1.PublisherClient
    subscription: str
    topic: str
    store: TaskStore
    dry_run: bool = False

    def replay(self, letter: DeadLetter) -> tuple[Action, dict[str, str]]:
        """What happens to one dead letter, and what the summary says of it."""
        task_id = letter.task_id(self.store)
        if task_id is None:
            return "unknown_task", {"message_id": letter.pushed.message_id}
        if self.dry_run:
            document = self.store.get(task_id)
            return "would_replay", {"task_id": task_id, "status": document.status.value if document else "absent"}
        reopened = self.store.reopen(task_id)
        if reopened is ReopenResult.TERMINAL:
            return "already_finished", {"task_id": task_id}
        if reopened is ReopenResult.NOT_DEAD_LETTERED:
            return "pending", {"task_id": task_id}
        self.publisher.publish(self.topic, letter.replay_body(task_id), **letter.original_attributes).result(timeout=30)
        return "replayed", {"task_id": task_id}

    def settle(self, ack: list[str], hand_back: list[str]) -> None:
        """Acknowledge what was done with; hand the rest back at once for a later run."""
        if ack:
            self.subscriber.acknowledge(request={"subscription": self.subscription, "ack_ids": ack})
        if hand_back:
            self.subscriber.modify_ack_deadline(
                request={"subscription": self.subscription, "ack_ids": hand_back, "ack_deadline_seconds": 0}
            )


def replay_dead_letters(
    subscriber: Any,
    publisher: Any,
    *,
    subscription: str,
    topic: str,
    store: TaskStore,
    max_messages: int | None = None,
    dry_run: bool = False,
    pull_timeout_s: float = 10.0,
) -> ReplaySummary:
    """Pull dead letters from ``subscription`` and republish their tasks to ``topic`` under the same task id."""
    from google.api_core.exceptions import DeadlineExceeded

    replayer = Replayer(subscriber, publisher, subscription, topic, store, dry_run)
    summary = ReplaySummary()
    while max_messages is None or summary.pulled < max_messages:
        want = min(PULL_BATCH, (max_messages - summary.pulled) if max_messages is not None else PULL_BATCH)
        try:
            response = subscriber.pull(
                request={"subscription": subscription, "max_messages": want}, timeout=pull_timeout_s
            )
        except DeadlineExceeded:
            break
        if not response.received_messages:
            break
        ack: list[str] = []
        hand_back: list[str] = []
        for received in response.received_messages:
            message = received.message
            pushed = PushedMessage(message.message_id, bytes(message.data), dict(message.attributes))
            action, entry = replayer.replay(DeadLetter.of(pushed))
            summary.count(action, entry)
            (ack if action in ACKNOWLEDGED else hand_back).append(received.ack_id)
        replayer.settle(ack, hand_back)
        if hand_back and not ack:
            break  # only messages to leave: pulling again would see them again
    return summary
