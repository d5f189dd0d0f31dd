#!/usr/bin/env python3
"""`make demo`: one task through the whole local system, end to end.

Starts the local stack (Pub/Sub and Firestore emulators, retrieval and worker under functions-framework),
ingests ``knowledge/``, publishes "Design a logging architecture for microservices" with the real
``gcloud pubsub topics publish`` (endpoint override to the emulator, private gcloud config), follows the
task document to a terminal status, prints it (readable, then one line of JSON) and stops the stack.

Exit code 0 only if the task ended ``succeeded`` (an LLM provider is configured) or ``degraded`` (none
is: a retrieval-only brief).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "infra" / "local"))

from stack import LocalStack, StackState  # noqa: E402

DEFAULT_PROMPT = "Design a logging architecture for microservices"


def gcloud_publish(state: StackState, message: str, config_dir: Path) -> str:
    """Publish with the real gcloud CLI against the emulator; return the message id."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        raise SystemExit("gcloud is not on PATH: install the Google Cloud CLI")
    config_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_PUBSUB": f"http://{state.pubsub_host}/",  # the trailing slash matters
        "CLOUDSDK_AUTH_DISABLE_CREDENTIALS": "true",
        "CLOUDSDK_CORE_PROJECT": state.project,
        "CLOUDSDK_CONFIG": str(config_dir),
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
    }
    command = [gcloud, "pubsub", "topics", "publish", state.topic, f"--message={message}", "--format=value(messageIds)"]
    print("$ " + " ".join(command[:4] + [state.topic, f"--message='{message}'"]), flush=True)
    out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise SystemExit(f"gcloud pubsub topics publish failed: {out.stderr.strip()}")
    return out.stdout.strip().split(";")[0].strip("[]' ")


def run(args: argparse.Namespace) -> int:
    from atlas import cli

    state_dir = REPO / ".atlas" / "demo"
    # A fresh index every run: the demo ingests knowledge/ anyway, and a folder left by an older version
    # (say, from before hybrid search) must not stop it.
    shutil.rmtree(state_dir / "qdrant", ignore_errors=True)
    started = time.monotonic()
    print("Starting the local stack (emulators, retrieval, worker)...", flush=True)
    with LocalStack(state_dir, qdrant_path=state_dir / "qdrant") as state:
        print(
            f"  Pub/Sub emulator {state.pubsub_host}, Firestore emulator {state.firestore_host}, "
            f"retrieval {state.retrieval_url}, worker {state.worker_url} "
            f"({time.monotonic() - started:.1f}s)",
            flush=True,
        )
        os.environ.update(state.client_env())
        print("Ingesting knowledge/ ...", flush=True)
        if cli.main(["ingest", str(REPO / "knowledge")]) != 0:
            print("demo: ingestion failed; logs are in", state_dir / "logs", file=sys.stderr)
            return 1
        message = f'{{"prompt": "{args.prompt}"}}'
        task_id = gcloud_publish(state, message, state_dir / "gcloud")
        print(f"Published task {task_id}; waiting for the worker...", flush=True)
        code = cli.main(["show", task_id, "--wait", "--timeout", str(args.timeout)])
        points = Path(state.metrics_points) if state.metrics_points else None
    # The stack has stopped, so the worker has written its last metrics.
    print(f"demo finished in {time.monotonic() - started:.1f}s (logs: {state_dir / 'logs'})", file=sys.stderr)
    if points is not None and points.is_file():
        lines = points.read_text().splitlines()
        rejected = sum('"rejected": true' in line for line in lines)
        print(
            f"metrics: {len(lines) - rejected} points written to the local MetricService, {rejected} rejected; "
            f"draw them: .venv/bin/python scripts/metrics_report.py {points.relative_to(REPO)}",
            file=sys.stderr,
        )
    return code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompt", default=DEFAULT_PROMPT)
    parser.add_argument("--timeout", type=float, default=300)
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
