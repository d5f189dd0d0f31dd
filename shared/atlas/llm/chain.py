"""The LLM provider chain: each entry of ``ATLAS_LLM_CHAIN`` tried in order, with one retry loop.

For each entry the chain streams a structured (JSON-schema) answer and lets the caller's ``parse``
validate it. What happens after a failure is decided by :mod:`atlas.llm.retry` (retry the entry with
backoff, or move to the next one, putting the failed entry in cooldown); a stream that breaks or stalls
moves to the next entry, and ``on_text`` is reset so partial output of two entries is never mixed.
Invalid output gets one repair attempt on the same entry, then the next entry.

Every attempt is recorded with its usage and its cost from the price table (estimated, and flagged so,
when a broken stream never reported usage); ``on_attempt`` sees each one as it happens (the daily
budget is charged there). The chain reports what happened; the pipeline decides what a failure means
for the task (retry later, degrade, or fail).
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import openai

from atlas.config import ChainEntry
from atlas.errors import InvalidOutputError, StreamBroken
from atlas.llm.pricing import PriceTable, Usage, default_prices
from atlas.llm.providers import Clients, entry_is_configured
from atlas.llm.retry import Cooldowns, Deadline, Failure, FailureKind, RetryPolicy, classify
from atlas.llm.streaming import Completion, stream_completion
from atlas.llm.tokens import estimate_message_tokens, estimate_tokens

T = TypeVar("T")

MIN_ATTEMPT_S = 2.0  # an attempt with less time than this left in the deadline is not started
TextSink = Callable[[str, str], None]  # (entry label, the whole text so far)
Repair = Callable[[list[dict[str, str]], str, str], list[dict[str, str]]]  # (messages, bad output, error)
# Kinds after which the task may succeed if retried later (another delivery, after Pub/Sub's backoff).
RETRY_LATER_KINDS = frozenset(
    {FailureKind.TRANSIENT, FailureKind.BROKEN_STREAM, FailureKind.DEADLINE, FailureKind.COOLDOWN}
)
COOLDOWN_KINDS = frozenset({FailureKind.TRANSIENT, FailureKind.PERMANENT, FailureKind.BROKEN_STREAM})


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
class Fallback:
    """An entry that was tried (or skipped) and did not produce the result, and why."""

    entry: str
    kind: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"entry": self.entry, "kind": self.kind, "reason": self.reason}


@dataclass(frozen=True)
class _Spent:
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def usage(self) -> Usage:
        return sum((a.usage for a in self.attempts), Usage())

    @property
    def cost_usd(self) -> float:
        return round(sum(a.cost_usd for a in self.attempts), 8)


@dataclass(frozen=True)
class Generation(_Spent, Generic[T]):
    value: T | None = None
    provider: str = ""
    model: str = ""
    fallbacks: list[Fallback] = field(default_factory=list)


@dataclass(frozen=True)
class ChainFailure(_Spent):
    """No entry produced a result; ``reason`` says why in a sentence meant for the task document."""

    reason: str = ""
    fallbacks: list[Fallback] = field(default_factory=list)
    configured: bool = True

    @property
    def retry_later(self) -> bool:
        """Whether a later delivery might succeed (some failure was transient, not the task's fault)."""
        return any(FailureKind(f.kind) in RETRY_LATER_KINDS for f in self.fallbacks)

    @property
    def refused(self) -> bool:
        """Whether every entry that answered refused the content."""
        answered = [f for f in self.fallbacks if f.kind != FailureKind.COOLDOWN]
        return bool(answered) and all(f.kind == FailureKind.REFUSAL for f in answered)


class ProviderChain:
    """Tries each configured entry in order; clients and cooldowns live as long as the instance."""

    def __init__(
        self,
        entries: Sequence[ChainEntry],
        *,
        policy: RetryPolicy | None = None,
        prices: PriceTable | None = None,
        environ: dict[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._entries = tuple(entries)
        self._policy = policy or RetryPolicy()
        self._prices = prices or default_prices()
        self._environ = dict(os.environ if environ is None else environ)
        self._clients = Clients(self._environ)
        self._cooldowns = Cooldowns()
        self._sleep = sleep
        self._rng = rng or random.Random()

    @property
    def entries(self) -> tuple[ChainEntry, ...]:
        return self._entries

    @property
    def configured(self) -> list[ChainEntry]:
        return [entry for entry in self._entries if entry_is_configured(entry, self._environ)]

    @property
    def unpriced(self) -> list[ChainEntry]:
        return [e for e in self._entries if self._prices.price_for(e.provider, e.model) is None]

    def cheapest(self) -> tuple[ChainEntry, ...]:
        """The configured entries with the lowest known price (in chain order); all of them if none is priced."""
        weights = {}
        for entry in self.configured:
            price = self._prices.price_for(entry.provider, entry.model)
            if price is not None:
                weights[entry] = price.per_task_weight
        if not weights:
            return tuple(self.configured)
        lowest = min(weights.values())
        return tuple(entry for entry, weight in weights.items() if weight == lowest)

    def generate_json(
        self,
        messages: list[dict[str, str]],
        *,
        schema_name: str,
        schema: dict[str, Any],
        parse: Callable[[str], T],
        repair: Repair,
        deadline: Deadline,
        on_text: TextSink | None = None,
        on_attempt: Callable[[Attempt], None] | None = None,
        entries: Sequence[ChainEntry] | None = None,
    ) -> Generation[T] | ChainFailure:
        """Ask each entry in turn for JSON matching ``schema``; ``parse`` raises InvalidOutputError."""
        run = _Run(self, messages, schema_name, schema, parse, repair, deadline, on_text, on_attempt)
        candidates = [e for e in (entries if entries is not None else self._entries) if self._is_configured(e)]
        if not candidates:
            names = ", ".join(entry.label for entry in (entries or self._entries)) or "none"
            return ChainFailure(
                reason=f"no LLM provider is configured (chain entries without credentials: {names}).",
                configured=False,
            )
        usable = [e for e in candidates if not self._cooldowns.active(e.label)] or candidates
        fallbacks = [
            Fallback(e.label, FailureKind.COOLDOWN, "failed in this instance a moment ago; skipped")
            for e in candidates
            if e not in usable
        ]
        for entry in usable:
            result = run.entry(entry)
            if not isinstance(result, Failure):
                return Generation(
                    attempts=run.attempts,
                    value=result.value,
                    provider=entry.provider,
                    model=result.model,
                    fallbacks=fallbacks,
                )
            fallbacks.append(Fallback(entry.label, result.kind, result.reason))
            if result.kind in COOLDOWN_KINDS:
                self._cooldowns.put(entry.label, self._policy.cooldown_s)
            if result.kind is FailureKind.DEADLINE:
                break
        return ChainFailure(
            attempts=run.attempts,
            reason="every LLM provider failed: " + "; ".join(f"{f.entry} ({f.kind}): {f.reason}" for f in fallbacks),
            fallbacks=fallbacks,
        )

    def _is_configured(self, entry: ChainEntry) -> bool:
        return entry_is_configured(entry, self._environ)


@dataclass(frozen=True)
class _Answer(Generic[T]):
    value: T
    model: str


class _Run(Generic[T]):
    """The attempts of one ``generate_json`` call."""

    def __init__(
        self,
        chain: ProviderChain,
        messages: list[dict[str, str]],
        schema_name: str,
        schema: dict[str, Any],
        parse: Callable[[str], T],
        repair: Repair,
        deadline: Deadline,
        on_text: TextSink | None,
        on_attempt: Callable[[Attempt], None] | None,
    ) -> None:
        self._chain = chain
        self._messages = messages
        self._format = {"type": "json_schema", "json_schema": {"name": schema_name, "schema": schema, "strict": False}}
        self._parse = parse
        self._repair = repair
        self._deadline = deadline
        self._on_text = on_text or (lambda label, text: None)
        self._on_attempt = on_attempt or (lambda attempt: None)
        self.attempts: list[Attempt] = []

    def entry(self, entry: ChainEntry) -> _Answer[T] | Failure:
        policy = self._chain._policy
        messages = self._messages
        repaired = False
        retries = 0
        number = 0
        while True:
            remaining = self._deadline.remaining()
            if remaining < MIN_ATTEMPT_S:
                return Failure(FailureKind.DEADLINE, f"only {remaining:.1f} s left of the task deadline")
            number += 1
            self._on_text(entry.label, "")  # a new attempt replaces whatever partial output was shown
            started = time.monotonic()
            try:
                completion = stream_completion(
                    self._chain._clients.get(entry),
                    entry,
                    messages,
                    response_format=self._format,
                    time_limit_s=remaining,
                    stall_s=policy.stall_s,
                    on_text=lambda text: self._on_text(entry.label, text),
                )
            except StreamBroken as exc:
                self._record(entry, number, FailureKind.BROKEN_STREAM, exc.reason, messages, exc.text, None, started)
                return Failure(FailureKind.BROKEN_STREAM, exc.reason)
            except openai.OpenAIError as exc:
                failure = classify(exc)
                wait = None
                if failure.retryable and retries < policy.attempts_per_entry - 1:
                    wait = policy.delay(retries + 1, failure, self._chain._rng)
                    if wait > self._deadline.remaining() - MIN_ATTEMPT_S:
                        wait = None
                        failure = Failure(failure.kind, failure.reason + " (no time left in the deadline to retry)")
                self._record(entry, number, failure.kind, failure.reason, messages, "", Usage(), started, wait)
                if wait is None:
                    if failure.retryable:
                        return Failure(failure.kind, f"{failure.reason} (after {number} attempts)")
                    return failure
                retries += 1
                self._chain._sleep(wait)
                continue
            outcome = self._judge(completion)
            if isinstance(outcome, Failure):
                can_repair = outcome.kind is FailureKind.INVALID_OUTPUT and outcome.retryable and not repaired
                self._record(entry, number, outcome.kind, outcome.reason, messages, completion.content,
                             completion.usage, started)  # fmt: skip
                if can_repair:
                    repaired = True
                    messages = self._repair(self._messages, completion.content, outcome.reason)
                    continue
                return outcome
            self._record(entry, number, "ok", "", messages, completion.content, completion.usage, started)
            return _Answer(outcome, completion.model)

    def _judge(self, completion: Completion) -> T | Failure:
        if completion.refusal or completion.finish_reason == "content_filter":
            return Failure(FailureKind.REFUSAL, f"the model refused: {completion.refusal or 'content filter'}"[:500])
        if completion.finish_reason == "length":
            # Not repairable: the same request would be cut at the same length again.
            return Failure(FailureKind.INVALID_OUTPUT, "the output was cut at max_output_tokens")
        try:
            return self._parse(completion.content)
        except InvalidOutputError as exc:
            return Failure(FailureKind.INVALID_OUTPUT, str(exc)[:500], retryable=True)

    def _record(
        self,
        entry: ChainEntry,
        number: int,
        outcome: str,
        reason: str,
        messages: list[dict[str, str]],
        output: str,
        usage: Usage | None,
        started: float,
        retry_in_s: float | None = None,
    ) -> None:
        estimated = usage is None
        if usage is None:  # the stream never reported usage: bill what was sent and what arrived
            usage = Usage(input_tokens=estimate_message_tokens(messages), output_tokens=estimate_tokens(output))
        price = self._chain._prices.price_for(entry.provider, entry.model)
        attempt = Attempt(
            entry=entry.label,
            number=number,
            outcome=str(outcome),
            reason=reason,
            usage=usage,
            usage_estimated=estimated,
            cost_usd=price.cost(usage) if price else 0.0,
            priced=price is not None,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
            retry_in_s=round(retry_in_s, 3) if retry_in_s is not None else None,
        )
        self.attempts.append(attempt)
        self._on_attempt(attempt)


def parse_json_object(content: str) -> dict[str, Any]:
    """Parse ``content`` as a JSON object, tolerating a Markdown code fence around it."""
    text = content.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidOutputError(f"the output is not JSON: {exc.msg}") from exc
    if not isinstance(value, dict):
        raise InvalidOutputError("the output is not a JSON object")
    return value
