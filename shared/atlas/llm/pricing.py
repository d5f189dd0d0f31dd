"""What a generation costs: token usage priced from the table in ``prices.json`` (under version control).

Providers count cached prompt tokens inside the prompt tokens (OpenAI's ``prompt_tokens_details.
cached_tokens``), and bill them at the cached rate: so the uncached input is ``input - cached`` at the
input price, plus ``cached`` at the cached price, plus the output. Charging every prompt token at the
full rate, or the cached ones twice, is the classic mistake this module exists to avoid.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

PER_TOKENS = 1_000_000


@dataclass(frozen=True)
class Usage:
    """Tokens of one generation attempt (or the sum of several)."""

    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.cached_input_tokens + other.cached_input_tokens,
            self.output_tokens + other.output_tokens,
        )

    def as_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "output_tokens": self.output_tokens,
        }


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: float
    cached_input: float
    output: float

    def cost(self, usage: Usage) -> float:
        cached = min(usage.cached_input_tokens, usage.input_tokens)
        total = (
            (usage.input_tokens - cached) * self.input + cached * self.cached_input + usage.output_tokens * self.output
        )
        return round(total / PER_TOKENS, 8)

    @property
    def per_task_weight(self) -> float:
        """A single number to order entries by price (a typical task reads far more than it writes)."""
        return 4 * self.input + self.output


class PriceTable:
    def __init__(self, prices: dict[str, Price], as_of: str = "") -> None:
        self._prices = prices
        self.as_of = as_of

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PriceTable:
        prices = {name: Price(**values) for name, values in data["prices"].items()}
        return cls(prices, str(data.get("as_of", "")))

    def price_for(self, provider: str, model: str) -> Price | None:
        """The price of ``model`` at ``provider``: provider/model, then model, then provider/*."""
        for key in (f"{provider}/{model}", model, f"{provider}/*"):
            if key in self._prices:
                return self._prices[key]
        return None


@cache
def default_prices() -> PriceTable:
    """The table shipped with the package (``atlas/llm/prices.json``)."""
    text = resources.files("atlas.llm").joinpath("prices.json").read_text(encoding="utf-8")
    return PriceTable.from_json(json.loads(text))
