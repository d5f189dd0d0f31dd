"""A Qdrant Edge shard moved as one file: small despite Edge's preallocated files, and whole when unpacked."""

import io
import tarfile

import pytest
import qdrant_edge as edge

from atlas.errors import KnowledgeIndexError
from atlas.retrieval import shard_archive
from atlas.retrieval.backend import IndexPoint
from atlas.retrieval.bm25 import SparseVector
from atlas.retrieval.edge_backend import EdgeBackend


def _shard(folder, points=50):
    import numpy as np

    backend = EdgeBackend(folder, 8)
    rng = np.random.default_rng(1)
    backend.upsert(
        [
            IndexPoint(
                f"00000000-0000-4000-8000-{n:012d}",
                rng.normal(size=8),
                SparseVector(np.array([n]), np.array([1.0])),
                {"source": f"{n % 5}.md"},
            )
            for n in range(points)
        ]
    )
    backend.close()


def _disk_bytes(folder):
    return sum(p.stat().st_blocks * 512 for p in folder.rglob("*") if p.is_file())


def test_an_archive_is_small_and_unpacks_to_the_same_shard_without_writing_its_zeros(tmp_path):
    _shard(tmp_path / "a")
    archive = tmp_path / "a.tar.gz"
    shard_archive.pack(tmp_path / "a", archive)
    apparent = sum(p.stat().st_size for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert archive.stat().st_size < apparent / 20  # Edge preallocates tens of MB of zeros
    shard_archive.unpack(archive, tmp_path / "b")
    assert _disk_bytes(tmp_path / "b") <= 2 * _disk_bytes(tmp_path / "a")  # holes stay holes
    restored = EdgeBackend(tmp_path / "b", 8)
    assert restored.count() == 50
    assert restored.ids_by_source(["3.md"]) == {"3.md": {f"00000000-0000-4000-8000-{n:012d}" for n in range(3, 50, 5)}}
    restored.close()


def test_a_plain_tar_of_a_shard_is_unpacked_by_edge_itself(tmp_path):
    _shard(tmp_path / "a", points=10)
    plain = tmp_path / "a.tar"
    with tarfile.open(plain, "w") as tar:
        for entry in (tmp_path / "a").iterdir():
            tar.add(entry, arcname=entry.name)
    shard_archive.unpack(plain, tmp_path / "b")
    assert edge.EdgeShard.load(str(tmp_path / "b")).count(edge.CountRequest()) == 10


@pytest.mark.parametrize("content", [b"\x1f\x8bnot really gzip", b"not an archive at all"])
def test_a_broken_archive_is_a_clear_index_error(tmp_path, content):
    broken = tmp_path / "broken"
    broken.write_bytes(content)
    with pytest.raises(KnowledgeIndexError, match="cannot unpack"):
        shard_archive.unpack(broken, tmp_path / "out")


def test_an_archive_reaching_outside_the_shard_is_refused(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        data = b"x"
        info = tarfile.TarInfo("../outside.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(KnowledgeIndexError, match="outside the shard"):
        shard_archive.unpack(archive, tmp_path / "out")
    assert not (tmp_path / "outside.txt").exists()
