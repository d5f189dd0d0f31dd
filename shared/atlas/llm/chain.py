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

from atlas.config import ChainEntry
from atlas.errors import InvalidOutputError
from atlas.llm.attempts import Attempt, ChainTools, EntryRun, GenerationRequest, Messages, Repair, TextSink
from atlas.llm.pricing import PriceTable, Usage, default_prices
from atlas.llm.providers import Clients, entry_is_configured
from atlas.llm.retry import Cooldowns, Deadline, Failure, FailureKind, RetryPolicy

T = TypeVar("T")

# Kinds after which the task may succeed if retried later (another delivery, after Pub/Sub's backoff).
RETRY_LATER_KINDS = frozenset(
    {FailureKind.TRANSIENT, FailureKind.BROKEN_STREAM, FailureKind.DEADLINE, FailureKind.COOLDOWN}
)
COOLDOWN_KINDS = frozenset({FailureKind.TRANSIENT, FailureKind.PERMANENT, FailureKind.BROKEN_STREAM})


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
        self._environ = dict(os.environ if environ is None else environ)
        self._tools = ChainTools(
            clients=Clients(self._environ),
            policy=policy or RetryPolicy(),
            prices=prices or default_prices(),
            sleep=sleep,
            rng=rng or random.Random(),
        )
        self._cooldowns = Cooldowns()

    @property
    def entries(self) -> tuple[ChainEntry, ...]:
        return self._entries

    @property
    def configured(self) -> list[ChainEntry]:
        return [entry for entry in self._entries if entry_is_configured(entry, self._environ)]

    @property
    def unpriced(self) -> list[ChainEntry]:
        return [e for e in self._entries if self._tools.prices.price_for(e.provider, e.model) is None]

    def cheapest(self) -> tuple[ChainEntry, ...]:
        """The configured entries with the lowest known price (in chain order); all of them if none is priced."""
        weights = {}
        for entry in self.configured:
            price = self._tools.prices.price_for(entry.provider, entry.model)
            if price is not None:
                weights[entry] = price.per_task_weight
        if not weights:
            return tuple(self.configured)
        lowest = min(weights.values())
        return tuple(entry for entry, weight in weights.items() if weight == lowest)

    def generate_json(
        self,
        messages: Messages,
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
        request = GenerationRequest(
            messages=messages,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": schema_name, "schema": schema, "strict": False},
            },
            parse=parse,
            repair=repair,
            deadline=deadline,
            on_text=on_text or (lambda label, text: None),
            on_attempt=on_attempt or (lambda attempt: None),
        )
        candidates = [e for e in (entries if entries is not None else self._entries) if self._is_configured(e)]
        if not candidates:
            names = ", ".join(entry.label for entry in (entries or self._entries)) or "none"
            return ChainFailure(
                reason=f"no LLM provider is configured (chain entries without credentials: {names}).",
                configured=False,
            )
        return self._try_in_turn(EntryRun(self._tools, request), candidates)

    def _try_in_turn(self, run: EntryRun[T], candidates: list[ChainEntry]) -> Generation[T] | ChainFailure:
        """Each usable entry in order until one answers; entries in cooldown are skipped (unless all are)."""
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
                self._cooldowns.put(entry.label, self._tools.policy.cooldown_s)
            if result.kind is FailureKind.DEADLINE:
                break
        return ChainFailure(
            attempts=run.attempts,
            reason="every LLM provider failed: " + "; ".join(f"{f.entry} ({f.kind}): {f.reason}" for f in fallbacks),
            fallbacks=fallbacks,
        )

    def _is_configured(self, entry: ChainEntry) -> bool:
        return entry_is_configured(entry, self._environ)


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
