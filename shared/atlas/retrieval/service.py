"""The retrieval service's logic behind its HTTP routes: search, ingest, health.

The HTTP adapter (``functions/retrieval/main.py``) parses JSON and maps errors to status codes; the
work is here. The model and the index are opened once per instance, on first use, even when the first
requests arrive together, and shared by all request threads: searches run concurrently (the engine is
thread-safe) and the backend serialises writes. Search results are cached per instance (LRU with a TTL),
and every ingest clears that cache.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from atlas.config import RetrievalSettings
from atlas.errors import InvalidRequestError
from atlas.retrieval.backend import IndexBackend
from atlas.retrieval.bm25 import Bm25Encoder
from atlas.retrieval.edge_backend import EdgeBackend
from atlas.retrieval.embedder import Embedder
from atlas.retrieval.index import Chunking, Document, KnowledgeIndex, Ranking, SearchFilters, open_backend
from atlas.retrieval.query_cache import QueryCache
from atlas.retrieval.replica import DirectIndex, IndexReplica, SnapshotReplica
from atlas.retrieval.rerank import Reranker, Reranking
from atlas.retrieval.snapshot_store import SnapshotStore

MAX_QUERY_CHARS = 8000
MAX_DOCUMENT_CHARS = 500_000


class SearchFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: list[str] | None = Field(default=None, min_length=1, max_length=100)
    tags: list[str] | None = Field(default=None, min_length=1, max_length=50)

    def to_filters(self) -> SearchFilters:
        return SearchFilters(sources=tuple(self.source or ()), tags=tuple(self.tags or ()))


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    top_k: int = Field(default=6, ge=1, le=50)
    filter: SearchFilter | None = None
    mode: Literal["hybrid", "dense", "bm25"] = "hybrid"

    def cache_key(self) -> tuple[object, ...]:
        filters = self.filter.to_filters() if self.filter else SearchFilters()
        return (self.query, self.top_k, self.mode, tuple(sorted(filters.sources)), tuple(sorted(filters.tags)))


class IngestDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(min_length=1, max_length=500)
    text: str = Field(max_length=MAX_DOCUMENT_CHARS)
    title: str | None = Field(default=None, max_length=300)
    tags: list[str] = Field(default_factory=list, max_length=20)


class IngestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    documents: list[IngestDocument] = Field(min_length=1)


class RetrievalService:
    """Search, ingest and health over one knowledge index. Building it loads the model and opens the index:
    the retrieval function builds it once per instance (``atlas.instance.once``)."""

    def __init__(self, settings: RetrievalSettings) -> None:
        self._settings = settings
        self.cache: QueryCache[list[dict[str, Any]]] = QueryCache(settings.query_cache_size, settings.query_cache_ttl_s)
        self._replica = open_replica(settings)

    @property
    def backend(self) -> str:
        if self._settings.qdrant_url:
            return "managed"
        return "edge+gcs" if self._settings.index_bucket else "edge"

    def index(self) -> KnowledgeIndex:
        """The index serving now (with a snapshot bucket: refreshed when a newer generation is due)."""
        return self._replica.current()

    def search(self, request: SearchRequest) -> dict[str, Any]:
        index = self.index()
        started = time.perf_counter()
        key = request.cache_key()
        results = self.cache.get(key)
        cached = results is not None
        if results is None:
            generation = self.cache.generation
            filters = request.filter.to_filters() if request.filter else None
            hits = index.search(request.query, top_k=request.top_k, filters=filters, mode=request.mode)
            results = [hit.model_dump(exclude={"label"}) for hit in hits]
            self.cache.put(key, results, generation=generation)
        return {
            "results": results,
            "cached": cached,
            "took_ms": round((time.perf_counter() - started) * 1000, 2),
        }

    def ingest(self, request: IngestRequest) -> dict[str, Any]:
        if len(request.documents) > self._settings.max_ingest_documents:
            raise InvalidRequestError(
                f"at most {self._settings.max_ingest_documents} documents per request "
                f"(ATLAS_MAX_INGEST_DOCUMENTS); got {len(request.documents)}"
            )
        started = time.perf_counter()
        documents = [
            Document(source=d.source, text=d.text, title=d.title, tags=tuple(d.tags)) for d in request.documents
        ]
        try:
            report = self._replica.write(lambda index, embedded: index.ingest(documents, embedded=embedded))
        finally:
            self.cache.clear()
        return {**report.as_dict(), "took_ms": round((time.perf_counter() - started) * 1000, 2)}

    def health(self) -> dict[str, Any]:
        index = self.index()
        return {
            "status": "ok",
            "backend": self.backend,
            "collection": self._settings.knowledge_collection,
            "points": index.count(),
        }

    def describe(self) -> dict[str, Any]:
        """How this instance ranks (for logs and the benchmark)."""
        index = self.index()
        reranking = index.reranker.settings.__dict__ if index.reranker else {"enabled": False}
        return {"backend": self.backend, **index.ranking.__dict__, "rerank": reranking}


def open_replica(settings: RetrievalSettings) -> IndexReplica:
    """The model and the index this instance serves: managed Qdrant, an Edge folder, or Edge kept in GCS."""
    embedder = Embedder(settings.embedding_model_dir, threads=settings.embedding_threads)
    bm25 = Bm25Encoder()
    reranker = (
        Reranker(Reranking(candidates=settings.rerank_candidates, min_relative=settings.rerank_min_relative))
        if settings.rerank
        else None
    )

    def index_over(backend: IndexBackend) -> KnowledgeIndex:
        return KnowledgeIndex(
            backend,
            embedder,
            bm25,
            ranking=Ranking(fusion=settings.fusion, prefetch_limit=settings.prefetch_limit, rrf_k=settings.rrf_k),
            chunking=Chunking(max_chars=settings.chunk_max_chars, overlap_chars=settings.chunk_overlap_chars),
            reranker=reranker,
        )

    if settings.index_bucket and settings.qdrant_path is not None:
        # Short retries: a refresh check runs on a search's path (and a failed one keeps the current index).
        store = SnapshotStore(
            settings.index_bucket, settings.index_object, project=settings.project, retry_deadline_s=10
        )
        return SnapshotReplica(
            store,
            settings.qdrant_path,
            lambda folder: index_over(EdgeBackend(folder, embedder.dimension)),
            refresh_s=settings.index_refresh_s,
        )
    backend = open_backend(
        path=settings.qdrant_path,
        url=settings.qdrant_url,
        api_key=settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None,
        collection=settings.knowledge_collection,
        dimension=embedder.dimension,
    )
    return DirectIndex(index_over(backend))
