"""The embedded index in the cloud: Qdrant Edge copies kept in step through snapshots in a GCS bucket
(fake-gcs-server, a real Cloud Storage emulator), one SnapshotReplica per simulated instance."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from atlas.retrieval.bm25 import Bm25Encoder
from atlas.retrieval.edge_backend import EdgeBackend
from atlas.retrieval.index import Document, KnowledgeIndex
from atlas.retrieval.replica import SnapshotReplica
from atlas.retrieval.snapshot_store import SnapshotStore
from support import TEST_PROJECT

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def instance(gcs_bucket, embedder, tmp_path):
    """A factory of instances: each its own folder, all sharing the bucket's snapshot."""
    bm25 = Bm25Encoder()
    clock = Clock()

    def start(name: str) -> SnapshotReplica:
        store = SnapshotStore(gcs_bucket, "knowledge/shard.tar", project=TEST_PROJECT, retry_deadline_s=5)
        return SnapshotReplica(
            store,
            tmp_path / name,
            lambda folder: KnowledgeIndex(EdgeBackend(folder, embedder.dimension), embedder, bm25),
            refresh_s=30,
            clock=clock,
        )

    start.clock = clock  # type: ignore[attr-defined]
    return start


def _note(name: str, text: str) -> Document:
    return Document(source=f"{name}.md", text=f"# {name}\n\n## About\n\n{text}")


def _ingest(replica: SnapshotReplica, *documents: Document):
    return replica.write(lambda index, embedded: index.ingest(list(documents), embedded=embedded))


def _sources(replica: SnapshotReplica, query: str) -> set[str]:
    return {hit.source for hit in replica.current().search(query, top_k=10)}


def test_a_new_instance_restores_the_latest_snapshot_when_it_starts(instance):
    first = instance("a")
    assert first.generation == 0 and first.current().count() == 0
    report = _ingest(first, _note("queues", "Dead-letter topics catch poison messages."))
    assert report.added == 1 and first.generation > 0
    second = instance("b")
    assert second.generation == first.generation
    assert _sources(second, "poison messages") == {"queues.md"}


def test_an_instance_serves_a_newer_generation_once_its_refresh_interval_has_passed(instance):
    reader, writer = instance("reader"), instance("writer")
    _ingest(writer, _note("cache", "Redis caches sessions with a TTL."))
    assert reader.current().count() == 0  # not yet due: no request to GCS on this search
    instance.clock.now += 31
    assert reader.current().count() == 1 and reader.generation == writer.generation
    assert _sources(reader, "session TTL") == {"cache.md"}


def test_two_instances_ingesting_at_once_both_land_and_neither_is_lost(instance):
    base = instance("base")
    _ingest(base, _note("seed", "A first note so that both start from the same generation."))
    left, right = instance("left"), instance("right")
    both_checked_out = threading.Barrier(2)
    calls = {"left": 0, "right": 0}

    def ingest(replica: SnapshotReplica, name: str, text: str) -> None:
        def change(index: KnowledgeIndex, embedded: dict):
            calls[name] += 1
            if calls[name] == 1:
                both_checked_out.wait(timeout=60)  # both apply to the same generation before either publishes
            return index.ingest([_note(name, text)], embedded=embedded)

        replica.write(change)

    threads = [
        threading.Thread(target=ingest, args=(left, "left", "Blue-green deployments switch traffic at once.")),
        threading.Thread(target=ingest, args=(right, "right", "Canary releases shift a small share first.")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(calls.values()) == [1, 2]  # one lost the race and applied its ingest again on the newer state
    latecomer = instance("latecomer")
    assert latecomer.current().count() == 3
    assert _sources(latecomer, "deployments releases traffic") >= {"left.md", "right.md"}


def test_a_write_that_fails_leaves_the_snapshot_and_the_serving_index_as_they_were(instance, tmp_path):
    replica = instance("a")
    _ingest(replica, _note("one", "Kept."))
    generation = replica.generation

    def broken(index, embedded):
        raise RuntimeError("the embedding model crashed")

    with pytest.raises(RuntimeError):
        replica.write(broken)
    assert replica.generation == generation and replica.current().count() == 1
    assert len([p for p in Path(tmp_path / "a").iterdir() if p.is_dir()]) <= 2
