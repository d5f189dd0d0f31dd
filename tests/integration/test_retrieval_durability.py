"""The embedded index is crash-safe and serves concurrent searches: the real retrieval function under
functions-framework, a real Qdrant Edge shard, ``kill -9`` in the middle of a large ingest."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from command_lines import retrieval_argv
from processes import Process, free_port, start_process, stop_process
from readiness import wait_for_http

from atlas.retrieval.chunking import chunk_markdown

pytestmark = pytest.mark.integration
WORDS = "queue topic retry backoff jitter lease shard replica index bucket latency budget quota region".split()


def _document(number: int) -> dict[str, str]:
    """A note of several sections (several chunks) whose words are its own, so each is findable."""
    sections = []
    for section in range(6):
        words = " ".join(WORDS[(number + section + i) % len(WORDS)] for i in range(120))
        sections.append(f"## Part {section}\n\nnote{number} part{section} {words}.")
    return {"source": f"notes/{number}.md", "text": f"# Note {number}\n\n" + "\n\n".join(sections)}


@pytest.fixture
def started() -> Iterator[list[Process]]:
    """Every retrieval process a test starts, stopped at teardown whatever the test did."""
    processes: list[Process] = []
    yield processes
    for process in processes:
        stop_process(process)


def _start(
    started: list[Process], folder: Path, model_dir: Path, logs: Path, *, warm: bool = True
) -> tuple[Process, str]:
    """The retrieval function in its own process group; ``warm``: its service already built by /health."""
    port = free_port()
    env = {**os.environ, "ATLAS_QDRANT_PATH": str(folder), "ATLAS_EMBEDDING_MODEL_DIR": str(model_dir)}
    process = start_process("retrieval", retrieval_argv(port), env, logs)
    started.append(process)
    url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{url}/health" if warm else f"{url}/", process, timeout_s=120, ok_any=not warm)
    return process, url


def _chunks_of(url: str, source: str) -> int:
    body = {"query": "note", "top_k": 50, "mode": "dense", "filter": {"source": [source]}}
    response = requests.post(f"{url}/search", json=body, timeout=60)
    assert response.status_code == 200, response.text
    return len(response.json()["results"])


def test_acknowledged_ingests_survive_kill_9_and_nothing_half_written_is_searchable(model_dir, tmp_path, started):
    folder = tmp_path / "edge"
    process, url = _start(started, folder, model_dir, tmp_path / "logs")
    documents = [_document(n) for n in range(40)]
    acknowledged: list[str] = []
    stop = threading.Event()

    def ingest_one_by_one() -> None:
        for document in documents:
            if stop.is_set():
                return
            try:
                response = requests.post(f"{url}/ingest", json={"documents": [document]}, timeout=120)
            except requests.RequestException:
                return  # the process was killed while this one was in flight: not acknowledged
            if response.status_code == 200:
                acknowledged.append(document["source"])

    writer = threading.Thread(target=ingest_one_by_one)
    writer.start()
    while len(acknowledged) < 8:
        time.sleep(0.05)
        assert writer.is_alive(), process.log_tail()
    time.sleep(0.15)  # into the next request: embedding, or writing the upsert
    os.killpg(process.pid, signal.SIGKILL)
    stop.set()
    writer.join(timeout=120)
    stop_process(process)

    process, url = _start(started, folder, model_dir, tmp_path / "logs")
    try:
        expected = {d["source"]: len(chunk_markdown(d["source"], d["text"])) for d in documents}
        for source in acknowledged:
            assert _chunks_of(url, source) == expected[source], source
        in_flight = documents[len(acknowledged)]["source"]
        assert _chunks_of(url, in_flight) in (0, expected[in_flight])  # all of it or none
        for never_sent in documents[len(acknowledged) + 1 :]:
            assert _chunks_of(url, never_sent["source"]) == 0
        total = requests.get(f"{url}/health", timeout=30).json()["points"]
        assert total in (sum(expected[s] for s in acknowledged), sum(expected[s] for s in [*acknowledged, in_flight]))
    finally:
        stop_process(process)


def test_concurrent_first_requests_build_one_service_and_search_in_parallel(model_dir, tmp_path, started):
    process, url = _start(started, tmp_path / "edge", model_dir, tmp_path / "logs", warm=False)
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:  # the first requests of the instance, together
            first = list(pool.map(lambda _: requests.post(f"{url}/search", json={"query": "q"}, timeout=120), range(8)))
        assert [r.status_code for r in first] == [200] * 8, [r.text for r in first]
        requests.post(f"{url}/ingest", json={"documents": [_document(n) for n in range(6)]}, timeout=120)
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda n: _chunks_of(url, f"notes/{n % 6}.md"), range(48)))
        assert answers == [6] * 48
    finally:
        stop_process(process)
