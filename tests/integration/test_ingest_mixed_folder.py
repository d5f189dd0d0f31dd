"""`atlas ingest` of a folder of every format into the real retrieval function (real model, a temporary index)."""

import json

import functions_framework
import pytest

from atlas import cli
from stack import REPO
from support.documents import write_mixed_folder

pytestmark = pytest.mark.integration


@pytest.fixture
def retrieval(model_dir, tmp_path, monkeypatch):
    """The retrieval function's app, and `atlas ingest` pointed at it (the HTTP round trip without a socket)."""
    import atlas.tasks.retrieval_client

    for variable in ("ATLAS_QDRANT_URL", "ATLAS_QDRANT_API_KEY", "ATLAS_INDEX_BUCKET"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("ATLAS_QDRANT_PATH", str(tmp_path / "qdrant"))
    monkeypatch.setenv("ATLAS_EMBEDDING_MODEL_DIR", str(model_dir))
    monkeypatch.setenv("ATLAS_PROJECT", "test")
    app = functions_framework.create_app("retrieval", str(REPO / "functions/retrieval/main.py"), "http")
    client = app.test_client()

    class AppClient:
        def __init__(self, base_url: str, *, timeout_s: float) -> None:
            pass

        def ingest(self, documents):
            response = client.post("/ingest", json={"documents": documents})
            assert response.status_code == 200, response.json
            return response.json

    monkeypatch.setattr(atlas.tasks.retrieval_client, "RetrievalClient", AppClient)
    return client


def ingest(folder, capsys) -> tuple[dict, str]:
    assert cli.main(["ingest", "--quiet", str(folder)]) == cli.EXIT_OK
    out, err = capsys.readouterr()
    return json.loads(out.splitlines()[-1]), err


def test_a_mixed_folder_is_searchable_by_a_terraform_resource_name_and_reingesting_adds_nothing(
    retrieval, tmp_path, monkeypatch, capsys
):
    folder = write_mixed_folder(tmp_path / "kb")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\nnot really")
    (folder / "broken.yaml").write_text("key: [unclosed\n")
    monkeypatch.chdir(tmp_path)

    first, err = ingest("kb", capsys)
    assert first["documents"] == 7 and first["added"] == first["chunks"] > 15
    assert first["skipped_by_reason"] == {"parse_error": 2}
    assert "kb/broken.pdf" in err and "kb/broken.yaml" in err

    found = retrieval.post("/search", json={"query": "google_pubsub_topic dead_letter", "top_k": 3}).json["results"]
    assert (found[0]["source"], found[0]["section"]) == ("kb/pubsub.tf", 'resource "google_pubsub_topic" "dead_letter"')
    assert found[0]["title"] == "Pub/Sub topics of the task pipeline"

    manifest = retrieval.post("/search", json={"query": "checkout HorizontalPodAutoscaler maxReplicas", "top_k": 1})
    assert manifest.json["results"][0]["section"] == "HorizontalPodAutoscaler/checkout"
    pdf = retrieval.post("/search", json={"query": "how often to restore a backup", "top_k": 1}).json["results"]
    assert (pdf[0]["source"], pdf[0]["title"], pdf[0]["section"]) == ("kb/dr-guide.pdf", "DR Guide", "page 1")

    again, _ = ingest("kb", capsys)
    assert (again["added"], again["removed"], again["unchanged"]) == (0, 0, first["chunks"])
