"""The real knowledge index used in-process as the pipeline's retriever (no HTTP hop, same ranking)."""

from __future__ import annotations

from typing import Any

from atlas.models import Source
from atlas.retrieval.index import KnowledgeIndex


class IndexRetriever:
    def __init__(self, index: KnowledgeIndex) -> None:
        self._index = index

    def search(self, query: str, *, top_k: int, filter: dict[str, Any] | None = None) -> list[Source]:
        return self._index.search(query, top_k=top_k, sources=(filter or {}).get("source"))
