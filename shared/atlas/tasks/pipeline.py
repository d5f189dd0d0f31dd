"""The life of one task, as a plain function: decode, claim, retrieve, generate, store.

``process_message`` returns normally when the message should be acknowledged (the task finished, was
rejected as invalid, or was a duplicate) and raises a :class:`~atlas.errors.TransientError` when Pub/Sub
should redeliver it later. The Cloud Function adapter only turns the CloudEvent into a
:class:`~atlas.tasks.envelope.PushedMessage` and calls this.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from google.cloud import firestore

from atlas import limits
from atlas.config import ChainEntry
from atlas.design.brief import CONFIGURE_PROVIDER_HINT, build_brief
from atlas.design.writer import fit_sources, write_design
from atlas.errors import (
    AtlasError,
    BudgetExhaustedError,
    ContentRefusedError,
    InvalidTaskError,
    LeaseLostError,
    LLMUnavailableError,
    PermanentError,
    TaskBusyError,
    TransientError,
)
from atlas.llm.budget import DailyBudget
from atlas.llm.chain import Attempt, ChainFailure, Generation, ProviderChain
from atlas.llm.retry import Deadline
from atlas.models import Source, TaskError, TaskMessage, TaskStatus
from atlas.observability.logs import log_context
from atlas.tasks.envelope import MAX_MESSAGE_BYTES, PushedMessage, decode_task
from atlas.tasks.progress import PartialWriter
from atlas.tasks.store import ClaimResult, TaskStore
from atlas.tasks.task_metrics import TaskMetrics

log = logging.getLogger("atlas.tasks.pipeline")

RAW_EXCERPT_CHARS = 200


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    DEGRADED = "degraded"
    FAILED = "failed"
    REJECTED = "rejected"  # not a valid task; recorded as failed (or only logged) and acknowledged
    DUPLICATE = "duplicate"  # the task had already finished; acknowledged, nothing done
    SUPERSEDED = "superseded"  # another delivery took the task over mid-way; it finishes the task


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
    over_budget: str = "fail"  # or "cheapest"
    metrics: TaskMetrics = field(default_factory=TaskMetrics)  # this instance's running totals

    def __post_init__(self) -> None:
        # The settings refuse these limits too: a test cannot run the pipeline with what no worker runs with.
        problems = limits.lease_problems(task_deadline_s=self.task_deadline_s, lease_s=self.lease_s)
        if problems:
            raise ValueError(problems[0])


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
        return _run(decoded.task_id, decoded.message, pushed, deps)


def _run(task_id: str, task: TaskMessage, pushed: PushedMessage, deps: PipelineDeps) -> Outcome:
    owner = new_owner()
    claim = deps.store.claim(
        task_id, task, message_id=pushed.message_id, owner=owner, lease_s=deps.lease_s, publish_time=pushed.publish_time
    )
    if claim.result is ClaimResult.DUPLICATE:
        log.info("duplicate delivery of a finished task; acknowledged")
        return Outcome.DUPLICATE
    if claim.result is ClaimResult.BUSY:
        raise TaskBusyError(f"task {task_id} is running under another delivery's lease")
    log.info("task claimed", extra={"fields": {"attempt": claim.attempt}})

    started = time.perf_counter()
    deadline = Deadline(deps.task_deadline_s)
    timings: dict[str, float] = {}
    fields: dict[str, Any] = {"timings_ms": timings}  # what this delivery learned, kept whatever the outcome
    try:
        deps.store.set_stage(task_id, "retrieving")
        stage_start = time.perf_counter()
        hits = deps.retriever.search(task.retrieval_query(), top_k=deps.top_k)
        packed = fit_sources(task, hits, input_token_budget=deps.input_token_budget)
        sources = packed.sources
        timings["retrieval_ms"] = _ms_since(stage_start)
        deps.metrics.stage("retrieval", timings["retrieval_ms"])
        deps.metrics.retrieval_hits(len(hits))
        log.info(
            "retrieval done",
            extra={
                "fields": {"stage": "retrieval", "duration_ms": timings["retrieval_ms"], "hits": len(hits)},
            },
        )

        entries, budget_note = _entries_within_budget(deps)
        deps.store.set_stage(task_id, "generating")
        stage_start = time.perf_counter()
        generation = write_design(
            deps.chain,
            task,
            sources,
            deadline=deadline,
            on_text=PartialWriter(deps.store, task_id, owner=owner, lease_s=deps.lease_s),
            on_attempt=lambda attempt: _count_attempt(deps, attempt),
            entries=entries,
        )
        timings["generation_ms"] = _ms_since(stage_start)
        deps.metrics.stage("generation", timings["generation_ms"])
        deps.metrics.fallbacks(generation.fallbacks)
        log.info(
            "generation done",
            extra={
                "fields": {
                    "stage": "generation",
                    "duration_ms": timings["generation_ms"],
                    "ok": isinstance(generation, Generation),
                    "attempts": len(generation.attempts),
                    "fallbacks": len(generation.fallbacks),
                    "cost_usd": generation.cost_usd,
                },
            },
        )
        timings["total_ms"] = _ms_since(started)
        fields.update(
            _spend_fields(generation, delivery=claim.attempt),
            sources=[source.model_dump() for source in sources],
            context=packed.as_dict(),
            fallbacks=[f.as_dict() for f in generation.fallbacks],
            **({"budget": budget_note} if budget_note else {}),
        )
        if isinstance(generation, Generation):
            status = TaskStatus.SUCCEEDED
            fields.update(
                result={"kind": "design", **generation.value.model_dump(by_alias=True)},
                provider=generation.provider,
                model=generation.model,
            )
        elif generation.refused:
            raise ContentRefusedError(generation.reason)
        elif generation.retry_later and claim.attempt < deps.max_delivery_attempts:
            raise LLMUnavailableError(generation.reason)
        else:
            status = TaskStatus.DEGRADED
            last = "" if not generation.configured else f" (delivery {claim.attempt} of {deps.max_delivery_attempts})"
            fields.update(
                result=build_brief(task, sources, generation.reason + last),
                notice=f"Degraded: {generation.reason}{last} {CONFIGURE_PROVIDER_HINT}",
            )
        stage_start = time.perf_counter()
        if not deps.store.finish(task_id, owner=owner, status=status, fields=fields):
            log.warning("lease lost before the result was stored; the newer delivery owns it")
            return Outcome.SUPERSEDED
        deps.metrics.finished(status.value, publish_time=pushed.publish_time)
        log.info(
            "task finished",
            extra={
                "fields": {"stage": "store", "duration_ms": _ms_since(stage_start), "status": status.value, **timings},
            },
        )
        return Outcome(status.value)
    except LeaseLostError as exc:
        log.warning("stopped: %s", exc)
        return Outcome.SUPERSEDED
    except PermanentError as exc:
        if deps.store.fail(task_id, owner=owner, error=_task_error(exc), fields=fields):
            deps.metrics.finished(TaskStatus.FAILED.value, error_code=exc.code, publish_time=pushed.publish_time)
        log.warning("task failed: %s", exc, extra={"fields": {"code": exc.code}})
        return Outcome.FAILED
    except TransientError as exc:
        deps.store.release(task_id, owner=owner, error=_task_error(exc), fields=fields)
        log.warning("transient error, Pub/Sub will retry: %s", exc)
        raise
    except Exception as exc:
        # A bug, not bad input: keep the task retryable (and dead-lettered after the last attempt).
        deps.store.release(
            task_id, owner=owner, error=TaskError(code="internal_error", message=repr(exc)[:500]), fields=fields
        )
        log.exception("unexpected error; Pub/Sub will retry")
        raise


def _entries_within_budget(deps: PipelineDeps) -> tuple[tuple[ChainEntry, ...] | None, dict[str, Any] | None]:
    """The chain entries this task may use under the daily budget (None: all), and a note for the document."""
    if deps.budget is None:
        return None, None
    state = deps.budget.state()
    deps.metrics.budget_remaining(state.remaining_usd)
    if not state.exhausted:
        return None, None
    note = {"day": state.day, "limit_usd": state.limit_usd, "spent_usd": round(state.spent_usd, 6)}
    if deps.over_budget == "cheapest":
        entries = deps.chain.cheapest()
        return entries, {**note, "action": "cheapest", "entries": [e.label for e in entries]}
    raise BudgetExhaustedError(
        f"the daily LLM budget of {state.limit_usd:.2f} USD for {state.day} (UTC) is spent "
        f"({state.spent_usd:.4f} USD); raise ATLAS_DAILY_BUDGET_USD or set ATLAS_OVER_BUDGET=cheapest"
    )


def _spend_fields(generation: Generation[Any] | ChainFailure, *, delivery: int) -> dict[str, Any]:
    """Usage, cost and attempts of this delivery, added to what earlier deliveries of the task spent."""
    if not generation.attempts:
        return {}
    usage = generation.usage
    return {
        "cost_usd": firestore.Increment(generation.cost_usd),
        **{f"usage.{key}": firestore.Increment(value) for key, value in usage.as_dict().items()},
        "llm_attempts": firestore.ArrayUnion([{**a.as_dict(), "delivery": delivery} for a in generation.attempts]),
    }


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
        exc.task_id, message_id=pushed.message_id, error=_task_error(exc), raw_excerpt=excerpt
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
