"""An LRU cache with a time to live for search results, one per retrieval instance.

Ingestion through this instance clears it (any ingest may change any ranking). Another instance's
ingestion cannot reach it, so the TTL bounds how stale a cached answer can be when the service runs on
several instances.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

ValueT = TypeVar("ValueT")


class QueryCache(Generic[ValueT]):
    """Thread-safe; ``max_entries`` 0 disables caching."""

    def __init__(self, max_entries: int, ttl_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._max_entries = max_entries
        self._ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, ValueT]] = OrderedDict()
        self._lock = threading.Lock()
        self._generation = 0
        self.hits = 0
        self.misses = 0

    @property
    def generation(self) -> int:
        """Read before computing a value; :meth:`put` drops it if the cache was cleared meanwhile."""
        return self._generation

    def get(self, key: Hashable) -> ValueT | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] <= self._clock():
                if entry is not None:
                    del self._entries[key]
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[1]

    def put(self, key: Hashable, value: ValueT, *, generation: int | None = None) -> None:
        if self._max_entries <= 0:
            return
        with self._lock:
            if generation is not None and generation != self._generation:
                return  # computed before an ingest cleared the cache: possibly stale
            self._entries[key] = (self._clock() + self._ttl_s, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._generation += 1

    def __len__(self) -> int:
        return len(self._entries)
