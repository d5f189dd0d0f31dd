"""The one retry policy of the LLM chain: what to do after each kind of failure, and how long to wait.

The SDK's own retries are off (``max_retries=0``); this module decides instead, from the SDK's exception
classes and HTTP status codes (never by parsing messages):

- 408, 409, 429, 5xx, timeouts and connection errors: retry the same entry, waiting what ``Retry-After``
  asks (capped) or an exponential backoff with jitter, as long as the task's deadline allows;
- 400, 401, 403, 404, 422: never retried; the next entry is tried;
- a context-length error (``code == "context_length_exceeded"``) or a content refusal: the next entry;
- an entry that failed for good (retries used up, or a permanent error) is put in cooldown for this
  instance, so the next tasks do not pay for the same failure again.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

import openai

from atlas import limits

CONTEXT_LENGTH_CODES = frozenset({"context_length_exceeded", "string_above_max_length"})
RETRYABLE_STATUS = frozenset({408, 409, 429})


class FailureKind(StrEnum):
    TRANSIENT = "transient"  # worth retrying (rate limit, 5xx, network)
    PERMANENT = "permanent"  # this entry cannot do it (auth, bad request, no such model)
    CONTEXT_LENGTH = "context_length"  # the prompt does not fit this model
    REFUSAL = "refusal"  # the model declined the content
    INVALID_OUTPUT = "invalid_output"  # answered, but not a valid design
    BROKEN_STREAM = "broken_stream"  # the stream stalled or was cut after it started
    DEADLINE = "deadline"  # no time left in the task's deadline
    COOLDOWN = "cooldown"  # skipped: failed recently in this instance


@dataclass(frozen=True)
class Failure:
    kind: FailureKind
    reason: str
    retryable: bool = False
    retry_after_s: float | None = None


def classify(exc: openai.OpenAIError) -> Failure:
    """The failure an SDK exception stands for."""
    reason = describe(exc)
    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return Failure(FailureKind.TRANSIENT, reason, retryable=True)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if status in RETRYABLE_STATUS or status >= 500:
            return Failure(FailureKind.TRANSIENT, reason, True, retry_after(exc.response.headers))
        if isinstance(exc, openai.BadRequestError) and exc.code in CONTEXT_LENGTH_CODES:
            return Failure(FailureKind.CONTEXT_LENGTH, reason)
        return Failure(FailureKind.PERMANENT, reason)
    # An error event inside a stream, or anything else the SDK raises after the request was accepted.
    return Failure(FailureKind.BROKEN_STREAM, reason)


def describe(exc: openai.OpenAIError) -> str:
    status = getattr(exc, "status_code", None)
    message = getattr(exc, "message", None) or str(exc)
    return f"{type(exc).__name__}{f' {status}' if status else ''}: {message}"[:500]


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asked us to wait: ``retry-after-ms``, ``retry-after`` (seconds or HTTP date)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        if "retry-after-ms" in lowered:
            return max(0.0, float(lowered["retry-after-ms"]) / 1000)
        value = lowered.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class RetryPolicy:
    attempts_per_entry: int = limits.LLM_ATTEMPTS_PER_ENTRY
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    retry_after_cap_s: float = limits.LLM_RETRY_AFTER_CAP_S
    cooldown_s: float = limits.LLM_COOLDOWN_S
    stall_s: float = limits.LLM_STALL_S

    def delay(self, attempt: int, failure: Failure, rng: random.Random) -> float:
        """How long to wait before retry number ``attempt`` (1 = the first retry)."""
        if failure.retry_after_s is not None:
            # Honour the server, capped; a little jitter keeps instances from returning in lockstep.
            return min(failure.retry_after_s, self.retry_after_cap_s) + rng.uniform(0, 0.1)
        ceiling = min(self.max_delay_s, self.base_delay_s * 2.0 ** (attempt - 1))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)  # "equal jitter": never zero, never over the ceiling


class Deadline:
    """A point in time the whole task must finish by (monotonic clock)."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._expires = clock() + seconds

    def remaining(self) -> float:
        return max(0.0, self._expires - self._clock())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0


class Cooldowns:
    """Entries that failed recently, per instance, shared by all request threads."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def put(self, label: str, seconds: float) -> None:
        if seconds <= 0:
            return
        with self._lock:
            self._until[label] = self._clock() + seconds

    def active(self, label: str) -> bool:
        with self._lock:
            until = self._until.get(label)
            if until is None:
                return False
            if until <= self._clock():
                del self._until[label]
                return False
            return True
