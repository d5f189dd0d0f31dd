"""The real knowledge index used in-process as the pipeline's retriever (no HTTP hop, same ranking)."""

from __future__ import annotations

from typing import Any

from atlas.models import Source
from atlas.retrieval.index import KnowledgeIndex, SearchFilters


class IndexRetriever:
    def __init__(self, index: KnowledgeIndex) -> None:
        self._index = index

    def search(self, query: str, *, top_k: int, filter: dict[str, Any] | None = None) -> list[Source]:
        wanted = filter or {}
        filters = SearchFilters(sources=tuple(wanted.get("source") or ()), tags=tuple(wanted.get("tags") or ()))
        return self._index.search(query, top_k=top_k, filters=filters)
