"""What a function instance builds once and shares between its request threads."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def once(build: Callable[[], T]) -> Callable[[], T]:
    """``build()`` run at most once per instance, even when concurrent first requests (gen2 concurrency,
    several threads) ask at the same moment: functools.cache would let both build their own."""
    lock = threading.Lock()
    built: list[T] = []

    def get() -> T:
        if not built:
            with lock:
                if not built:
                    built.append(build())
        return built[0]

    return get
