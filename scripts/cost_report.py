#!/usr/bin/env python3
"""Where the money goes, measured from the cost recorded on the task documents (docs/cost.md).

Every LLM attempt is recorded on its task (``llm_attempts``: entry, outcome, usage, cost), so the bill can
be taken apart after the fact: cost per task (p50, p95, max), by model, by token kind (fresh input, cached
input, output, priced from ``atlas/prices.json``), and what failed attempts cost (retries, broken streams).
It reads the collection the ``atlas`` CLI reads (``ATLAS_PROJECT``, ``ATLAS_TASKS_COLLECTION``, the
emulator when ``FIRESTORE_EMULATOR_HOST`` is set) and prints one JSON object::

    python scripts/cost_report.py --limit 1000
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "shared"))

from atlas.llm.pricing import PriceTable, Usage, default_prices  # noqa: E402

TERMINAL = ("succeeded", "degraded", "failed")


def _usage(attempt: dict[str, Any]) -> Usage:
    raw = attempt.get("usage") or {}
    return Usage(
        int(raw.get("input_tokens", 0)), int(raw.get("cached_input_tokens", 0)), int(raw.get("output_tokens", 0))
    )


def split_by_kind(attempt: dict[str, Any], prices: PriceTable) -> dict[str, float]:
    """An attempt's cost as fresh input, cached input and output (USD)."""
    provider, _, model = str(attempt.get("entry", "")).partition("/")
    price = prices.price_for(provider, model)
    if price is None:
        return {"input": 0.0, "cached_input": 0.0, "output": 0.0}
    usage = _usage(attempt)
    cached = min(usage.cached_input_tokens, usage.input_tokens)
    return {
        "input": (usage.input_tokens - cached) * price.input / 1e6,
        "cached_input": cached * price.cached_input / 1e6,
        "output": usage.output_tokens * price.output / 1e6,
    }


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1]


def cost_report(documents: Iterable[dict[str, Any]], prices: PriceTable | None = None) -> dict[str, Any]:
    prices = prices or default_prices()
    per_task: list[float] = []
    by_status: dict[str, float] = defaultdict(float)
    by_model: dict[str, float] = defaultdict(float)
    by_kind: dict[str, float] = defaultdict(float)
    tokens: dict[str, int] = defaultdict(int)
    wasted, attempts, failed_attempts, tasks = 0.0, 0, 0, 0
    for document in documents:
        status = document.get("status")
        if status not in TERMINAL:
            continue
        tasks += 1
        cost = float(document.get("cost_usd") or 0.0)
        per_task.append(cost)
        by_status[status] += cost
        for attempt in document.get("llm_attempts") or []:
            attempts += 1
            attempt_cost = float(attempt.get("cost_usd") or 0.0)
            by_model[str(attempt.get("entry", ""))] += attempt_cost
            for kind, value in split_by_kind(attempt, prices).items():
                by_kind[kind] += value
            for kind, value in _usage(attempt).as_dict().items():
                tokens[kind] += value
            if attempt.get("outcome") != "ok":
                failed_attempts += 1
                wasted += attempt_cost
    total = sum(per_task)
    return {
        "tasks": tasks,
        "total_usd": round(total, 6),
        "per_task_usd": {
            "mean": round(total / tasks, 6) if tasks else None,
            "p50": _round(_quantile(per_task, 0.5)),
            "p95": _round(_quantile(per_task, 0.95)),
            "max": _round(max(per_task, default=None)),
        },
        "by_status_usd": _rounded(by_status),
        "by_entry_usd": _rounded(by_model),
        "by_token_kind_usd": _rounded(by_kind),
        "tokens": dict(tokens),
        "tokens_per_task": {k: round(v / tasks, 1) for k, v in tokens.items()} if tasks else {},
        "attempts": attempts,
        "failed_attempts": failed_attempts,
        "failed_attempts_usd": round(wasted, 6),
        "prices_as_of": prices.as_of,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 6) for k, v in sorted(values.items(), key=lambda kv: -kv[1])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=1000, help="read at most this many tasks (newest first)")
    args = parser.parse_args(argv)
    from google.cloud import firestore

    from atlas import config

    settings = config.load(config.CliSettings)
    collection = firestore.Client(project=settings.project).collection(settings.tasks_collection)
    query = collection.order_by("updated_at", direction=firestore.Query.DESCENDING).limit(args.limit)
    report = cost_report(snapshot.to_dict() or {} for snapshot in query.stream())
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
