"""Where a retrieval instance's index lives, and how it stays current across instances.

- :class:`DirectIndex`: managed Qdrant, or one Edge folder owned by this process. Writes go straight to it.
- :class:`SnapshotReplica`: Qdrant Edge in the cloud, where any number of instances come and go. The store of
  record is a snapshot object in a GCS bucket (:class:`~atlas.retrieval.snapshot_store.SnapshotStore`): a
  tar of a flushed, closed shard folder, unpacked with Edge's own ``unpack_snapshot``. An instance restores
  the latest generation when it starts and, on the request path (Cloud Run gives no CPU between requests),
  checks for a newer one at most every ``refresh_s``; a newer one is unpacked beside the one serving and
  swapped in, so searches never wait for it. An ingest is applied to a fresh copy of the latest generation
  and published with a generation precondition; when another instance published first, it starts again
  from the newer generation (reusing what it already embedded), so two concurrent ingests both land.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

from atlas.errors import KnowledgeIndexError, SnapshotConflictError, SnapshotStoreError
from atlas.retrieval import shard_archive
from atlas.retrieval.backend import IndexPoint
from atlas.retrieval.index import KnowledgeIndex
from atlas.retrieval.snapshot_store import SnapshotStore

log = logging.getLogger("atlas.retrieval.replica")
T = TypeVar("T")
# What a write does to an index; the dict keeps embedded points across retries of the same write.
Change = Callable[[KnowledgeIndex, dict[str, IndexPoint]], T]
MAX_PUBLISH_ATTEMPTS = 5
KEPT_GENERATIONS = 2  # the one serving and the one before it (a search may still be reading it)


class IndexReplica(Protocol):
    def current(self) -> KnowledgeIndex: ...

    def write(self, change: Change[T]) -> T: ...


class DirectIndex:
    """One index, opened once; the engine serialises writes and runs searches concurrently."""

    def __init__(self, index: KnowledgeIndex) -> None:
        self._index = index

    def current(self) -> KnowledgeIndex:
        return self._index

    def write(self, change: Change[T]) -> T:
        result = change(self._index, {})
        optimize(self._index)
        return result


def optimize(index: KnowledgeIndex) -> None:
    """Let the engine optimize after a write; it decides whether anything is due (HNSW for a segment past
    its indexing threshold, merges), so a small ingest costs nothing and a large one ends indexed."""
    started = time.perf_counter()
    if index.optimize():
        log.info("optimized the index (HNSW, merged segments) in %.1f s", time.perf_counter() - started)


class SnapshotReplica:
    """This instance's copy of the index kept in GCS; ``open_index(folder)`` opens an Edge shard as an index."""

    def __init__(
        self,
        store: SnapshotStore,
        root: Path,
        open_index: Callable[[Path], KnowledgeIndex],
        *,
        refresh_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._root = root
        self._open_index = open_index
        self._refresh_s = refresh_s
        self._clock = clock
        self._write_lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._install_lock = threading.Lock()
        self._folders: list[Path] = []
        self._generation = 0
        self._next_check = 0.0
        root.mkdir(parents=True, exist_ok=True)
        generation, folder = self._checkout()
        self._serving = open_index(folder)
        self._install(self._serving, generation, folder)

    @property
    def generation(self) -> int:
        """The generation serving (0: nothing was published yet)."""
        return self._generation

    def current(self) -> KnowledgeIndex:
        if self._clock() >= self._next_check and self._refresh_lock.acquire(blocking=False):
            try:
                self._refresh()
            finally:
                self._refresh_lock.release()
        return self._serving

    def _refresh(self) -> None:
        self._next_check = self._clock() + self._refresh_s
        try:
            latest = self._store.latest_generation() or 0
            if latest == self._generation:
                return
            generation, folder = self._checkout()
            self._install(self._open_index(folder), generation, folder)
            log.info("serving the index's generation %s (was %s)", generation, latest)
        except (SnapshotStoreError, KnowledgeIndexError) as exc:  # keep serving what we have
            log.warning("could not refresh the index from %s: %s", self._store.uri, exc)

    def write(self, change: Change[T]) -> T:
        with self._write_lock:
            embedded: dict[str, IndexPoint] = {}
            for attempt in range(1, MAX_PUBLISH_ATTEMPTS + 1):
                base, folder = self._checkout()
                index = self._open_index(folder)
                try:
                    result = change(index, embedded)
                    optimize(index)
                except BaseException:
                    index.backend.close()
                    shutil.rmtree(folder, ignore_errors=True)
                    raise
                index.backend.close()  # flushed and closed: the folder is a consistent snapshot
                archive = folder.with_name(folder.name + ".tar.gz")
                try:
                    shard_archive.pack(folder, archive)
                    generation = self._store.publish(archive, if_generation_match=base)
                except SnapshotConflictError as exc:
                    log.info("ingest lost the race to publish (try %s): %s", attempt, exc)
                    shutil.rmtree(folder, ignore_errors=True)
                    continue
                finally:
                    archive.unlink(missing_ok=True)
                self._install(self._open_index(folder), generation, folder)
                return result
        raise SnapshotConflictError(
            f"{self._store.uri} changed under every one of {MAX_PUBLISH_ATTEMPTS} tries to publish: retry later",
            expected=base,
            current=None,
        )

    def _checkout(self) -> tuple[int, Path]:
        """A new folder holding the latest generation (an empty one before the first publish)."""
        folder = self._root / f"generation-{uuid.uuid4().hex[:12]}"
        generation = self._store.latest_generation()
        if generation is None:
            folder.mkdir()
            return 0, folder
        archive = folder.with_name(folder.name + ".download")
        try:
            generation = self._store.download(archive)
            shard_archive.unpack(archive, folder)
        finally:
            archive.unlink(missing_ok=True)
        return generation, folder

    def _install(self, index: KnowledgeIndex, generation: int, folder: Path) -> None:
        """Serve ``index`` from now on; searches already running finish on the one before."""
        with self._install_lock:
            if self._folders and generation < self._generation:
                shutil.rmtree(folder, ignore_errors=True)  # a refresh that lost to a newer write
                return
            self._serving, self._generation = index, generation
            self._next_check = self._clock() + self._refresh_s
            self._folders.append(folder)
            while len(self._folders) > KEPT_GENERATIONS:
                shutil.rmtree(self._folders.pop(0), ignore_errors=True)
