"""Rank fusion for the in-process scorer, formula for formula the one Qdrant's local mode applies.

Both functions take the prefetch results in prefetch order (each a ranked list of ``(row, score)``)
and return fused ``(row, score)`` pairs, best first. They mirror ``qdrant_client.hybrid.fusion``:

* RRF: a point at 0-based position ``p`` of a list with weight ``w`` scores ``1 / ((p + 1) / w + k - 1)``,
  summed over the lists (local mode's default ``k`` is 2).
* DBSF: each list's scores are mapped through ``(s - (mean - 3σ)) / 6σ`` (σ the sample standard
  deviation; 0.5 for a list of one or with no spread), then summed over the lists.

Ties keep the order in which points were first seen, list by list, as Python's stable sort does there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

FusionMethod = Literal["rrf", "dbsf"]
QDRANT_DEFAULT_RRF_K = 2


class RankedList:
    """One prefetch result: rows (positions in the scorer's arrays) and their scores, best first."""

    __slots__ = ("rows", "scores")

    def __init__(self, rows: np.ndarray, scores: np.ndarray) -> None:
        self.rows = rows
        self.scores = scores

    def __len__(self) -> int:
        return len(self.rows)


def fuse(
    lists: Sequence[RankedList],
    method: FusionMethod,
    limit: int,
    *,
    rrf_k: int = QDRANT_DEFAULT_RRF_K,
) -> RankedList:
    if method == "rrf":
        contributions = [_rrf_scores(len(ranked), rrf_k) for ranked in lists]
    else:
        contributions = [_dbsf_scores(ranked.scores) for ranked in lists]
    return _sum_and_rank(lists, contributions, limit)


def _rrf_scores(length: int, k: int) -> np.ndarray:
    positions = np.arange(length, dtype=np.float64)
    return 1.0 / ((positions + 1.0) / 1.0 + k - 1.0)


def _dbsf_scores(scores: np.ndarray) -> np.ndarray:
    values = scores.astype(np.float64)
    if len(values) == 1:
        return np.full(1, 0.5)
    if len(values) == 0:
        return values
    mean = sum(values.tolist()) / len(values)
    variance = sum((value - mean) ** 2 for value in values.tolist()) / (len(values) - 1)
    if variance == 0:
        return np.full(len(values), 0.5)
    std = variance**0.5
    low, high = mean - 3 * std, mean + 3 * std
    return (values - low) / (high - low)


def _sum_and_rank(lists: Sequence[RankedList], contributions: Sequence[np.ndarray], limit: int) -> RankedList:
    # Accumulate list by list, in first-seen order, exactly as the reference does with a dict.
    totals: dict[int, float] = {}
    for ranked, scores in zip(lists, contributions, strict=True):
        for row, score in zip(ranked.rows.tolist(), scores.tolist(), strict=True):
            totals[row] = totals.get(row, 0.0) + score
    ordered = sorted(totals.items(), key=lambda item: item[1], reverse=True)[:limit]
    rows = np.fromiter((row for row, _ in ordered), dtype=np.int64, count=len(ordered))
    fused = np.fromiter((score for _, score in ordered), dtype=np.float64, count=len(ordered))
    return RankedList(rows, fused)
