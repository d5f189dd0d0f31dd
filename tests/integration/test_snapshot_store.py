"""SnapshotStore against a real Cloud Storage emulator (fake-gcs-server): generations, preconditions, races.

Archives stay under 8 MiB here, where google-cloud-storage uploads in one request: the emulator enforces
generation preconditions on those only (tests/support/gcs.py), while Cloud Storage enforces them on both.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from atlas.errors import SnapshotConflictError, SnapshotStoreError
from atlas.retrieval.snapshot_store import SnapshotStore
from support import TEST_PROJECT

pytestmark = pytest.mark.integration


def archive(tmp_path: Path, content: bytes, name: str = "shard.tar") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


@pytest.fixture
def store(gcs_bucket: str) -> SnapshotStore:
    return SnapshotStore(gcs_bucket, "knowledge/shard.tar", project=TEST_PROJECT, retry_deadline_s=5)


def test_an_empty_bucket_has_no_generation_and_the_first_publish_creates_one(store, tmp_path):
    assert store.latest_generation() is None
    generation = store.publish(archive(tmp_path, b"first"), if_generation_match=0)
    assert generation > 0
    assert store.latest_generation() == generation


def test_download_returns_the_published_bytes_and_their_generation(store, tmp_path):
    content = os.urandom(300_000)
    generation = store.publish(archive(tmp_path, content), if_generation_match=0)
    dest = tmp_path / "restored" / "shard.tar"
    dest.parent.mkdir()
    assert store.download(dest) == generation
    assert dest.read_bytes() == content
    assert [p.name for p in dest.parent.iterdir()] == ["shard.tar"]  # no partial file left behind


def test_a_publish_on_top_of_the_latest_generation_replaces_it(store, tmp_path):
    first = store.publish(archive(tmp_path, b"first"), if_generation_match=0)
    second = store.publish(archive(tmp_path, b"second"), if_generation_match=first)
    assert second != first
    assert store.latest_generation() == second
    assert store.download(tmp_path / "got.tar") == second
    assert (tmp_path / "got.tar").read_bytes() == b"second"


def test_a_publish_from_a_stale_generation_conflicts_and_changes_nothing(store, tmp_path):
    first = store.publish(archive(tmp_path, b"first"), if_generation_match=0)
    second = store.publish(archive(tmp_path, b"second"), if_generation_match=first)
    with pytest.raises(SnapshotConflictError) as conflict:
        store.publish(archive(tmp_path, b"stale"), if_generation_match=first)
    assert (conflict.value.expected, conflict.value.current) == (first, second)
    assert store.latest_generation() == second
    store.download(tmp_path / "got.tar")
    assert (tmp_path / "got.tar").read_bytes() == b"second"


def test_a_first_publish_conflicts_when_another_instance_published_already(store, tmp_path):
    existing = store.publish(archive(tmp_path, b"theirs"), if_generation_match=0)
    with pytest.raises(SnapshotConflictError) as conflict:
        store.publish(archive(tmp_path, b"ours"), if_generation_match=0)
    assert conflict.value.current == existing


def test_two_instances_racing_from_the_same_generation_one_wins_one_conflicts(gcs_bucket, tmp_path):
    base = SnapshotStore(gcs_bucket, "knowledge/shard.tar", project=TEST_PROJECT).publish(
        archive(tmp_path, b"base"), if_generation_match=0
    )
    stores = [SnapshotStore(gcs_bucket, "knowledge/shard.tar", project=TEST_PROJECT) for _ in range(2)]
    archives = [archive(tmp_path, f"instance {i}".encode() * 1000, f"shard-{i}.tar") for i in range(2)]
    start = threading.Barrier(2)
    outcomes: dict[int, object] = {}

    def publish(i: int) -> None:
        start.wait()
        try:
            outcomes[i] = stores[i].publish(archives[i], if_generation_match=base)
        except SnapshotConflictError as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    winners = [i for i, outcome in outcomes.items() if isinstance(outcome, int)]
    losers = [outcome for outcome in outcomes.values() if isinstance(outcome, SnapshotConflictError)]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    assert losers[0].current == outcomes[winners[0]]
    assert stores[0].download(tmp_path / "got.tar") == outcomes[winners[0]]
    assert (tmp_path / "got.tar").read_bytes() == archives[winners[0]].read_bytes()


def test_many_publishers_from_one_generation_make_exactly_one_winner(gcs_bucket, tmp_path):
    store = SnapshotStore(gcs_bucket, "knowledge/shard.tar", project=TEST_PROJECT)
    source = archive(tmp_path, b"x" * 50_000)
    start = threading.Barrier(8)
    results: list[object] = []

    def publish() -> None:
        start.wait()
        try:
            results.append(store.publish(source, if_generation_match=0))
        except SnapshotConflictError as exc:
            results.append(exc)

    threads = [threading.Thread(target=publish) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 8
    assert sum(isinstance(result, int) for result in results) == 1


def test_an_archive_above_the_single_request_limit_round_trips(store, tmp_path):
    content = os.urandom(9 * 1024 * 1024)  # a resumable upload
    generation = store.publish(archive(tmp_path, content), if_generation_match=0)
    assert store.latest_generation() == generation
    assert store.download(tmp_path / "got.tar") == generation
    assert (tmp_path / "got.tar").read_bytes() == content


def test_downloading_before_anything_was_published_says_so(store, tmp_path):
    with pytest.raises(SnapshotStoreError, match="nothing has been published"):
        store.download(tmp_path / "got.tar")
    assert not (tmp_path / "got.tar").exists()


def test_a_missing_bucket_is_a_clear_store_error_for_every_operation(gcs_bucket, tmp_path):
    missing = SnapshotStore(f"{gcs_bucket}-missing", "knowledge/shard.tar", project=TEST_PROJECT, retry_deadline_s=5)
    with pytest.raises(SnapshotStoreError, match="does not exist") as error:
        missing.latest_generation()
    assert f"{gcs_bucket}-missing" in str(error.value)
    with pytest.raises(SnapshotStoreError, match="does not exist"):
        missing.download(tmp_path / "got.tar")
    with pytest.raises(SnapshotStoreError, match="NotFound") as error:
        missing.publish(archive(tmp_path, b"x"), if_generation_match=0)
    assert not isinstance(error.value, SnapshotConflictError)


def test_an_unreachable_store_is_a_store_error_not_a_library_exception(monkeypatch, tmp_path):
    from stack import free_port

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    unreachable = SnapshotStore("atlas-nowhere", "knowledge/shard.tar", project=TEST_PROJECT, retry_deadline_s=1)
    for call in (
        unreachable.latest_generation,
        lambda: unreachable.download(tmp_path / "got.tar"),
        lambda: unreachable.publish(archive(tmp_path, b"x"), if_generation_match=0),
    ):
        with pytest.raises(SnapshotStoreError, match="cannot"):
            call()


def test_a_retried_upload_that_had_already_landed_is_not_a_conflict(store, tmp_path, monkeypatch):
    # The client retries an upload whose answer was lost; the retry's precondition then fails on the very
    # object the first attempt wrote. Replaying the same publish id stands in for that retry.
    import uuid

    from atlas.retrieval import snapshot_store

    monkeypatch.setattr(snapshot_store.uuid, "uuid4", lambda: uuid.UUID(int=7))
    landed = store.publish(archive(tmp_path, b"ours"), if_generation_match=0)
    assert store.publish(archive(tmp_path, b"ours"), if_generation_match=0) == landed
