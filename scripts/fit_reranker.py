#!/usr/bin/env python3
"""Fit the reranking stage's logistic model on a BEIR data set's judged queries (a script, not a test).

    .venv/bin/python scripts/fit_reranker.py --data ../shared/data/scifact-train --split train \\
        [--index-dir DIR] [--out shared/atlas/retrieval/rerank_model.json]

The corpus is ingested through ``RetrievalService`` as the benchmark does (``--index-dir`` keeps the shard,
and a folder that already holds one is reused). For each judged query the engine's hybrid candidates and
both prefetch lists come from ``atlas.retrieval.rerank.fetch``, exactly as the service gets them; each of
the first ``--candidates`` fused chunks gets its feature row (``rerank.features``) and the label "its
document is judged relevant". A logistic regression with an L2 penalty (numpy, Newton's method on
standardised features, the intercept unpenalised) is fitted on every query, and ``--folds``-fold
cross-validation by query says how it ranks queries it was not fitted on: nDCG@10 of the engine's hybrid
order against the reranked order (a document ranks by its best chunk, the benchmark's rule). The model,
those numbers and a few feature rows with their probabilities (which ``tests/unit/test_rerank.py`` checks
inference reproduces) are written to ``--out``. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "shared"))
sys.path.insert(0, str(REPO / "scripts"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench_retrieval import RANK_DEPTH_CHUNKS, _ingest, _ndcg, _read_jsonl, _read_qrels  # noqa: E402

from atlas.config import RetrievalSettings  # noqa: E402
from atlas.retrieval import rerank  # noqa: E402
from atlas.retrieval.backend import ScoredPayload  # noqa: E402
from atlas.retrieval.service import IngestDocument, RetrievalService  # noqa: E402

DEFAULT_MODEL_DIR = REPO / ".atlas" / "models" / "all-MiniLM-L6-v2-int8"


def fit_logistic(rows: np.ndarray, labels: np.ndarray, *, l2: float, iterations: int = 100) -> tuple[np.ndarray, float]:
    """L2-penalised logistic regression by Newton's method on standardised features; returns the
    coefficients and intercept for the raw features."""
    mean, scale = _standardisation(rows)
    design = np.hstack([(rows - mean) / scale, np.ones((len(rows), 1))])
    penalty = l2 * np.diag(np.r_[np.ones(rows.shape[1]), 0.0])
    weights = np.zeros(design.shape[1])
    for _ in range(iterations):
        probabilities = 1.0 / (1.0 + np.exp(-design @ weights))
        gradient = design.T @ (probabilities - labels) + penalty @ weights
        hessian = (design * (probabilities * (1 - probabilities))[:, None]).T @ design + penalty
        step = np.linalg.solve(hessian, gradient)
        weights -= step
        if np.abs(step).max() < 1e-10:
            break
    coefficients = weights[:-1] / scale
    return coefficients, float(weights[-1] - (weights[:-1] * mean / scale).sum())


def fit_listwise(groups: Sequence[tuple[np.ndarray, np.ndarray]], *, l2: float, iterations: int = 100) -> np.ndarray:
    """Coefficients that order each group's rows (one query's candidates) by a softmax whose target is
    spread evenly over the group's positive rows (ListNet's top-one loss), L2-penalised on standardised
    features, by Newton's method; groups without a positive row teach nothing and are left out."""
    mean, scale = _standardisation(np.vstack([rows for rows, _ in groups]))
    taught = [((rows - mean) / scale, labels / labels.sum()) for rows, labels in groups if labels.sum() > 0]
    weights = np.zeros(len(mean))
    for _ in range(iterations):
        gradient = l2 * weights
        hessian = l2 * np.eye(len(weights))
        for design, target in taught:
            logits = design @ weights
            softmax = np.exp(logits - logits.max())
            softmax /= softmax.sum()
            gradient += design.T @ (softmax - target)
            expected = design.T @ softmax
            hessian += (design * softmax[:, None]).T @ design - np.outer(expected, expected)
        step = np.linalg.solve(hessian, gradient)
        weights -= step
        if np.abs(step).max() < 1e-10:
            break
    return weights / scale


def _standardisation(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, scale = rows.mean(axis=0), rows.std(axis=0)
    scale[scale == 0] = 1.0
    return mean, scale


class Query:
    """One judged query: its candidates' feature rows and labels, and the engine's ranking to depth."""

    def __init__(self, candidates: rerank.Candidates, ranking: list[ScoredPayload], relevant: dict[str, int]) -> None:
        self.head = [str(hit.payload["source"]) for hit in candidates.fused]
        self.head_ids = [hit.id for hit in candidates.fused]
        self.ranking = [(hit.id, str(hit.payload["source"])) for hit in ranking]
        self.rows = rerank.features(candidates, len(candidates.fused))
        self.labels = np.asarray([relevant.get(s, 0) > 0 for s in self.head], dtype=np.float64)
        self.relevant = relevant

    def ndcg(self, model: rerank.RerankModel | None) -> float:
        """nDCG@10 of the engine's ranking, or (with ``model``) of the reranked head followed by the rest."""
        if model is None:
            sources = [source for _, source in self.ranking]
        else:
            order = np.argsort(-model.probabilities(self.rows), kind="stable")
            scored = set(self.head_ids)
            sources = [self.head[i] for i in order] + [s for i, s in self.ranking if i not in scored]
        ranked: list[str] = []
        for source in sources:
            if source not in ranked:
                ranked.append(source)
        return _ndcg(ranked[:10], self.relevant)


def fit(queries: Sequence[Query], l2: float) -> rerank.RerankModel:
    """The order from the listwise fit; the scale and intercept that make its score a probability of
    relevance from a logistic fit of the labels on that score."""
    direction = fit_listwise([(q.rows, q.labels) for q in queries], l2=l2)
    scores = np.concatenate([q.rows @ direction for q in queries])
    (slope,), intercept = fit_logistic(scores[:, None], np.concatenate([q.labels for q in queries]), l2=0.0)
    return rerank.RerankModel(
        coefficients=tuple(round(float(c), 6) for c in direction * slope), intercept=round(intercept, 6)
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    corpus = _read_jsonl(args.data / "corpus.jsonl")
    texts = {str(q["_id"]): str(q["text"]) for q in _read_jsonl(args.data / "queries.jsonl")}
    qrels = _read_qrels(args.data / "qrels" / f"{args.split}.tsv")
    judged = [qid for qid in qrels if qid in texts]
    with tempfile.TemporaryDirectory(prefix="atlas-fit-") as work:
        folder = args.index_dir or Path(work) / "qdrant"
        settings = RetrievalSettings(
            qdrant_path=folder, embedding_model_dir=args.model_dir, query_cache_size=0, rerank=False
        )
        fresh = not folder.exists()
        service = RetrievalService(settings)
        index = service.index()
        if fresh:
            documents = [
                IngestDocument(
                    source=str(d["_id"]), text=str(d.get("text", "")), title=str(d.get("title") or "") or None
                )
                for d in corpus
            ]
            _ingest(service, documents, settings.max_ingest_documents)
        print(f"{index.count()} chunks, {len(judged)} judged queries ({args.split}); ranking {service.describe()}")
        queries = []
        for qid in judged:
            # the candidates as a search fetches them, and the engine's ranking as the benchmark ranks
            candidates, ranking = rerank.fetch(
                index.backend,
                index.query(texts[qid], top_k=args.candidates),
                with_payload=["source"],
                also=index.query(texts[qid], top_k=RANK_DEPTH_CHUNKS),
            )
            queries.append(Query(candidates, ranking, qrels[qid]))
        index.backend.close()
    model = fit(queries, args.l2)
    folds = [[q for n, q in enumerate(queries) if n % args.folds == fold] for fold in range(args.folds)]
    held_out = []
    for fold, tested in enumerate(folds):
        trained = [q for other, part in enumerate(folds) if other != fold for q in part]
        fold_model = fit(trained, args.l2)
        held_out.extend(q.ndcg(fold_model) for q in tested)
    result = {
        "data": args.data.name,
        "split": args.split,
        "queries": len(queries),
        "candidates": args.candidates,
        "l2": args.l2,
        "hybrid_ndcg_at_10": round(statistics.fmean(q.ndcg(None) for q in queries), 4),
        "reranked_ndcg_at_10": round(statistics.fmean(q.ndcg(model) for q in queries), 4),
        f"reranked_ndcg_at_10_cv{args.folds}": round(statistics.fmean(held_out), 4),
        "ranking": {key: value for key, value in service.describe().items() if key != "rerank"},
        "embedding_model": args.model_dir.name,
    }
    checks = queries[0].rows[:3]
    document = {
        "about": "The reranking stage's logistic model (atlas.retrieval.rerank), written by scripts/fit_reranker.py.",
        **model.as_dict(),
        "fitted": result,
        "checks": [
            {"features": row.tolist(), "probability": float(p)}
            for row, p in zip(checks, model.probabilities(checks), strict=True)
        ],
    }
    args.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({**result, **model.as_dict()}))
    return 0


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/")
    parser.add_argument("--split", default="train", help="the qrels file to fit on (qrels/SPLIT.tsv)")
    parser.add_argument("--index-dir", type=Path, help="keep the index in this folder (reused when it exists)")
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR, help="the embedding model folder")
    parser.add_argument(
        "--candidates",
        type=int,
        default=RetrievalSettings.model_fields["rerank_candidates"].default,
        help="fused candidates scored per query (ATLAS_RERANK_CANDIDATES)",
    )
    parser.add_argument("--l2", type=float, default=100.0, help="the L2 penalty on standardised coefficients")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds (by query)")
    parser.add_argument("--out", type=Path, default=rerank.MODEL_FILE, help="where to write the model")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
