"""The fast embedded default: the local collection's vectors scored in-process with numpy.

Qdrant local mode scores a sparse query against every point in pure Python (about 2 s a hybrid query at
50,000 chunks). This scorer holds a copy of what the Qdrant folder holds (the folder stays the store of
record: the copy is loaded from it at start and updated by every ingest) and answers the same questions
the same way:

* dense: cosine on unit vectors, one matrix-vector product;
* BM25: an inverted index (token → rows, document weights); the query's weights are multiplied by
  Qdrant's IDF, ``ln((N - df + 0.5) / (df + 0.5) + 1)`` over the points that have a sparse vector, and
  accumulated token by token in ascending token order, in float64 then rounded to float32, as local
  mode's dot product does; points sharing no token are not candidates;
* filters: any of the given sources and any of the given tags, applied before the top-k (Qdrant
  propagates a query filter into every prefetch);
* fusion: :mod:`atlas.retrieval.fusion`, the formulas of local mode.

``tests/integration/test_inprocess_congruence.py`` checks the top-k against Qdrant's own ``query_points``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from atlas.retrieval.fusion import FusionMethod, RankedList, fuse


@dataclass(frozen=True)
class SparseVector:
    """BM25 document or query weights keyed by token hash (as fastembed's ``Qdrant/bm25`` makes them)."""

    indices: np.ndarray  # int64
    values: np.ndarray  # float64


@dataclass(frozen=True)
class StoredPoint:
    id: str
    dense: np.ndarray
    sparse: SparseVector | None
    source: str
    tags: tuple[str, ...]


class InProcessScorer:
    """Dense, BM25 and fused search over an in-memory copy of the collection (not thread-safe for writes)."""

    def __init__(self, dimension: int) -> None:
        self._dimension = dimension
        self._points: dict[str, StoredPoint] = {}
        self._ids_by_source: dict[str, set[str]] = {}
        self._built = False
        self._ids: list[str] = []
        self._matrix = np.zeros((0, dimension), dtype=np.float32)
        self._sources = np.zeros(0, dtype=np.int32)
        self._source_codes: dict[str, int] = {}
        self._tag_rows: dict[str, np.ndarray] = {}
        self._token_slot: dict[int, int] = {}
        self._posting_start = np.zeros(1, dtype=np.int64)
        self._posting_rows = np.zeros(0, dtype=np.int64)
        self._posting_values = np.zeros(0, dtype=np.float64)
        self._sparse_points = 0

    # ------------------------------------------------------------------ writes

    def upsert(self, points: Iterable[StoredPoint]) -> None:
        for point in points:
            self.remove([point.id])
            normalised = _unit(point.dense)
            self._points[point.id] = StoredPoint(point.id, normalised, point.sparse, point.source, point.tags)
            self._ids_by_source.setdefault(point.source, set()).add(point.id)
        self._built = False

    def remove(self, ids: Iterable[str]) -> None:
        for point_id in ids:
            point = self._points.pop(point_id, None)
            if point is None:
                continue
            siblings = self._ids_by_source.get(point.source)
            if siblings is not None:
                siblings.discard(point_id)
                if not siblings:
                    del self._ids_by_source[point.source]
            self._built = False

    def ids_for_source(self, source: str) -> set[str]:
        return set(self._ids_by_source.get(source, ()))

    def __len__(self) -> int:
        return len(self._points)

    def memory_bytes(self) -> int:
        """The arrays the scorer queries (not the Python objects it rebuilds them from)."""
        self._build()
        arrays = (self._matrix, self._sources, self._posting_start, self._posting_rows, self._posting_values)
        return sum(array.nbytes for array in arrays) + sum(rows.nbytes for rows in self._tag_rows.values())

    # ------------------------------------------------------------------ reads

    def dense(self, query: np.ndarray, limit: int, mask: np.ndarray | None) -> RankedList:
        self._build()
        if not self._ids:
            return _empty()
        scores = self._matrix @ _unit(query)
        candidates = np.arange(len(scores)) if mask is None else np.flatnonzero(mask)
        return _top(candidates, scores[candidates], limit)

    def sparse(self, query: SparseVector, limit: int, mask: np.ndarray | None) -> RankedList:
        self._build()
        if not self._ids or len(query.indices) == 0:
            return _empty()
        scores = np.zeros(len(self._ids), dtype=np.float64)
        touched = np.zeros(len(self._ids), dtype=bool)
        order = np.argsort(query.indices, kind="stable")
        for token, weight in zip(query.indices[order].tolist(), query.values[order].tolist(), strict=True):
            slot = self._token_slot.get(token)
            df = 0 if slot is None else int(self._posting_start[slot + 1] - self._posting_start[slot])
            idf_weight = weight * _qdrant_idf(df, self._sparse_points)
            if slot is None:
                continue
            begin, end = self._posting_start[slot], self._posting_start[slot + 1]
            rows = self._posting_rows[begin:end]
            scores[rows] += idf_weight * self._posting_values[begin:end]
            touched[rows] = True
        if mask is not None:
            touched &= mask
        candidates = np.flatnonzero(touched)
        return _top(candidates, scores[candidates].astype(np.float32), limit)

    def hybrid(
        self,
        dense_query: np.ndarray,
        sparse_query: SparseVector,
        *,
        limit: int,
        prefetch_limit: int,
        method: FusionMethod,
        rrf_k: int,
        mask: np.ndarray | None,
    ) -> RankedList:
        lists = [self.dense(dense_query, prefetch_limit, mask), self.sparse(sparse_query, prefetch_limit, mask)]
        return fuse(lists, method, limit, rrf_k=rrf_k)

    def filter_mask(self, sources: Sequence[str] | None, tags: Sequence[str] | None) -> np.ndarray | None:
        """Rows whose source is any of ``sources`` and that carry any of ``tags`` (None: no filter)."""
        if not sources and not tags:
            return None
        self._build()
        mask = np.ones(len(self._ids), dtype=bool)
        if sources:
            codes = [self._source_codes[s] for s in sources if s in self._source_codes]
            mask &= np.isin(self._sources, np.asarray(codes, dtype=np.int32))
        if tags:
            tagged = np.zeros(len(self._ids), dtype=bool)
            for tag in tags:
                rows = self._tag_rows.get(tag)
                if rows is not None:
                    tagged[rows] = True
            mask &= tagged
        return mask

    def point_id(self, row: int) -> str:
        return self._ids[row]

    def source_of(self, row: int) -> str:
        return self._points[self._ids[row]].source

    # ------------------------------------------------------------------ building

    def _build(self) -> None:
        """Rebuild the arrays after writes (once, at the next query): O(total postings), numpy only."""
        if self._built:
            return
        points = list(self._points.values())
        self._ids = [point.id for point in points]
        self._matrix = (
            np.vstack([point.dense for point in points]).astype(np.float32)
            if points
            else np.zeros((0, self._dimension), dtype=np.float32)
        )
        self._source_codes = {}
        self._sources = np.fromiter(
            (self._source_codes.setdefault(p.source, len(self._source_codes)) for p in points),
            dtype=np.int32,
            count=len(points),
        )
        tag_rows: dict[str, list[int]] = {}
        for row, point in enumerate(points):
            for tag in point.tags:
                tag_rows.setdefault(tag, []).append(row)
        self._tag_rows = {tag: np.asarray(rows, dtype=np.int64) for tag, rows in tag_rows.items()}
        self._build_postings(points)
        self._built = True

    def _build_postings(self, points: Sequence[StoredPoint]) -> None:
        with_sparse = [(row, p.sparse) for row, p in enumerate(points) if p.sparse is not None]
        self._sparse_points = len(with_sparse)
        if not with_sparse:
            self._token_slot, self._posting_start = {}, np.zeros(1, dtype=np.int64)
            self._posting_rows, self._posting_values = np.zeros(0, np.int64), np.zeros(0, np.float64)
            return
        tokens = np.concatenate([sparse.indices for _, sparse in with_sparse]).astype(np.int64)
        values = np.concatenate([sparse.values for _, sparse in with_sparse]).astype(np.float64)
        rows = np.concatenate([np.full(len(sparse.indices), row, dtype=np.int64) for row, sparse in with_sparse])
        unique_tokens, slots = np.unique(tokens, return_inverse=True)
        order = np.argsort(slots, kind="stable")
        counts = np.bincount(slots, minlength=len(unique_tokens))
        self._posting_start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._posting_rows = rows[order]
        self._posting_values = values[order]
        self._token_slot = {int(token): slot for slot, token in enumerate(unique_tokens.tolist())}


def _qdrant_idf(df: int, n: int) -> float:
    return math.log((n - df + 0.5) / (df + 0.5) + 1)


def _unit(vector: np.ndarray) -> np.ndarray:
    as_float = np.asarray(vector, dtype=np.float64)
    norm = np.linalg.norm(as_float)
    return (as_float / norm if norm > 1e-8 else as_float).astype(np.float32)


def _top(candidates: np.ndarray, scores: np.ndarray, limit: int) -> RankedList:
    if len(candidates) > limit:
        keep = np.argpartition(-scores, limit - 1)[:limit]
        candidates, scores = candidates[keep], scores[keep]
    order = np.argsort(-scores, kind="stable")
    return RankedList(candidates[order], scores[order])


def _empty() -> RankedList:
    return RankedList(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
