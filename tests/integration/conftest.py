from pathlib import Path

import pytest

from atlas.retrieval.edge_backend import EdgeBackend
from atlas.retrieval.index import Document, KnowledgeIndex
from support.gcs import gcs_bucket, gcs_emulator  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration


def knowledge_documents(knowledge_dir: Path) -> list[Document]:
    return [Document(source=f"knowledge/{p.name}", text=p.read_text()) for p in sorted(knowledge_dir.glob("*.md"))]


@pytest.fixture(scope="session")
def knowledge_index(embedder, tmp_path_factory):
    from stack import REPO

    backend = EdgeBackend(tmp_path_factory.mktemp("edge-knowledge"), embedder.dimension)
    index = KnowledgeIndex(backend, embedder)
    index.ingest(knowledge_documents(REPO / "knowledge"))
    yield index
    backend.close()
