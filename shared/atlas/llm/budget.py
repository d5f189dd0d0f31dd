"""The daily LLM budget, shared by every worker instance through one Firestore counter a day.

Each priced generation attempt adds its cost with ``Increment`` (a server-side transform, no
transaction: a hot counter in a read-modify-write transaction serialises every worker on one lock).
The check before a task's generation reads the day's total. Tasks that start while the budget still
has room may together overshoot it by at most the cost of the generations in flight; the next task
sees the overshoot and is refused (or moved to the cheapest entry).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from google.cloud import firestore


def _today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class BudgetState:
    day: str
    limit_usd: float
    spent_usd: float

    @property
    def remaining_usd(self) -> float:
        return max(0.0, self.limit_usd - self.spent_usd)

    @property
    def exhausted(self) -> bool:
        return self.spent_usd >= self.limit_usd


class DailyBudget:
    """``budgets/{YYYY-MM-DD}`` documents (UTC days) holding ``spent_usd``."""

    def __init__(
        self, client: firestore.Client, collection: str, limit_usd: float, today: Callable[[], str] = _today
    ) -> None:
        self._collection = client.collection(collection)
        self._limit = limit_usd
        self._today = today

    def state(self) -> BudgetState:
        day = self._today()
        snapshot = self._collection.document(day).get()
        spent = float((snapshot.to_dict() or {}).get("spent_usd", 0.0)) if snapshot.exists else 0.0
        return BudgetState(day=day, limit_usd=self._limit, spent_usd=spent)

    def charge(self, cost_usd: float) -> None:
        """Add ``cost_usd`` to today's spend (no-op for free attempts)."""
        if cost_usd <= 0:
            return
        self._collection.document(self._today()).set(
            {
                "spent_usd": firestore.Increment(cost_usd),
                "limit_usd": self._limit,
                "updated_at": firestore.SERVER_TIMESTAMP,
            },
            merge=True,
        )
