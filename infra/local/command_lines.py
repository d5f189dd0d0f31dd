"""The command line of every process the local stack (and the benchmarks and bundle tests) starts, in one place."""

from __future__ import annotations

import sys
from pathlib import Path

WORKER_SOURCE = "functions/worker/main.py"
RETRIEVAL_SOURCE = "functions/retrieval/main.py"


def function_argv(target: str, signature: str, port: int, *, source: str | None = None) -> list[str]:
    """functions-framework serving one entry point on 127.0.0.1:``port``; without ``source``, the ``main.py`` of the
    working directory (a deploy bundle, as Cloud Functions runs it)."""
    argv = [sys.executable, "-m", "functions_framework"]
    if source is not None:
        argv += ["--source", source]
    return [*argv, "--target", target, "--signature-type", signature, "--host", "127.0.0.1", "--port", str(port)]


def worker_argv(target: str, port: int) -> list[str]:
    """One entry point of functions/worker/main.py: ``handle_task`` or ``handle_dead_letter``."""
    return function_argv(target, "cloudevent", port, source=WORKER_SOURCE)


def retrieval_argv(port: int) -> list[str]:
    return function_argv("retrieval", "http", port, source=RETRIEVAL_SOURCE)


def metric_service_argv(port: int, points_file: Path) -> list[str]:
    """The local Cloud Monitoring MetricService (infra/local/metric_service.py), keeping its points in a file."""
    script = Path(__file__).with_name("metric_service.py")
    return [sys.executable, str(script), "--port", str(port), "--points-file", str(points_file)]


def pubsub_emulator_argv(sdk: Path, port: int) -> list[str]:
    """The Pub/Sub emulator's launcher, directly (gcloud's wrapper is slower and writes to ~/.config/gcloud)."""
    return [str(sdk / "platform/pubsub-emulator/bin/cloud-pubsub-emulator"), "--host=127.0.0.1", f"--port={port}"]


def firestore_emulator_argv(sdk: Path, port: int) -> list[str]:
    launcher = sdk / "platform/cloud-firestore-emulator/cloud_firestore_emulator"
    return [str(launcher), "start", "--host=127.0.0.1", f"--port={port}"]
