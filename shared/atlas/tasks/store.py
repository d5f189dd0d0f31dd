"""The Firestore task store: one document per task in ``tasks/{task_id}``.

The claim is a transaction on the task document (see ``docs/architecture.md``, delivery semantics):
absent or queued → running with a lease; terminal → a duplicate, do nothing; running with a live lease →
another delivery owns it; running with an expired lease → take over. Every later write checks, in a
transaction, that this delivery still owns the lease, so a delivery that lost its lease never
overwrites the result of the one that took over.
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
from atlas.models import TERMINAL_STATUSES, TaskDocument, TaskError, TaskMessage, TaskStatus

DEAD_LETTERED = "dead_lettered"  # the error code of a task Pub/Sub gave up on


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


def _now() -> datetime:
    return datetime.now(UTC)


def _held_by_live_lease(data: dict[str, Any], now: datetime) -> bool:
    """Whether the task in ``data`` is running under a lease that has not expired (another delivery has it)."""
    expires_at = (data.get("lease") or {}).get("expires_at")
    return data.get("status") == TaskStatus.RUNNING and expires_at is not None and expires_at > now


class TaskStore:
    """Reads and writes task documents; safe to share between threads (the client is)."""

    def __init__(
        self, client: firestore.Client, collection: str, *, retention_days: int = limits.TASK_RETENTION_DAYS
    ) -> None:
        self._client = client
        self._collection = client.collection(collection)
        self._retention = timedelta(days=retention_days)

    def _expiry(self) -> datetime:
        """When a task finished now may be deleted (``expire_at``, the field of Firestore's TTL policy)."""
        return _now() + self._retention

    def _ref(self, task_id: str) -> firestore.DocumentReference:
        return self._collection.document(task_id)

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
        ref = self._ref(task_id)

        @firestore.transactional
        def _claim(transaction: firestore.Transaction) -> Claim:
            snapshot = ref.get(transaction=transaction)
            now = _now()
            lease = {"owner": owner, "expires_at": now + timedelta(seconds=lease_s)}
            if not snapshot.exists:
                transaction.set(
                    ref,
                    {
                        "task_id": task_id,
                        "status": TaskStatus.RUNNING.value,
                        "prompt": message.prompt,
                        "hints": message.hints(),
                        "message_id": message_id,
                        **({"publish_time": publish_time} if publish_time else {}),
                        "attempts": 1,
                        "lease": lease,
                        "stage": "claimed",
                        "created_at": firestore.SERVER_TIMESTAMP,
                        "updated_at": firestore.SERVER_TIMESTAMP,
                        "started_at": firestore.SERVER_TIMESTAMP,
                    },
                )
                return Claim(ClaimResult.CLAIMED, attempt=1)
            data = snapshot.to_dict() or {}
            status = TaskStatus(data.get("status", TaskStatus.QUEUED))
            attempts = int(data.get("attempts", 0))
            if status in TERMINAL_STATUSES:
                return Claim(ClaimResult.DUPLICATE, attempt=attempts, status=status)
            if _held_by_live_lease(data, now):
                return Claim(ClaimResult.BUSY, attempt=attempts, status=status)
            transaction.update(
                ref,
                {
                    "status": TaskStatus.RUNNING.value,
                    "attempts": attempts + 1,
                    "lease": lease,
                    "stage": "claimed",
                    "updated_at": firestore.SERVER_TIMESTAMP,
                },
            )
            return Claim(ClaimResult.CLAIMED, attempt=attempts + 1, status=status)

        return _claim(self._client.transaction())

    def set_stage(self, task_id: str, stage: str) -> None:
        """Record which stage a running task is in (informational, no ownership check)."""
        self._ref(task_id).update({"stage": stage, "updated_at": firestore.SERVER_TIMESTAMP})

    def write_partial(self, task_id: str, *, owner: str, entry: str, text: str, lease_s: int) -> bool:
        """Show the output streamed so far (replacing any earlier entry's) and renew the lease.

        Returns False when ``owner`` no longer holds the lease: another delivery took the task over, and
        this one should stop generating.
        """
        update = {
            "partial": text,
            "partial_entry": entry,
            "lease.expires_at": _now() + timedelta(seconds=lease_s),
            "updated_at": firestore.SERVER_TIMESTAMP,
        }
        return self._update_if_owner(task_id, owner, update)

    def finish(self, task_id: str, *, owner: str, status: TaskStatus, fields: dict[str, Any]) -> bool:
        """Write the terminal ``status`` and ``fields`` if ``owner`` still holds the lease."""
        if status not in TERMINAL_STATUSES:
            raise ValueError(f"finish needs a terminal status, not {status}")
        update = {
            **fields,
            "status": status.value,
            "stage": "done",
            "lease": firestore.DELETE_FIELD,
            "partial": firestore.DELETE_FIELD,
            "partial_entry": firestore.DELETE_FIELD,
            "expire_at": self._expiry(),
            "finished_at": firestore.SERVER_TIMESTAMP,
            "updated_at": firestore.SERVER_TIMESTAMP,
        }
        return self._update_if_owner(task_id, owner, update)

    def fail(self, task_id: str, *, owner: str, error: TaskError, fields: dict[str, Any] | None = None) -> bool:
        """Record the task as failed with ``error`` (a permanent error) if ``owner`` holds the lease."""
        return self.finish(
            task_id, owner=owner, status=TaskStatus.FAILED, fields={**(fields or {}), "error": error.model_dump()}
        )

    def release(self, task_id: str, *, owner: str, error: TaskError, fields: dict[str, Any] | None = None) -> bool:
        """Give the task back (status queued, no lease) after a transient error, so a retry can claim it."""
        update = {
            **(fields or {}),
            "status": TaskStatus.QUEUED.value,
            "stage": "waiting_for_retry",
            "lease": firestore.DELETE_FIELD,
            "last_error": error.model_dump(),
            "updated_at": firestore.SERVER_TIMESTAMP,
        }
        return self._update_if_owner(task_id, owner, update)

    def record_rejected(self, task_id: str, *, message_id: str, error: TaskError, raw_excerpt: str) -> bool:
        """Record a message that is not a valid task as failed; never overwrites an existing task.

        Returns False when a document already exists under ``task_id`` (a redelivery of the same bad
        message, or a valid task that happens to share the id, whose record must not be clobbered).
        """
        ref = self._ref(task_id)
        try:
            ref.create(
                {
                    "task_id": task_id,
                    "status": TaskStatus.FAILED.value,
                    "message_id": message_id,
                    "attempts": 1,
                    "stage": "rejected",
                    "error": error.model_dump(),
                    "raw_excerpt": raw_excerpt,
                    "expire_at": self._expiry(),
                    "created_at": firestore.SERVER_TIMESTAMP,
                    "updated_at": firestore.SERVER_TIMESTAMP,
                    "finished_at": firestore.SERVER_TIMESTAMP,
                }
            )
        except Conflict:
            return False
        return True

    def dead_letter(
        self,
        task_id: str,
        *,
        delivery_count: int | None,
        details: dict[str, Any],
        message: TaskMessage | None = None,
    ) -> DeadLetterResult:
        """Record a dead-lettered task as failed (code ``dead_lettered``) with the reason and attempt count.

        The reason is the task's ``last_error`` (what the last delivery failed with), if any. A task already
        terminal is left alone; a task running under a live lease is left to that delivery (BUSY). A task
        never claimed (every delivery died before the claim) is created as failed.
        """
        ref = self._ref(task_id)

        @firestore.transactional
        def _dead_letter(transaction: firestore.Transaction) -> DeadLetterResult:
            snapshot = ref.get(transaction=transaction)
            data = (snapshot.to_dict() or {}) if snapshot.exists else {}
            status = TaskStatus(data.get("status", TaskStatus.QUEUED))
            if snapshot.exists and status in TERMINAL_STATUSES:
                return DeadLetterResult.ALREADY_TERMINAL
            if _held_by_live_lease(data, _now()):
                return DeadLetterResult.BUSY
            attempts = int(data.get("attempts", 0))
            last_error = data.get("last_error") or {}
            count = delivery_count if delivery_count is not None else attempts
            reason = f"gave up after {count} deliveries"
            if last_error:
                reason += f"; the last failed with {last_error.get('code')}: {last_error.get('message')}"
            update = {
                "status": TaskStatus.FAILED.value,
                "stage": "dead_lettered",
                "error": TaskError(code=DEAD_LETTERED, message=reason[:1000]).model_dump(),
                "dead_letter": {**details, "delivery_count": delivery_count, "claims": attempts},
                "finished_at": firestore.SERVER_TIMESTAMP,
                "updated_at": firestore.SERVER_TIMESTAMP,
                "expire_at": self._expiry(),
            }
            if snapshot.exists:
                transaction.update(ref, {**update, "lease": firestore.DELETE_FIELD})
            else:
                created = {"task_id": task_id, "attempts": 0, "created_at": firestore.SERVER_TIMESTAMP}
                if message is not None:
                    created.update(prompt=message.prompt, hints=message.hints())
                transaction.set(ref, {**created, **update})
            return DeadLetterResult.RECORDED

        return _dead_letter(self._client.transaction())

    def find_by_publish_time(self, publish_time: str) -> list[str]:
        """Ids of the tasks first published at ``publish_time`` (how a dead letter without a task_id is traced)."""
        query = self._collection.where(filter=FieldFilter("publish_time", "==", publish_time)).limit(10)
        return [snapshot.id for snapshot in query.stream()]

    def reopen(self, task_id: str) -> ReopenResult:
        """Set a dead-lettered task back to queued so that a replayed message is not taken for a duplicate.

        The earlier error and dead-letter details move to ``history``; the attempt count starts again (a
        replay gets its own deliveries). Only a task failed with ``dead_lettered`` is reopened.
        """
        ref = self._ref(task_id)

        @firestore.transactional
        def _reopen(transaction: firestore.Transaction) -> ReopenResult:
            snapshot = ref.get(transaction=transaction)
            if not snapshot.exists:
                return ReopenResult.MISSING
            data = snapshot.to_dict() or {}
            if data.get("status") != TaskStatus.FAILED.value or (data.get("error") or {}).get("code") != DEAD_LETTERED:
                if data.get("status") in {s.value for s in TERMINAL_STATUSES}:
                    return ReopenResult.TERMINAL
                return ReopenResult.NOT_DEAD_LETTERED
            entry = {
                "error": data.get("error"),
                "dead_letter": data.get("dead_letter"),
                "last_error": data.get("last_error"),
                "attempts": data.get("attempts", 0),
                "reopened_at": _now(),
            }
            transaction.update(
                ref,
                {
                    "status": TaskStatus.QUEUED.value,
                    "stage": "replayed",
                    "attempts": 0,
                    "replays": firestore.Increment(1),
                    "history": firestore.ArrayUnion([entry]),
                    "error": firestore.DELETE_FIELD,
                    "dead_letter": firestore.DELETE_FIELD,
                    "finished_at": firestore.DELETE_FIELD,
                    "expire_at": firestore.DELETE_FIELD,
                    "updated_at": firestore.SERVER_TIMESTAMP,
                },
            )
            return ReopenResult.REOPENED

        return _reopen(self._client.transaction())

    def get(self, task_id: str) -> TaskDocument | None:
        snapshot = self._ref(task_id).get()
        if not snapshot.exists:
            return None
        return TaskDocument.model_validate(snapshot.to_dict())

    def get_raw(self, task_id: str) -> dict[str, Any] | None:
        snapshot = self._ref(task_id).get()
        return snapshot.to_dict() if snapshot.exists else None

    def recent(
        self, *, status: str | None = None, limit: int = 20, since: datetime | None = None
    ) -> list[dict[str, Any]]:
        """The most recently updated tasks, newest first, optionally in one status and updated at or after
        ``since`` (the status + updated_at index in firestore.tf serves both)."""
        query: Any = self._collection
        if status:
            query = query.where(filter=FieldFilter("status", "==", status))
        if since is not None:
            query = query.where(filter=FieldFilter("updated_at", ">=", since))
        query = query.order_by("updated_at", direction=firestore.Query.DESCENDING).limit(limit)
        return [snapshot.to_dict() or {} for snapshot in query.stream()]

    def _update_if_owner(self, task_id: str, owner: str, update: dict[str, Any]) -> bool:
        ref = self._ref(task_id)

        @firestore.transactional
        def _update(transaction: firestore.Transaction) -> bool:
            snapshot = ref.get(transaction=transaction)
            data = snapshot.to_dict() or {}
            if (data.get("lease") or {}).get("owner") != owner:
                return False
            transaction.update(ref, update)
            return True

        return _update(self._client.transaction())
