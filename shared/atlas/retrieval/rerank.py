"""The reranking and selection stage: which of the engine's hybrid candidates reach the LLM, and how many.

The engine retrieves and fuses (a dense and a BM25 prefetch, DBSF); this stage only reads the evidence.
One batch of three engine queries gives the fused candidates and the two prefetch lists they were fused
from; each of the first ``candidates`` fused hits gets a feature row (its fused score, its dense cosine and
BM25 score and ranks, how far it is from the best of each list, how many candidates share its source), a
logistic model fitted on SciFact's training split (``scripts/fit_reranker.py``, coefficients in
``rerank_model.json``) turns the row into a probability of relevance, and the candidates are reordered by
it. :func:`select` then keeps those whose probability is at least ``min_relative`` of the best one, up to
``top_k``: a weak tail is dropped rather than padded. docs/retrieval.md says how each choice was measured.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from atlas.retrieval.backend import HybridQuery, IndexBackend, ScoredPayload

MODEL_FILE = Path(__file__).with_name("rerank_model.json")
FEATURES = (
    "fused_relative",  # fused score / the best fused score
    "fused",  # the engine's fused (DBSF) score
    "dense",  # cosine with the query; not in the dense prefetch: that list's lowest cosine
    "dense_gap",  # the best cosine of the dense prefetch minus this one's
    "bm25_relative",  # BM25 score / the best BM25 score; 0 when not in the BM25 prefetch
    "dense_rank",  # log(1 + rank) / log(1 + depth); not in the prefetch: rank = depth
    "bm25_rank",
    "fused_rank",
    "same_source",  # log of how many of the scored candidates come from this candidate's source
    "first_of_source",  # 1 for the best-placed candidate of its source, else 0
)


@dataclass(frozen=True)
class Reranking:
    """The stage's settings (``ATLAS_RERANK``, ``ATLAS_RERANK_CANDIDATES``, ``ATLAS_RERANK_MIN_RELATIVE``)."""

    enabled: bool = True
    candidates: int = 30
    min_relative: float = 0.15


@dataclass(frozen=True)
class RerankModel:
    """A logistic model over :data:`FEATURES`: probability = sigmoid(features · coefficients + intercept)."""

    coefficients: tuple[float, ...]
    intercept: float
    features: tuple[str, ...] = FEATURES

    def __post_init__(self) -> None:
        if self.features != FEATURES or len(self.coefficients) != len(FEATURES):
            raise ValueError(f"a rerank model needs one coefficient for each of {FEATURES}; got {self.features}")

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        logits = rows @ np.asarray(self.coefficients) + self.intercept
        return np.asarray(1.0 / (1.0 + np.exp(-logits)), dtype=np.float64)

    def as_dict(self) -> dict[str, Any]:
        return {"features": list(self.features), "coefficients": list(self.coefficients), "intercept": self.intercept}


def load_model(path: Path = MODEL_FILE) -> RerankModel:
    data = json.loads(path.read_text(encoding="utf-8"))
    return RerankModel(
        coefficients=tuple(float(c) for c in data["coefficients"]),
        intercept=float(data["intercept"]),
        features=tuple(data["features"]),
    )


@dataclass(frozen=True)
class Candidates:
    """What the engine answered for one hybrid query: the fused hits and the two prefetch lists."""

    fused: list[ScoredPayload]
    dense: list[ScoredPayload]
    bm25: list[ScoredPayload]
    depth: int  # the prefetch limit: a candidate missing from a list ranks here


def fetch(
    backend: IndexBackend, query: HybridQuery, *, with_payload: bool | list[str], also: HybridQuery | None = None
) -> tuple[Candidates, list[ScoredPayload]]:
    """One batch: the fused query as asked, each prefetch alone (ids and scores only), and ``also``
    (another fused query, for the tail of a deeper ranking), whose hits come second (empty without it)."""
    depth = max(query.prefetch_limit, query.limit)
    dense = dataclasses.replace(query, sparse=None, limit=depth)
    bm25 = dataclasses.replace(query, dense=None, limit=depth)
    asked = [query, dense, bm25, *([also] if also is not None else [])]
    answers = backend.query_batch(asked, with_payload=[with_payload, False, False, with_payload][: len(asked)])
    candidates = Candidates(answers[0], answers[1] if query.dense is not None else [], answers[2], depth)
    return candidates, answers[3] if also is not None else []


def features(candidates: Candidates, head: int) -> np.ndarray:
    """One row of :data:`FEATURES` for each of the first ``head`` fused candidates."""
    fused = candidates.fused[:head]
    if not fused:
        return np.zeros((0, len(FEATURES)))
    dense = {hit.id: (rank, hit.score) for rank, hit in enumerate(candidates.dense)}
    bm25 = {hit.id: (rank, hit.score) for rank, hit in enumerate(candidates.bm25)}
    dense_best = candidates.dense[0].score if candidates.dense else 0.0
    dense_floor = candidates.dense[-1].score if candidates.dense else 0.0
    bm25_best = candidates.bm25[0].score if candidates.bm25 else 0.0
    fused_best = fused[0].score
    depth = candidates.depth
    sources = [str(hit.payload.get("source", "")) for hit in fused]
    per_source = {source: sources.count(source) for source in set(sources)}
    seen: set[str] = set()
    rows = []
    for rank, (hit, source) in enumerate(zip(fused, sources, strict=True)):
        dense_rank, cosine = dense.get(hit.id, (depth, dense_floor))
        bm25_rank, bm25_score = bm25.get(hit.id, (depth, 0.0))
        rows.append(
            (
                hit.score / fused_best if fused_best > 0 else 1.0,
                hit.score,
                cosine,
                dense_best - cosine,
                bm25_score / bm25_best if bm25_best > 0 else 0.0,
                _log_rank(dense_rank, depth),
                _log_rank(bm25_rank, depth),
                _log_rank(rank, depth),
                math.log(per_source[source]),
                float(source not in seen),
            )
        )
        seen.add(source)
    return np.asarray(rows, dtype=np.float64)


def _log_rank(rank: int, depth: int) -> float:
    return math.log1p(rank) / math.log1p(depth)


def select(probabilities: Sequence[float], *, top_k: int, min_relative: float) -> int:
    """How many of the candidates (sorted by probability, best first) to keep: those at least
    ``min_relative`` of the best, at most ``top_k``, and always the best one."""
    if not len(probabilities):
        return 0
    floor = min_relative * probabilities[0]
    kept = 1
    while kept < min(top_k, len(probabilities)) and probabilities[kept] >= floor:
        kept += 1
    return kept


class Reranker:
    """The stage over one backend: fetch, score, reorder, and (for a search) select."""

    def __init__(self, settings: Reranking, model: RerankModel | None = None) -> None:
        self.settings = settings
        self.model = model or load_model()

    def query(
        self, backend: IndexBackend, query: HybridQuery, *, with_payload: bool | list[str], cut: bool
    ) -> list[ScoredPayload]:
        """The hits for ``query`` reranked: the scored candidates by probability (their score). ``cut``: keep
        what :func:`select` keeps (a search); else follow them with the rest of ``query.limit`` in the
        engine's order (a ranking, scored as a search would score its candidates)."""
        head = max(self.settings.candidates, query.limit) if cut else self.settings.candidates
        deeper = query if not cut and query.limit > head else None
        candidates, tail = fetch(
            backend, dataclasses.replace(query, limit=head), with_payload=with_payload, also=deeper
        )
        probabilities = self.model.probabilities(features(candidates, head))
        order = np.argsort(-probabilities, kind="stable")
        ranked = [dataclasses.replace(candidates.fused[i], score=float(probabilities[i])) for i in order]
        if cut:
            kept = select([hit.score for hit in ranked], top_k=query.limit, min_relative=self.settings.min_relative)
            return ranked[:kept]
        scored = {hit.id for hit in ranked}
        return (ranked + [hit for hit in tail if hit.id not in scored])[: query.limit]
