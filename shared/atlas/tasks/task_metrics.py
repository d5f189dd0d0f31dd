"""What the pipeline records about a task, in the vocabulary of ``metrics_catalog.json``.

The pipeline and the dead-letter handler call these methods; the values go to the instance's running
totals (:class:`~atlas.observability.metrics.InstanceMetrics`), which :mod:`atlas.observability.export` writes to Cloud
Monitoring. Nothing here talks to the network, so every call is cheap and safe on the request path.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from atlas.observability.metrics import InstanceMetrics, entry_labels

if TYPE_CHECKING:
    from atlas.llm.attempts import Attempt
    from atlas.llm.chain import Fallback


class TaskMetrics:
    def __init__(self, metrics: InstanceMetrics | None = None) -> None:
        self.instance = metrics or InstanceMetrics()

    def delivery(self, outcome: str) -> None:
        """A Pub/Sub delivery was handled: an Outcome value, or ``retry`` for a transient error."""
        self.instance.add("deliveries", outcome=outcome)

    def finished(self, status: str, *, error_code: str = "", publish_time: str | None = None) -> None:
        """A task reached a terminal status; its latency counts from its publish time when known."""
        self.instance.add("tasks", status=status, error_code=error_code)
        latency = seconds_since(publish_time)
        if latency is not None:
            self.instance.observe("task/latency", latency, status=status)

    def stage(self, stage: str, duration_ms: float) -> None:
        self.instance.observe("stage/latency", duration_ms / 1000, stage=stage)

    def retrieval_hits(self, hits: int) -> None:
        self.instance.observe("retrieval/hits", hits)

    def llm_attempt(self, attempt: Attempt) -> None:
        """Tokens and cost of one LLM attempt, and its error class when it failed."""
        labels = entry_labels(attempt.entry)
        usage = attempt.usage
        for kind, tokens in (
            ("input", usage.input_tokens),
            ("cached_input", usage.cached_input_tokens),
            ("output", usage.output_tokens),
        ):
            if tokens:
                self.instance.add("llm/tokens", tokens, kind=kind, **labels)
        if attempt.cost_usd:
            self.instance.add("llm/cost", attempt.cost_usd, **labels)
        if attempt.outcome != "ok":
            self.instance.add("llm/errors", error_class=attempt.outcome, **labels)

    def fallbacks(self, fallbacks: Iterable[Fallback]) -> None:
        for fallback in fallbacks:
            self.instance.add("llm/fallbacks", reason=fallback.kind, **entry_labels(fallback.entry))

    def budget_remaining(self, remaining_usd: float) -> None:
        self.instance.set("budget/remaining", remaining_usd)


def seconds_since(rfc3339: str | None) -> float | None:
    """Seconds from an RFC 3339 time (a Pub/Sub publish time) to now; None when it cannot be read."""
    if not rfc3339:
        return None
    try:
        then = datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))
    except ValueError:
        return None
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    return max(0.0, (datetime.now(UTC) - then).total_seconds())
