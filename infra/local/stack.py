#!/usr/bin/env python3
"""The local Atlas stack: real Pub/Sub and Firestore emulators, both functions under functions-framework.

It starts each process in its own process group on a free port (or the ports given), waits until each
answers, creates the task topic, the dead-letter topic (with a subscription that keeps dead letters for
inspection) and a push subscription to the worker with a retry policy and a dead-letter policy, exactly
as Terraform does in the cloud. ``stop`` ends every process group it started.

Used three ways: ``make demo`` (scripts/demo.py), the end-to-end tests, and ``make up`` / ``make down``::

    python infra/local/stack.py up      # start, write .atlas/stack/state.json, print the env to use
    python infra/local/stack.py env     # print export lines for a running stack
    python infra/local/stack.py down    # stop what `up` started
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from atlas import config, limits

REPO = Path(__file__).resolve().parents[2]
DEFAULT_STATE_DIR = REPO / ".atlas" / "stack"
DEFAULT_PROJECT = "demo-atlas"
DEFAULT_TOPIC = config.DEFAULT_TOPIC
# The embedding model every local run uses unless ATLAS_EMBEDDING_MODEL_DIR names another: the int8 one that
# `make setup` builds and the retrieval bundle ships (same quality as fp32, docs/retrieval.md).
DEFAULT_MODEL_DIR = REPO / ".atlas" / "models" / "all-MiniLM-L6-v2-int8"
ACK_DEADLINE_S = limits.ACK_DEADLINE_S  # atlas/limits.py: task deadline < function timeout <= ack deadline
MAX_DELIVERY_ATTEMPTS = limits.MAX_DELIVERY_ATTEMPTS
MIN_BACKOFF_S = 1
MAX_BACKOFF_S = 10
START_TIMEOUT_S = 90
METRICS_INTERVAL_S = 5.0  # locally, as often as Cloud Monitoring allows: the 5-second rule is exercised


class StackError(RuntimeError):
    """A part of the local stack did not start; the message carries the end of its log."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
class Process:
    name: str
    pid: int  # also the process group id: every process is started in a new session
    log: str

    def alive(self) -> bool:
        try:
            os.killpg(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(Path(self.log).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def start_process(name: str, argv: list[str], env: Mapping[str, str], log_dir: Path) -> Process:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with open(log_path, "ab") as log:
        popen = subprocess.Popen(
            argv,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=REPO,
        )
    return Process(name=name, pid=popen.pid, log=str(log_path))


def stop_process(process: Process, timeout_s: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left after ``timeout_s``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                os.waitpid(process.pid, os.WNOHANG)
            except ChildProcessError:
                pass
            if not process.alive():
                return
            time.sleep(0.1)


class FrontEnd:
    """A minimal front end for the worker instances, as Cloud Run's: forwards each request to the next
    instance in turn, waiting (up to ``wait_s``) for one to accept connections while it restarts; a request
    whose instance died answers 503."""

    def __init__(self, port: int, backend_ports: list[int], wait_s: float = 60.0) -> None:
        import http.client
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                return None

            def do_GET(self) -> None:  # noqa: N802
                self._forward()

            def do_POST(self) -> None:  # noqa: N802
                self._forward()

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                deadline = time.monotonic() + front.wait_s
                status, payload = 503, b"worker unavailable"
                while True:
                    connection = http.client.HTTPConnection("127.0.0.1", front.next_backend(), timeout=600)
                    try:
                        connection.request(self.command, self.path, body=body, headers=headers)
                    except ConnectionRefusedError:
                        connection.close()
                        if time.monotonic() > deadline:
                            break
                        time.sleep(0.2)
                        continue
                    try:
                        response = connection.getresponse()
                        status, payload = response.status, response.read()
                    except (OSError, http.client.HTTPException):
                        status, payload = 503, b"the worker died while handling the request"
                    finally:
                        connection.close()
                    break
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._backends = itertools.cycle(backend_ports)
        self._backends_lock = threading.Lock()
        self.wait_s = wait_s

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                return None  # the emulator drops idle keep-alive connections: not an error

        self._server = Server(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="stack-front-end", daemon=True)

    def next_backend(self) -> int:
        with self._backends_lock:
            return next(self._backends)

    def start(self) -> FrontEnd:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _leader_exited(process: Process) -> bool:
    """Whether the group's leader (a child of this process) has exited; reaps it if so."""
    try:
        pid, _ = os.waitpid(process.pid, os.WNOHANG)
    except ChildProcessError:
        return not process.alive()
    return pid == process.pid


def wait_for_http(url: str, process: Process | None, timeout_s: float = START_TIMEOUT_S, ok_any: bool = False) -> None:
    """Wait until ``url`` answers (200, or any HTTP status when ``ok_any``); fail early if the process died."""
    deadline = time.monotonic() + timeout_s
    last_error = ""
    while time.monotonic() < deadline:
        if process is not None and not process.alive():
            raise StackError(f"{process.name} exited while starting; its log ends with:\n{process.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            if ok_any:
                return
            last_error = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            last_error = str(exc)
        time.sleep(0.2)
    tail = process.log_tail() if process else ""
    raise StackError(f"{url} did not answer within {timeout_s}s ({last_error}); log:\n{tail}")


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

    def client_env(self) -> dict[str, str]:
        """The environment a client (the atlas CLI, a test) needs to talk to this stack."""
        return {
            "PUBSUB_EMULATOR_HOST": self.pubsub_host,
            "FIRESTORE_EMULATOR_HOST": self.firestore_host,
            "ATLAS_PROJECT": self.project,
            "ATLAS_TOPIC": self.topic,
            "ATLAS_RETRIEVAL_URL": self.retrieval_url,
        }


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
    ) -> None:
        self.state_dir = state_dir
        self.project = project
        self.topic = topic
        self._pubsub_host = pubsub_host
        self._firestore_host = firestore_host
        self._qdrant_path = qdrant_path or state_dir / "qdrant"
        self._worker_env = dict(worker_env or {})
        self._retrieval_env = dict(retrieval_env or {})
        self._ack_deadline_s = ack_deadline_s
        self._backoff_s = (min_backoff_s, max_backoff_s)
        self._supervise = supervise
        self._instances = worker_instances
        self._metrics_interval_s = metrics_interval_s
        self._specs: dict[str, tuple[list[str], dict[str, str]]] = {}  # what the supervisor restarts
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None
        self.restarts: dict[str, int] = {}
        self._front: FrontEnd | None = None
        self._ports = dict(ports or {})
        self.state: StackState | None = None

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
        pubsub_host, firestore_host = self._pubsub_host, self._firestore_host
        emulators = start_emulators(
            logs, base_env, pubsub=pubsub_host is None, firestore=firestore_host is None, ports=self._ports
        )
        processes.extend(emulators.processes)
        pubsub_host = pubsub_host or emulators.pubsub_host
        firestore_host = firestore_host or emulators.firestore_host
        assert pubsub_host and firestore_host

        retrieval_port, worker_port = self._port("retrieval"), self._port("worker")
        # Supervised, the worker listens behind a front end (as Cloud Run's): Pub/Sub pushes to the front end,
        # which never refuses a connection while the worker restarts (the emulator stops pushing to an
        # endpoint that refused many connections in a row).
        fronted = self._supervise or self._instances > 1
        backend_ports = [free_port() for _ in range(self._instances)] if fronted else [worker_port]
        dead_letter_port = self._port("dead_letter")
        retrieval_url = f"http://127.0.0.1:{retrieval_port}"
        functions_framework = str(Path(sys.executable).with_name("functions-framework"))
        retrieval = start_process(
            "retrieval",
            [
                functions_framework,
                "--source",
                "functions/retrieval/main.py",
                "--target",
                "retrieval",
                "--signature-type",
                "http",
                "--host",
                "127.0.0.1",
                "--port",
                str(retrieval_port),
            ],
            retrieval_env(base_env, self._qdrant_path, self._retrieval_env),
            logs,
        )
        processes.append(retrieval)
        worker_env = {
            **base_env,
            "FIRESTORE_EMULATOR_HOST": firestore_host,
            "ATLAS_PROJECT": self.project,
            "ATLAS_TOPIC": self.topic,
            "ATLAS_RETRIEVAL_URL": retrieval_url,
            "ATLAS_MONITORING_ENDPOINT": monitoring_endpoint,
            "ATLAS_METRICS_INTERVAL_S": str(self._metrics_interval_s),
            **self._worker_env,
        }
        workers = []
        for index, port in enumerate(backend_ports):
            name = "worker" if len(backend_ports) == 1 else f"worker-{index + 1}"
            self._specs[name] = (worker_argv(functions_framework, "handle_task", port), worker_env)
            workers.append(start_process(name, *self._specs[name], logs))
        processes.extend(workers)
        dead_letter_argv = worker_argv(functions_framework, "handle_dead_letter", dead_letter_port)
        self._specs["dead-letter"] = (dead_letter_argv, {"ATLAS_METRICS_JOB": "atlas-dead-letter", **worker_env})
        dead_letter = start_process("dead-letter", *self._specs["dead-letter"], logs)
        processes.append(dead_letter)
        wait_for_http(f"{retrieval_url}/health", retrieval)
        for worker, port in zip(workers, backend_ports, strict=True):
            wait_for_http(f"http://127.0.0.1:{port}/", worker, ok_any=True)
        if fronted:
            self._front = FrontEnd(worker_port, backend_ports).start()
        wait_for_http(f"http://127.0.0.1:{dead_letter_port}/", dead_letter, ok_any=True)

        state = StackState(
            project=self.project,
            topic=self.topic,
            dlq_topic=f"{self.topic}-dlq",
            subscription=f"{self.topic}-worker",
            dlq_subscription=f"{self.topic}-dlq-inspect",
            pubsub_host=pubsub_host,
            firestore_host=firestore_host,
            retrieval_url=retrieval_url,
            worker_url=f"http://127.0.0.1:{worker_port}",
            processes=processes,
            dead_letter_url=f"http://127.0.0.1:{dead_letter_port}",
            dlq_push_subscription=f"{self.topic}-dlq-worker",
            monitoring_endpoint=monitoring_endpoint,
            metrics_points=metrics_points,
        )
        create_subscriptions(state, ack_deadline_s=self._ack_deadline_s, backoff_s=self._backoff_s)
        self.state = state
        if self._supervise:
            self._supervisor = threading.Thread(target=self._watch, args=(logs,), name="stack-supervisor", daemon=True)
            self._supervisor.start()
        return state

    def _watch(self, logs: Path) -> None:
        """Restart the worker and the dead-letter handler when they die (as Cloud Run replaces an instance)."""
        while not self._stopping.wait(0.25):
            state = self.state
            if state is None:
                return
            for index, process in enumerate(list(state.processes)):
                if process.name not in self._specs or not _leader_exited(process):
                    continue
                try:
                    os.killpg(process.pid, signal.SIGKILL)  # what is left of the group (gunicorn's workers)
                except ProcessLookupError:
                    pass
                if self._stopping.is_set():
                    return
                state.processes[index] = start_process(process.name, *self._specs[process.name], logs)
                self.restarts[process.name] = self.restarts.get(process.name, 0) + 1
                print(f"stack: {process.name} died; restarted it", file=sys.stderr, flush=True)

    def stop(self) -> None:
        self._stopping.set()
        if self._front is not None:
            self._front.stop()
            self._front = None
        if self._supervisor is not None:
            self._supervisor.join(timeout=5)
        if self.state is not None:
            for process in reversed(self.state.processes):
                stop_process(process)
            self.state = None


def retrieval_env(base_env: Mapping[str, str], qdrant_path: Path, overrides: Mapping[str, str]) -> dict[str, str]:
    """The retrieval function's environment: its index folder, and the model the environment names
    (``ATLAS_EMBEDDING_MODEL_DIR``), else the int8 one ``make setup`` builds."""
    return {
        "ATLAS_EMBEDDING_MODEL_DIR": str(DEFAULT_MODEL_DIR),
        **base_env,
        "ATLAS_QDRANT_PATH": str(qdrant_path),
        **overrides,
    }


def worker_argv(functions_framework: str, target: str, port: int) -> list[str]:
    """functions-framework serving one entry point of functions/worker/main.py."""
    return [
        functions_framework,
        "--source",
        "functions/worker/main.py",
        "--target",
        target,
        "--signature-type",
        "cloudevent",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]


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
    process = start_process(
        "metric-service",
        [
            sys.executable,
            str(Path(__file__).with_name("metric_service.py")),
            "--port",
            str(port),
            "--points-file",
            str(points),
        ],
        env,
        state_dir / "logs",
    )
    processes.append(process)
    endpoint = f"127.0.0.1:{port}"
    wait_for_grpc(endpoint, process)
    return endpoint, str(points)


def wait_for_grpc(endpoint: str, process: Process, timeout_s: float = START_TIMEOUT_S) -> None:
    import grpc

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not process.alive():
            raise StackError(f"{process.name} exited while starting; its log ends with:\n{process.log_tail()}")
        channel = grpc.insecure_channel(endpoint)
        try:
            grpc.channel_ready_future(channel).result(timeout=1)
            return
        except grpc.FutureTimeoutError:
            continue
        finally:
            channel.close()
    raise StackError(f"{process.name} did not listen on {endpoint} within {timeout_s}s:\n{process.log_tail()}")


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
            process = start_process(
                "pubsub-emulator",
                [str(sdk / "platform/pubsub-emulator/bin/cloud-pubsub-emulator"), "--host=127.0.0.1", f"--port={port}"],
                env,
                log_dir,
            )
            emulators.processes.append(process)
            emulators.pubsub_host = f"127.0.0.1:{port}"
        if firestore:
            port = ports.get("firestore") or free_port()
            process = start_process(
                "firestore-emulator",
                [
                    str(sdk / "platform/cloud-firestore-emulator/cloud_firestore_emulator"),
                    "start",
                    "--host=127.0.0.1",
                    f"--port={port}",
                ],
                env,
                log_dir,
            )
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


def create_subscriptions(
    state: StackState,
    *,
    ack_deadline_s: int = ACK_DEADLINE_S,
    backoff_s: tuple[int, int] = (MIN_BACKOFF_S, MAX_BACKOFF_S),
) -> None:
    """Topic, dead-letter topic and the worker's push subscription, as Terraform defines them.

    The dead-letter topic has two subscriptions: a push one to the dead-letter handler (records the task as
    failed) and a pull one that keeps every dead letter for inspection and ``atlas replay-dlq``.
    """
    import grpc
    from google.api_core.exceptions import AlreadyExists
    from google.pubsub_v1 import PublisherClient, SubscriberClient
    from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport
    from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

    channel = grpc.insecure_channel(state.pubsub_host)
    publisher = PublisherClient(transport=PublisherGrpcTransport(channel=channel))
    subscriber = SubscriberClient(transport=SubscriberGrpcTransport(channel=channel))
    topic = f"projects/{state.project}/topics/{state.topic}"
    dlq_topic = f"projects/{state.project}/topics/{state.dlq_topic}"
    for name in (topic, dlq_topic):
        try:
            publisher.create_topic(name=name)
        except AlreadyExists:
            pass
    requests = [
        {"name": f"projects/{state.project}/subscriptions/{state.dlq_subscription}", "topic": dlq_topic},
        {
            "name": f"projects/{state.project}/subscriptions/{state.subscription}",
            "topic": topic,
            # The topic in the path gives the CloudEvent a realistic source (//pubsub.googleapis.com/projects/..).
            "push_config": {"push_endpoint": f"{state.worker_url}/projects/{state.project}/topics/{state.topic}"},
            "ack_deadline_seconds": ack_deadline_s,
            "retry_policy": {
                "minimum_backoff": {"seconds": backoff_s[0]},
                "maximum_backoff": {"seconds": backoff_s[1]},
            },
            "dead_letter_policy": {"dead_letter_topic": dlq_topic, "max_delivery_attempts": MAX_DELIVERY_ATTEMPTS},
        },
    ]
    if state.dead_letter_url:
        requests.append(
            {
                "name": f"projects/{state.project}/subscriptions/{state.dlq_push_subscription}",
                "topic": dlq_topic,
                "push_config": {
                    "push_endpoint": f"{state.dead_letter_url}/projects/{state.project}/topics/{state.dlq_topic}"
                },
                "ack_deadline_seconds": 60,
                "retry_policy": {"minimum_backoff": {"seconds": backoff_s[0]}, "maximum_backoff": {"seconds": 60}},
            }
        )
    for request in requests:
        try:
            subscriber.create_subscription(request=request)
        except AlreadyExists:
            pass
    channel.close()


def _state_file(state_dir: Path) -> Path:
    return state_dir / "state.json"


def _cmd_up(args: argparse.Namespace) -> int:
    state_file = _state_file(args.state_dir)
    if state_file.exists():
        print(f"a stack is already recorded in {state_file}; run `make down` first", file=sys.stderr)
        return 1
    stack = LocalStack(
        args.state_dir,
        qdrant_path=args.qdrant_path,
        ports={
            k: v
            for k, v in (
                ("pubsub", args.pubsub_port),
                ("firestore", args.firestore_port),
                ("retrieval", args.retrieval_port),
                ("worker", args.worker_port),
                ("dead_letter", args.dead_letter_port),
                ("metrics", args.metrics_port),
            )
            if v
        },
    )
    state = stack.start()
    state_file.write_text(json.dumps(asdict(state), indent=2))
    print(f"Atlas local stack is up (logs in {args.state_dir / 'logs'}). To use it from a shell:")
    print(f'  eval "$({sys.executable} {Path(__file__).relative_to(REPO)} env)"')
    print('  atlas ingest knowledge/ && atlas submit "Design a logging architecture for microservices" --wait')
    return 0


def _load_state(state_dir: Path) -> StackState | None:
    state_file = _state_file(state_dir)
    if not state_file.exists():
        return None
    raw = json.loads(state_file.read_text())
    raw["processes"] = [Process(**p) for p in raw.get("processes", [])]
    return StackState(**raw)


def _cmd_env(args: argparse.Namespace) -> int:
    state = _load_state(args.state_dir)
    if state is None:
        print("no stack is running: `make up` starts one", file=sys.stderr)
        return 1
    for key, value in state.client_env().items():
        print(f"export {key}={value}")
    mermaid = REPO / ".atlas" / "mermaid" / "mermaid.min.js"  # fetched by `make setup`
    if mermaid.is_file():
        print(f"export ATLAS_MERMAID_JS={mermaid}")
    return 0


def _cmd_down(args: argparse.Namespace) -> int:
    state = _load_state(args.state_dir)
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
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the stack and leave it running")
    for name in ("pubsub", "firestore", "retrieval", "worker", "dead_letter", "metrics"):
        up.add_argument(f"--{name}-port", type=int, default=int(os.environ.get(f"ATLAS_LOCAL_{name.upper()}_PORT", 0)))
    up.add_argument("--qdrant-path", type=Path, help="the index folder (default: STATE_DIR/qdrant)")
    commands.add_parser("env", help="print export lines for a running stack")
    commands.add_parser("down", help="stop the stack that `up` started")
    args = parser.parse_args(argv)
    return {"up": _cmd_up, "env": _cmd_env, "down": _cmd_down}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
