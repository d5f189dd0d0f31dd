"""The knowledge index: chunks with a dense and a BM25 vector each, in a Qdrant engine.

Ingestion is idempotent per source: the chunks of a document are compared by id (a content hash) with
what the index holds for that source (a scroll with a filter); new chunks are embedded (in batches) and
written in one upsert, vanished ones deleted after it, and unchanged ones left alone, so re-ingesting the
same files embeds nothing. A crash between the two writes leaves a changed document with its old chunks
too, until it is ingested again; it never loses one.

Search is hybrid by default: a dense and a BM25 prefetch fused by the engine (RRF or DBSF). The engine is
behind :class:`~atlas.retrieval.backend.IndexBackend`: Qdrant Edge in this process for a folder, managed
Qdrant for a URL, both sent the same :class:`~atlas.retrieval.backend.HybridQuery`. With a
:class:`~atlas.retrieval.rerank.Reranker`, hybrid results are reranked, and a search keeps only the
candidates close enough to the best (:mod:`atlas.retrieval.rerank`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from atlas.models import Source
from atlas.retrieval.backend import (
    DEFAULT_RRF_K,
    FusionMethod,
    HybridQuery,
    IndexBackend,
    IndexPoint,
    Progress,
    ScoredPayload,
    SearchFilters,
)
from atlas.retrieval.bm25 import Bm25Encoder
from atlas.retrieval.chunking import DEFAULT_MAX_CHARS, DEFAULT_OVERLAP_CHARS, Chunk, chunk_markdown
from atlas.retrieval.embedder import Embedder
from atlas.retrieval.rerank import Reranker

EMBED_BATCH = 256

SearchMode = Literal["hybrid", "dense", "bm25"]

__all__ = [
    "Chunking",
    "Document",
    "Hit",
    "IngestReport",
    "KnowledgeIndex",
    "Ranking",
    "SearchFilters",
    "SearchMode",
    "open_backend",
]


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
    rrf_k: int = DEFAULT_RRF_K


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


def open_backend(
    *, path: Path | None, url: str | None, api_key: str | None, collection: str, dimension: int
) -> IndexBackend:
    """Managed Qdrant when ``url`` is set, else a Qdrant Edge shard in ``path`` (one owner per folder)."""
    if url:
        from atlas.retrieval.qdrant_backend import QdrantBackend, connect

        return QdrantBackend(connect(url, api_key), collection, dimension)
    if path is None:
        raise ValueError("open_backend needs a folder or a URL")
    from atlas.retrieval.edge_backend import EdgeBackend

    return EdgeBackend(path, dimension)


class KnowledgeIndex:
    """Thread-safe: searches run concurrently; the backend serialises writes."""

    def __init__(
        self,
        backend: IndexBackend,
        embedder: Embedder,
        bm25: Bm25Encoder | None = None,
        *,
        ranking: Ranking | None = None,
        chunking: Chunking | None = None,
        reranker: Reranker | None = None,
    ) -> None:
        self.backend = backend
        self.reranker = reranker
        self._embedder = embedder
        self._bm25 = bm25 or Bm25Encoder()
        self.ranking = ranking or Ranking()
        self._chunking = chunking or Chunking()

    def count(self) -> int:
        return self.backend.count()

    def optimize(self) -> bool:
        """Let the engine build its indexes (HNSW) and merge segments; True when it did something."""
        return self.backend.optimize()

    # ------------------------------------------------------------------ ingestion

    def ingest(
        self,
        documents: Sequence[Document],
        *,
        progress: Progress | None = None,
        embedded: dict[str, IndexPoint] | None = None,
    ) -> IngestReport:
        """Chunk, diff by id against the index, embed and upsert what is new, delete what vanished.

        ``embedded`` keeps the points embedded by an earlier try of the same ingest (a retry against a
        newer snapshot embeds only what it had not embedded yet)."""
        chunks_by_source = {document.source: self._chunk(document) for document in documents}
        existing_by_source = self.backend.ids_by_source(list(chunks_by_source))
        unchanged = 0
        to_embed: dict[str, Chunk] = {}  # by id: a repeated paragraph is one point
        stale: list[str] = []
        for source, chunks in chunks_by_source.items():
            existing = existing_by_source.get(source, set())
            wanted = {chunk.id for chunk in chunks}
            to_embed.update((chunk.id, chunk) for chunk in chunks if chunk.id not in existing)
            stale.extend(existing - wanted)
            unchanged += len(wanted & existing)
        known = embedded if embedded is not None else {}
        fresh = self.embed([chunk for chunk in to_embed.values() if chunk.id not in known], progress=progress)
        known.update((point.id, point) for point in fresh)
        self.backend.upsert([known[chunk_id] for chunk_id in to_embed])
        self.backend.delete(stale)
        return IngestReport(
            documents=len(chunks_by_source),
            chunks=sum(len(c) for c in chunks_by_source.values()),
            added=len(to_embed),
            unchanged=unchanged,
            removed=len(stale),
        )

    def _chunk(self, document: Document) -> list[Chunk]:
        return chunk_markdown(
            document.source,
            document.text,
            title=document.title,
            tags=document.tags,
            max_chars=self._chunking.max_chars,
            overlap_chars=self._chunking.overlap_chars,
        )

    def embed(self, chunks: Sequence[Chunk], *, progress: Progress | None = None) -> list[IndexPoint]:
        """Both vectors of each chunk, ``EMBED_BATCH`` at a time (the slow part of an ingest)."""
        points: list[IndexPoint] = []
        for start in range(0, len(chunks), EMBED_BATCH):
            batch = chunks[start : start + EMBED_BATCH]
            texts = [chunk.embedding_text() for chunk in batch]
            dense = self._embedder.embed_documents(texts)
            sparse = self._bm25.encode_documents(texts)
            points.extend(
                IndexPoint(chunk.id, vector, weights if len(weights) else None, chunk.payload())
                for chunk, vector, weights in zip(batch, dense, sparse, strict=True)
            )
            if progress is not None:
                progress(len(points), len(chunks))
        return points

    # ------------------------------------------------------------------ search

    def query(
        self, text: str, *, top_k: int, filters: SearchFilters | None = None, mode: SearchMode = "hybrid"
    ) -> HybridQuery:
        """The engine-neutral request for ``text``: its vectors, the ranking settings and the filter."""
        return HybridQuery(
            dense=self._embedder.embed_query(text).tolist() if mode != "bm25" else None,
            sparse=self._bm25.encode_query(text) if mode != "dense" else None,
            limit=top_k,
            prefetch_limit=self.ranking.prefetch_limit,
            fusion=self.ranking.fusion,
            rrf_k=self.ranking.rrf_k,
            filters=filters or SearchFilters(),
        )

    def rank(
        self, query: str, *, top_k: int, filters: SearchFilters | None = None, mode: SearchMode = "hybrid"
    ) -> list[Hit]:
        """The ``top_k`` chunks for ``query``: ids, scores and sources, best first (no text). Reranked, not cut:
        the ranking the benchmark scores."""
        scored = self._scored(query, top_k=top_k, filters=filters, mode=mode, with_payload=["source"], cut=False)
        return [Hit(p.id, p.score, str(p.payload.get("source", ""))) for p in scored]

    def search(
        self, query: str, *, top_k: int, filters: SearchFilters | None = None, mode: SearchMode = "hybrid"
    ) -> list[Source]:
        """At most ``top_k`` chunks for ``query`` with their text, title and section, best first; with a
        reranker, fewer when the rest fall too far below the best."""
        scored = self._scored(query, top_k=top_k, filters=filters, mode=mode, with_payload=True, cut=True)
        return [_to_source(point) for point in scored]

    def _scored(
        self,
        query: str,
        *,
        top_k: int,
        filters: SearchFilters | None,
        mode: SearchMode,
        with_payload: bool | list[str],
        cut: bool,
    ) -> list[ScoredPayload]:
        request = self.query(query, top_k=top_k, filters=filters, mode=mode)
        if mode == "hybrid" and self.reranker is not None:
            return self.reranker.query(self.backend, request, with_payload=with_payload, cut=cut)
        return self.backend.query(request, with_payload=with_payload)


def _to_source(point: ScoredPayload) -> Source:
    payload: dict[str, Any] = dict(point.payload)
    return Source(
        id=point.id,
        text=str(payload.get("text", "")),
        title=str(payload.get("title", "")),
        source=str(payload.get("source", "")),
        section=str(payload.get("section", "")),
        score=point.score,
    )
