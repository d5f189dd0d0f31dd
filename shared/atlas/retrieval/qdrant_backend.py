"""Managed Qdrant (``ATLAS_QDRANT_URL``) through ``qdrant-client``: one collection, the same query shape.

The collection mirrors the Edge shard: named ``dense`` (cosine) and ``bm25`` (sparse, ``Modifier.IDF``)
vectors and keyword indexes on ``source`` and ``tags``. The server scores and fuses; the client is
thread-safe, and the server orders concurrent writes itself. ``QdrantClient(path=...)`` (local mode) gives
the same API without a server; the tests use it as the reference that Edge is compared with.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from qdrant_client import QdrantClient, models

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


def connect(url: str, api_key: str | None) -> QdrantClient:
    return QdrantClient(url=url, api_key=api_key, timeout=30)


class QdrantBackend:
    kind = "qdrant"

    def __init__(self, client: QdrantClient, collection: str, dimension: int) -> None:
        self._client = client
        self.collection = collection
        self._ensure_collection(dimension)

    def _ensure_collection(self, dimension: int) -> None:
        if self._client.collection_exists(self.collection):
            info = self._client.get_collection(self.collection)
            if SPARSE not in (info.config.params.sparse_vectors or {}):
                raise KnowledgeIndexError(
                    f"the collection {self.collection} has no {SPARSE!r} sparse vector (it predates hybrid "
                    "search): delete it and ingest again"
                )
            return
        self._client.create_collection(
            self.collection,
            vectors_config={DENSE: models.VectorParams(size=dimension, distance=models.Distance.COSINE)},
            sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
        )
        with warnings.catch_warnings():
            # Local mode ignores payload indexes (and says so); a managed cluster needs them for filters.
            warnings.filterwarnings("ignore", message="Payload indexes have no effect", category=UserWarning)
            for key in INDEXED_FIELDS:
                self._client.create_payload_index(self.collection, key, models.PayloadSchemaType.KEYWORD)

    def upsert(self, points: Sequence[IndexPoint]) -> None:
        if points:
            self._client.upsert(self.collection, points=[_point(p) for p in points], wait=True)

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            self._client.delete(self.collection, points_selector=models.PointIdsList(points=list(ids)), wait=True)

    def optimize(self) -> bool:
        return False  # the server's optimizers run in the background

    def close(self) -> None:
        self._client.close()

    def query(self, query: HybridQuery, *, with_payload: bool | list[str]) -> list[ScoredPayload]:
        return self.query_batch([query], with_payload=[with_payload])[0]

    def query_batch(
        self, queries: Sequence[HybridQuery], *, with_payload: Sequence[bool | list[str]]
    ) -> list[list[ScoredPayload]]:
        requests = [_request(q, payload) for q, payload in zip(queries, with_payload, strict=True)]
        asked = [request for request in requests if request is not None]
        answers = iter(self._client.query_batch_points(self.collection, requests=asked) if asked else [])
        return [
            [ScoredPayload(str(p.id), float(p.score), p.payload or {}) for p in next(answers).points] if request else []
            for request in requests
        ]

    def ids_by_source(self, sources: Sequence[str]) -> dict[str, set[str]]:
        return ids_by_source(sources, self._scroll_page)

    def _scroll_page(self, filters: SearchFilters, offset: Any) -> tuple[list[tuple[object, Any]], Any]:
        page, next_offset = self._client.scroll(
            self.collection, scroll_filter=_filter(filters), limit=SCROLL_PAGE, offset=offset, with_payload=["source"]
        )
        return [(record.id, record.payload) for record in page], next_offset

    def count(self) -> int:
        return self._client.count(self.collection, exact=True).count


def _request(query: HybridQuery, with_payload: bool | list[str]) -> models.QueryRequest | None:
    """The Query API request: prefetches fused by the server, or one retriever alone (None: nothing to ask)."""
    vectors: list[tuple[str, list[float] | models.SparseVector]] = []
    if (dense := query.dense_vector()) is not None:
        vectors.append((DENSE, dense))
    if (sparse := query.sparse_vector()) is not None:
        vectors.append((SPARSE, _sparse(sparse)))
    if not vectors:
        return None
    query_filter = _filter(query.filters)
    if not query.is_fused():
        name, vector = vectors[0]
        return models.QueryRequest(
            query=vector, using=name, filter=query_filter, limit=query.limit, with_payload=with_payload
        )
    limit = max(query.prefetch_limit, query.limit)
    fusion: Any = (
        models.FusionQuery(fusion=models.Fusion.DBSF)
        if query.fusion == "dbsf"
        else models.RrfQuery(rrf=models.Rrf(k=query.rrf_k))
    )
    return models.QueryRequest(
        prefetch=[models.Prefetch(query=v, using=n, limit=limit, filter=query_filter) for n, v in vectors],
        query=fusion,
        filter=query_filter,
        limit=query.limit,
        with_payload=with_payload,
    )


def _point(point: IndexPoint) -> models.PointStruct:
    vectors: dict[str, Any] = {DENSE: [float(x) for x in point.dense]}
    if point.sparse is not None and len(point.sparse):
        vectors[SPARSE] = _sparse(point.sparse)
    return models.PointStruct(id=point.id, vector=vectors, payload=dict(point.payload))


def _sparse(vector: SparseVector) -> models.SparseVector:
    return models.SparseVector(indices=vector.indices.tolist(), values=vector.values.tolist())


def _filter(filters: SearchFilters) -> models.Filter | None:
    conditions: list[models.Condition] = [
        models.FieldCondition(key=key, match=models.MatchAny(any=values)) for key, values in filters.conditions()
    ]
    return models.Filter(must=conditions) if conditions else None
