"""The worker adapter through functions-framework: a Pub/Sub push envelope in, a status code out."""

import base64

import functions_framework
import pytest
from google.cloud import firestore

from stack import REPO
from support import TEST_PROJECT


def envelope(data: bytes, message_id: str) -> dict:
    return {
        "subscription": f"projects/{TEST_PROJECT}/subscriptions/atlas-tasks-worker",
        "message": {"data": base64.b64encode(data).decode(), "messageId": message_id, "attributes": {}},
    }


@pytest.fixture
def worker(emulators, collection_name, monkeypatch):
    monkeypatch.setenv("ATLAS_PROJECT", TEST_PROJECT)
    monkeypatch.setenv("ATLAS_TASKS_COLLECTION", collection_name)
    monkeypatch.setenv("ATLAS_RETRIEVAL_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("ATLAS_RETRIEVAL_TIMEOUT_S", "2")
    app = functions_framework.create_app("handle_task", str(REPO / "functions/worker/main.py"), "cloudevent")
    return app.test_client()


def document(collection_name, task_id):
    return firestore.Client(project=TEST_PROJECT).collection(collection_name).document(task_id).get().to_dict()


def test_malformed_task_is_acknowledged_and_recorded(worker, collection_name):
    response = worker.post(f"/projects/{TEST_PROJECT}/topics/atlas-tasks", json=envelope(b"{nope", "101"))
    assert response.status_code == 200
    stored = document(collection_name, "101")
    assert stored["status"] == "failed" and "not valid JSON" in stored["error"]["message"]


def test_transient_failure_answers_500_so_pubsub_retries(worker, collection_name):
    response = worker.post(f"/projects/{TEST_PROJECT}/topics/atlas-tasks", json=envelope(b'{"prompt": "p"}', "102"))
    assert response.status_code == 500
    stored = document(collection_name, "102")
    assert stored["status"] == "queued" and stored["last_error"]["code"] == "retrieval_unavailable"


def test_worker_refuses_to_start_with_bad_configuration(monkeypatch):
    monkeypatch.setenv("ATLAS_PROJECT", TEST_PROJECT)
    monkeypatch.setenv("ATLAS_RETRIEVAL_URL", "ftp://nope")
    from atlas.errors import ConfigError

    with pytest.raises(ConfigError, match="ATLAS_RETRIEVAL_URL"):
        functions_framework.create_app("handle_task", str(REPO / "functions/worker/main.py"), "cloudevent")
