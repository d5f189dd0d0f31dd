#!/usr/bin/env python3
"""Benchmark retrieval quality and speed on a BEIR-layout data set (a script, not a test).

    .venv/bin/python scripts/bench_retrieval.py --data ../shared/data/scifact-train --split train [--scale 50000]

DIR holds ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/SPLIT.tsv``. The corpus goes through the
production path (``RetrievalService.ingest``: chunking, embedding, BM25, upserts into a fresh Qdrant
Qdrant Edge shard), each judged query is ranked in hybrid, dense and BM25 mode (a document ranks by its best chunk),
hybrid both with the reranking stage (as configured, ``ATLAS_RERANK``) and without it (the engine's order), and
``selected_*`` says what a search of top 10 keeps after the stage's cut. The query latency is measured through
``RetrievalService.search`` (top 10, cache off), with and without the stage, alternating per query. The bare
embedding rate is the same model embedding the same chunk texts, in the same batches, without the rest
(on an evenly spaced sample of ``--embed-sample`` chunks, converted to documents per second with the
corpus's chunks per document; 0 embeds them all).

``--scale N [N ...]`` then grows the index with synthetic chunks to each size in turn (text of shuffled
corpus words; dense vectors mixed from the corpus's own vectors, since embedding N texts would take the
model hours), lets the engine optimize (HNSW), and measures hybrid latency of the index alone (query vectors
given) and through ``RetrievalService.search`` (query embedding included), build and optimize times and
resident memory. The last line printed is one JSON object with every number; its ``scale`` list has one
entry per size: ``chunks, index_p50_ms, index_p95_ms, service_p50_ms, service_p95_ms,
service_no_rerank_p50_ms, service_no_rerank_p95_ms, build_s, optimize_s, rss_mb``.

``--reuse-index DIR`` starts from a copy of a folder where this corpus was already ingested (for example by
``fit_reranker.py --index-dir``) and skips ingestion and its timing; ``--latency-rounds N`` times N passes
over the queries (the stage's overhead is small beside the noise of a shared machine).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "shared"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from atlas.config import RetrievalSettings  # noqa: E402
from atlas.retrieval.backend import IndexPoint  # noqa: E402
from atlas.retrieval.chunking import chunk_markdown  # noqa: E402
from atlas.retrieval.embedder import Embedder  # noqa: E402
from atlas.retrieval.index import EMBED_BATCH, KnowledgeIndex, SearchMode  # noqa: E402
from atlas.retrieval.service import IngestDocument, IngestRequest, RetrievalService, SearchRequest  # noqa: E402

RANK_DEPTH_CHUNKS = 400  # enough chunks to fill 100 distinct documents
DEFAULT_MODEL_DIR = REPO / ".atlas" / "models" / "all-MiniLM-L6-v2-int8"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    corpus = _read_jsonl(args.data / "corpus.jsonl")[: args.corpus_limit or None]
    queries = {str(q["_id"]): str(q["text"]) for q in _read_jsonl(args.data / "queries.jsonl")}
    qrels = _read_qrels(args.data / "qrels" / f"{args.split}.tsv")
    judged = [qid for qid in qrels if qid in queries][: args.max_queries or None]
    print(f"{len(corpus)} documents, {len(judged)} judged queries ({args.split}), model {args.model_dir}")

    with tempfile.TemporaryDirectory(prefix="atlas-bench-") as work:
        if args.reuse_index:  # a copy: scaling adds synthetic chunks, and the folder stays as it was
            shutil.copytree(args.reuse_index, Path(work) / "qdrant")
        settings = RetrievalSettings(
            qdrant_path=Path(work) / "qdrant",
            embedding_model_dir=args.model_dir,
            fusion=args.fusion,
            prefetch_limit=args.prefetch_limit,
            rrf_k=args.rrf_k,
            chunk_max_chars=args.chunk_max_chars,
            chunk_overlap_chars=args.chunk_overlap_chars,
            query_cache_size=0,
        )
        service = RetrievalService(settings)
        index = service.index()
        print(f"ranking: {service.describe()}")
        documents = [
            IngestDocument(source=str(d["_id"]), text=str(d.get("text", "")), title=str(d.get("title") or "") or None)
            for d in corpus
        ]
        texts = [
            chunk.embedding_text()
            for d in documents
            for chunk in chunk_markdown(
                d.source, d.text, title=d.title, max_chars=args.chunk_max_chars, overlap_chars=args.chunk_overlap_chars
            )
        ]
        result: dict[str, object] = {"split": args.split, "model_dir": str(args.model_dir), **service.describe()}
        if args.reuse_index:
            chunks = index.count()
            print(f"{chunks} chunks, reused from {args.reuse_index} (ingestion not measured)")
        else:
            sample = texts[:: max(1, len(texts) // args.embed_sample)] if args.embed_sample else texts
            # the same model object; seconds for the whole corpus at the sample's rate
            embed_s = _bare_embedding_seconds(index._embedder, sample) * len(texts) / len(sample)  # noqa: SLF001
            ingest_s, chunks = _ingest(service, documents, settings.max_ingest_documents)
            print(f"{chunks} chunks; bare embedding {embed_s:.1f} s (from {len(sample)}), ingestion {ingest_s:.1f} s")
            result.update(
                ingest_docs_per_s=round(len(documents) / ingest_s, 2),
                embed_docs_per_s=round(len(documents) / embed_s, 2),
                ingest_over_embed=round(embed_s / ingest_s, 3),
            )
        for mode in ("hybrid", "dense", "bm25"):
            ndcg, recall = _evaluate(index, mode, [(queries[q], qrels[q]) for q in judged])
            prefix = "" if mode == "hybrid" else f"{mode}_"
            result[f"{prefix}ndcg_at_10"] = round(ndcg, 4)
            result[f"{prefix}recall_at_100"] = round(recall, 4)
            print(f"{mode:>6}: nDCG@10 {ndcg:.4f}  recall@100 {recall:.4f}")
        configured, reranker = index.ranking, index.reranker
        index.reranker = None  # the engine alone
        for fusion in ("rrf", "dbsf"):  # both fusions on the same index, for choosing the default
            index.ranking = dataclasses.replace(configured, fusion=fusion)
            ndcg, _ = _evaluate(index, "hybrid", [(queries[q], qrels[q]) for q in judged])
            result[f"{fusion}_ndcg_at_10"] = round(ndcg, 4)
            print(f"hybrid with {fusion} (no reranking): nDCG@10 {ndcg:.4f}")
        index.ranking, index.reranker = configured, reranker
        if reranker is not None:
            selected = [_selected(service, queries[q], qrels[q]) for q in judged]
            result["selected_ndcg_at_10"] = round(statistics.fmean(n for n, _ in selected), 4)
            result["selected_mean_sources"] = round(statistics.fmean(k for _, k in selected), 2)
            print(
                f"search top 10 after the cut: nDCG@10 {result['selected_ndcg_at_10']}, "
                f"{result['selected_mean_sources']} chunks a query"
            )
        latencies, without = _timed_searches(service, [queries[q] for q in judged], args.latency_rounds)
        result.update(
            query_p50_ms=round(_percentile(latencies, 50), 2),
            query_p95_ms=round(_percentile(latencies, 95), 2),
            query_no_rerank_p50_ms=round(_percentile(without, 50), 2),
            query_no_rerank_p95_ms=round(_percentile(without, 95), 2),
            documents=len(documents),
            chunks=chunks,
        )
        print(
            f"query (top 10, through the service) p50 {result['query_p50_ms']} ms, p95 {result['query_p95_ms']} ms; "
            f"without reranking p50 {result['query_no_rerank_p50_ms']} ms, p95 {result['query_no_rerank_p95_ms']} ms"
        )
        if args.scale:
            judged_texts = [queries[q] for q in judged]
            result["scale"] = _scale(service, index, args.scale, corpus, judged_texts, args.latency_rounds)
        result["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result))
    return 0


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/")
    parser.add_argument("--split", required=True, help="the qrels file to use (qrels/SPLIT.tsv)")
    parser.add_argument(
        "--scale",
        type=int,
        nargs="*",
        default=[],
        help="grow the index with synthetic chunks to each N in turn (e.g. 50000 200000) and time hybrid search",
    )
    parser.add_argument(
        "--model-dir", type=Path, default=Path(os.environ.get("ATLAS_EMBEDDING_MODEL_DIR") or DEFAULT_MODEL_DIR)
    )
    parser.add_argument("--fusion", choices=("rrf", "dbsf"), default=RetrievalSettings.model_fields["fusion"].default)
    parser.add_argument("--prefetch-limit", type=int, default=RetrievalSettings.model_fields["prefetch_limit"].default)
    parser.add_argument("--rrf-k", type=int, default=RetrievalSettings.model_fields["rrf_k"].default)
    parser.add_argument(
        "--chunk-max-chars", type=int, default=RetrievalSettings.model_fields["chunk_max_chars"].default
    )
    parser.add_argument(
        "--chunk-overlap-chars", type=int, default=RetrievalSettings.model_fields["chunk_overlap_chars"].default
    )
    parser.add_argument("--max-queries", type=int, default=0, help="only the first N judged queries (0: all)")
    parser.add_argument(
        "--reuse-index",
        type=Path,
        help="a folder with this corpus already ingested (fit_reranker.py --index-dir's): used as a copy, not timed",
    )
    parser.add_argument(
        "--latency-rounds", type=int, default=1, help="passes over the queries when timing searches (default 1)"
    )
    parser.add_argument(
        "--corpus-limit",
        type=int,
        default=0,
        help="ingest only the first N documents (0: all); for --scale runs, whose quality lines then mean nothing",
    )
    parser.add_argument("--embed-sample", type=int, default=1500, help="chunks timed for the bare rate (0: all)")
    return parser.parse_args(argv)


def _read_jsonl(path: Path) -> list[dict[str, object]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 3 or parts[2] == "score":
                continue
            qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    return qrels


def _bare_embedding_seconds(embedder: Embedder, texts: list[str]) -> float:
    started = time.perf_counter()
    for start in range(0, len(texts), EMBED_BATCH):
        embedder.embed_documents(texts[start : start + EMBED_BATCH])
    return time.perf_counter() - started


def _ingest(service: RetrievalService, documents: list[IngestDocument], batch: int) -> tuple[float, int]:
    chunks = 0
    started = time.perf_counter()
    with tqdm(total=len(documents), unit="doc", desc="ingest", file=sys.stderr) as bar:
        for start in range(0, len(documents), batch):
            part = documents[start : start + batch]
            chunks += int(service.ingest(IngestRequest(documents=part))["chunks"])
            bar.update(len(part))
    return time.perf_counter() - started, chunks


def _evaluate(index: KnowledgeIndex, mode: SearchMode, judged: list[tuple[str, dict[str, int]]]) -> tuple[float, float]:
    ndcgs, recalls = [], []
    for text, relevant in judged:
        ranked: list[str] = []
        for hit in index.rank(text, top_k=RANK_DEPTH_CHUNKS, mode=mode):
            if hit.source not in ranked:  # a document ranks by its best chunk
                ranked.append(hit.source)
        ndcgs.append(_ndcg(ranked[:10], relevant))
        positive = {doc for doc, gain in relevant.items() if gain > 0}
        recalls.append(len(positive & set(ranked[:100])) / max(1, len(positive)))
    return statistics.fmean(ndcgs), statistics.fmean(recalls)


def _ndcg(ranked: list[str], relevant: dict[str, int]) -> float:
    dcg = sum(relevant.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked))
    ideal = sorted(relevant.values(), reverse=True)[: len(ranked) or 10]
    idcg = sum(gain / math.log2(i + 2) for i, gain in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def _timed_search(service: RetrievalService, query: str) -> float:
    started = time.perf_counter()
    service.search(SearchRequest(query=query, top_k=10))
    return (time.perf_counter() - started) * 1000


def _timed_searches(service: RetrievalService, queries: list[str], rounds: int = 1) -> tuple[list[float], list[float]]:
    """Search latencies as configured and with the reranking stage off, alternating which goes first, so
    that both see the same machine (others share it); ``rounds`` passes over the queries."""
    index = service.index()
    reranker = index.reranker
    configured: list[float] = []
    without: list[float] = []
    try:
        for n, query in enumerate(queries * rounds):
            for turn in (0, 1) if n % 2 else (1, 0):
                index.reranker = reranker if turn == 0 else None
                (configured if turn == 0 else without).append(_timed_search(service, query))
    finally:
        index.reranker = reranker
    return configured, without


def _selected(service: RetrievalService, query: str, relevant: dict[str, int]) -> tuple[float, int]:
    """nDCG@10 of the documents a top-10 search returns after the stage's cut, and how many chunks it kept."""
    hits = service.search(SearchRequest(query=query, top_k=10))["results"]
    ranked: list[str] = []
    for hit in hits:
        if hit["source"] not in ranked:
            ranked.append(hit["source"])
    return _ndcg(ranked, relevant), len(hits)


def _percentile(values: list[float], percent: float) -> float:
    return float(np.percentile(np.asarray(values), percent))


def _rss_mb() -> float:
    """Resident memory now (not the peak), from /proc."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def _scale(
    service: RetrievalService,
    index: KnowledgeIndex,
    sizes: list[int],
    corpus: list[dict[str, object]],
    queries: list[str],
    rounds: int = 1,
) -> list[dict[str, object]]:
    """Grow the served index with synthetic chunks to each size in turn and time hybrid search there.

    Texts are shuffled corpus words (BM25-encoded for real); dense vectors are random mixtures of real chunk
    vectors, because embedding a million texts would take the model about a day on two cores. Queries are
    the real judged queries, embedded by the real model."""
    rng = random.Random(11)
    nprng = np.random.default_rng(7)
    words = [w for d in corpus[:2000] for w in str(d.get("text", "")).split()]
    sample = [str(d.get("text", ""))[:1000] for d in corpus[:: max(1, len(corpus) // 1000)]]
    basis = index._embedder.embed_documents(sample)  # noqa: SLF001 - the corpus's own vectors, to mix from
    prepared = [index.query(q, top_k=10) for q in queries]  # query vectors given: the index alone
    backend = index.backend
    results: list[dict[str, object]] = []
    added, build_s = 0, 0.0
    for size in sorted(sizes):
        started = time.perf_counter()
        with tqdm(total=size - added, unit="chunk", desc=f"scale to {size}", file=sys.stderr) as bar:
            while added < size:
                batch = min(2000, size - added)
                texts = [" ".join(rng.choices(words, k=rng.randint(40, 140))) for _ in range(batch)]
                picks = nprng.integers(0, len(basis), size=(batch, 3))
                weights = nprng.dirichlet(np.ones(3), size=batch).astype(np.float32)
                dense = np.einsum("nk,nkd->nd", weights, basis[picks])
                sparse = index._bm25.encode_documents(texts)  # noqa: SLF001
                backend.upsert(
                    [
                        IndexPoint(
                            f"00000000-0000-4000-8000-{added + n:012d}",
                            vector,
                            weights_ if len(weights_) else None,
                            {"source": f"synthetic/{added + n}", "title": "synthetic", "section": "", "text": text},
                        )
                        for n, (text, vector, weights_) in enumerate(zip(texts, dense, sparse, strict=True))
                    ]
                )
                added += batch
                bar.update(batch)
        build_s += time.perf_counter() - started
        started = time.perf_counter()
        print(f"optimize() at {added} synthetic chunks (HNSW) ...", file=sys.stderr, flush=True)
        index.optimize()
        optimize_s = time.perf_counter() - started
        service.cache.clear()
        for query in prepared[:20]:  # warm the page cache
            backend.query(query, with_payload=True)
        _timed_searches(service, queries)  # and every path a search takes, with and without the stage (untimed)
        index_ms = []
        for query in prepared:
            started = time.perf_counter()
            backend.query(query, with_payload=True)
            index_ms.append((time.perf_counter() - started) * 1000)
        service_ms, without_ms = _timed_searches(service, queries, rounds)
        line: dict[str, object] = {
            "chunks": index.count(),
            "index_p50_ms": round(_percentile(index_ms, 50), 2),
            "index_p95_ms": round(_percentile(index_ms, 95), 2),
            "service_p50_ms": round(_percentile(service_ms, 50), 2),
            "service_p95_ms": round(_percentile(service_ms, 95), 2),
            "service_no_rerank_p50_ms": round(_percentile(without_ms, 50), 2),
            "service_no_rerank_p95_ms": round(_percentile(without_ms, 95), 2),
            "build_s": round(build_s, 1),
            "optimize_s": round(optimize_s, 1),
            "rss_mb": round(_rss_mb(), 1),
        }
        print(f"scale: {json.dumps(line)}", flush=True)
        results.append(line)
    return results


if __name__ == "__main__":
    sys.exit(main())
