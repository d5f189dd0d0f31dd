"""The Firestore task store: one document per task in ``tasks/{task_id}``, of the shape of :mod:`atlas.tasks.document`.

The claim is a transaction on the task document (see ``docs/architecture.md``, delivery semantics):
absent or queued → running with a lease; terminal → a duplicate, do nothing; running with a live lease →
another delivery owns it; running with an expired lease → take over. Every later write checks, in a
transaction, that this delivery still owns the lease, so a delivery that lost its lease never
overwrites the result of the one that took over.

Callers hand the store typed values (a :class:`~atlas.tasks.document.DeliveryReport`, a
:class:`~atlas.tasks.document.Stage`); the Firestore transforms (server timestamps, ``Increment``,
``ArrayUnion``, deleted fields) appear here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from google.api_core.exceptions import Conflict
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from atlas import limits
from atlas.models import Lease, TaskError, TaskMessage, TaskStatus
from atlas.tasks.document import (
    DEAD_LETTERED,
    DeadLetterRecord,
    DeliveryReport,
    HistoryEntry,
    Stage,
    TaskDocument,
)


class DeadLetterResult(StrEnum):
    RECORDED = "recorded"  # the task is now failed with code dead_lettered
    ALREADY_TERMINAL = "already_terminal"  # it finished after all; left alone
    BUSY = "busy"  # a delivery still holds a live lease; try again later


class ReopenResult(StrEnum):
    REOPENED = "reopened"
    MISSING = "missing"  # no such task: a replay creates it
    TERMINAL = "terminal"  # finished some other way (succeeded, or failed for another reason): not replayed
    NOT_DEAD_LETTERED = "not_dead_lettered"  # queued or running: its dead letter is not recorded yet


class ClaimResult(StrEnum):
    CLAIMED = "claimed"
    DUPLICATE = "duplicate"  # the task already reached a terminal status
    BUSY = "busy"  # another delivery holds a live lease


@dataclass(frozen=True)
class Claim:
    result: ClaimResult
    attempt: int
    status: TaskStatus | None = None


def now() -> datetime:
    return datetime.now(UTC)


def held_by_live_lease(document: TaskDocument | None, at: datetime) -> bool:
    """Whether the task is running under a lease that has not expired (another delivery has it)."""
    return (
        document is not None
        and document.status is TaskStatus.RUNNING
        and document.lease is not None
        and document.lease.expires_at > at
    )


def read(snapshot: Any) -> TaskDocument | None:
    """A snapshot as a task document (None when it does not exist)."""
    return TaskDocument.parse(snapshot.to_dict() or {}) if snapshot.exists else None


def delivery_fields(report: DeliveryReport) -> dict[str, Any]:
    """The Firestore update of what a delivery learned: its fields, and its spend added to the task's totals."""
    fields = report.model_dump(exclude_none=True, exclude={"spend"}, by_alias=True)
    spend = report.spend
    if spend is not None and spend.attempts:
        fields["cost_usd"] = firestore.Increment(spend.cost_usd)
        for key, value in spend.usage.model_dump().items():
            fields[f"usage.{key}"] = firestore.Increment(value)
        fields["llm_attempts"] = firestore.ArrayUnion([attempt.model_dump() for attempt in spend.attempts])
    return fields


def new_task_fields(document: TaskDocument) -> dict[str, Any]:
    """A task document as first written, with the server's timestamps."""
    return {**document.model_dump(exclude_none=True, exclude_unset=True), **_timestamps("created_at", "updated_at")}


def _timestamps(*names: str) -> dict[str, Any]:
    return dict.fromkeys(names, firestore.SERVER_TIMESTAMP)


class TaskStore:
    """Reads and writes task documents; safe to share between threads (the client is)."""

    def __init__(
        self, client: firestore.Client, collection: str, *, retention_days: int = limits.TASK_RETENTION_DAYS
    ) -> None:
        self._client = client
        self._collection = client.collection(collection)
        self._retention = timedelta(days=retention_days)

    def expiry(self) -> datetime:
        """When a task finished now may be deleted (``expire_at``, the field of Firestore's TTL policy)."""
        return now() + self._retention

    def ref(self, task_id: str) -> firestore.DocumentReference:
        return self._collection.document(task_id)

    def transaction(self) -> firestore.Transaction:
        return self._client.transaction()

    def claim(
        self,
        task_id: str,
        message: TaskMessage,
        *,
        message_id: str,
        owner: str,
        lease_s: int,
        publish_time: str | None = None,
    ) -> Claim:
        """Take the task for ``owner`` with a lease of ``lease_s`` seconds, if nobody else may have it.

        ``publish_time`` (the Pub/Sub message's) is kept on a new task: a dead letter carries it as an
        attribute, and it finds the task when the id was the original message id (dead letters get new ids).
        """
        ref = self.ref(task_id)

        @firestore.transactional
        def _claim(transaction: firestore.Transaction) -> Claim:
            stored = read(ref.get(transaction=transaction))
            at = now()
            lease = Lease(owner=owner, expires_at=at + timedelta(seconds=lease_s))
            if stored is None:
                created = TaskDocument(
                    task_id=task_id,
                    status=TaskStatus.RUNNING,
                    stage=Stage.CLAIMED,
                    prompt=message.prompt,
                    hints=message.hints(),
                    message_id=message_id,
                    publish_time=publish_time,
                    attempts=1,
                    lease=lease,
                )
                transaction.set(ref, {**new_task_fields(created), **_timestamps("started_at")})
                return Claim(ClaimResult.CLAIMED, attempt=1)
            if stored.is_terminal:
                return Claim(ClaimResult.DUPLICATE, attempt=stored.attempts, status=stored.status)
            if held_by_live_lease(stored, at):
                return Claim(ClaimResult.BUSY, attempt=stored.attempts, status=stored.status)
            transaction.update(
                ref,
                {
                    "status": TaskStatus.RUNNING.value,
                    "attempts": stored.attempts + 1,
                    "lease": lease.model_dump(),
                    "stage": Stage.CLAIMED.value,
                    **_timestamps("updated_at"),
                },
            )
            return Claim(ClaimResult.CLAIMED, attempt=stored.attempts + 1, status=stored.status)

        result: Claim = _claim(self.transaction())  # firestore.transactional is untyped
        return result

    def set_stage(self, task_id: str, stage: Stage) -> None:
        """Record which stage a running task is in (informational, no ownership check)."""
        self.ref(task_id).update({"stage": stage.value, **_timestamps("updated_at")})

    def write_partial(self, task_id: str, *, owner: str, entry: str, text: str, lease_s: int) -> bool:
        """Show the output streamed so far (replacing any earlier entry's) and renew the lease.

        Returns False when ``owner`` no longer holds the lease: another delivery took the task over, and
        this one should stop generating.
        """
        update = {
            "partial": text,
            "partial_entry": entry,
            "lease.expires_at": now() + timedelta(seconds=lease_s),
            **_timestamps("updated_at"),
        }
        return self._update_if_owner(task_id, owner, update)

    def finish(self, task_id: str, *, owner: str, status: TaskStatus, report: DeliveryReport) -> bool:
        """Write the terminal ``status`` and what the delivery learned if ``owner`` still holds the lease."""
        return self._finish(task_id, owner=owner, status=status, fields=delivery_fields(report))

    def fail(self, task_id: str, *, owner: str, error: TaskError, report: DeliveryReport | None = None) -> bool:
        """Record the task as failed with ``error`` (a permanent error) if ``owner`` holds the lease."""
        fields = {**delivery_fields(report or DeliveryReport()), "error": error.model_dump()}
        return self._finish(task_id, owner=owner, status=TaskStatus.FAILED, fields=fields)

    def _finish(self, task_id: str, *, owner: str, status: TaskStatus, fields: dict[str, Any]) -> bool:
        if not status.is_terminal:
            raise ValueError(f"finish needs a terminal status, not {status}")
        update = {
            **fields,
            "status": status.value,
            "stage": Stage.DONE.value,
            "lease": firestore.DELETE_FIELD,
            "partial": firestore.DELETE_FIELD,
            "partial_entry": firestore.DELETE_FIELD,
            "expire_at": self.expiry(),
            **_timestamps("finished_at", "updated_at"),
        }
        return self._update_if_owner(task_id, owner, update)

    def release(self, task_id: str, *, owner: str, error: TaskError, report: DeliveryReport | None = None) -> bool:
        """Give the task back (status queued, no lease) after a transient error, so a retry can claim it."""
        update = {
            **delivery_fields(report or DeliveryReport()),
            "status": TaskStatus.QUEUED.value,
            "stage": Stage.WAITING_FOR_RETRY.value,
            "lease": firestore.DELETE_FIELD,
            "last_error": error.model_dump(),
            **_timestamps("updated_at"),
        }
        return self._update_if_owner(task_id, owner, update)

    def record_rejected(
        self, task_id: str, *, message_id: str, error: TaskError, raw_excerpt: str, prompt: str | None = None
    ) -> bool:
        """Record a message that is not a valid task as failed, with its prompt when it could be read; never
        overwrites an existing task.

        Returns False when a document already exists under ``task_id`` (a redelivery of the same bad
        message, or a valid task that happens to share the id, whose record must not be clobbered).
        """
        rejected = TaskDocument(
            task_id=task_id,
            status=TaskStatus.FAILED,
            stage=Stage.REJECTED,
            message_id=message_id,
            attempts=1,
            error=error,
            raw_excerpt=raw_excerpt,
            prompt=prompt,
            expire_at=self.expiry(),
        )
        try:
            self.ref(task_id).create({**new_task_fields(rejected), **_timestamps("finished_at")})
        except Conflict:
            return False
        return True

    def dead_letter(
        self,
        task_id: str,
        *,
        record: DeadLetterRecord,
        message: TaskMessage | None = None,
    ) -> DeadLetterResult:
        """Record a dead-lettered task as failed (code ``dead_lettered``) with the reason and attempt count.

        The reason is the task's ``last_error`` (what the last delivery failed with), if any. A task already
        terminal is left alone; a task running under a live lease is left to that delivery (BUSY). A task
        never claimed (every delivery died before the claim) is created as failed.
        """
        ref = self.ref(task_id)

        @firestore.transactional
        def _dead_letter(transaction: firestore.Transaction) -> DeadLetterResult:
            stored = read(ref.get(transaction=transaction))
            if stored is not None and stored.is_terminal:
                return DeadLetterResult.ALREADY_TERMINAL
            if held_by_live_lease(stored, now()):
                return DeadLetterResult.BUSY
            claims = stored.attempts if stored is not None else 0
            last_error = stored.last_error if stored is not None else None
            count = record.delivery_count if record.delivery_count is not None else claims
            reason = f"gave up after {count} deliveries"
            if last_error is not None:
                reason += f"; the last failed with {last_error.code}: {last_error.message}"
            update = {
                "status": TaskStatus.FAILED.value,
                "stage": Stage.DEAD_LETTERED.value,
                "error": TaskError(code=DEAD_LETTERED, message=reason[:1000]).model_dump(),
                "dead_letter": record.model_copy(update={"claims": claims}).model_dump(),
                "expire_at": self.expiry(),
                **_timestamps("finished_at", "updated_at"),
            }
            if stored is not None:
                transaction.update(ref, {**update, "lease": firestore.DELETE_FIELD})
                return DeadLetterResult.RECORDED
            created = TaskDocument(task_id=task_id, status=TaskStatus.FAILED, attempts=0)
            if message is not None:
                created = created.model_copy(update={"prompt": message.prompt, "hints": message.hints()})
            transaction.set(ref, {**new_task_fields(created), **update})
            return DeadLetterResult.RECORDED

        result: DeadLetterResult = _dead_letter(self.transaction())  # firestore.transactional is untyped
        return result

    def reopen(self, task_id: str) -> ReopenResult:
        """Set a dead-lettered task back to queued so that a replayed message is not taken for a duplicate.

        The earlier error and dead-letter details move to ``history``; the attempt count starts again (a
        replay gets its own deliveries). Only a task failed with ``dead_lettered`` is reopened.
        """
        ref = self.ref(task_id)

        @firestore.transactional
        def _reopen(transaction: firestore.Transaction) -> ReopenResult:
            stored = read(ref.get(transaction=transaction))
            if stored is None:
                return ReopenResult.MISSING
            if not stored.is_dead_lettered:
                return ReopenResult.TERMINAL if stored.is_terminal else ReopenResult.NOT_DEAD_LETTERED
            entry = HistoryEntry(
                error=stored.error,
                dead_letter=stored.dead_letter,
                last_error=stored.last_error,
                attempts=stored.attempts,
                reopened_at=now(),
            )
            transaction.update(
                ref,
                {
                    "status": TaskStatus.QUEUED.value,
                    "stage": Stage.REPLAYED.value,
                    "attempts": 0,
                    "replays": firestore.Increment(1),
                    "history": firestore.ArrayUnion([entry.model_dump()]),
                    **dict.fromkeys(("error", "dead_letter", "finished_at", "expire_at"), firestore.DELETE_FIELD),
                    **_timestamps("updated_at"),
                },
            )
            return ReopenResult.REOPENED

        result: ReopenResult = _reopen(self.transaction())  # firestore.transactional is untyped
        return result

    def find_by_publish_time(self, publish_time: str) -> list[str]:
        """Ids of the tasks first published at ``publish_time`` (how a dead letter without a task_id is traced)."""
        query = self._collection.where(filter=FieldFilter("publish_time", "==", publish_time)).limit(10)
        return [snapshot.id for snapshot in query.stream()]

    def get(self, task_id: str) -> TaskDocument | None:
        return read(self.ref(task_id).get())

    def recent(
        self, *, status: TaskStatus | None = None, limit: int = 20, since: datetime | None = None
    ) -> list[TaskDocument]:
        """The most recently updated tasks, newest first, optionally in one status and updated at or after
        ``since`` (the status + updated_at index in firestore.tf serves both)."""
        query: Any = self._collection
        if status:
            query = query.where(filter=FieldFilter("status", "==", status.value))
        if since is not None:
            query = query.where(filter=FieldFilter("updated_at", ">=", since))
        query = query.order_by("updated_at", direction=firestore.Query.DESCENDING).limit(limit)
        return [TaskDocument.parse(snapshot.to_dict() or {}) for snapshot in query.stream()]

    def _update_if_owner(self, task_id: str, owner: str, update: dict[str, Any]) -> bool:
        ref = self.ref(task_id)

        @firestore.transactional
        def _update(transaction: firestore.Transaction) -> bool:
            stored = read(ref.get(transaction=transaction))
            if stored is None or stored.lease is None or stored.lease.owner != owner:
                return False
            transaction.update(ref, update)
            return True

        result: bool = _update(self.transaction())  # firestore.transactional is untyped
        return result
