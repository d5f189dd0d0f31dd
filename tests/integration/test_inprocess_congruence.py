"""Congruence: the in-process scorer (the embedded default) ranks exactly as Qdrant local mode's query_points.

A generated corpus of about two thousand chunks goes into one Qdrant folder; the same questions are asked of
``KnowledgeIndex(scoring="inprocess")`` and ``KnowledgeIndex(scoring="qdrant")`` (Qdrant's own Query API,
the path a managed cluster takes) on the same collection, for dense, BM25, RRF and DBSF, with and without
filters, after adds, changes and deletions, and from a scorer freshly loaded from the folder.

Points with exactly equal scores may come back in either order (local mode sorts with an unstable
argsort), so within a group of equal scores only the set is compared; a fused query is compared only
when neither of its prefetch lists has such a tie, because a swapped tie changes RRF ranks.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from qdrant_client import QdrantClient

from atlas.retrieval.index import Chunking, Document, Hit, KnowledgeIndex, Ranking, SearchFilters

PREFETCH = 40
TOP_K = 10
TAGS = ("network", "storage", "compute")
SMALL_CHUNKS = Chunking(max_chars=160, overlap_chars=40)  # about one paragraph a chunk: a few thousand chunks


def _vocabulary(rng: random.Random, model_dir: Path, size: int) -> list[str]:
    """Whole words of the model's own vocabulary: one token each, so the corpus embeds quickly."""
    words = [w for w in (model_dir / "vocab.txt").read_text().split() if w.isalpha() and w.isascii() and len(w) > 3]
    return rng.sample(words, size)


def _sentence(rng: random.Random, words: list[str], weights: list[float]) -> str:
    return " ".join(rng.choices(words, weights=weights, k=rng.randint(6, 18))) + "."


def _corpus(seed: int, documents: int, model_dir: Path) -> tuple[list[Document], list[str], random.Random]:
    rng = random.Random(seed)
    words = _vocabulary(rng, model_dir, 1500)
    weights = [1 / (rank + 1) ** 0.9 for rank in range(len(words))]  # Zipf-like, as in real text
    docs = []
    for number in range(documents):
        sections = [
            f"## Part {s}\n\n" + "\n\n".join(_sentence(rng, words, weights) for _ in range(rng.randint(1, 3)))
            for s in range(rng.randint(2, 5))
        ]
        docs.append(
            Document(
                source=f"gen/{number}.md",
                text=f"# Generated {number}\n\n" + "\n\n".join(sections),
                tags=(TAGS[number % 3],),
            )
        )
    queries = [" ".join(rng.choices(words[10:120], k=rng.randint(4, 7))) for _ in range(24)]
    return docs, queries, rng


@pytest.fixture(scope="module")
def folder(embedder, model_dir, tmp_path_factory):
    docs, queries, rng = _corpus(seed=3, documents=400, model_dir=model_dir)
    client = QdrantClient(path=str(tmp_path_factory.mktemp("congruence")))
    incremental = KnowledgeIndex(
        client, "congruence", embedder, ranking=Ranking(prefetch_limit=PREFETCH), chunking=SMALL_CHUNKS
    )
    incremental.ingest(docs)
    # Change a tenth of the documents and empty another tenth: updates and deletions move the IDF.
    changed = [Document(d.source, d.text + "\n\nAn added closing paragraph.", tags=d.tags) for d in docs[:42]]
    emptied = [Document(d.source, "", tags=d.tags) for d in docs[42:84]]
    report = incremental.ingest(changed + emptied)
    assert report.removed > 0 and report.added > 0
    assert incremental.count() >= 2000
    yield client, embedder, incremental, queries, rng
    client.close()


def _pair(folder, fusion: str) -> tuple[KnowledgeIndex, KnowledgeIndex]:
    client, embedder, _, _, _ = folder
    ranking = Ranking(fusion=fusion, prefetch_limit=PREFETCH)
    loaded = KnowledgeIndex(client, "congruence", embedder, ranking=ranking)  # scorer read from the folder
    reference = KnowledgeIndex(client, "congruence", embedder, ranking=ranking, scoring="qdrant")
    assert (loaded.scoring, reference.scoring) == ("inprocess", "qdrant")
    return loaded, reference


FILTERS = [SearchFilters(), SearchFilters(tags=("storage", "network")), SearchFilters(sources=("gen/7.md",))]


def _assert_same_ranking(ours: list[Hit], reference: list[Hit]) -> None:
    assert len(ours) == len(reference)
    assert [h.score for h in ours] == pytest.approx([h.score for h in reference], rel=1e-5, abs=1e-6)
    groups_ours, groups_ref = _tie_groups(ours), _tie_groups(reference)
    for index, (mine, theirs) in enumerate(zip(groups_ours, groups_ref, strict=True)):
        if index < len(groups_ours) - 1:  # the last group may be cut at top_k differently
            assert mine == theirs


def _tie_groups(hits: list[Hit]) -> list[set[str]]:
    groups: list[set[str]] = []
    previous: float | None = None
    for hit in hits:
        if previous is None or abs(hit.score - previous) > 1e-6 * max(1.0, abs(previous)):
            groups.append(set())
        groups[-1].add(hit.id)
        previous = hit.score
    return groups


def _has_ties(hits: list[Hit]) -> bool:
    return any(len(group) > 1 for group in _tie_groups(hits))


@pytest.mark.parametrize("mode", ["dense", "bm25"])
def test_single_retrievers_rank_like_qdrant_local_mode(folder, mode):
    loaded, reference = _pair(folder, "dbsf")
    incremental, queries = folder[2], folder[3]
    for query in queries:
        for filters in FILTERS:
            expected = reference.rank(query, top_k=TOP_K, filters=filters, mode=mode)
            assert expected or filters.sources, query
            _assert_same_ranking(loaded.rank(query, top_k=TOP_K, filters=filters, mode=mode), expected)
            _assert_same_ranking(incremental.rank(query, top_k=TOP_K, filters=filters, mode=mode), expected)


@pytest.mark.parametrize("fusion", ["rrf", "dbsf"])
def test_fused_hybrid_ranks_like_qdrant_local_mode(folder, fusion):
    loaded, reference = _pair(folder, fusion)
    compared = 0
    for query in folder[3]:
        for filters in FILTERS:
            prefetched = [loaded.rank(query, top_k=PREFETCH + 1, filters=filters, mode=m) for m in ("dense", "bm25")]
            if any(_has_ties(hits) for hits in prefetched):
                continue
            expected = reference.rank(query, top_k=TOP_K, filters=filters)
            ours = loaded.rank(query, top_k=TOP_K, filters=filters)
            assert [h.id for h in ours] == [h.id for h in expected], (query, filters)
            assert [h.score for h in ours] == pytest.approx([h.score for h in expected], rel=1e-6)
            compared += 1
    # Short generated chunks give many exact BM25 ties (same term count, same length); about a third of
    # the 72 query/filter pairs are tie-free at the prefetch depth, and every one of those must agree.
    assert compared >= 20


def test_a_query_of_stop_words_only_falls_back_to_dense_in_both(folder):
    loaded, reference = _pair(folder, "rrf")
    ours, expected = loaded.rank("the of and", top_k=5), reference.rank("the of and", top_k=5)
    assert [h.id for h in ours] == [h.id for h in expected] and len(ours) == 5
