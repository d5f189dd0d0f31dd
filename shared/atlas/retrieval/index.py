"""The knowledge index in Qdrant: one collection with a dense and a BM25 vector per chunk.

Ingestion is idempotent per source: the chunks of a document are compared by id (a content hash) with
what the index holds for that source; new chunks are embedded (in batches) and upserted, vanished ones
deleted, and unchanged ones left alone, so re-ingesting the same files embeds nothing.

Search is hybrid by default: a dense and a BM25 prefetch fused by RRF or DBSF in Qdrant's Query API.
Who scores depends on the backend: a managed cluster answers ``query_points`` itself (the reference
path); Qdrant local mode would score BM25 in pure Python, so for a folder the same query is answered by
:class:`~atlas.retrieval.inprocess.InProcessScorer` from a copy of the folder's vectors, with the same
formulas (pinned by a congruence test). ``scoring="qdrant"`` forces the reference path for a folder too.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from qdrant_client import QdrantClient, models

from atlas.errors import KnowledgeIndexError
from atlas.models import Source
from atlas.retrieval.bm25 import Bm25Encoder
from atlas.retrieval.chunking import DEFAULT_MAX_CHARS, DEFAULT_OVERLAP_CHARS, Chunk, chunk_markdown
from atlas.retrieval.embedder import Embedder
from atlas.retrieval.fusion import QDRANT_DEFAULT_RRF_K, FusionMethod, RankedList, fuse
from atlas.retrieval.inprocess import InProcessScorer, SparseVector, StoredPoint

DENSE = "dense"
SPARSE = "bm25"
EMBED_BATCH = 256
SCROLL_PAGE = 1000
SOURCE_LOOKUP_BATCH = 64

SearchMode = Literal["hybrid", "dense", "bm25"]
Scoring = Literal["inprocess", "qdrant"]
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Document:
    source: str
    text: str
    title: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Ranking:
    """How hybrid results are fused: the method, how many candidates each retriever brings, RRF's k."""

    fusion: FusionMethod = "dbsf"
    prefetch_limit: int = 100
    rrf_k: int = QDRANT_DEFAULT_RRF_K


@dataclass(frozen=True)
class Chunking:
    max_chars: int = DEFAULT_MAX_CHARS
    overlap_chars: int = DEFAULT_OVERLAP_CHARS


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    source: str


@dataclass(frozen=True)
class IngestReport:
    documents: int
    chunks: int
    added: int
    unchanged: int
    removed: int

    def as_dict(self) -> dict[str, int]:
        return self.__dict__.copy()


@dataclass(frozen=True)
class SearchFilters:
    """Keep chunks whose source is any of ``sources`` and that carry any of ``tags`` (empty: no filter)."""

    sources: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    def to_qdrant(self) -> models.Filter | None:
        conditions: list[models.Condition] = []
        if self.sources:
            conditions.append(models.FieldCondition(key="source", match=models.MatchAny(any=list(self.sources))))
        if self.tags:
            conditions.append(models.FieldCondition(key="tags", match=models.MatchAny(any=list(self.tags))))
        return models.Filter(must=conditions) if conditions else None


def open_qdrant(*, path: Path | None, url: str | None, api_key: str | None) -> QdrantClient:
    """A managed cluster when ``url`` is set, else local mode in ``path`` (one owner per folder)."""
    try:
        if url:
            return QdrantClient(url=url, api_key=api_key, timeout=30)
        assert path is not None
        path.mkdir(parents=True, exist_ok=True)
        return QdrantClient(path=str(path))
    except RuntimeError as exc:  # local mode: "already accessed by another instance"
        raise KnowledgeIndexError(f"cannot open the Qdrant folder {path}: {exc}") from exc


def is_local(client: QdrantClient) -> bool:
    """True for Qdrant local mode (a folder or ``:memory:``), where the in-process scorer applies."""
    return type(client._client).__name__ == "QdrantLocal"


class KnowledgeIndex:
    """Not thread-safe on a local folder (the service serialises access); safe on a managed cluster."""

    def __init__(
        self,
        client: QdrantClient,
        collection: str,
        embedder: Embedder,
        bm25: Bm25Encoder | None = None,
        *,
        ranking: Ranking | None = None,
        chunking: Chunking | None = None,
        scoring: Scoring = "inprocess",
    ) -> None:
        self._client = client
        self._collection = collection
        self._embedder = embedder
        self._bm25 = bm25 or Bm25Encoder()
        self.ranking = ranking or Ranking()
        self._chunking = chunking or Chunking()
        self._ensure_collection()
        self._scorer: InProcessScorer | None = None
        if scoring == "inprocess" and is_local(client):
            self._scorer = InProcessScorer(embedder.dimension)
            self._scorer.upsert(self._stored_points())

    @property
    def collection(self) -> str:
        return self._collection

    @property
    def scoring(self) -> Scoring:
        return "inprocess" if self._scorer is not None else "qdrant"

    @property
    def scorer(self) -> InProcessScorer | None:
        return self._scorer

    def _ensure_collection(self) -> None:
        if self._client.collection_exists(self._collection):
            info = self._client.get_collection(self._collection)
            if SPARSE not in (info.config.params.sparse_vectors or {}):
                raise KnowledgeIndexError(
                    f"the collection {self._collection} has no {SPARSE!r} sparse vector (it predates hybrid "
                    "search): delete it (or the Qdrant folder) and ingest again"
                )
            return
        self._client.create_collection(
            self._collection,
            vectors_config={DENSE: models.VectorParams(size=self._embedder.dimension, distance=models.Distance.COSINE)},
            sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
        )
        with warnings.catch_warnings():
            # Local mode ignores payload indexes (and says so); a managed cluster needs them for filters.
            warnings.filterwarnings("ignore", message="Payload indexes have no effect", category=UserWarning)
            for key in ("source", "tags"):
                self._client.create_payload_index(self._collection, key, models.PayloadSchemaType.KEYWORD)

    def count(self) -> int:
        return self._client.count(self._collection, exact=True).count

    # ------------------------------------------------------------------ ingestion

    def ingest(self, documents: Sequence[Document], *, progress: Progress | None = None) -> IngestReport:
        """Chunk, diff by id against the index, embed and upsert what is new, delete what vanished."""
        chunks_by_source: dict[str, list[Chunk]] = {}
        for document in documents:
            chunks_by_source[document.source] = chunk_markdown(
                document.source,
                document.text,
                title=document.title,
                tags=document.tags,
                max_chars=self._chunking.max_chars,
                overlap_chars=self._chunking.overlap_chars,
            )
        existing_by_source = self._ids_for_sources(list(chunks_by_source))
        unchanged = 0
        to_embed: list[Chunk] = []
        stale: list[str] = []
        for source, chunks in chunks_by_source.items():
            existing = existing_by_source.get(source, set())
            wanted = {chunk.id for chunk in chunks}
            to_embed.extend(chunk for chunk in chunks if chunk.id not in existing)
            stale.extend(existing - wanted)
            unchanged += len(wanted & existing)
        to_embed = list({chunk.id: chunk for chunk in to_embed}.values())  # a repeated paragraph: one point
        for start in range(0, len(to_embed), EMBED_BATCH):
            self._add(to_embed[start : start + EMBED_BATCH])
            if progress is not None:
                progress(min(start + EMBED_BATCH, len(to_embed)), len(to_embed))
        if stale:
            self._client.delete(self._collection, points_selector=models.PointIdsList(points=stale))
            if self._scorer is not None:
                self._scorer.remove(stale)
        return IngestReport(
            documents=len(chunks_by_source),
            chunks=sum(len(c) for c in chunks_by_source.values()),
            added=len(to_embed),
            unchanged=unchanged,
            removed=len(stale),
        )

    def _add(self, batch: Sequence[Chunk]) -> None:
        texts = [chunk.embedding_text() for chunk in batch]
        dense = self._embedder.embed_documents(texts)
        sparse = self._bm25.encode_documents(texts)
        self._client.upsert(
            self._collection,
            points=[
                models.PointStruct(id=chunk.id, vector=_vectors(vector, weights), payload=chunk.payload())
                for chunk, vector, weights in zip(batch, dense, sparse, strict=True)
            ],
            wait=True,
        )
        if self._scorer is not None:
            self._scorer.upsert(
                StoredPoint(chunk.id, vector, weights if len(weights.indices) else None, chunk.source, chunk.tags)
                for chunk, vector, weights in zip(batch, dense, sparse, strict=True)
            )

    def _ids_for_sources(self, sources: Sequence[str]) -> dict[str, set[str]]:
        if self._scorer is not None:
            return {source: self._scorer.ids_for_source(source) for source in sources}
        found: dict[str, set[str]] = {}
        for start in range(0, len(sources), SOURCE_LOOKUP_BATCH):
            wanted = SearchFilters(sources=tuple(sources[start : start + SOURCE_LOOKUP_BATCH])).to_qdrant()
            for point in self._scroll(wanted, with_vectors=False):
                found.setdefault(str((point.payload or {})["source"]), set()).add(str(point.id))
        return found

    def _scroll(self, scroll_filter: models.Filter | None, *, with_vectors: bool) -> list[models.Record]:
        records: list[models.Record] = []
        offset: Any = None
        while True:
            points, offset = self._client.scroll(
                self._collection,
                scroll_filter=scroll_filter,
                limit=SCROLL_PAGE,
                offset=offset,
                with_payload=["source", "tags"],
                with_vectors=with_vectors,
            )
            records.extend(points)
            if offset is None:
                return records

    def _stored_points(self) -> list[StoredPoint]:
        """Everything the folder holds, for the in-process scorer (read once, when the index opens)."""
        stored = []
        for record in self._scroll(None, with_vectors=True):
            vectors = record.vector if isinstance(record.vector, dict) else {}
            weights = vectors.get(SPARSE)
            payload = record.payload or {}
            stored.append(
                StoredPoint(
                    id=str(record.id),
                    dense=np.asarray(vectors[DENSE], dtype=np.float32),
                    sparse=SparseVector(np.asarray(weights.indices, np.int64), np.asarray(weights.values, np.float64))
                    if isinstance(weights, models.SparseVector) and weights.indices
                    else None,
                    source=str(payload.get("source", "")),
                    tags=tuple(payload.get("tags") or ()),
                )
            )
        return stored

    # ------------------------------------------------------------------ search

    def rank(
        self,
        query: str,
        *,
        top_k: int,
        filters: SearchFilters | None = None,
        mode: SearchMode = "hybrid",
    ) -> list[Hit]:
        """The ``top_k`` chunks for ``query``: ids, scores and sources, best first (no payload fetch)."""
        filters = filters or SearchFilters()
        dense = self._embedder.embed_query(query) if mode != "bm25" else None
        sparse = self._bm25.encode_query(query) if mode != "dense" else None
        if self._scorer is not None:
            return self._rank_in_process(dense, sparse, top_k, filters)
        points = self._query_qdrant(dense, sparse, top_k, filters, with_payload=["source"])
        return [Hit(str(p.id), float(p.score), str((p.payload or {}).get("source", ""))) for p in points]

    def search(
        self,
        query: str,
        *,
        top_k: int,
        filters: SearchFilters | None = None,
        mode: SearchMode = "hybrid",
    ) -> list[Source]:
        """The ``top_k`` chunks for ``query`` with their text, title and section, best first."""
        hits = self.rank(query, top_k=top_k, filters=filters, mode=mode)
        if not hits:
            return []
        records = {str(r.id): r for r in self._client.retrieve(self._collection, [h.id for h in hits])}
        return [_to_source(hit, records[hit.id].payload or {}) for hit in hits if hit.id in records]

    def _rank_in_process(
        self, dense: np.ndarray | None, sparse: SparseVector | None, top_k: int, filters: SearchFilters
    ) -> list[Hit]:
        scorer = self._scorer
        assert scorer is not None
        mask = scorer.filter_mask(filters.sources, filters.tags)
        limit = max(self.ranking.prefetch_limit, top_k)
        lists: list[RankedList] = []
        if dense is not None:
            lists.append(scorer.dense(dense, top_k if sparse is None else limit, mask))
        if sparse is not None and len(sparse.indices):
            lists.append(scorer.sparse(sparse, top_k if dense is None else limit, mask))
        if dense is not None and sparse is not None:
            ranked = fuse(lists, self.ranking.fusion, top_k, rrf_k=self.ranking.rrf_k)
        else:
            ranked = lists[0] if lists else RankedList(np.zeros(0, np.int64), np.zeros(0))
        return [
            Hit(scorer.point_id(row), float(score), scorer.source_of(row))
            for row, score in zip(ranked.rows.tolist(), ranked.scores.tolist(), strict=True)
        ]

    def _query_qdrant(
        self,
        dense: np.ndarray | None,
        sparse: SparseVector | None,
        top_k: int,
        filters: SearchFilters,
        *,
        with_payload: bool | list[str],
    ) -> list[models.ScoredPoint]:
        query_filter = filters.to_qdrant()
        sparse_query = (
            models.SparseVector(indices=sparse.indices.tolist(), values=sparse.values.tolist())
            if sparse is not None and len(sparse.indices)
            else None
        )
        dense_query = dense.tolist() if dense is not None else None
        if dense_query is not None and sparse is not None:
            limit = max(self.ranking.prefetch_limit, top_k)
            prefetch = [models.Prefetch(query=dense_query, using=DENSE, limit=limit)]
            if sparse_query is not None:
                prefetch.append(models.Prefetch(query=sparse_query, using=SPARSE, limit=limit))
            fusion: models.Query = (
                models.FusionQuery(fusion=models.Fusion.DBSF)
                if self.ranking.fusion == "dbsf"
                else models.RrfQuery(rrf=models.Rrf(k=self.ranking.rrf_k))
            )
            response = self._client.query_points(
                self._collection,
                prefetch=prefetch,
                query=fusion,
                query_filter=query_filter,
                limit=top_k,
                with_payload=with_payload,
            )
        elif dense_query is not None or sparse_query is not None:
            response = self._client.query_points(
                self._collection,
                query=dense_query if dense_query is not None else sparse_query,
                using=DENSE if dense_query is not None else SPARSE,
                query_filter=query_filter,
                limit=top_k,
                with_payload=with_payload,
            )
        else:
            return []
        return list(response.points)


def _vectors(dense: np.ndarray, sparse: SparseVector) -> dict[str, Any]:
    vectors: dict[str, Any] = {DENSE: dense.tolist()}
    if len(sparse.indices):  # a chunk of stop words only has no BM25 vector (and is not in the IDF corpus)
        vectors[SPARSE] = models.SparseVector(indices=sparse.indices.tolist(), values=sparse.values.tolist())
    return vectors


def _to_source(hit: Hit, payload: dict[str, Any]) -> Source:
    return Source(
        id=hit.id,
        text=str(payload.get("text", "")),
        title=str(payload.get("title", "")),
        source=str(payload.get("source", "")),
        section=str(payload.get("section", "")),
        score=hit.score,
    )
