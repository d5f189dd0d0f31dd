"""The life of one task, as a plain function: decode, claim, retrieve, generate, store.

``process_message`` returns normally when the message should be acknowledged (the task finished, was
rejected as invalid, or was a duplicate) and raises a :class:`~atlas.errors.TransientError` when Pub/Sub
should redeliver it later. The Cloud Function adapter only turns the CloudEvent into a
:class:`~atlas.tasks.envelope.PushedMessage` and calls this.

Each stage is a function of one :class:`Delivery`; :func:`timed` gives every stage the same timing, metric
and log line; what a generation means for the task is :func:`atlas.tasks.outcome.decide_outcome`, a pure
function; the store owns every Firestore detail.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from atlas import limits
from atlas.config import ChainEntry
from atlas.design.writer import fit_sources, write_design
from atlas.errors import (
    AtlasError,
    BudgetExhaustedError,
    InvalidTaskError,
    LeaseLostError,
    PermanentError,
    TaskBusyError,
    TransientError,
)
from atlas.llm.attempts import Attempt
from atlas.llm.budget import DailyBudget
from atlas.llm.chain import ChainFailure, Generation, ProviderChain
from atlas.llm.retry import Deadline
from atlas.models import Source, TaskError, TaskMessage, TaskStatus
from atlas.observability.logs import log_context
from atlas.tasks.document import BudgetNote, ContextReport, DeliveryReport, FallbackRecord, Stage
from atlas.tasks.envelope import MAX_MESSAGE_BYTES, PushedMessage, decode_task
from atlas.tasks.outcome import Outcome, Verdict, decide_outcome, spend_of
from atlas.tasks.progress import PartialWriter
from atlas.tasks.store import ClaimResult, TaskStore
from atlas.tasks.task_metrics import TaskMetrics

__all__ = ["Outcome", "PipelineDeps", "process_event", "process_message"]

log = logging.getLogger("atlas.tasks.pipeline")

RAW_EXCERPT_CHARS = 200


class Retriever(Protocol):
    def search(self, query: str, *, top_k: int, filter: dict[str, Any] | None = None) -> list[Source]: ...


@dataclass(frozen=True)
class PipelineDeps:
    """What a task needs from the outside world and its limits; built once per instance by the adapter."""

    store: TaskStore
    retriever: Retriever
    chain: ProviderChain
    top_k: int
    lease_s: int = limits.LEASE_S
    task_deadline_s: float = limits.TASK_DEADLINE_S
    max_delivery_attempts: int = limits.MAX_DELIVERY_ATTEMPTS
    input_token_budget: int = limits.INPUT_TOKEN_BUDGET
    budget: DailyBudget | None = None
    over_budget: Literal["fail", "cheapest"] = "fail"
    metrics: TaskMetrics = field(default_factory=TaskMetrics)  # this instance's running totals

    def __post_init__(self) -> None:
        # The settings refuse these limits too: a test cannot run the pipeline with what no worker runs with.
        problems = limits.lease_problems(task_deadline_s=self.task_deadline_s, lease_s=self.lease_s)
        if problems:
            raise ValueError(problems[0])


@dataclass
class Delivery:
    """One delivery of one claimed task: who holds the lease, its deadline, and what it has learned so far
    (kept on the task whatever the outcome)."""

    task_id: str
    task: TaskMessage
    pushed: PushedMessage
    attempt: int
    owner: str
    deadline: Deadline
    report: DeliveryReport = field(default_factory=DeliveryReport)
    started: float = field(default_factory=time.perf_counter)


def new_owner() -> str:
    """A lease owner id unique to one delivery: host, process and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def process_event(event_data: Mapping[str, Any], *, event_id: str, deps: PipelineDeps) -> Outcome:
    """Run the task in a Pub/Sub CloudEvent's ``data``; a broken envelope is rejected, never retried."""
    try:
        pushed = PushedMessage.from_event_data(event_data)
    except InvalidTaskError as exc:
        deps.metrics.delivery(Outcome.REJECTED)
        return _reject(PushedMessage(message_id=event_id, data=b""), exc, deps)
    return process_message(pushed, deps)


def process_message(pushed: PushedMessage, deps: PipelineDeps) -> Outcome:
    """Run the task carried by ``pushed``; raise TransientError to have Pub/Sub redeliver it."""
    try:
        outcome = _process(pushed, deps)
    except Exception:
        deps.metrics.delivery("retry")
        raise
    deps.metrics.delivery(outcome.value)
    return outcome


def _process(pushed: PushedMessage, deps: PipelineDeps) -> Outcome:
    try:
        decoded = decode_task(pushed)
    except InvalidTaskError as exc:
        return _reject(pushed, exc, deps)
    # Every line logged while the task runs carries its task and message ids.
    with log_context(labels={"task_id": decoded.task_id, "message_id": pushed.message_id}):
        delivery = _claim(decoded.task_id, decoded.message, pushed, deps)
        if delivery is None:
            return Outcome.DUPLICATE
        return _run(delivery, deps)


def _claim(task_id: str, task: TaskMessage, pushed: PushedMessage, deps: PipelineDeps) -> Delivery | None:
    """This delivery's hold on the task; None for a duplicate of a finished task, TaskBusyError while another
    delivery's lease is live."""
    owner = new_owner()
    claim = deps.store.claim(
        task_id, task, message_id=pushed.message_id, owner=owner, lease_s=deps.lease_s, publish_time=pushed.publish_time
    )
    if claim.result is ClaimResult.DUPLICATE:
        log.info("duplicate delivery of a finished task; acknowledged")
        return None
    if claim.result is ClaimResult.BUSY:
        raise TaskBusyError(f"task {task_id} is running under another delivery's lease")
    log.info("task claimed", extra={"fields": {"attempt": claim.attempt}})
    return Delivery(task_id, task, pushed, claim.attempt, owner, Deadline(deps.task_deadline_s))


def _run(delivery: Delivery, deps: PipelineDeps) -> Outcome:
    """Retrieve, generate, decide and store, mapping each kind of error to what happens to the message."""
    try:
        sources = _retrieve(delivery, deps)
        generation = _generate(delivery, deps, sources)
        verdict = decide_outcome(
            delivery.task, sources, generation, delivery=delivery.attempt, max_deliveries=deps.max_delivery_attempts
        )
        if verdict.error is not None:
            raise verdict.error
        return _store(delivery, deps, verdict)
    except LeaseLostError as exc:
        log.warning("stopped: %s", exc)
        return Outcome.SUPERSEDED
    except PermanentError as exc:
        _fail(delivery, deps, exc)
        return Outcome.FAILED
    except TransientError as exc:
        deps.store.release(delivery.task_id, owner=delivery.owner, error=_task_error(exc), report=delivery.report)
        log.warning("transient error, Pub/Sub will retry: %s", exc)
        raise
    except Exception as exc:
        # A bug, not bad input: keep the task retryable (and dead-lettered after the last attempt).
        error = TaskError(code="internal_error", message=repr(exc)[:500])
        deps.store.release(delivery.task_id, owner=delivery.owner, error=error, report=delivery.report)
        log.exception("unexpected error; Pub/Sub will retry")
        raise


@contextmanager
def timed(
    delivery: Delivery, deps: PipelineDeps, stage: Literal["retrieval", "generation"]
) -> Iterator[dict[str, Any]]:
    """Time one stage: its duration goes to the task's ``timings_ms``, the stage latency metric and a log line
    that also says what the stage put in the yielded dictionary."""
    started = time.perf_counter()
    said: dict[str, Any] = {}
    yield said
    duration_ms = _ms_since(started)
    delivery.report.timings_ms[f"{stage}_ms"] = duration_ms
    deps.metrics.stage(stage, duration_ms)
    log.info(f"{stage} done", extra={"fields": {"stage": stage, "duration_ms": duration_ms, **said}})


def _retrieve(delivery: Delivery, deps: PipelineDeps) -> list[Source]:
    """The sources the design may cite: retrieved, deduplicated, packed into the input budget, labelled."""
    deps.store.set_stage(delivery.task_id, Stage.RETRIEVING)
    with timed(delivery, deps, "retrieval") as said:
        hits = deps.retriever.search(delivery.task.retrieval_query(), top_k=deps.top_k)
        packed = fit_sources(delivery.task, hits, input_token_budget=deps.input_token_budget)
        deps.metrics.retrieval_hits(len(hits))
        said["hits"] = len(hits)
    delivery.report.sources = packed.sources
    delivery.report.context = ContextReport.model_validate(packed.as_dict())
    return packed.sources


def _generate(delivery: Delivery, deps: PipelineDeps, sources: list[Source]) -> Generation[Any] | ChainFailure:
    """The design from the chain (within the daily budget), streamed into the task as it is written."""
    entries = _entries_within_budget(delivery, deps)
    deps.store.set_stage(delivery.task_id, Stage.GENERATING)
    with timed(delivery, deps, "generation") as said:
        generation = write_design(
            deps.chain,
            delivery.task,
            sources,
            deadline=delivery.deadline,
            on_text=PartialWriter(deps.store, delivery.task_id, owner=delivery.owner, lease_s=deps.lease_s),
            on_attempt=lambda attempt: _count_attempt(deps, attempt),
            entries=entries,
        )
        deps.metrics.fallbacks(generation.fallbacks)
        said.update(
            ok=isinstance(generation, Generation),
            attempts=len(generation.attempts),
            fallbacks=len(generation.fallbacks),
            cost_usd=generation.cost_usd,
        )
    delivery.report.timings_ms["total_ms"] = _ms_since(delivery.started)
    delivery.report.spend = spend_of(generation, delivery=delivery.attempt)
    delivery.report.fallbacks = [FallbackRecord.model_validate(f.as_dict()) for f in generation.fallbacks]
    return generation


def _store(delivery: Delivery, deps: PipelineDeps, verdict: Verdict) -> Outcome:
    """Write the verdict's terminal status and result, if this delivery still holds the lease."""
    assert verdict.status is not None
    report = delivery.report.model_copy(
        update={
            "result": verdict.result,
            "provider": verdict.provider,
            "model": verdict.model,
            "notice": verdict.notice,
        }
    )
    started = time.perf_counter()
    if not deps.store.finish(delivery.task_id, owner=delivery.owner, status=verdict.status, report=report):
        log.warning("lease lost before the result was stored; the newer delivery owns it")
        return Outcome.SUPERSEDED
    deps.metrics.finished(verdict.status.value, publish_time=delivery.pushed.publish_time)
    log.info(
        "task finished",
        extra={
            "fields": {
                "stage": "store",
                "duration_ms": _ms_since(started),
                "status": verdict.status.value,
                **report.timings_ms,
            },
        },
    )
    return Outcome(verdict.status.value)


def _fail(delivery: Delivery, deps: PipelineDeps, exc: PermanentError) -> None:
    if deps.store.fail(delivery.task_id, owner=delivery.owner, error=_task_error(exc), report=delivery.report):
        deps.metrics.finished(TaskStatus.FAILED.value, error_code=exc.code, publish_time=delivery.pushed.publish_time)
    log.warning("task failed: %s", exc, extra={"fields": {"code": exc.code}})


def _entries_within_budget(delivery: Delivery, deps: PipelineDeps) -> tuple[ChainEntry, ...] | None:
    """The chain entries this task may use under the daily budget (None: all); a spent budget is noted on the
    task, and either moves it to the cheapest entries or fails it (``ATLAS_OVER_BUDGET``)."""
    if deps.budget is None:
        return None
    state = deps.budget.state()
    deps.metrics.budget_remaining(state.remaining_usd)
    if not state.exhausted:
        return None
    if deps.over_budget == "cheapest":
        entries = deps.chain.cheapest()
        delivery.report.budget = BudgetNote(
            day=state.day,
            limit_usd=state.limit_usd,
            spent_usd=round(state.spent_usd, 6),
            action="cheapest",
            entries=[e.label for e in entries],
        )
        return entries
    raise BudgetExhaustedError(
        f"the daily LLM budget of {state.limit_usd:.2f} USD for {state.day} (UTC) is spent "
        f"({state.spent_usd:.4f} USD); raise ATLAS_DAILY_BUDGET_USD or set ATLAS_OVER_BUDGET=cheapest"
    )


def _count_attempt(deps: PipelineDeps, attempt: Attempt) -> None:
    deps.metrics.llm_attempt(attempt)
    if deps.budget is not None:
        deps.budget.charge(attempt.cost_usd)


def _reject(pushed: PushedMessage, exc: InvalidTaskError, deps: PipelineDeps) -> Outcome:
    labels = {"message_id": pushed.message_id}
    excerpt = pushed.data[:RAW_EXCERPT_CHARS].decode("utf-8", errors="replace")
    if exc.task_id is None:
        log.error(
            "invalid task with no usable task id; acknowledged: %s",
            exc.reason,
            extra={"labels": labels, "fields": {"raw_excerpt": excerpt, "max_bytes": MAX_MESSAGE_BYTES}},
        )
        return Outcome.REJECTED
    labels["task_id"] = exc.task_id
    recorded = deps.store.record_rejected(
        exc.task_id, message_id=pushed.message_id, error=_task_error(exc), raw_excerpt=excerpt, prompt=exc.prompt
    )
    if recorded:
        deps.metrics.finished(TaskStatus.FAILED.value, error_code=exc.code, publish_time=pushed.publish_time)
    log.warning(
        "invalid task %s: %s",
        "recorded as failed" if recorded else "(already recorded)",
        exc.reason,
        extra={"labels": labels},
    )
    return Outcome.REJECTED


def _task_error(exc: AtlasError) -> TaskError:
    return TaskError(code=exc.code, message=str(exc)[:1000])


def _ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)
