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

from atlas.models import TERMINAL_STATUSES, TaskDocument, TaskError, TaskMessage, TaskStatus


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


class TaskStore:
    """Reads and writes task documents; safe to share between threads (the client is)."""

    def __init__(self, client: firestore.Client, collection: str, *, retention_days: int = 30) -> None:
        self._client = client
        self._collection = client.collection(collection)
        self._retention = timedelta(days=retention_days)

    def _expiry(self) -> datetime:
        """When a task finished now may be deleted (``expire_at``, the field of Firestore's TTL policy)."""
        return _now() + self._retention

    def _ref(self, task_id: str) -> firestore.DocumentReference:
        return self._collection.document(task_id)

    def claim(self, task_id: str, message: TaskMessage, *, message_id: str, owner: str, lease_s: int) -> Claim:
        """Take the task for ``owner`` with a lease of ``lease_s`` seconds, if nobody else may have it."""
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
            current = data.get("lease") or {}
            expires_at = current.get("expires_at")
            if status is TaskStatus.RUNNING and expires_at is not None and expires_at > now:
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

    def get(self, task_id: str) -> TaskDocument | None:
        snapshot = self._ref(task_id).get()
        if not snapshot.exists:
            return None
        return TaskDocument.model_validate(snapshot.to_dict())

    def get_raw(self, task_id: str) -> dict[str, Any] | None:
        snapshot = self._ref(task_id).get()
        return snapshot.to_dict() if snapshot.exists else None

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
