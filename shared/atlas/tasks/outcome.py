"""What a generation means for its task, decided by pure functions (no Firestore, no clock, no network).

:func:`decide_outcome` turns what the chain reported into a :class:`Verdict`: the terminal status to store
with its result, or the error that decides instead (a refusal fails the task; an outage before the last
delivery sends it back to Pub/Sub). The pipeline stores or raises what it is told; the rules live here and
are tested without the emulator.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from atlas.design.brief import CONFIGURE_PROVIDER_HINT, BriefResult, build_brief
from atlas.errors import AtlasError, ContentRefusedError, LLMUnavailableError
from atlas.llm.chain import ChainFailure, Generation
from atlas.models import Source, TaskMessage, TaskStatus
from atlas.tasks.document import AttemptRecord, DesignResult, Spend, TokenUsage


class Outcome(StrEnum):
    """What a delivery did with its message (returned to the adapter, counted in ``deliveries``)."""

    SUCCEEDED = "succeeded"
    DEGRADED = "degraded"
    FAILED = "failed"
    REJECTED = "rejected"  # not a valid task; recorded as failed (or only logged) and acknowledged
    DUPLICATE = "duplicate"  # the task had already finished; acknowledged, nothing done
    SUPERSEDED = "superseded"  # another delivery took the task over mid-way; it finishes the task


@dataclass(frozen=True)
class Verdict:
    """The terminal status to store and its result, or (``status`` None) the error that decides instead."""

    status: TaskStatus | None
    error: AtlasError | None = None
    result: DesignResult | BriefResult | None = None
    provider: str | None = None
    model: str | None = None
    notice: str | None = None


def decide_outcome(
    task: TaskMessage,
    sources: list[Source],
    generation: Generation[Any] | ChainFailure,
    *,
    delivery: int,
    max_deliveries: int,
) -> Verdict:
    """Succeeded with the design; failed when every entry that answered refused; back to Pub/Sub when a later
    delivery might succeed and this is not the last one; otherwise degraded with a retrieval-only brief."""
    if isinstance(generation, Generation):
        assert generation.value is not None, "a generation carries the value it produced"
        design = DesignResult.model_validate(generation.value.model_dump(by_alias=True))
        return Verdict(TaskStatus.SUCCEEDED, result=design, provider=generation.provider, model=generation.model)
    if generation.refused:
        return Verdict(None, error=ContentRefusedError(generation.reason))
    if generation.retry_later and delivery < max_deliveries:
        return Verdict(None, error=LLMUnavailableError(generation.reason))
    last = f" (delivery {delivery} of {max_deliveries})" if generation.configured else ""
    return Verdict(
        TaskStatus.DEGRADED,
        result=build_brief(task, sources, generation.reason + last),
        notice=f"Degraded: {generation.reason}{last} {CONFIGURE_PROVIDER_HINT}",
    )


def spend_of(generation: Generation[Any] | ChainFailure, *, delivery: int) -> Spend | None:
    """Usage, cost and attempts of this delivery's generation (None when it made no request)."""
    if not generation.attempts:
        return None
    return Spend(
        cost_usd=generation.cost_usd,
        usage=TokenUsage.model_validate(generation.usage.as_dict()),
        attempts=[AttemptRecord.model_validate({**a.as_dict(), "delivery": delivery}) for a in generation.attempts],
    )
