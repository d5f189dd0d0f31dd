"""The retrieval HTTP function through functions-framework's app (real model, Qdrant local mode)."""

import functions_framework
import pytest

from stack import REPO


@pytest.fixture
def client(model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("ATLAS_QDRANT_PATH", str(tmp_path / "qdrant"))
    monkeypatch.setenv("ATLAS_EMBEDDING_MODEL_DIR", str(model_dir))
    app = functions_framework.create_app("retrieval", str(REPO / "functions/retrieval/main.py"), "http")
    return app.test_client()


def test_ingest_then_search_then_health(client):
    body = {"documents": [{"source": "q.md", "text": "# Queues\n\n## Retries\n\nUse exponential backoff with jitter."}]}
    ingested = client.post("/ingest", json=body)
    assert ingested.status_code == 200 and ingested.json["added"] == 1
    found = client.post("/search", json={"query": "how should retries back off?", "top_k": 3})
    assert found.status_code == 200
    assert found.json["results"][0]["source"] == "q.md" and found.json["results"][0]["section"] == "Retries"
    health = client.get("/health")
    assert health.json == {"status": "ok", "backend": "local", "collection": "atlas-knowledge", "points": 1}


@pytest.mark.parametrize(
    "body",
    [{"query": ""}, {"query": "q", "top_k": 0}, {"query": "q", "extra": 1}, {"top_k": 3}, ["not", "an", "object"]],
)
def test_bad_search_requests_get_400_with_a_reason(client, body):
    response = client.post("/search", json=body)
    assert response.status_code == 400 and response.json["error"]["code"] == "invalid_request"


def test_unknown_route_is_404_listing_the_routes(client):
    response = client.get("/nope")
    assert response.status_code == 404 and "POST /search" in response.json["error"]["message"]
