"""The reranking and selection stage: its features, its cut, its fitted model, and how it uses the engine."""

import importlib.util
import json
import math
import sys

import numpy as np
import pytest

from atlas.retrieval import rerank
from atlas.retrieval.backend import HybridQuery, ScoredPayload
from stack import REPO


def hit(point_id: str, score: float, source: str = "") -> ScoredPayload:
    return ScoredPayload(point_id, score, {"source": source} if source else {})


def candidates() -> rerank.Candidates:
    return rerank.Candidates(
        fused=[hit("a1", 1.6, "a.md"), hit("b1", 1.2, "b.md"), hit("a2", 0.8, "a.md")],
        dense=[hit("a1", 0.6), hit("a2", 0.5), hit("x", 0.2)],
        bm25=[hit("b1", 8.0), hit("a1", 4.0)],
        depth=100,
    )


def test_features_read_both_retrievers_and_the_list():
    rows = rerank.features(candidates(), head=3)
    assert rows.shape == (3, len(rerank.FEATURES))
    named = [dict(zip(rerank.FEATURES, row, strict=True)) for row in rows]
    a1, b1, a2 = named
    assert a1["fused_relative"] == 1.0 and b1["fused_relative"] == pytest.approx(0.75)
    assert a1["dense"] == 0.6 and a1["dense_gap"] == 0.0 and a2["dense_gap"] == pytest.approx(0.1)
    assert b1["dense"] == 0.2 and b1["dense_rank"] == 1.0  # not in the dense list: its floor and the depth
    assert b1["bm25_relative"] == 1.0 and a1["bm25_relative"] == 0.5 and a2["bm25_relative"] == 0.0
    assert a1["dense_rank"] == 0.0 and a2["dense_rank"] == pytest.approx(math.log(2) / math.log(101))
    assert a2["bm25_rank"] == 1.0 and a2["fused_rank"] == pytest.approx(math.log(3) / math.log(101))
    assert a1["same_source"] == pytest.approx(math.log(2)) and b1["same_source"] == 0.0
    assert (a1["first_of_source"], b1["first_of_source"], a2["first_of_source"]) == (1.0, 1.0, 0.0)


def test_features_of_the_head_only_and_of_nothing():
    assert rerank.features(candidates(), head=2).shape == (2, len(rerank.FEATURES))
    empty = rerank.Candidates([], [], [], depth=100)
    assert rerank.features(empty, head=30).shape == (0, len(rerank.FEATURES))


def test_a_query_with_no_bm25_terms_has_no_bm25_evidence():
    only_dense = rerank.Candidates(fused=[hit("a1", 1.0, "a.md")], dense=[hit("a1", 0.7)], bm25=[], depth=100)
    row = dict(zip(rerank.FEATURES, rerank.features(only_dense, head=30)[0], strict=True))
    assert row["bm25_relative"] == 0.0 and row["bm25_rank"] == 1.0


@pytest.mark.parametrize(
    ("probabilities", "top_k", "min_relative", "kept"),
    [
        ([0.9, 0.8, 0.44, 0.2], 6, 0.5, 2),  # the tail below half the best is dropped
        ([0.9, 0.8, 0.45, 0.44], 6, 0.5, 3),  # at the floor is kept
        ([0.9] * 10, 6, 0.5, 6),  # never more than top_k
        ([0.05, 0.01], 6, 0.5, 1),  # the best is always kept, however weak
        ([0.9, 0.1], 6, 0.0, 2),  # no cut: top_k as before
        ([], 6, 0.5, 0),
    ],
)
def test_select_keeps_what_is_close_enough_to_the_best(probabilities, top_k, min_relative, kept):
    assert rerank.select(probabilities, top_k=top_k, min_relative=min_relative) == kept


def test_the_committed_model_reproduces_the_probabilities_it_was_fitted_with():
    document = json.loads(rerank.MODEL_FILE.read_text(encoding="utf-8"))
    model = rerank.load_model()
    assert model.features == rerank.FEATURES and document["checks"]
    for check in document["checks"]:
        row = np.asarray([check["features"]])
        assert model.probabilities(row)[0] == pytest.approx(check["probability"], abs=1e-6)
    fitted = document["fitted"]
    assert fitted["reranked_ndcg_at_10"] > fitted["hybrid_ndcg_at_10"]


def test_a_model_for_other_features_is_refused():
    with pytest.raises(ValueError, match="one coefficient for each"):
        rerank.RerankModel(coefficients=(1.0,), intercept=0.0, features=("dense",))


class CannedBackend:
    """Answers a batch with canned fused, dense and BM25 lists, and remembers what it was asked."""

    def __init__(self, fused, dense, bm25, deeper=()):
        self.answers = [fused, dense, bm25, list(deeper)]
        self.asked: list[HybridQuery] = []

    def query_batch(self, queries, *, with_payload):
        self.asked = list(queries)
        return [list(answer) for answer in self.answers[: len(queries)]]


def dense_only_model() -> rerank.RerankModel:
    """Probability rises with the dense cosine alone: easy to reason about."""
    coefficients = tuple(10.0 if name == "dense" else 0.0 for name in rerank.FEATURES)
    return rerank.RerankModel(coefficients=coefficients, intercept=-5.0)


def query(limit: int) -> HybridQuery:
    return HybridQuery(dense=[1.0, 0.0], sparse=None, limit=limit, prefetch_limit=100)


def test_a_search_is_reordered_by_probability_and_its_weak_tail_dropped():
    backend = CannedBackend(
        fused=[hit("b1", 1.6, "b.md"), hit("a1", 1.5, "a.md"), hit("c1", 1.4, "c.md")],
        dense=[hit("a1", 0.7), hit("b1", 0.6), hit("c1", 0.1)],
        bm25=[],
    )
    reranker = rerank.Reranker(rerank.Reranking(candidates=30, min_relative=0.5), dense_only_model())
    kept = reranker.query(backend, query(limit=6), with_payload=True, cut=True)
    assert [h.id for h in kept] == ["a1", "b1"]  # c1's probability is far below a1's
    assert kept[0].score > kept[1].score and 0 < kept[1].score < 1
    fused, dense, bm25 = backend.asked
    assert fused.limit == 30 and dense.sparse is None and dense.limit == 100 and bm25.dense is None


def test_a_ranking_is_not_cut_and_goes_on_in_the_engines_order():
    head = [hit("b1", 1.6, "b.md"), hit("a1", 1.5, "a.md")]
    deeper = [*head, hit("c1", 1.4, "c.md"), hit("d1", 1.3, "d.md")]
    backend = CannedBackend(head, [hit("a1", 0.7), hit("b1", 0.6)], [], deeper)
    reranker = rerank.Reranker(rerank.Reranking(candidates=2, min_relative=0.9), dense_only_model())
    ranked = reranker.query(backend, query(limit=4), with_payload=["source"], cut=False)
    assert [h.id for h in ranked] == ["a1", "b1", "c1", "d1"]
    assert [q.limit for q in backend.asked] == [2, 100, 100, 4]


def test_the_fit_recovers_a_known_logistic_relation():
    spec = importlib.util.spec_from_file_location("fit_reranker", REPO / "scripts" / "fit_reranker.py")
    fit_reranker = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = fit_reranker
    spec.loader.exec_module(fit_reranker)
    rng = np.random.default_rng(3)
    rows = rng.normal(size=(20000, 2)) * [1.0, 3.0] + [0.5, -1.0]
    truth = 1 / (1 + np.exp(-(rows @ [2.0, -0.5] + 0.3)))
    labels = (rng.random(len(rows)) < truth).astype(float)
    coefficients, intercept = fit_reranker.fit_logistic(rows, labels, l2=0.0)
    assert coefficients == pytest.approx([2.0, -0.5], abs=0.1) and intercept == pytest.approx(0.3, abs=0.1)


def test_the_stages_defaults_are_the_settings_defaults():
    from atlas.config import RetrievalSettings

    fields = RetrievalSettings.model_fields
    defaults = rerank.Reranking()
    assert fields["rerank"].default is defaults.enabled is True
    assert fields["rerank_candidates"].default == defaults.candidates
    assert fields["rerank_min_relative"].default == defaults.min_relative
