"""The knowledge index on a Qdrant Edge shard with the real offline embedding model."""

import pytest
from qdrant_client import QdrantClient

from atlas.errors import KnowledgeIndexError
from atlas.retrieval.edge_backend import EdgeBackend
from atlas.retrieval.index import Document, KnowledgeIndex, SearchFilters
from atlas.retrieval.qdrant_backend import QdrantBackend


def test_logging_question_finds_the_logging_notes(knowledge_index):
    hits = knowledge_index.search("Design a logging architecture for microservices", top_k=5)
    assert len(hits) == 5
    logging_notes = {"knowledge/logging-pipelines.md", "knowledge/log-storage-and-search.md"}
    assert hits[0].source in logging_notes and logging_notes <= {h.source for h in hits[:3]}
    assert all(hits[i].score >= hits[i + 1].score for i in range(4))
    assert hits[0].title.startswith("Log") and hits[0].section and hits[0].text


def test_filter_restricts_results_to_a_source(knowledge_index):
    only = SearchFilters(sources=("knowledge/caching-strategies.md",))
    for mode in ("hybrid", "dense", "bm25"):
        hits = knowledge_index.search("how to store logs", top_k=3, filters=only, mode=mode)
        assert hits and {h.source for h in hits} == {"knowledge/caching-strategies.md"}


def test_hybrid_search_finds_an_exact_term_and_its_meaning(knowledge_index):
    hits = knowledge_index.search("exponential backoff with jitter", top_k=5)
    assert any("jitter" in h.text.lower() for h in hits[:3])
    assert knowledge_index.backend.kind == "edge"


def test_reingesting_changes_nothing_and_a_changed_file_replaces_its_chunks(embedder, tmp_path):
    index = KnowledgeIndex(EdgeBackend(tmp_path / "edge", embedder.dimension), embedder)
    doc = Document(source="a.md", text="# A\n\n## One\n\nFirst section.\n\n## Two\n\nSecond section.")
    first = index.ingest([doc])
    assert (first.added, first.unchanged, first.removed) == (2, 0, 0)
    again = index.ingest([doc])
    assert (again.added, again.unchanged, again.removed) == (0, 2, 0)
    changed = index.ingest([Document(source="a.md", text="# A\n\n## One\n\nFirst section, edited.")])
    assert (changed.added, changed.unchanged, changed.removed) == (1, 0, 2)
    assert index.count() == 1
    assert [h.text for h in index.search("edited", top_k=5, mode="bm25")] == ["First section, edited."]
    removed = index.ingest([Document(source="a.md", text="")])
    assert (removed.added, removed.removed, index.count()) == (0, 1, 0)
    assert index.search("first section", top_k=5) == []


@pytest.mark.parametrize("engine", ["edge", "qdrant-local-mode"])
def test_tags_filter_keeps_chunks_carrying_any_of_the_tags(embedder, tmp_path, engine):
    if engine == "edge":
        backend = EdgeBackend(tmp_path / "edge", embedder.dimension)
    else:
        backend = QdrantBackend(QdrantClient(":memory:"), "kb", embedder.dimension)
    index = KnowledgeIndex(backend, embedder)
    index.ingest(
        [
            Document(source="gcp.md", text="# GCP\n\nCloud Run scales to zero.", tags=("gcp", "serverless")),
            Document(source="aws.md", text="# AWS\n\nLambda scales to zero.", tags=("aws", "serverless")),
            Document(source="k8s.md", text="# K8s\n\nHPA scales pods.", tags=("kubernetes",)),
        ]
    )
    assert {h.source for h in index.search("scales", top_k=5, filters=SearchFilters(tags=("gcp",)))} == {"gcp.md"}
    both = SearchFilters(tags=("gcp", "kubernetes"))
    assert {h.source for h in index.search("scales", top_k=5, filters=both)} == {"gcp.md", "k8s.md"}
    narrowed = SearchFilters(sources=("aws.md", "k8s.md"), tags=("serverless",))
    assert {h.source for h in index.search("scales", top_k=5, filters=narrowed)} == {"aws.md"}
    backend.close()


def test_the_shard_folder_is_reopened_with_everything_it_held(embedder, tmp_path):
    backend = EdgeBackend(tmp_path / "edge", embedder.dimension)
    KnowledgeIndex(backend, embedder).ingest(
        [Document(source="a.md", text="# A\n\n## Queues\n\nDead-letter topics catch poison messages.")]
    )
    backend.close()
    index = KnowledgeIndex(EdgeBackend(tmp_path / "edge", embedder.dimension), embedder)
    assert index.count() == 1
    assert index.search("poison messages", top_k=1, mode="bm25")[0].section == "Queues"


def test_a_second_owner_of_the_folder_is_refused_with_a_clear_error(embedder, tmp_path):
    first = EdgeBackend(tmp_path / "edge", embedder.dimension)
    with pytest.raises(KnowledgeIndexError, match="one process owns a folder"):
        EdgeBackend(tmp_path / "edge", embedder.dimension)
    first.close()


def test_a_folder_of_old_qdrant_local_mode_is_refused_with_what_to_do(embedder, tmp_path):
    QdrantClient(path=str(tmp_path / "old")).close()
    (tmp_path / "old" / "meta.json").write_text("{}")
    with pytest.raises(KnowledgeIndexError, match="delete it and ingest again"):
        EdgeBackend(tmp_path / "old", embedder.dimension)
