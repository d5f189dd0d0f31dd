"""Following a task while it runs: status and stage changes, and the design as it streams, on stderr."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

from atlas.models import TaskStatus

if TYPE_CHECKING:
    from atlas.tasks.document import TaskDocument
    from atlas.tasks.store import TaskStore

POLL_INTERVAL_S = 0.5


def follow_task(store: TaskStore, task_id: str, *, timeout_s: float, live: bool = True) -> TaskDocument | None:
    """Poll the task document until it is terminal or ``timeout_s`` passes.

    Status and stage changes are reported on stderr, and (with ``live``) so is the design as it streams:
    the new text as it grows, and a note when a fallback entry restarts it.
    """
    started = time.monotonic()
    seen: tuple[str, str] | None = None
    shown = ("", "")  # (entry, partial text) already printed
    document = None
    while True:
        document = store.get(task_id)
        if document is not None:
            now = (document.status.value, document.stage.value if document.stage else "")
            if now != seen:
                if shown[1] and document.status is not TaskStatus.RUNNING:
                    print(file=sys.stderr)
                print(f"[{time.monotonic() - started:5.1f}s] {now[0]} · {now[1]}", file=sys.stderr)
                seen = now
            if live:
                shown = show_partial(shown, document.partial_entry or "", document.partial or "")
            if document.is_terminal:
                return document
        if time.monotonic() - started > timeout_s:
            return document
        time.sleep(POLL_INTERVAL_S)


def show_partial(shown: tuple[str, str], entry: str, text: str) -> tuple[str, str]:
    """Print what is new in the streamed ``text`` since ``shown``; say so when another entry restarts it."""
    shown_entry, shown_text = shown
    if not text or (entry, text) == shown:
        return shown
    if entry != shown_entry or not text.startswith(shown_text):
        if shown_text:
            print(file=sys.stderr)
        print(f"── streaming from {entry} ──", file=sys.stderr)
        shown_text = ""
    sys.stderr.write(text[len(shown_text) :])
    sys.stderr.flush()
    return entry, text
