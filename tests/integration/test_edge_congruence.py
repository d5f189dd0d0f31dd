"""Congruence: Qdrant Edge (the embedded engine) ranks as Qdrant's Query API through qdrant-client.

The same generated corpus (about two thousand chunks, then edits and deletions that move the IDF) goes into
an Edge shard and into a qdrant-client local-mode collection, the reference whose API a managed server
answers; both are built by :class:`KnowledgeIndex` from the same embedded points and asked the same
questions: dense, BM25, RRF and DBSF, with and without filters, and again from the shard reloaded from its
folder.

Points with exactly equal scores may come back in either order (each engine breaks ties its own way), so
within a group of equal scores only the set is compared; a fused query is compared only when neither of
its prefetch lists has such a tie, because a swapped tie changes RRF ranks. Where the two differ on a
formula, the test pins what the server does (docs/retrieval.md, "Edge and local mode").
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from qdrant_client import QdrantClient

from atlas.retrieval.edge_backend import EdgeBackend
from atlas.retrieval.index import Chunking, Document, Hit, KnowledgeIndex, Ranking, SearchFilters
from atlas.retrieval.qdrant_backend import QdrantBackend

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
def engines(embedder, model_dir, tmp_path_factory):
    docs, queries, _ = _corpus(seed=3, documents=400, model_dir=model_dir)
    changed = [Document(d.source, d.text + "\n\nAn added closing paragraph.", tags=d.tags) for d in docs[:42]]
    emptied = [Document(d.source, "", tags=d.tags) for d in docs[42:84]]
    folder = tmp_path_factory.mktemp("congruence") / "edge"
    edge = EdgeBackend(folder, embedder.dimension)
    client = QdrantClient(":memory:")
    reference = QdrantBackend(client, "congruence", embedder.dimension)
    embedded: dict = {}  # embed once, write the same points into both engines
    for backend in (edge, reference):
        index = KnowledgeIndex(backend, embedder, ranking=Ranking(prefetch_limit=PREFETCH), chunking=SMALL_CHUNKS)
        index.ingest(docs, embedded=embedded)
        report = index.ingest(changed + emptied, embedded=embedded)
        assert report.removed > 0 and report.added > 0
    assert edge.count() == reference.count() >= 2000
    edge.close()
    reloaded = EdgeBackend(folder, embedder.dimension)
    yield reloaded, reference, queries
    reloaded.close()
    client.close()


def _pair(engines, fusion: str, embedder) -> tuple[KnowledgeIndex, KnowledgeIndex]:
    edge, reference, _ = engines
    ranking = Ranking(fusion=fusion, prefetch_limit=PREFETCH)
    return KnowledgeIndex(edge, embedder, ranking=ranking), KnowledgeIndex(reference, embedder, ranking=ranking)


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
def test_single_retrievers_rank_like_the_query_api(engines, embedder, mode):
    edge, reference = _pair(engines, "dbsf", embedder)
    for query in engines[2]:
        for filters in FILTERS:
            expected = reference.rank(query, top_k=TOP_K, filters=filters, mode=mode)
            assert expected or filters.sources, query
            _assert_same_ranking(edge.rank(query, top_k=TOP_K, filters=filters, mode=mode), expected)


@pytest.mark.parametrize("fusion", ["rrf", "dbsf"])
def test_fused_hybrid_ranks_like_the_query_api(engines, embedder, fusion):
    edge, reference = _pair(engines, fusion, embedder)
    compared = 0
    for query in engines[2]:
        for filters in FILTERS:
            prefetched = [edge.rank(query, top_k=PREFETCH + 1, filters=filters, mode=m) for m in ("dense", "bm25")]
            if any(_has_ties(hits) for hits in prefetched):
                continue
            expected = reference.rank(query, top_k=TOP_K, filters=filters)
            ours = edge.rank(query, top_k=TOP_K, filters=filters)
            _assert_same_ranking(ours, expected)  # RRF sums of ranks tie exactly: ties compared as sets
            compared += 1
    # Short generated chunks give many exact BM25 ties (same term count, same length); about a third of
    # the 72 query/filter pairs are tie-free at the prefetch depth, and every one of those must agree.
    assert compared >= 20


def test_filters_select_the_same_chunks_in_both(engines, embedder):
    edge, reference = _pair(engines, "dbsf", embedder)
    for filters in FILTERS[1:]:
        wanted = edge.rank("anything at all", top_k=3000, filters=filters, mode="dense")
        expected = reference.rank("anything at all", top_k=3000, filters=filters, mode="dense")
        assert {h.id for h in wanted} == {h.id for h in expected} and wanted


def test_a_query_of_stop_words_only_falls_back_to_dense_in_both(engines, embedder):
    edge, reference = _pair(engines, "rrf", embedder)
    ours, expected = edge.rank("the of and", top_k=5), reference.rank("the of and", top_k=5)
    assert [h.id for h in ours] == [h.id for h in expected] and len(ours) == 5
