"""The Google services the local stack emulates: Pub/Sub and Firestore (Google's emulators), and Cloud
Monitoring's MetricService (ours, infra/local/metric_service.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from command_lines import firestore_emulator_argv, metric_service_argv, pubsub_emulator_argv
from processes import Process, free_port, start_process, stop_process
from readiness import StackError, wait_for_grpc, wait_for_http


def gcloud_sdk_root() -> Path:
    configured = os.environ.get("ATLAS_GCLOUD_SDK_ROOT")
    if configured:
        return Path(configured)
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        raise StackError("gcloud is not on PATH: install the Google Cloud CLI with the pubsub and firestore emulators")
    out = subprocess.run(
        [gcloud, "info", "--format=value(installation.sdk_root)"], capture_output=True, text=True, check=True
    )
    return Path(out.stdout.strip())


@dataclass
class Emulators:
    pubsub_host: str | None = None
    firestore_host: str | None = None
    processes: list[Process] = field(default_factory=list)

    def stop(self) -> None:
        for process in self.processes:
            stop_process(process)


def start_emulators(
    log_dir: Path,
    env: Mapping[str, str],
    *,
    pubsub: bool = True,
    firestore: bool = True,
    ports: Mapping[str, int] | None = None,
) -> Emulators:
    """Start the emulators' Java binaries directly (skipping gcloud's wrapper) and wait until they answer."""
    emulators = Emulators()
    if not (pubsub or firestore):
        return emulators
    sdk = gcloud_sdk_root()
    ports = ports or {}
    try:
        if pubsub:
            port = ports.get("pubsub") or free_port()
            process = start_process("pubsub-emulator", pubsub_emulator_argv(sdk, port), env, log_dir)
            emulators.processes.append(process)
            emulators.pubsub_host = f"127.0.0.1:{port}"
        if firestore:
            port = ports.get("firestore") or free_port()
            process = start_process("firestore-emulator", firestore_emulator_argv(sdk, port), env, log_dir)
            emulators.processes.append(process)
            emulators.firestore_host = f"127.0.0.1:{port}"
        for process, host in zip(
            emulators.processes, filter(None, [emulators.pubsub_host, emulators.firestore_host]), strict=True
        ):
            wait_for_http(f"http://{host}/", process)
    except BaseException:
        emulators.stop()
        raise
    return emulators


def start_metric_service(
    state_dir: Path, env: Mapping[str, str], processes: list[Process], ports: Mapping[str, int]
) -> tuple[str, str]:
    """The MetricService the functions write to: ``ATLAS_MONITORING_ENDPOINT`` when it is set, else a local
    one of ours (infra/local/metric_service.py) started here. Returns its endpoint and its points file."""
    configured = env.get("ATLAS_MONITORING_ENDPOINT")
    if configured:
        return configured, ""
    port = ports.get("metrics") or free_port()
    points = state_dir / "metrics.jsonl"
    points.unlink(missing_ok=True)  # this run's points only
    process = start_process("metric-service", metric_service_argv(port, points), env, state_dir / "logs")
    processes.append(process)
    endpoint = f"127.0.0.1:{port}"
    wait_for_grpc(endpoint, process)
    return endpoint, str(points)
