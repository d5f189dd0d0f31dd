"""Streamed output shown on the task document while it grows, at most about once a second.

Each write replaces the whole partial text and names the entry it comes from, so the output of two
entries is never mixed: when the chain starts a new attempt it reports empty text, which clears the
document at once. Each write also renews the task's lease; a write that finds the lease taken by
another delivery raises :class:`~atlas.errors.LeaseLostError` to stop a generation nobody will keep.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from atlas.errors import LeaseLostError
from atlas.tasks.store import TaskStore

WRITE_INTERVAL_S = 1.0


class PartialWriter:
    def __init__(
        self,
        store: TaskStore,
        task_id: str,
        *,
        owner: str,
        lease_s: int,
        interval_s: float = WRITE_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._task_id = task_id
        self._owner = owner
        self._lease_s = lease_s
        self._interval = interval_s
        self._clock = clock
        self._written: tuple[str, str] = ("", "")  # (entry, text) last written
        self._last_write = float("-inf")
        self.writes = 0

    def __call__(self, entry: str, text: str) -> None:
        if (entry, text) == self._written or (not text and not self._written[1]):
            return
        now = self._clock()
        clearing = not text
        if not clearing and now - self._last_write < self._interval:
            return
        if not self._store.write_partial(
            self._task_id, owner=self._owner, entry=entry, text=text, lease_s=self._lease_s
        ):
            raise LeaseLostError(f"task {self._task_id} was taken over by another delivery while generating")
        self._written = (entry, text)
        self._last_write = now
        self.writes += 1
