"""The retrieval service's logic behind its HTTP routes: search, ingest, health.

The HTTP adapter (``functions/retrieval/main.py``) parses JSON and maps errors to status codes; the
work is here. The model and the index are opened on first use and shared by all request threads. Qdrant
local mode (and the in-process scorer beside it) is not safe for concurrent writers, so a local index is
guarded by a lock; a managed cluster needs none. Search results are cached per instance (LRU with a TTL),
and every ingest clears that cache.
"""

from __future__ import annotations

import threading
import time
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from atlas.config import RetrievalSettings
from atlas.retrieval.bm25 import Bm25Encoder
from atlas.retrieval.embedder import Embedder
from atlas.retrieval.index import Chunking, Document, KnowledgeIndex, Ranking, SearchFilters, open_qdrant
from atlas.retrieval.query_cache import QueryCache

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
    def __init__(self, settings: RetrievalSettings) -> None:
        self._settings = settings
        self._index: KnowledgeIndex | None = None
        self._open_lock = threading.Lock()
        # Local mode keeps its state in this process; serialise access to it. Managed Qdrant needs no lock.
        self._local_lock: threading.Lock | None = None if settings.qdrant_url else threading.Lock()
        self.cache: QueryCache[list[dict[str, Any]]] = QueryCache(settings.query_cache_size, settings.query_cache_ttl_s)

    @property
    def backend(self) -> str:
        return "managed" if self._settings.qdrant_url else "local"

    def index(self) -> KnowledgeIndex:
        with self._open_lock:
            if self._index is None:
                settings = self._settings
                embedder = Embedder(settings.embedding_model_dir, threads=settings.embedding_threads)
                client = open_qdrant(
                    path=settings.qdrant_path,
                    url=settings.qdrant_url,
                    api_key=settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None,
                )
                self._index = KnowledgeIndex(
                    client,
                    settings.knowledge_collection,
                    embedder,
                    Bm25Encoder(),
                    ranking=Ranking(
                        fusion=settings.fusion, prefetch_limit=settings.prefetch_limit, rrf_k=settings.rrf_k
                    ),
                    chunking=Chunking(max_chars=settings.chunk_max_chars, overlap_chars=settings.chunk_overlap_chars),
                    scoring=settings.local_scoring,
                )
            return self._index

    def _guarded(self) -> AbstractContextManager[object]:
        return self._local_lock or nullcontext()

    def search(self, request: SearchRequest) -> dict[str, Any]:
        index = self.index()
        started = time.perf_counter()
        key = request.cache_key()
        results = self.cache.get(key)
        cached = results is not None
        if results is None:
            generation = self.cache.generation
            filters = request.filter.to_filters() if request.filter else None
            with self._guarded():
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
            raise ValueError(
                f"at most {self._settings.max_ingest_documents} documents per request "
                f"(ATLAS_MAX_INGEST_DOCUMENTS); got {len(request.documents)}"
            )
        index = self.index()
        started = time.perf_counter()
        documents = [
            Document(source=d.source, text=d.text, title=d.title, tags=tuple(d.tags)) for d in request.documents
        ]
        with self._guarded():
            try:
                report = index.ingest(documents)
            finally:
                self.cache.clear()
        return {**report.as_dict(), "took_ms": round((time.perf_counter() - started) * 1000, 2)}

    def health(self) -> dict[str, Any]:
        index = self.index()
        with self._guarded():
            points = index.count()
        return {"status": "ok", "backend": self.backend, "collection": index.collection, "points": points}

    def describe(self) -> dict[str, Any]:
        """How this instance ranks (for logs and the benchmark)."""
        index = self.index()
        return {"backend": self.backend, "scoring": index.scoring, **index.ranking.__dict__}
