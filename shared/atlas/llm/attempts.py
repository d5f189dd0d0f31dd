"""The attempts of one generation on one chain entry: the retry loop, the repair request, and their record.

:class:`EntryRun` asks one entry until it answers validly or gives up: a retryable error is retried after the
retry policy's wait (while the deadline allows), invalid output gets one repair request, anything else ends
the entry. Every request becomes an :class:`Attempt`, priced from one typed :class:`Tried` value and handed to
``on_attempt`` as it happens. What the run needs from its chain comes in as :class:`ChainTools`, never by
reaching into the chain.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

import openai

from atlas.config import ChainEntry
from atlas.errors import InvalidOutputError, StreamBroken
from atlas.llm.pricing import PriceTable, Usage
from atlas.llm.providers import Clients
from atlas.llm.retry import Deadline, Failure, FailureKind, RetryPolicy, classify
from atlas.llm.streaming import Completion, stream_completion
from atlas.llm.tokens import estimate_message_tokens, estimate_tokens

T = TypeVar("T")

MIN_ATTEMPT_S = 2.0  # an attempt with less time than this left in the deadline is not started
Messages = list[dict[str, str]]
TextSink = Callable[[str, str], None]  # (entry label, the whole text so far)
Repair = Callable[[Messages, str, str], Messages]  # (messages, bad output, error) -> messages asking for a fix


@dataclass(frozen=True)
class Attempt:
    """One request to one entry, successful or not, and what it cost."""

    entry: str
    number: int
    outcome: str  # "ok" or a FailureKind
    reason: str
    usage: Usage
    usage_estimated: bool
    cost_usd: float
    priced: bool
    duration_ms: float
    retry_in_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "entry": self.entry,
            "number": self.number,
            "outcome": self.outcome,
            "reason": self.reason,
            "usage": self.usage.as_dict(),
            "usage_estimated": self.usage_estimated,
            "cost_usd": self.cost_usd,
            "priced": self.priced,
            "duration_ms": self.duration_ms,
            "retry_in_s": self.retry_in_s,
        }


@dataclass(frozen=True)
class Tried:
    """What one request came to, before it is priced: the entry, what was sent and what came back."""

    entry: ChainEntry
    number: int
    outcome: str  # "ok" or a FailureKind
    messages: Messages
    started: float  # monotonic
    reason: str = ""
    output: str = ""
    usage: Usage | None = None  # None: the stream never reported usage
    retry_in_s: float | None = None


@dataclass(frozen=True)
class ChainTools:
    """What a chain lends each run: its clients, policy, prices, and the sleep and randomness to use."""

    clients: Clients
    policy: RetryPolicy
    prices: PriceTable
    sleep: Callable[[float], None]
    rng: random.Random


@dataclass(frozen=True)
class GenerationRequest(Generic[T]):
    """One ``generate_json`` call: the messages, the schema the answer must follow, and how to check it."""

    messages: Messages
    response_format: dict[str, Any]
    parse: Callable[[str], T]
    repair: Repair
    deadline: Deadline
    on_text: TextSink
    on_attempt: Callable[[Attempt], None]


@dataclass(frozen=True)
class Answer(Generic[T]):
    value: T
    model: str


@dataclass(frozen=True)
class _Retry:
    wait_s: float


@dataclass(frozen=True)
class _Invalid:
    failure: Failure
    output: str


class EntryRun(Generic[T]):
    """The attempts of one ``generate_json`` call, entry after entry; ``attempts`` keeps every one."""

    def __init__(self, tools: ChainTools, request: GenerationRequest[T]) -> None:
        self._tools = tools
        self._request = request
        self.attempts: list[Attempt] = []

    def entry(self, entry: ChainEntry) -> Answer[T] | Failure:
        """Ask ``entry`` until it answers validly, or say why it will not."""
        messages, repaired, retries, number = self._request.messages, False, 0, 0
        while True:
            remaining = self._request.deadline.remaining()
            if remaining < MIN_ATTEMPT_S:
                return Failure(FailureKind.DEADLINE, f"only {remaining:.1f} s left of the task deadline")
            number += 1
            step = self._attempt(entry, number, messages, remaining, retries)
            if isinstance(step, _Retry):
                retries += 1
                self._tools.sleep(step.wait_s)
            elif isinstance(step, _Invalid) and step.failure.retryable and not repaired:
                repaired = True
                messages = self._request.repair(self._request.messages, step.output, step.failure.reason)
            elif isinstance(step, _Invalid):
                return step.failure
            elif isinstance(step, Failure) and step.retryable:
                return Failure(step.kind, f"{step.reason} (after {number} attempts)")
            else:
                return step

    def _attempt(
        self, entry: ChainEntry, number: int, messages: Messages, remaining: float, retries: int
    ) -> Answer[T] | Failure | _Retry | _Invalid:
        """One request: its answer, or what to do next (wait and retry, repair, or give up on the entry)."""
        self._request.on_text(entry.label, "")  # a new attempt replaces whatever partial output was shown
        started = time.monotonic()
        try:
            completion = stream_completion(
                self._tools.clients.get(entry),
                entry,
                messages,
                response_format=self._request.response_format,
                time_limit_s=remaining,
                stall_s=self._tools.policy.stall_s,
                on_text=lambda text: self._request.on_text(entry.label, text),
            )
        except StreamBroken as exc:
            kind = FailureKind.BROKEN_STREAM
            self.record(Tried(entry, number, kind, messages, started, reason=exc.reason, output=exc.text))
            return Failure(kind, exc.reason)
        except openai.OpenAIError as exc:
            return self._after_error(entry, number, messages, started, classify(exc), retries)
        outcome = self._judge(completion)
        tried = Tried(entry, number, "ok", messages, started, output=completion.content, usage=completion.usage)
        if isinstance(outcome, Failure):
            self.record(replace(tried, outcome=outcome.kind, reason=outcome.reason))
            return _Invalid(outcome, completion.content) if outcome.kind is FailureKind.INVALID_OUTPUT else outcome
        self.record(tried)
        return Answer(outcome, completion.model)

    def _after_error(
        self, entry: ChainEntry, number: int, messages: Messages, started: float, failure: Failure, retries: int
    ) -> Failure | _Retry:
        """Retry after the policy's wait when the error allows it and the deadline has room; else give up."""
        policy = self._tools.policy
        wait = None
        if failure.retryable and retries < policy.attempts_per_entry - 1:
            wait = policy.delay(retries + 1, failure, self._tools.rng)
            if wait > self._request.deadline.remaining() - MIN_ATTEMPT_S:
                wait = None
                failure = Failure(failure.kind, failure.reason + " (no time left in the deadline to retry)")
        self.record(
            Tried(entry, number, failure.kind, messages, started, reason=failure.reason, usage=Usage(), retry_in_s=wait)
        )
        return _Retry(wait) if wait is not None else failure

    def _judge(self, completion: Completion) -> T | Failure:
        if completion.refusal or completion.finish_reason == "content_filter":
            return Failure(FailureKind.REFUSAL, f"the model refused: {completion.refusal or 'content filter'}"[:500])
        if completion.finish_reason == "length":
            # Not repairable: the same request would be cut at the same length again.
            return Failure(FailureKind.INVALID_OUTPUT, "the output was cut at max_output_tokens")
        try:
            return self._request.parse(completion.content)
        except InvalidOutputError as exc:
            return Failure(FailureKind.INVALID_OUTPUT, str(exc)[:500], retryable=True)

    def record(self, tried: Tried) -> Attempt:
        """Price ``tried`` (estimating the usage a broken stream never reported) and report it."""
        usage = tried.usage
        if usage is None:  # bill what was sent and what arrived
            usage = Usage(
                input_tokens=estimate_message_tokens(tried.messages), output_tokens=estimate_tokens(tried.output)
            )
        price = self._tools.prices.price_for(tried.entry.provider, tried.entry.model)
        attempt = Attempt(
            entry=tried.entry.label,
            number=tried.number,
            outcome=str(tried.outcome),
            reason=tried.reason,
            usage=usage,
            usage_estimated=tried.usage is None,
            cost_usd=price.cost(usage) if price else 0.0,
            priced=price is not None,
            duration_ms=round((time.monotonic() - tried.started) * 1000, 1),
            retry_in_s=round(tried.retry_in_s, 3) if tried.retry_in_s is not None else None,
        )
        self.attempts.append(attempt)
        self._request.on_attempt(attempt)
        return attempt
