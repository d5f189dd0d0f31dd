"""The worker adapter through functions-framework: a Pub/Sub push envelope in, a status code out."""

import base64
import io
import json
import logging

import functions_framework
import pytest
from google.cloud import firestore
from metric_points import read_points

from stack import REPO
from support import TEST_PROJECT


def envelope(data: bytes, message_id: str) -> dict:
    return {
        "subscription": f"projects/{TEST_PROJECT}/subscriptions/atlas-tasks-worker",
        "message": {"data": base64.b64encode(data).decode(), "messageId": message_id, "attributes": {}},
    }


@pytest.fixture
def worker(emulators, collection_name, monkeypatch, metric_service):
    monkeypatch.setenv("ATLAS_MONITORING_ENDPOINT", metric_service.endpoint)
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


@pytest.fixture
def log_lines():
    """Every record the root logger formats, as Cloud Logging would read it (one JSON object a line)."""
    from atlas.observability.logs import CloudLoggingFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(CloudLoggingFormatter())
    logging.getLogger().addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        logging.getLogger().removeHandler(handler)


def test_every_log_line_of_a_request_carries_its_trace_execution_and_task_ids(worker, log_lines):
    trace_id, span_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    response = worker.post(
        f"/projects/{TEST_PROJECT}/topics/atlas-tasks",
        json=envelope(b'{"prompt": "p", "task_id": "traced-1"}', "103"),
        headers={"traceparent": f"00-{trace_id}-{span_id}-01", "Function-Execution-Id": "exec-42"},
    )
    assert response.status_code == 500  # retrieval is down: a transient error
    lines = [line for line in log_lines() if line["logger"].startswith("atlas")]
    assert lines
    for line in lines:
        assert line["severity"] in ("INFO", "WARNING", "ERROR") and line["message"]
        assert line["logging.googleapis.com/trace"] == f"projects/{TEST_PROJECT}/traces/{trace_id}"
        assert line["logging.googleapis.com/spanId"] == span_id and line["logging.googleapis.com/trace_sampled"]
        assert line["logging.googleapis.com/labels"]["execution_id"] == "exec-42"
    assert any(line["logging.googleapis.com/labels"].get("task_id") == "traced-1" for line in lines)


def test_a_request_writes_the_instance_metrics_to_cloud_monitoring(worker, metric_service):
    response = worker.post(f"/projects/{TEST_PROJECT}/topics/atlas-tasks", json=envelope(b"{nope", "104"))
    assert response.status_code == 200

    points = read_points(metric_service.points_file)
    written = {(p["metric"].rsplit("/atlas/", 1)[1], tuple(sorted(p["labels"].items()))) for p in points}
    assert ("deliveries", (("outcome", "rejected"),)) in written
    assert ("tasks", (("error_code", "invalid_task"), ("status", "failed"))) in written
    assert metric_service.rejected == 0
    resource = points[0]["resource"]
    assert resource["job"] == "atlas-worker" and resource["project_id"] == TEST_PROJECT and resource["task_id"]
