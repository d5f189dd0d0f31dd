"""The retrieval HTTP function through functions-framework's app (real model, a Qdrant Edge shard)."""

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
    assert health.json == {"status": "ok", "backend": "edge", "collection": "atlas-knowledge", "points": 1}


def test_search_filters_by_source_and_tags_and_caches_until_the_next_ingest(client):
    documents = [
        {"source": "gcp.md", "text": "# GCP\n\nPub/Sub retries with backoff.", "tags": ["gcp"]},
        {"source": "aws.md", "text": "# AWS\n\nSQS retries with a redrive policy.", "tags": ["aws"]},
    ]
    assert client.post("/ingest", json={"documents": documents}).json["added"] == 2
    by_tag = client.post("/search", json={"query": "retries", "filter": {"tags": ["aws"]}})
    assert [r["source"] for r in by_tag.json["results"]] == ["aws.md"] and by_tag.json["cached"] is False
    by_source = client.post("/search", json={"query": "retries", "filter": {"source": ["gcp.md"]}})
    assert [r["source"] for r in by_source.json["results"]] == ["gcp.md"]
    again = client.post("/search", json={"query": "retries", "filter": {"tags": ["aws"]}})
    assert again.json["cached"] is True and again.json["results"] == by_tag.json["results"]
    more = [{"source": "aws2.md", "text": "# AWS\n\nStep Functions retries.", "tags": ["aws"]}]
    client.post("/ingest", json={"documents": more})
    after = client.post("/search", json={"query": "retries", "filter": {"tags": ["aws"]}})
    assert after.json["cached"] is False and {r["source"] for r in after.json["results"]} == {"aws.md", "aws2.md"}


@pytest.mark.parametrize(
    "body",
    [
        {"query": ""},
        {"query": "q", "top_k": 0},
        {"query": "q", "extra": 1},
        {"top_k": 3},
        ["not", "an", "object"],
        {"query": "q", "filter": {"tags": []}},
        {"query": "q", "mode": "fuzzy"},
    ],
)
def test_bad_search_requests_get_400_with_a_reason(client, body):
    response = client.post("/search", json=body)
    assert response.status_code == 400 and response.json["error"]["code"] == "invalid_request"


def test_unknown_route_is_404_listing_the_routes(client):
    response = client.get("/nope")
    assert response.status_code == 404 and "POST /search" in response.json["error"]["message"]


def test_too_many_documents_is_a_400_naming_the_limit(client):
    documents = [{"source": f"{n}.md", "text": "# N"} for n in range(501)]
    response = client.post("/ingest", json={"documents": documents})
    assert response.status_code == 400 and "ATLAS_MAX_INGEST_DOCUMENTS" in response.json["error"]["message"]


def test_an_internal_value_error_is_a_5xx_that_the_worker_retries_not_a_400(client, monkeypatch):
    """A 400 fails the task for good (RetrievalRequestError); a bug inside retrieval must be retried instead."""
    from atlas.retrieval.index import KnowledgeIndex

    def broken(*args, **kwargs):
        raise ValueError("a bug deep inside retrieval")

    monkeypatch.setattr(KnowledgeIndex, "search", broken)
    response = client.post("/search", json={"query": "anything"})
    assert response.status_code == 500 and response.json["error"]["code"] == "internal"


def test_every_request_logs_one_line_with_route_status_took_ms_and_hits(client, caplog):
    import json
    import logging

    from atlas.observability.logs import CloudLoggingFormatter

    body = {"documents": [{"source": "q.md", "text": "# Queues\n\n## Retries\n\nUse exponential backoff."}]}
    client.post("/ingest", json=body)
    with caplog.at_level(logging.INFO, logger="atlas.retrieval"):
        client.post("/search", json={"query": "backoff"})
        client.post("/search", json={"query": "backoff"})
        client.post("/search", json={"query": ""})
    lines = [json.loads(CloudLoggingFormatter().format(r)) for r in caplog.records if r.name == "atlas.retrieval"]
    lines = [line for line in lines if line.get("route") == "POST /search"]
    assert [(line["route"], line["status"]) for line in lines] == [("POST /search", 200)] * 2 + [("POST /search", 400)]
    assert [line.get("cached") for line in lines] == [False, True, None]
    assert lines[0]["hits"] == 1 and lines[0]["took_ms"] >= 0 and lines[2]["severity"] == "WARNING"
