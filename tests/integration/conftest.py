from pathlib import Path

import pytest
from qdrant_client import QdrantClient

from atlas.retrieval.index import Document, KnowledgeIndex

pytestmark = pytest.mark.integration


def knowledge_documents(knowledge_dir: Path) -> list[Document]:
    return [Document(source=f"knowledge/{p.name}", text=p.read_text()) for p in sorted(knowledge_dir.glob("*.md"))]


@pytest.fixture(scope="session")
def knowledge_index(embedder, tmp_path_factory):
    from stack import REPO

    client = QdrantClient(path=str(tmp_path_factory.mktemp("qdrant-knowledge")))
    index = KnowledgeIndex(client, "knowledge", embedder)
    index.ingest(knowledge_documents(REPO / "knowledge"))
    yield index
    client.close()
