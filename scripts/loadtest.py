#!/usr/bin/env python3
"""Load and fault test of the local stack: publish tasks (some twice or three times), inject LLM faults,
kill the worker, pause Firestore, and check that every task ends terminal exactly once and is paid once.

It starts a local stack of its own (supervised: a killed worker is restarted, as Cloud Run replaces an
instance), or with ``--use-running`` uses the one ``make up`` recorded in ``.atlas/stack/state.json``
(or the env variables ``make up`` prints); the LLM is the local OpenAI-compatible test server
(infra/local/fake_openai.py), started here. A worker kill needs a supervised stack, so it is refused
with ``--use-running``.

    python scripts/loadtest.py --tasks 100 --duplicates 0.2 --llm-fault-rate 0.2 \\
        --kill-worker-after 30 --restart-firestore-after 60

Progress goes to stderr; the last line on stdout is one JSON object: tasks, succeeded, degraded, failed,
lost (published but not terminal within --timeout), generations (LLM answers sent in full for these
tasks), duplicate_generations (answers beyond the first for a task), throughput_per_s, p50_s, p95_s, and
what was injected.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import UTC
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "shared"), str(REPO / "infra" / "local")]

from fake_openai import FakeOpenAI  # noqa: E402
from metric_points import read_points  # noqa: E402

from atlas.tasks.document import TaskDocument  # noqa: E402
from stack import DEFAULT_STATE_DIR, LocalStack, Process, StackState, load_state  # noqa: E402

TERMINAL = {"succeeded", "degraded", "failed"}
MARKER = re.compile(r"\[load ([A-Za-z0-9_.:-]+)\]")
FIRESTORE_OUTAGE_S = 10
PROMPTS = (
    "Design a logging architecture for microservices",
    "Design a multi-region disaster recovery plan",
    "Design a caching layer for a read-heavy API",
    "Design an event-driven order pipeline",
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=100, help="distinct tasks to publish")
    parser.add_argument("--duplicates", type=float, default=0.0, help="fraction of tasks published 2 or 3 times")
    parser.add_argument("--llm-fault-rate", type=float, default=0.0, help="fraction of LLM requests that fail")
    parser.add_argument("--llm-latency-ms", type=float, default=0.0, help="LLM latency before each answer")
    parser.add_argument("--kill-worker-after", type=int, help="kill -9 the worker after K tasks finished")
    parser.add_argument("--restart-firestore-after", type=int, help="stop Firestore for 10 s after K tasks")
    parser.add_argument("--timeout", type=float, default=900, help="give up on unfinished tasks after this (s)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--use-running", action="store_true", help="use the stack `make up` started")
    parser.add_argument("--state-dir", type=Path, default=None, help="where the started stack keeps its logs")
    parser.add_argument("--worker-instances", type=int, default=2, help="worker instances behind the front end")
    parser.add_argument("--report", type=Path, help="also draw the run's metrics as a PNG (scripts/metrics_report.py)")
    return parser.parse_args(argv)


def running_state() -> StackState:
    state = load_state(DEFAULT_STATE_DIR)
    if state is not None:
        return state
    env = os.environ
    if not (env.get("PUBSUB_EMULATOR_HOST") and env.get("FIRESTORE_EMULATOR_HOST")):
        raise SystemExit("no running stack: no .atlas/stack/state.json and no *_EMULATOR_HOST variables")
    topic = env.get("ATLAS_TOPIC", "atlas-tasks")
    return StackState(
        project=env.get("ATLAS_PROJECT", "demo-atlas"),
        topic=topic,
        dlq_topic=f"{topic}-dlq",
        subscription=f"{topic}-worker",
        dlq_subscription=f"{topic}-dlq-inspect",
        pubsub_host=env["PUBSUB_EMULATOR_HOST"],
        firestore_host=env["FIRESTORE_EMULATOR_HOST"],
        retrieval_url=env.get("ATLAS_RETRIEVAL_URL", "http://127.0.0.1:8081"),
        worker_url="",
    )


def process_named(state: StackState, name: str) -> Process:
    """The process called ``name``, or the first of its instances (``worker`` finds ``worker-1``)."""
    for process in state.processes:
        if process.name == name or process.name.startswith(f"{name}-"):
            return process
    raise SystemExit(f"the stack has no {name} process to act on")


def pause_firestore(state: StackState, seconds: float) -> None:
    """The Firestore emulator keeps its data in memory: it is frozen (SIGSTOP), not killed, for ``seconds``."""
    emulator = process_named(state, "firestore-emulator")
    log(f"Firestore emulator stopped for {seconds:.0f} s")
    os.killpg(emulator.pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        os.killpg(emulator.pid, signal.SIGCONT)
    log("Firestore emulator running again")


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 3)
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1], 3)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    if args.use_running and args.kill_worker_after is not None:
        raise SystemExit("--kill-worker-after needs the supervised stack this script starts (drop --use-running)")

    fake = FakeOpenAI()
    fake.fault_rate = args.llm_fault_rate
    fake.latency_s = args.llm_latency_ms / 1000
    fake.stall_s = 5.0
    fake.rng = random.Random(args.seed)
    fake.start()
    run = uuid.uuid4().hex[:6]
    collection = f"tasks-load-{run}"
    stack: LocalStack | None = None
    if args.use_running:
        state = running_state()
        log(f"using the running stack (Pub/Sub {state.pubsub_host}); its worker must use {fake.base_url}")
        collection = os.environ.get("ATLAS_TASKS_COLLECTION", "tasks")
    else:
        from atlas.config import ChainEntry, chain_to_env

        chain = (ChainEntry(provider="openai_compatible", model="gpt-4o-mini", base_url=fake.base_url),)
        state_dir = args.state_dir or REPO / ".atlas" / "loadtest" / run
        stack = LocalStack(
            state_dir,
            topic=f"atlas-load-{run}",
            supervise=True,
            worker_instances=args.worker_instances,
            # The limits scaled down together (task deadline 15 s < lease 20 s < ack deadline 30 s): a push that
            # dies with a killed worker is given up on by the emulator only after the ack deadline.
            ack_deadline_s=30,
            # The emulator stopped redelivering after a burst of failures with a 1-10 s backoff; 0-1 s keeps it going.
            min_backoff_s=0,
            max_backoff_s=1,
            retrieval_env={"HF_HUB_OFFLINE": "1"},  # the model: the stack's default (the int8 one) or the env's
            worker_env={
                "ATLAS_LLM_CHAIN": chain_to_env(chain),
                "ATLAS_TASKS_COLLECTION": collection,
                "ATLAS_LLM_COOLDOWN_S": "0",
                "ATLAS_LLM_STALL_S": "2",
                "ATLAS_LLM_RETRY_AFTER_CAP_S": "1",
                # A short lease, so that a task whose delivery died with a killed worker is taken over soon.
                "ATLAS_LEASE_S": "20",
                "ATLAS_TASK_DEADLINE_S": "15",
                "ATLAS_LOG_LEVEL": "WARNING",
            },
        )
        log(f"starting a local stack (logs in {state_dir / 'logs'})")
        state = stack.start()
    os.environ.update(state.client_env(), ATLAS_TASKS_COLLECTION=collection)
    try:
        result = run_load(args, rng, fake, state, stack, collection, run)
    finally:
        if stack is not None:
            stack.stop()  # each instance writes its last metrics at SIGTERM
        fake.stop()
    usage, cost_usd = result.pop("_usage"), result.pop("_cost_usd")
    if state.metrics_points and stack is not None:
        result["metrics"] = metrics_check(Path(state.metrics_points), result, usage, cost_usd, args.report)
    print(json.dumps(result), flush=True)
    exact = result.get("metrics", {}).get("exact", True) or "worker_killed_at" in result
    return 0 if result["lost"] == 0 and result["duplicate_generations"] == 0 and exact else 1


def metrics_check(
    points_file: Path, result: dict[str, Any], usage: dict[str, int], cost_usd: float, report: Path | None
) -> dict[str, Any]:
    """What the instances wrote to the local MetricService, against what Firestore holds.

    Totals are exact unless a worker was killed (SIGKILL leaves it no shutdown write: what it counted since
    its last write is lost, which is why --kill-worker-after runs report the difference, not a failure).
    """
    import metrics_report

    points = read_points(points_file)
    summary = metrics_report.summary(points)
    if report is not None:
        metrics_report.draw(points, report, f"Atlas load test: {result['tasks']} tasks")
        summary["report"] = str(report)
    expected = {status: result[status] for status in TERMINAL if result[status]}
    got = {status: int(n) for status, n in summary["tasks"].items() if n}
    tokens_expected = usage
    tokens_got = {f"{kind}_tokens": int(n) for kind, n in summary["llm_tokens"].items()}
    summary["exact"] = (
        summary["writes_rejected"] == 0
        and got == expected
        and all(tokens_got.get(k, 0) == v for k, v in tokens_expected.items())
        and abs(sum(summary["llm_cost_usd"].values()) - cost_usd) < 1e-6
    )
    summary["firestore"] = {"tasks": expected, "usage": tokens_expected, "cost_usd": round(cost_usd, 6)}
    return summary


def run_load(
    args: argparse.Namespace,
    rng: random.Random,
    fake: FakeOpenAI,
    state: StackState,
    stack: LocalStack | None,
    collection: str,
    run: str,
) -> dict[str, Any]:
    from google.cloud import firestore, pubsub_v1

    from atlas import cli

    if stack is not None:
        with open(os.devnull, "w") as quiet:
            saved, sys.stdout = sys.stdout, quiet
            try:
                assert cli.main(["ingest", str(REPO / "knowledge")]) == 0
            finally:
                sys.stdout = saved
    tasks = [f"load-{run}-{i:05d}" for i in range(args.tasks)]
    copies = {task: (rng.choice((2, 3)) if rng.random() < args.duplicates else 1) for task in tasks}
    messages = [task for task in tasks for _ in range(copies[task])]
    rng.shuffle(messages)
    publisher = pubsub_v1.PublisherClient()
    topic = publisher.topic_path(state.project, state.topic)
    published_at: dict[str, float] = {}
    started = time.time()
    futures = []
    for task in messages:
        body = {"prompt": f"{rng.choice(PROMPTS)} [load {task}]", "task_id": task}
        published_at.setdefault(task, time.time())
        futures.append(publisher.publish(topic, json.dumps(body).encode()))
    for future in futures:
        future.result(timeout=60)
    log(f"published {len(messages)} messages for {len(tasks)} tasks ({len(messages) - len(tasks)} duplicates)")

    client = firestore.Client(project=state.project)
    wanted = set(tasks)
    done: dict[str, TaskDocument] = {}
    injected: dict[str, Any] = {}
    outage: threading.Thread | None = None
    deadline = time.monotonic() + args.timeout
    last_report = 0.0
    while time.monotonic() < deadline and len(done) < len(tasks):
        try:
            fields = ["task_id", "status", "finished_at", "usage", "cost_usd", "error"]
            for snapshot in client.collection(collection).select(fields).stream(timeout=30):
                if snapshot.id in wanted and snapshot.id not in done:
                    document = TaskDocument.parse(snapshot.to_dict() or {})
                    if document.is_terminal:
                        done[snapshot.id] = document
        except Exception as exc:  # Firestore paused or restarting: try again
            log(f"polling Firestore failed ({type(exc).__name__}); retrying")
        if (
            args.kill_worker_after is not None
            and "worker_killed_at" not in injected
            and len(done) >= args.kill_worker_after
        ):
            assert stack is not None and stack.state is not None
            worker = process_named(stack.state, "worker")
            os.killpg(worker.pid, signal.SIGKILL)
            injected["worker_killed_at"] = len(done)
            log(f"killed the worker (pid {worker.pid}) with SIGKILL after {len(done)} tasks")
        if args.restart_firestore_after is not None and outage is None and len(done) >= args.restart_firestore_after:
            injected["firestore_stopped_at"] = len(done)
            outage = threading.Thread(target=pause_firestore, args=(state, FIRESTORE_OUTAGE_S), daemon=True)
            outage.start()
        if time.monotonic() - last_report > 5:
            last_report = time.monotonic()
            counts = Counter(d.status.value for d in done.values())
            log(f"{len(done)}/{len(tasks)} terminal {dict(counts)}")
        time.sleep(0.5)
    elapsed = time.time() - started
    if outage is not None:
        outage.join()

    latencies = []
    for task, document in done.items():
        finished = document.finished_at
        if finished is not None:
            latencies.append(finished.replace(tzinfo=finished.tzinfo or UTC).timestamp() - published_at[task])
    generations: Counter[str] = Counter()
    for request in fake.completions():
        if request.get("outcome") != "answered":
            continue
        text = "\n".join(str(m.get("content", "")) for m in request["body"].get("messages", []))
        found = MARKER.search(text)
        if found and found.group(1) in wanted:
            generations[found.group(1)] += 1
    counts = Counter(d.status.value for d in done.values())
    last_finish = max(latencies, default=elapsed)
    result = {
        "tasks": len(tasks),
        "messages": len(messages),
        "succeeded": counts.get("succeeded", 0),
        "degraded": counts.get("degraded", 0),
        "failed": counts.get("failed", 0),
        "lost": len(tasks) - len(done),
        "generations": sum(generations.values()),
        "duplicate_generations": sum(n - 1 for n in generations.values() if n > 1),
        "throughput_per_s": round(len(done) / last_finish, 2) if last_finish > 0 else None,
        "p50_s": percentile(latencies, 50),
        "p95_s": percentile(latencies, 95),
        "llm_requests": len(fake.completions()),
        "llm_fault_rate": args.llm_fault_rate,
        "llm_latency_ms": args.llm_latency_ms,
        "duplicates": args.duplicates,
        **injected,
        "restarts": dict(stack.restarts) if stack is not None else {},
        "failed_codes": dict(
            Counter(str(d.error.code if d.error else None) for d in done.values() if d.status == "failed")
        ),
    }
    usage: Counter[str] = Counter()
    for document in done.values():
        usage.update(document.usage.model_dump())
    result["_usage"] = dict(usage)  # compared with the metrics once the stack has stopped
    result["_cost_usd"] = sum(d.cost_usd or 0.0 for d in done.values())
    return result


if __name__ == "__main__":
    sys.exit(main())
