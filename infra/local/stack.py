#!/usr/bin/env python3
"""The local Atlas stack: real Pub/Sub and Firestore emulators, both functions under functions-framework.

It starts each process in its own process group on a free port (or the ports given), waits until each
answers, creates the task topic, the dead-letter topic (with a subscription that keeps dead letters for
inspection) and a push subscription to the worker with a retry policy and a dead-letter policy, exactly
as Terraform does in the cloud. ``stop`` ends every process group it started.

Its parts, one module each: ``processes`` (process groups and supervision), ``command_lines`` (every
process's command line), ``readiness`` (waiting until a process answers), ``emulators`` (Pub/Sub, Firestore,
the MetricService), ``front_end`` (the worker instances' front end) and ``pubsub_setup`` (topics and
subscriptions); this module puts them together.

Used three ways: ``make demo`` (scripts/demo.py), the end-to-end tests, and ``make up`` / ``make down``::

    python infra/local/stack.py up      # start, write .atlas/stack/state.json, print the env to use
    python infra/local/stack.py env     # print export lines for a running stack
    python infra/local/stack.py down    # stop what `up` started
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from command_lines import retrieval_argv, worker_argv
from emulators import start_emulators, start_metric_service
from front_end import FrontEnd
from processes import REPO, Process, Spec, Supervisor, free_port, start_process, stop_process
from pubsub_setup import ACK_DEADLINE_S, MAX_BACKOFF_S, MAX_DELIVERY_ATTEMPTS, MIN_BACKOFF_S, create_subscriptions
from readiness import StackError, wait_for_http

from atlas import config
from atlas.config import ChainEntry, chain_to_env

# What the tests and scripts use; the process helpers are re-exported from their modules for them.
__all__ = [
    "ACK_DEADLINE_S",
    "DEFAULT_MODEL_DIR",
    "DEFAULT_STATE_DIR",
    "MAX_DELIVERY_ATTEMPTS",
    "REPO",
    "LocalStack",
    "Process",
    "StackError",
    "StackState",
    "free_port",
    "load_state",
    "retrieval_env",
    "start_emulators",
    "start_process",
    "stop_process",
    "wait_for_http",
]

DEFAULT_STATE_DIR = REPO / ".atlas" / "stack"
DEFAULT_PROJECT = "demo-atlas"
DEFAULT_TOPIC = config.DEFAULT_TOPIC
REHEARSAL_MODEL = "gpt-4o-mini"  # the model name the rehearsal's chain asks the local server for
# The embedding model every local run uses unless ATLAS_EMBEDDING_MODEL_DIR names another: the int8 one that
# `make setup` builds and the retrieval bundle ships (same quality as fp32, docs/retrieval.md).
DEFAULT_MODEL_DIR = REPO / ".atlas" / "models" / "all-MiniLM-L6-v2-int8"
METRICS_INTERVAL_S = 5.0  # locally, as often as Cloud Monitoring allows: the 5-second rule is exercised
PORT_NAMES = ("pubsub", "firestore", "retrieval", "worker", "dead_letter", "metrics")


@dataclass
class StackState:
    project: str
    topic: str
    dlq_topic: str
    subscription: str
    dlq_subscription: str
    pubsub_host: str
    firestore_host: str
    retrieval_url: str
    worker_url: str
    processes: list[Process] = field(default_factory=list)
    dead_letter_url: str = ""  # the dead-letter handler (functions/worker/main.py handle_dead_letter)
    dlq_push_subscription: str = ""  # pushes the dead-letter topic to it
    monitoring_endpoint: str = ""  # the MetricService the functions write their metrics to
    metrics_points: str = ""  # its JSON lines of points, when the stack started it (infra/local/metric_service.py)
    llm_url: str = ""  # the rehearsal's OpenAI-compatible server (`up --rehearsal`), which the chain points at

    def client_env(self) -> dict[str, str]:
        """The environment a client (the atlas CLI, a test) needs to talk to this stack."""
        return {
            "PUBSUB_EMULATOR_HOST": self.pubsub_host,
            "FIRESTORE_EMULATOR_HOST": self.firestore_host,
            "ATLAS_PROJECT": self.project,
            "ATLAS_TOPIC": self.topic,
            "ATLAS_RETRIEVAL_URL": self.retrieval_url,
        }


def retrieval_env(base_env: Mapping[str, str], qdrant_path: Path, overrides: Mapping[str, str]) -> dict[str, str]:
    """The retrieval function's environment: its index folder, and the model the environment names
    (``ATLAS_EMBEDDING_MODEL_DIR``), else the int8 one ``make setup`` builds."""
    return {
        "ATLAS_EMBEDDING_MODEL_DIR": str(DEFAULT_MODEL_DIR),
        **base_env,
        "ATLAS_QDRANT_PATH": str(qdrant_path),
        **overrides,
    }


@dataclass(frozen=True)
class _Functions:
    """The functions' processes and where they listen."""

    processes: list[Process]
    retrieval_url: str
    worker_url: str
    dead_letter_url: str


class LocalStack:
    """Starts and stops the local stack. Give ``pubsub_host``/``firestore_host`` to reuse running emulators."""

    def __init__(
        self,
        state_dir: Path = DEFAULT_STATE_DIR,
        *,
        project: str = DEFAULT_PROJECT,
        topic: str = DEFAULT_TOPIC,
        pubsub_host: str | None = None,
        firestore_host: str | None = None,
        qdrant_path: Path | None = None,
        worker_env: Mapping[str, str] | None = None,
        retrieval_env: Mapping[str, str] | None = None,
        ack_deadline_s: int = ACK_DEADLINE_S,
        ports: Mapping[str, int] | None = None,
        min_backoff_s: int = MIN_BACKOFF_S,
        max_backoff_s: int = MAX_BACKOFF_S,
        supervise: bool = False,
        worker_instances: int = 1,
        metrics_interval_s: float = METRICS_INTERVAL_S,
        rehearsal: bool = False,
    ) -> None:
        self.state_dir = state_dir
        self._rehearsal = rehearsal  # start the local OpenAI-compatible server and point the chain at it
        self.project = project
        self.topic = topic
        self._emulator_hosts = (pubsub_host, firestore_host)
        self._qdrant_path = qdrant_path or state_dir / "qdrant"
        self._worker_env = dict(worker_env or {})
        self._retrieval_env = dict(retrieval_env or {})
        self._ack_deadline_s = ack_deadline_s
        self._backoff_s = (min_backoff_s, max_backoff_s)
        self._supervise = supervise
        self._instances = worker_instances
        self._metrics_interval_s = metrics_interval_s
        self._specs: dict[str, Spec] = {}  # what the supervisor restarts
        self._supervisor: Supervisor | None = None
        self._front: FrontEnd | None = None
        self._ports = dict(ports or {})
        self.state: StackState | None = None

    @property
    def restarts(self) -> dict[str, int]:
        """How often the supervisor restarted each process (by name)."""
        return self._supervisor.restarts if self._supervisor is not None else {}

    def _port(self, name: str) -> int:
        return self._ports.get(name) or free_port()

    def __enter__(self) -> StackState:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> StackState:
        processes: list[Process] = []
        try:
            return self._start(processes)
        except BaseException:
            for process in reversed(processes):
                stop_process(process)
            raise

    def _start(self, processes: list[Process]) -> StackState:
        logs = self.state_dir / "logs"
        base_env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # Started first, so stopped last: the functions' final metrics writes at shutdown still reach it.
        monitoring_endpoint, metrics_points = start_metric_service(self.state_dir, base_env, processes, self._ports)
        pubsub_host, firestore_host = self._emulator_hosts
        emulators = start_emulators(
            logs, base_env, pubsub=pubsub_host is None, firestore=firestore_host is None, ports=self._ports
        )
        processes.extend(emulators.processes)
        pubsub_host = pubsub_host or emulators.pubsub_host
        firestore_host = firestore_host or emulators.firestore_host
        assert pubsub_host and firestore_host
        worker_env = {
            **base_env,
            "FIRESTORE_EMULATOR_HOST": firestore_host,
            "ATLAS_PROJECT": self.project,
            "ATLAS_TOPIC": self.topic,
            "ATLAS_MONITORING_ENDPOINT": monitoring_endpoint,
            "ATLAS_METRICS_INTERVAL_S": str(self._metrics_interval_s),
        }
        llm_url = ""
        if self._rehearsal:
            llm_url = self._start_rehearsal_llm(logs, base_env, processes)
            worker_env["ATLAS_LLM_CHAIN"] = chain_to_env(
                (ChainEntry(provider="openai_compatible", model=REHEARSAL_MODEL, base_url=llm_url),)
            )
        functions = self._start_functions(logs, base_env, worker_env, processes)
        state = StackState(
            project=self.project,
            topic=self.topic,
            dlq_topic=f"{self.topic}-dlq",
            subscription=f"{self.topic}-worker",
            dlq_subscription=f"{self.topic}-dlq-inspect",
            pubsub_host=pubsub_host,
            firestore_host=firestore_host,
            retrieval_url=functions.retrieval_url,
            worker_url=functions.worker_url,
            processes=processes,
            dead_letter_url=functions.dead_letter_url,
            dlq_push_subscription=f"{self.topic}-dlq-worker",
            monitoring_endpoint=monitoring_endpoint,
            metrics_points=metrics_points,
            llm_url=llm_url,
        )
        create_subscriptions(state, ack_deadline_s=self._ack_deadline_s, backoff_s=self._backoff_s)
        self.state = state
        if self._supervise:
            self._supervisor = Supervisor(state.processes, self._specs, logs).start()
        return state

    def _start_rehearsal_llm(self, logs: Path, base_env: dict[str, str], processes: list[Process]) -> str:
        """The local OpenAI-compatible server (infra/local/fake_openai.py): canned designs, streamed at a
        pace a person can follow; one of the stack's processes, so `make down` stops it."""
        port = self._port("llm")
        argv = [sys.executable, str(REPO / "infra" / "local" / "fake_openai.py"), "--port", str(port)]
        process = start_process("rehearsal-llm", argv, base_env, logs)
        processes.append(process)
        wait_for_http(f"http://127.0.0.1:{port}/", process, ok_any=True)
        return f"http://127.0.0.1:{port}/v1"

    def _start_functions(
        self, logs: Path, base_env: dict[str, str], worker_env: dict[str, str], processes: list[Process]
    ) -> _Functions:
        """Retrieval, the worker's instances (behind a front end when supervised or several, as Cloud Run's: it
        never refuses a connection while an instance restarts) and the dead-letter handler, each answering."""
        retrieval_port, worker_port, dead_letter_port = (self._port(n) for n in ("retrieval", "worker", "dead_letter"))
        fronted = self._supervise or self._instances > 1
        backend_ports = [free_port() for _ in range(self._instances)] if fronted else [worker_port]
        retrieval_url = f"http://127.0.0.1:{retrieval_port}"
        environment = retrieval_env(base_env, self._qdrant_path, self._retrieval_env)
        retrieval = start_process("retrieval", retrieval_argv(retrieval_port), environment, logs)
        processes.append(retrieval)
        worker_env = {**worker_env, "ATLAS_RETRIEVAL_URL": retrieval_url, **self._worker_env}
        names = ["worker"] if len(backend_ports) == 1 else [f"worker-{i + 1}" for i in range(len(backend_ports))]
        for name, port in zip(names, backend_ports, strict=True):
            self._specs[name] = Spec(worker_argv("handle_task", port), worker_env)
        dead_letter_env = {"ATLAS_METRICS_JOB": "atlas-dead-letter", **worker_env}
        self._specs["dead-letter"] = Spec(worker_argv("handle_dead_letter", dead_letter_port), dead_letter_env)
        started = {name: start_process(name, spec.argv, spec.env, logs) for name, spec in self._specs.items()}
        processes.extend(started.values())
        wait_for_http(f"{retrieval_url}/health", retrieval)
        for name, port in zip(names, backend_ports, strict=True):
            wait_for_http(f"http://127.0.0.1:{port}/", started[name], ok_any=True)
        if fronted:
            self._front = FrontEnd(worker_port, backend_ports).start()
        wait_for_http(f"http://127.0.0.1:{dead_letter_port}/", started["dead-letter"], ok_any=True)
        return _Functions(
            processes, retrieval_url, f"http://127.0.0.1:{worker_port}", f"http://127.0.0.1:{dead_letter_port}"
        )

    def stop(self) -> None:
        if self._front is not None:
            self._front.stop()
            self._front = None
        if self._supervisor is not None:
            self._supervisor.stop()
        if self.state is not None:
            for process in reversed(self.state.processes):
                stop_process(process)
            self.state = None


def _state_file(state_dir: Path) -> Path:
    return state_dir / "state.json"


def load_state(state_dir: Path) -> StackState | None:
    """The stack `up` recorded in ``state_dir``, if any."""
    state_file = _state_file(state_dir)
    if not state_file.exists():
        return None
    raw = json.loads(state_file.read_text())
    raw["processes"] = [Process(**p) for p in raw.get("processes", [])]
    return StackState(**raw)


def _cmd_up(args: argparse.Namespace) -> int:
    state_file = _state_file(args.state_dir)
    if state_file.exists():
        print(f"a stack is already recorded in {state_file}; run `make down` first", file=sys.stderr)
        return 1
    ports = {name: port for name in PORT_NAMES if (port := getattr(args, f"{name}_port"))}
    state = LocalStack(args.state_dir, qdrant_path=args.qdrant_path, ports=ports, rehearsal=args.rehearsal).start()
    state_file.write_text(json.dumps(asdict(state), indent=2))
    if state.llm_url:
        print(
            f"Rehearsal: the worker's chain is the local OpenAI-compatible server at {state.llm_url} "
            f"(canned designs, the same whatever the prompt; `make down` stops it too)."
        )
    for line in up_message(args.state_dir):
        print(line)
    return 0


# Exports the stack's variables and activates the virtual environment, from any directory of the checkout
# (the `cd` is in the command substitution's subshell: the shell stays where it is). The README shows it as is.
ENV_LINE = 'eval "$(cd "$(git rev-parse --show-toplevel)" && .venv/bin/python infra/local/stack.py env)"'


def up_message(state_dir: Path) -> list[str]:
    """What `make up` prints once the stack is up: the lines the README's newcomer path runs next."""
    try:
        logs = (state_dir / "logs").resolve().relative_to(REPO)
    except ValueError:
        logs = state_dir / "logs"
    return [
        f"Atlas local stack is up (logs in {logs}). To use it from a shell, in any directory of the checkout:",
        f"  {ENV_LINE}    # exports its variables, activates .venv",
        "  atlas ingest knowledge/",
        '  atlas submit "Design a logging architecture for microservices" --wait',
        "Stop it with: make down",
    ]


def _cmd_env(args: argparse.Namespace) -> int:
    state = load_state(args.state_dir)
    if state is None:
        print("no stack is running: `make up` starts one", file=sys.stderr)
        return 1
    for key, value in state.client_env().items():
        print(f"export {key}={value}")
    activate = REPO / ".venv" / "bin" / "activate"  # made by `make setup`: puts `atlas` on the PATH
    if activate.is_file():
        print(f"source {shlex.quote(str(activate))}")
    mermaid = REPO / ".atlas" / "mermaid" / "mermaid.min.js"  # fetched by `make setup`
    if mermaid.is_file():
        print(f"export ATLAS_MERMAID_JS={mermaid}")
    return 0


def _cmd_down(args: argparse.Namespace) -> int:
    state = load_state(args.state_dir)
    if state is None:
        print("no stack is running")
        return 0
    for process in reversed(state.processes):
        stop_process(process)
    _state_file(args.state_dir).unlink()
    print(f"stopped {len(state.processes)} processes")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Start or stop the local Atlas stack.")
    parser.add_argument(
        "--state-dir", type=Path, default=Path(os.environ.get("ATLAS_LOCAL_STATE_DIR") or DEFAULT_STATE_DIR)
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the stack and leave it running")
    for name in PORT_NAMES:
        up.add_argument(f"--{name}-port", type=int, default=int(os.environ.get(f"ATLAS_LOCAL_{name.upper()}_PORT", 0)))
    up.add_argument("--qdrant-path", type=Path, help="the index folder (default: STATE_DIR/qdrant)")
    up.add_argument(
        "--rehearsal",
        action="store_true",
        help="also start the local OpenAI-compatible server (canned designs) and point ATLAS_LLM_CHAIN at it",
    )
    commands.add_parser("env", help="print export lines for a running stack")
    commands.add_parser("down", help="stop the stack that `up` started")
    args = parser.parse_args(argv)
    return {"up": _cmd_up, "env": _cmd_env, "down": _cmd_down}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
