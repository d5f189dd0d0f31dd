"""Moving a Qdrant Edge shard as one file: a gzipped tar of the flushed, closed folder.

Edge preallocates its files (32 MiB WAL segments and page files), so a plain tar of a shard with a few
hundred points is about 180 MB of mostly zeros; gzip at level 1 makes it a few MB in well under a second,
and unpacking writes the zero runs as holes, so the copy takes no more disk (or memory, on Cloud Run's
``/tmp``) than the original. An archive that is not ours (a plain tar, or a snapshot of a managed Qdrant
collection's shard) is unpacked by Edge's own ``unpack_snapshot``, so the same call seeds an embedded
index from managed Qdrant.
"""

from __future__ import annotations

import gzip
import tarfile
from pathlib import Path
from typing import BinaryIO

import qdrant_edge

from atlas.errors import KnowledgeIndexError

_GZIP_MAGIC = b"\x1f\x8b"
_BLOCK = 1 << 20
_PAGE = 4096
_ZERO_PAGE = bytes(_PAGE)


def pack(folder: Path, archive: Path) -> None:
    """Archive a shard folder that is flushed and closed (nothing writes to it meanwhile)."""
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        for entry in sorted(folder.iterdir()):
            tar.add(entry, arcname=entry.name)


def unpack(archive: Path, folder: Path) -> None:
    """Unpack ``archive`` into ``folder`` (which must not exist yet), ready for ``EdgeShard.load``."""
    with archive.open("rb") as head:
        ours = head.read(2) == _GZIP_MAGIC
    try:
        if ours:
            _unpack_sparse(archive, folder)
        else:
            qdrant_edge.EdgeShard.unpack_snapshot(str(archive), str(folder))
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise KnowledgeIndexError(f"cannot unpack the index archive {archive}: {exc}") from exc
    except Exception as exc:  # Edge's own error for a snapshot it cannot read
        raise KnowledgeIndexError(f"cannot unpack the snapshot {archive}: {exc}") from exc


def _unpack_sparse(archive: Path, folder: Path) -> None:
    folder.mkdir(parents=True)
    root = folder.resolve()
    with gzip.open(archive, "rb") as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            target = (folder / member.name).resolve()
            if root not in target.parents and target != root:
                raise KnowledgeIndexError(f"{archive} holds a path outside the shard: {member.name}")
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif member.isfile():
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None
                with target.open("wb") as out:
                    while block := source.read(_BLOCK):
                        _write_sparse(out, memoryview(block))
                    out.truncate(member.size)
            else:
                raise KnowledgeIndexError(f"{archive} holds an entry that is not a file or folder: {member.name}")


def _write_sparse(out: BinaryIO, block: memoryview) -> None:
    """Write ``block``, leaving its all-zero pages as holes (no disk, no memory on tmpfs)."""
    for start in range(0, len(block), _PAGE):
        page = block[start : start + _PAGE]
        if page == _ZERO_PAGE[: len(page)]:
            out.seek(len(page), 1)
        else:
            out.write(page)
