"""The seam between :class:`~atlas.retrieval.index.KnowledgeIndex` and a Qdrant engine.

Two implementations, and only two: :class:`~atlas.retrieval.edge_backend.EdgeBackend` (Qdrant Edge, the
engine in this process, for ``ATLAS_QDRANT_PATH``) and :class:`~atlas.retrieval.qdrant_backend.QdrantBackend`
(``qdrant-client`` against managed Qdrant, ``ATLAS_QDRANT_URL``; its local mode serves tests as a
reference). Both receive the same :class:`HybridQuery` and translate it into the same Query API request:
one prefetch per retriever under the filter, fused by the engine (RRF or DBSF). Nothing here scores.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from atlas.retrieval.bm25 import SparseVector

DENSE = "dense"
SPARSE = "bm25"
# Payload fields with a keyword index: the filters of /search and the per-source diff of ingestion.
INDEXED_FIELDS = ("source", "tags")
# Qdrant's default k for RRF in the Query API (`rrf: {k}`): 2.
DEFAULT_RRF_K = 2

FusionMethod = Literal["rrf", "dbsf"]
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class SearchFilters:
    """Keep chunks whose source is any of ``sources`` and that carry any of ``tags`` (empty: no filter)."""

    sources: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    def conditions(self) -> list[tuple[str, list[str]]]:
        """(payload key, any of these values) pairs, all of which must hold."""
        wanted = (("source", self.sources), ("tags", self.tags))
        return [(key, list(values)) for key, values in wanted if values]


@dataclass(frozen=True)
class IndexPoint:
    """One chunk as stored: its id (a content hash), both vectors, and its payload."""

    id: str
    dense: Sequence[float]
    sparse: SparseVector | None  # None for a chunk of stop words only: no BM25 vector, not in the IDF corpus
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class HybridQuery:
    """One search: a dense and/or a BM25 query, each a prefetch of ``prefetch_limit`` under ``filters``,
    fused when both are there; with one alone, that retriever ranks directly."""

    dense: Sequence[float] | None
    sparse: SparseVector | None
    limit: int
    prefetch_limit: int = 100
    fusion: FusionMethod = "dbsf"
    rrf_k: int = DEFAULT_RRF_K
    filters: SearchFilters = field(default_factory=SearchFilters)

    def dense_vector(self) -> list[float] | None:
        return [float(x) for x in self.dense] if self.dense is not None else None

    def sparse_vector(self) -> SparseVector | None:
        """The BM25 query, or None when it has no term to look for (a query of stop words only)."""
        return self.sparse if self.sparse is not None and len(self.sparse) else None

    def is_fused(self) -> bool:
        return self.dense is not None and self.sparse is not None


@dataclass(frozen=True)
class ScoredPayload:
    id: str
    score: float
    payload: Mapping[str, Any]


class IndexBackend(Protocol):
    """What the knowledge index needs from an engine. Queries may run concurrently; writes are serialised
    by the backend itself."""

    kind: str

    def upsert(self, points: Sequence[IndexPoint]) -> None:
        """Write ``points`` as one operation: after a crash either all of them are there or none."""

    def delete(self, ids: Sequence[str]) -> None: ...

    def ids_by_source(self, sources: Sequence[str]) -> dict[str, set[str]]:
        """The ids of the chunks each source has in the index (a scroll with a filter)."""

    def query(self, query: HybridQuery, *, with_payload: bool | list[str]) -> list[ScoredPayload]: ...

    def query_batch(
        self, queries: Sequence[HybridQuery], *, with_payload: Sequence[bool | list[str]]
    ) -> list[list[ScoredPayload]]:
        """Several queries in one call (the reranking stage's fused list and its two prefetch lists)."""

    def count(self) -> int: ...

    def optimize(self) -> bool:
        """Build what makes large indexes fast (HNSW, merged segments); True when something was done."""

    def close(self) -> None: ...


# A page of (point id, payload) pairs scrolled with a filter; None after the last page.
ScrollPage = Callable[[SearchFilters, object], tuple[list[tuple[object, Mapping[str, Any] | None]], object]]
SCROLL_PAGE = 1000
SOURCE_LOOKUP_BATCH = 64


def ids_by_source(sources: Sequence[str], scroll_page: ScrollPage) -> dict[str, set[str]]:
    """{source: {id, ...}} for the chunks each source has, ``SOURCE_LOOKUP_BATCH`` sources a filter, by
    scrolling with ``scroll_page(filters, offset) -> (records, next offset or None)`` (one per engine)."""
    found: dict[str, set[str]] = {}
    for start in range(0, len(sources), SOURCE_LOOKUP_BATCH):
        wanted = SearchFilters(sources=tuple(sources[start : start + SOURCE_LOOKUP_BATCH]))
        offset: object = None
        while True:
            records, offset = scroll_page(wanted, offset)
            for point_id, payload in records:
                found.setdefault(str((payload or {})["source"]), set()).add(str(point_id))
            if offset is None:
                break
    return found
