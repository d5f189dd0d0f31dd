"""The knowledge index: Qdrant local mode with the real offline embedding model."""

from qdrant_client import QdrantClient

from atlas.retrieval.index import Document, KnowledgeIndex


def test_logging_question_finds_the_logging_notes(knowledge_index):
    hits = knowledge_index.search("Design a logging architecture for microservices", top_k=5)
    assert len(hits) == 5
    assert hits[0].source == "knowledge/logging-pipelines.md"
    assert all(hits[i].score >= hits[i + 1].score for i in range(4))
    assert hits[0].title == "Logging Pipelines" and hits[0].section and hits[0].text


def test_filter_restricts_results_to_a_source(knowledge_index):
    hits = knowledge_index.search("how to store logs", top_k=3, sources=["knowledge/caching-strategies.md"])
    assert hits and {h.source for h in hits} == {"knowledge/caching-strategies.md"}


def test_reingesting_changes_nothing_and_a_changed_file_replaces_its_chunks(embedder, tmp_path):
    client = QdrantClient(path=str(tmp_path / "q"))
    index = KnowledgeIndex(client, "kb", embedder)
    doc = Document(source="a.md", text="# A\n\n## One\n\nFirst section.\n\n## Two\n\nSecond section.")
    first = index.ingest([doc])
    assert (first.added, first.unchanged, first.removed) == (2, 0, 0)
    again = index.ingest([doc])
    assert (again.added, again.unchanged, again.removed) == (0, 2, 0)
    changed = index.ingest([Document(source="a.md", text="# A\n\n## One\n\nFirst section.")])
    assert (changed.added, changed.unchanged, changed.removed) == (0, 1, 1)
    assert index.count() == 1
    client.close()
