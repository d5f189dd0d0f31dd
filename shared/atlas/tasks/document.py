"""The task document ``tasks/{task_id}``: one typed model that every writer builds and every reader parses.

The store builds each write from these models (a claim is a :class:`TaskDocument`, what a delivery learned is a
:class:`DeliveryReport`) and turns them into Firestore updates, the only place that knows Firestore's field
transforms; the CLI, the terminal and HTML views, the fine-tuning export and the cost report read a snapshot
with :meth:`TaskDocument.parse`. A field's name and shape are written down here once; a reader never digs into
a dictionary.

Reading is lenient about fields it does not know (a newer worker may add one) and strict about the shape of
those it does: a stored design that is not a :class:`~atlas.design.schema.Design` is an error, not a blank.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from atlas.design.brief import BriefResult
from atlas.design.schema import Design
from atlas.errors import AtlasError
from atlas.models import Lease, Source, TaskError, TaskMessage, TaskStatus


class Stage(StrEnum):
    """Where a task is in its life; ``status`` says whether it is running, ``stage`` what it is doing."""

    CLAIMED = "claimed"
    RETRIEVING = "retrieving"
    GENERATING = "generating"
    DONE = "done"
    WAITING_FOR_RETRY = "waiting_for_retry"  # released after a transient error; Pub/Sub redelivers
    REJECTED = "rejected"  # the message was not a valid task
    DEAD_LETTERED = "dead_lettered"  # Pub/Sub gave up on it
    REPLAYED = "replayed"  # reopened by `atlas replay-dlq`, waiting for its new delivery


DEAD_LETTERED = "dead_lettered"  # the error code of a task Pub/Sub gave up on


class TaskDocumentError(AtlasError):
    """A stored task document does not have the shape of :class:`TaskDocument`; the message names the task and
    the fields."""

    code = "invalid_task_document"


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TokenUsage(_Part):
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0


class AttemptRecord(_Part):
    """One LLM request of one delivery, as ``llm_attempts`` keeps it (``atlas.llm.chain.Attempt`` + delivery)."""

    entry: str
    outcome: str  # "ok" or a FailureKind
    number: int = 1
    reason: str = ""
    usage: TokenUsage = Field(default_factory=TokenUsage)
    usage_estimated: bool = False
    cost_usd: float = 0.0
    priced: bool = True
    duration_ms: float = 0.0
    retry_in_s: float | None = None
    delivery: int = 1


class FallbackRecord(_Part):
    entry: str
    kind: str
    reason: str


class ContextReport(_Part):
    """How the retrieved sources were packed into the input budget (``atlas.design.packing.Packed``)."""

    kept: int
    duplicates: int = 0
    dropped: int = 0
    truncated: int = 0
    estimated_tokens: int = 0


class BudgetNote(_Part):
    """The daily budget was spent when the task generated; what was done about it."""

    day: str
    limit_usd: float
    spent_usd: float
    action: Literal["cheapest"] | None = None
    entries: list[str] = Field(default_factory=list)


class DeadLetterRecord(_Part):
    subscription: str | None = None
    source_publish_time: str | None = None
    dead_letter_message_id: str | None = None
    delivery_count: int | None = None
    claims: int = 0


class HistoryEntry(_Part):
    """What a dead-lettered task had recorded before ``atlas replay-dlq`` reopened it."""

    error: TaskError | None = None
    dead_letter: DeadLetterRecord | None = None
    last_error: TaskError | None = None
    attempts: int = 0
    reopened_at: datetime | None = None


class DesignResult(Design):
    """A design as stored on its task: the design with its kind."""

    kind: Literal["design"] = "design"


TaskResult = Annotated[DesignResult | BriefResult, Field(discriminator="kind")]


class Spend(_Part):
    """What one delivery's LLM attempts cost; the store adds it to what earlier deliveries spent."""

    cost_usd: float = 0.0
    usage: TokenUsage = Field(default_factory=TokenUsage)
    attempts: list[AttemptRecord] = Field(default_factory=list)


class DeliveryReport(_Part):
    """What one delivery learned, written whatever its outcome (finished, failed or released for a retry)."""

    timings_ms: dict[str, float] = Field(default_factory=dict)
    sources: list[Source] | None = None
    context: ContextReport | None = None
    fallbacks: list[FallbackRecord] | None = None
    budget: BudgetNote | None = None
    result: TaskResult | None = None
    provider: str | None = None
    model: str | None = None
    notice: str | None = None
    spend: Spend | None = None  # not a field of the document: cost_usd, usage and llm_attempts grow by it


class TaskDocument(BaseModel):
    """``tasks/{task_id}`` as the worker keeps it."""

    model_config = ConfigDict(extra="ignore")

    task_id: str
    status: TaskStatus
    stage: Stage | None = None
    prompt: str | None = None
    hints: dict[str, Any] = Field(default_factory=dict)
    message_id: str | None = None
    publish_time: str | None = None  # the first delivery's, to trace a dead letter to its task
    attempts: int = 0  # deliveries that claimed it (since the last replay)
    lease: Lease | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    expire_at: datetime | None = None  # Firestore's TTL policy deletes the task then
    partial: str | None = None  # the design as it streams, from partial_entry
    partial_entry: str | None = None
    result: TaskResult | None = None
    sources: list[Source] = Field(default_factory=list)
    context: ContextReport | None = None
    timings_ms: dict[str, float] = Field(default_factory=dict)
    provider: str | None = None
    model: str | None = None
    usage: TokenUsage = Field(default_factory=TokenUsage)
    cost_usd: float | None = None
    llm_attempts: list[AttemptRecord] = Field(default_factory=list)
    fallbacks: list[FallbackRecord] = Field(default_factory=list)
    budget: BudgetNote | None = None
    notice: str | None = None
    error: TaskError | None = None
    last_error: TaskError | None = None  # what the last released delivery failed with
    raw_excerpt: str | None = None  # the start of a message that was not a valid task
    dead_letter: DeadLetterRecord | None = None
    replays: int = 0
    history: list[HistoryEntry] = Field(default_factory=list)

    @classmethod
    def parse(cls, data: dict[str, Any]) -> TaskDocument:
        """A stored document, or TaskDocumentError naming the task and what is wrong with it."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            where = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)[:3]
            )
            raise TaskDocumentError(f"task {data.get('task_id', '?')} is not a valid task document: {where}") from exc

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    @property
    def design(self) -> DesignResult | None:
        return self.result if isinstance(self.result, DesignResult) else None

    @property
    def brief(self) -> BriefResult | None:
        return self.result if isinstance(self.result, BriefResult) else None

    @property
    def is_dead_lettered(self) -> bool:
        return self.status is TaskStatus.FAILED and self.error is not None and self.error.code == DEAD_LETTERED

    def task_message(self) -> TaskMessage | None:
        """The task as it was published (prompt and hints), or None when the document does not hold one."""
        try:
            return TaskMessage.model_validate({"prompt": self.prompt or "", **self.hints})
        except ValidationError:
            return None

    def stored(self) -> dict[str, Any]:
        """The fields the document holds (what was read or set), in their stored form."""
        return self.model_dump(exclude_unset=True, by_alias=True)

    def to_json_line(self) -> str:
        """The document as a single line of JSON (timestamps as ISO 8601), keys sorted."""
        return json.dumps(
            self.model_dump(mode="json", exclude_unset=True, by_alias=True), sort_keys=True, ensure_ascii=False
        )
