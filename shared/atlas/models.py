"""The contracts between the parts: the task message, the task document, retrieved sources.

The task message is what a user publishes to Pub/Sub; unknown fields are an error, never ignored.
The task document the worker keeps in ``tasks/{task_id}`` has its one typed model in
:mod:`atlas.tasks.document`, built from the parts here (statuses, sources, errors, the lease).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_PROMPT_CHARS = 8000
MAX_CONSTRAINTS = 20
MAX_CONSTRAINT_CHARS = 500
# Firestore document ids may not contain "/", be "." or "..", or look like __reserved__: starting with a
# letter or digit rules the last two out. We also keep ids short and printable.
TASK_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"


class TaskStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    DEGRADED = "degraded"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({TaskStatus.SUCCEEDED, TaskStatus.DEGRADED, TaskStatus.FAILED})


class TaskMessage(BaseModel):
    """The JSON body of a task published to the ``atlas-tasks`` topic."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS, description="What to design.")
    task_id: str | None = Field(
        default=None,
        pattern=TASK_ID_PATTERN,
        description="Client-chosen idempotency key; default: the Pub/Sub message id.",
    )
    constraints: tuple[str, ...] = Field(default=(), max_length=MAX_CONSTRAINTS)
    cloud: Literal["gcp", "aws", "azure", "any"] | None = None
    budget_usd_per_month: float | None = Field(default=None, gt=0, le=10_000_000)

    @field_validator("constraints")
    @classmethod
    def _constraints_are_short(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(item.strip() for item in value)
        for item in cleaned:
            if not item:
                raise ValueError("constraints must not contain empty strings")
            if len(item) > MAX_CONSTRAINT_CHARS:
                raise ValueError(f"each constraint must be at most {MAX_CONSTRAINT_CHARS} characters")
        return cleaned

    def retrieval_query(self) -> str:
        """The text the retrieval service is asked about: the prompt sharpened by the hints."""
        parts = [self.prompt, *self.constraints]
        if self.cloud and self.cloud != "any":
            parts.append(f"on {self.cloud.upper()}")
        return "\n".join(parts)

    def hints(self) -> dict[str, Any]:
        return self.model_dump(exclude={"prompt", "task_id"}, exclude_defaults=True, mode="json")


class Source(BaseModel):
    """One chunk the retrieval service returned, as the worker stores and cites it."""

    model_config = ConfigDict(frozen=True)

    id: str
    text: str
    title: str
    source: str
    section: str = ""
    score: float
    label: str | None = None  # the citation id (S1, S2, ...) once a task has ranked it


class TaskError(BaseModel):
    code: str
    message: str


class Lease(BaseModel):
    owner: str
    expires_at: datetime
