"""The in-process fusion gives the scores and order of qdrant_client's own local-mode fusion."""

import numpy as np
import pytest
from qdrant_client.http import models
from qdrant_client.hybrid.fusion import distribution_based_score_fusion, reciprocal_rank_fusion

from atlas.retrieval.fusion import RankedList, fuse


def _lists(seed: int) -> list[RankedList]:
    rng = np.random.default_rng(seed)
    lists = []
    for size in (rng.integers(1, 40), rng.integers(1, 40)):
        rows = rng.choice(60, size=size, replace=False)
        scores = np.sort(rng.random(size).astype(np.float32))[::-1]
        if seed % 3 == 0:
            scores[: size // 2] = scores[0]  # ties
        lists.append(RankedList(rows.astype(np.int64), scores))
    return lists


def _reference(lists: list[RankedList], method: str, limit: int, k: int) -> list[tuple[int, float]]:
    responses = [
        [
            models.ScoredPoint(id=int(r), version=0, score=float(s))
            for r, s in zip(ranked.rows, ranked.scores, strict=True)
        ]
        for ranked in lists
    ]
    if method == "rrf":
        fused = reciprocal_rank_fusion(responses, limit=limit, ranking_constant_k=k)
    else:
        fused = distribution_based_score_fusion(responses, limit=limit)
    return [(int(p.id), p.score) for p in fused]


@pytest.mark.parametrize("method", ["rrf", "dbsf"])
@pytest.mark.parametrize("seed", range(12))
def test_fusion_matches_qdrant_local_mode_exactly(method, seed):
    lists = _lists(seed)
    ours = fuse(lists, method, 10, rrf_k=2 + seed % 3)
    assert list(zip(ours.rows.tolist(), ours.scores.tolist(), strict=True)) == _reference(
        lists, method, 10, 2 + seed % 3
    )
