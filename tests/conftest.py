"""Shared fixtures: the real emulators (started once per session), the real embedding model, a fake LLM.

The emulators are started by the same code as the local stack, on free ports, and stopped by process
group at the end. Each test gets its own Firestore collection, so tests never see each other's tasks.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from emulators import start_emulators
from fake_openai import FakeOpenAI

from stack import DEFAULT_MODEL_DIR, REPO
from support import TEST_PROJECT

# Never let a test reach a real provider or a hub because of the developer's environment.
for _variable in ("OPENAI_API_KEY", "ATLAS_LLM_CHAIN", "GEMINI_API_KEY", "AZURE_OPENAI_API_KEY"):
    os.environ.pop(_variable, None)
os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def model_dir() -> Path:
    path = Path(os.environ.get("ATLAS_EMBEDDING_MODEL_DIR") or DEFAULT_MODEL_DIR)
    if not (path / "model.onnx").is_file():
        pytest.fail(f"the embedding model is not built at {path}: run `make setup` (make test does it)")
    os.environ["ATLAS_EMBEDDING_MODEL_DIR"] = str(path)
    return path


@pytest.fixture(scope="session")
def embedder(model_dir: Path):  # type: ignore[no-untyped-def]
    from atlas.retrieval.embedder import Embedder

    return Embedder(model_dir)


@pytest.fixture(scope="session")
def emulators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    logs = tmp_path_factory.mktemp("emulator-logs")
    running = start_emulators(logs, os.environ)
    assert running.pubsub_host and running.firestore_host
    os.environ["PUBSUB_EMULATOR_HOST"] = running.pubsub_host
    os.environ["FIRESTORE_EMULATOR_HOST"] = running.firestore_host
    try:
        yield {"pubsub": running.pubsub_host, "firestore": running.firestore_host}
    finally:
        running.stop()


@pytest.fixture
def firestore_client(emulators: dict[str, str]):  # type: ignore[no-untyped-def]
    from google.cloud import firestore

    return firestore.Client(project=TEST_PROJECT)


@pytest.fixture
def collection_name() -> str:
    return f"tasks-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def store(firestore_client, collection_name: str):  # type: ignore[no-untyped-def]
    from atlas.tasks.store import TaskStore

    return TaskStore(firestore_client, collection_name)


@pytest.fixture(scope="session")
def _fake_openai_server() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture
def fake_openai(_fake_openai_server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    _fake_openai_server.reset()
    yield _fake_openai_server
    _fake_openai_server.reset()


@pytest.fixture
def knowledge_dir() -> Path:
    return REPO / "knowledge"


@pytest.fixture
def metric_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The local MetricService (infra/local/metric_service.py) in this process, on a free port; exporters built
    during the test are not flushed again when pytest exits (the service is gone by then)."""
    from metric_service import MetricStore, serve

    from atlas.observability import export as metrics_export

    monkeypatch.setattr(metrics_export, "_exporters", [])
    store = MetricStore(tmp_path / "metrics.jsonl")
    server, _ = serve(store)
    try:
        yield store
    finally:
        server.stop(grace=None)
        store.close()
