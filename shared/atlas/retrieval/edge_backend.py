"""The embedded index: a Qdrant Edge shard, Qdrant's own engine running inside this process.

A shard is a folder (``ATLAS_QDRANT_PATH``): segments, a write-ahead log and ``edge_config.json``. Every
update goes to the WAL before it is applied, so an acknowledged write survives a ``kill -9``; the WAL is
replayed when the folder is loaded again. One process owns a folder (a second ``load`` is refused).

Queries run concurrently on the engine's own search threads; writes (upserts, deletes, ``optimize``) are
serialised here, and do not block queries. Scoring, IDF, filters and fusion are all the engine's.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import qdrant_edge as edge

from atlas.errors import KnowledgeIndexError
from atlas.retrieval.backend import (
    DENSE,
    INDEXED_FIELDS,
    SCROLL_PAGE,
    SPARSE,
    HybridQuery,
    IndexPoint,
    ScoredPayload,
    SearchFilters,
    ids_by_source,
)
from atlas.retrieval.bm25 import SparseVector

CONFIG_FILE = "edge_config.json"


def edge_config(dimension: int) -> edge.EdgeConfig:
    """Dense cosine vectors and BM25 sparse vectors whose IDF the engine applies at query time."""
    return edge.EdgeConfig(
        vectors={DENSE: edge.EdgeVectorParams(size=dimension, distance=edge.Distance.Cosine)},
        sparse_vectors={SPARSE: edge.EdgeSparseVectorParams(modifier=edge.Modifier.Idf)},
        wal_enabled=True,
    )


def is_shard(path: Path) -> bool:
    return (path / CONFIG_FILE).is_file()


class EdgeBackend:
    """One Edge shard in ``path``, created (with keyword indexes on source and tags) when the folder is new."""

    kind = "edge"

    def __init__(self, path: Path, dimension: int) -> None:
        self.path = path
        self._write_lock = threading.Lock()
        self._shard = _open(path, dimension)

    # ------------------------------------------------------------------ writes (serialised)

    def upsert(self, points: Sequence[IndexPoint]) -> None:
        if not points:
            return
        operation = edge.UpdateOperation.upsert_points([_point(p) for p in points])
        with self._write_lock:
            _call(self._shard.update, operation)

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            with self._write_lock:
                _call(self._shard.update, edge.UpdateOperation.delete_points(list(ids)))

    def optimize(self) -> bool:
        with self._write_lock:
            return bool(_call(self._shard.optimize))

    def flush(self) -> None:
        """Write everything applied so far into the segments (the WAL already holds it)."""
        with self._write_lock:
            _call(self._shard.flush)

    def close(self) -> None:
        with self._write_lock:
            self._shard.close()

    # ------------------------------------------------------------------ reads (concurrent)

    def query(self, query: HybridQuery, *, with_payload: bool | list[str]) -> list[ScoredPayload]:
        return self.query_batch([query], with_payload=[with_payload])[0]

    def query_batch(
        self, queries: Sequence[HybridQuery], *, with_payload: Sequence[bool | list[str]]
    ) -> list[list[ScoredPayload]]:
        requests = [_request(q, payload) for q, payload in zip(queries, with_payload, strict=True)]
        asked = [request for request in requests if request is not None]
        answers = iter(_call(self._shard.query_batch, edge.QueryBatchRequest(asked)) if asked else [])
        return [
            [ScoredPayload(str(p.id), float(p.score), p.payload or {}) for p in next(answers)] if request else []
            for request in requests
        ]

    def ids_by_source(self, sources: Sequence[str]) -> dict[str, set[str]]:
        return ids_by_source(sources, self._scroll_page)

    def _scroll_page(self, filters: SearchFilters, offset: Any) -> tuple[list[tuple[object, Any]], Any]:
        request = edge.ScrollRequest(
            offset=offset, limit=SCROLL_PAGE, filter=_filter(filters), with_payload=["source"], with_vector=False
        )
        page, next_offset = _call(self._shard.scroll, request)
        return [(record.id, record.payload) for record in page], next_offset

    def count(self) -> int:
        return int(_call(self._shard.count, edge.CountRequest(exact=True)))

    def info(self) -> edge.ShardInfo:
        info: edge.ShardInfo = _call(self._shard.info)
        return info


def _open(path: Path, dimension: int) -> edge.EdgeShard:
    config = edge_config(dimension)
    if is_shard(path):
        try:
            return edge.EdgeShard.load(str(path), config)
        except Exception as exc:  # the engine raises plain exceptions with its own message
            raise KnowledgeIndexError(
                f"cannot open the Qdrant Edge shard in {path}: {exc} (one process owns a folder; a shard "
                "made for other vectors must be deleted and ingested again)"
            ) from exc
    if path.exists() and any(path.iterdir()):
        raise KnowledgeIndexError(
            f"{path} is not empty and holds no Qdrant Edge shard (no {CONFIG_FILE}); a folder of Qdrant local "
            "mode from before Atlas used Qdrant Edge cannot be read: delete it and ingest again"
        )
    try:
        shard = edge.EdgeShard.create(str(path), config)
        for key in INDEXED_FIELDS:
            shard.update(edge.UpdateOperation.create_field_index(key, edge.PayloadSchemaType.Keyword))
    except Exception as exc:
        raise KnowledgeIndexError(f"cannot create a Qdrant Edge shard in {path}: {exc}") from exc
    return shard


def _call(method: Any, *args: Any) -> Any:
    try:
        return method(*args)
    except Exception as exc:
        raise KnowledgeIndexError(f"the Qdrant Edge shard failed: {exc}") from exc


def _point(point: IndexPoint) -> edge.Point:
    vectors: dict[str, Any] = {DENSE: [float(x) for x in point.dense]}
    if point.sparse is not None and len(point.sparse):
        vectors[SPARSE] = _sparse(point.sparse)
    return edge.Point(point.id, vectors, dict(point.payload))


def _sparse(vector: SparseVector) -> edge.SparseVector:
    return edge.SparseVector(indices=vector.indices.tolist(), values=vector.values.tolist())


def _filter(filters: SearchFilters) -> edge.Filter | None:
    conditions: list[Any] = [
        edge.FieldCondition(key=key, match=edge.MatchAny(any=values)) for key, values in filters.conditions()
    ]
    return edge.Filter(must=conditions) if conditions else None


def _request(query: HybridQuery, with_payload: bool | list[str]) -> edge.QueryRequest | None:
    """The Query API request both backends send: prefetches fused by the engine, or one retriever alone."""
    nearest: list[edge.Query] = []
    if (dense := query.dense_vector()) is not None:
        nearest.append(edge.Query.Nearest(dense, using=DENSE))
    if (sparse := query.sparse_vector()) is not None:
        nearest.append(edge.Query.Nearest(_sparse(sparse), using=SPARSE))
    if not nearest:
        return None
    query_filter = _filter(query.filters)
    if not query.is_fused():
        return edge.QueryRequest(limit=query.limit, query=nearest[0], filter=query_filter, with_payload=with_payload)
    limit = max(query.prefetch_limit, query.limit)
    # The stubs type Fusion's variants as nested classes that QueryRequest's annotation does not name.
    fusion: Any = edge.Fusion.Dbsf() if query.fusion == "dbsf" else edge.Fusion.Rrf(k=query.rrf_k)
    return edge.QueryRequest(
        limit=query.limit,
        prefetches=[edge.Prefetch(limit=limit, query=q, filter=query_filter) for q in nearest],
        query=fusion,
        filter=query_filter,
        with_payload=with_payload,
    )
