"""Cold start of the worker: a new process from spawn to its first task completed, against the floor.

    .venv/bin/python scripts/bench_coldstart.py [--runs 5]

It starts a local stack (emulators, retrieval with knowledge/ ingested) and the local OpenAI-compatible
server (instant answers), then, ``--runs`` times, spawns a fresh worker process (functions-framework, as
the stack runs it) and sends it one Pub/Sub push envelope as soon as its port accepts: the time from spawn
to the response (the task is stored by then) is the cold start. The floor is a bare interpreter importing
only what the worker cannot do without (functions-framework, the Firestore client, the openai SDK),
measured the same number of times. Medians of both and their ratio are the last line, as JSON.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "shared"), str(REPO / "infra" / "local")]

from command_lines import worker_argv  # noqa: E402
from fake_openai import FakeOpenAI  # noqa: E402
from processes import free_port  # noqa: E402

from stack import LocalStack  # noqa: E402

FLOOR_IMPORTS = "import functions_framework, google.cloud.firestore, openai"
PROMPT = "Design a logging architecture for microservices"


def floor_s(python: str) -> float:
    started = time.perf_counter()
    subprocess.run([python, "-c", FLOOR_IMPORTS], check=True)
    return time.perf_counter() - started


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the worker exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.005)
    raise RuntimeError(f"the worker did not listen on {port} within {timeout_s}s")


def cold_start_s(env: dict[str, str], project: str, topic: str, log_path: Path) -> tuple[float, float]:
    """(spawn to first task stored, of which spawn to listening)."""
    port = free_port()
    task_id = f"cold-{uuid.uuid4().hex[:8]}"
    body = json.dumps({"prompt": PROMPT, "task_id": task_id}).encode()
    envelope = {
        "subscription": f"projects/{project}/subscriptions/{topic}-worker",
        "message": {"data": base64.b64encode(body).decode(), "messageId": task_id, "attributes": {}},
    }
    with log_path.open("ab") as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            worker_argv("handle_task", port), env=env, cwd=REPO, stdout=log, stderr=log
        )
        try:
            wait_for_port(port, process)
            listening = time.perf_counter() - started
            response = requests.post(f"http://127.0.0.1:{port}/projects/{project}/topics/{topic}", json=envelope,
                                     timeout=60)  # fmt: skip
            elapsed = time.perf_counter() - started
            response.raise_for_status()
        finally:
            process.kill()
            process.wait()
    return elapsed, listening


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="cold starts (and floor runs) to take the median of")
    args = parser.parse_args(argv)

    from atlas import cli
    from atlas.config import ChainEntry, chain_to_env

    fake = FakeOpenAI().start()
    chain = chain_to_env((ChainEntry(provider="openai_compatible", model="gpt-4o-mini", base_url=fake.base_url),))
    state_dir = REPO / ".atlas" / "bench-coldstart"
    try:
        with LocalStack(state_dir, worker_env={"ATLAS_LLM_CHAIN": chain}) as state:
            os.environ.update(state.client_env())
            assert cli.main(["ingest", "--quiet", str(REPO / "knowledge")]) == 0
            env = {
                **os.environ,
                **state.client_env(),
                "ATLAS_LLM_CHAIN": chain,
                "PYTHONUNBUFFERED": "1",
            }
            env.pop("PUBSUB_EMULATOR_HOST", None)  # the worker never publishes
            colds, floors, listens = [], [], []
            for run in range(args.runs):
                floors.append(floor_s(sys.executable))
                cold, listening = cold_start_s(env, state.project, state.topic, state_dir / "coldstart.log")
                colds.append(cold)
                listens.append(listening)
                print(
                    f"run {run + 1}: cold start {cold:.2f} s (listening after {listening:.2f} s), "
                    f"floor {floors[-1]:.2f} s",
                    file=sys.stderr,
                )
    finally:
        fake.stop()
    cold, floor = statistics.median(colds), statistics.median(floors)
    print(f"worker cold start to first task: {cold:.2f} s; floor ({FLOOR_IMPORTS}): {floor:.2f} s")
    listening = statistics.median(listens)
    print(json.dumps({"runs": args.runs, "cold_start_s": round(cold, 3), "listening_s": round(listening, 3),
                      "first_task_s": round(cold - listening, 3), "floor_s": round(floor, 3),
                      "ratio": round(cold / floor, 2), "llm_requests": len(fake.completions())}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
