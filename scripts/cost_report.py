#!/usr/bin/env python3
"""Where the money goes, measured from the cost recorded on the task documents (docs/cost.md).

Every LLM attempt is recorded on its task (``llm_attempts``: entry, outcome, usage, cost), so the bill can
be taken apart after the fact: cost per task (p50, p95, max), by model, by token kind (fresh input, cached
input, output, priced from ``atlas/llm/prices.json``), and what failed attempts cost (retries, broken streams).
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
from atlas.tasks.document import AttemptRecord, TaskDocument  # noqa: E402


def _usage(attempt: AttemptRecord) -> Usage:
    return Usage(**attempt.usage.model_dump())


def split_by_kind(attempt: AttemptRecord, prices: PriceTable) -> dict[str, float]:
    """An attempt's cost as fresh input, cached input and output (USD)."""
    provider, _, model = attempt.entry.partition("/")
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


def cost_report(documents: Iterable[TaskDocument], prices: PriceTable | None = None) -> dict[str, Any]:
    prices = prices or default_prices()
    per_task: list[float] = []
    by_status: dict[str, float] = defaultdict(float)
    by_model: dict[str, float] = defaultdict(float)
    by_kind: dict[str, float] = defaultdict(float)
    tokens: dict[str, int] = defaultdict(int)
    wasted, attempts, failed_attempts, tasks = 0.0, 0, 0, 0
    for document in documents:
        if not document.is_terminal:
            continue
        tasks += 1
        cost = document.cost_usd or 0.0
        per_task.append(cost)
        by_status[document.status.value] += cost
        for attempt in document.llm_attempts:
            attempts += 1
            by_model[attempt.entry] += attempt.cost_usd
            for kind, value in split_by_kind(attempt, prices).items():
                by_kind[kind] += value
            for kind, value in _usage(attempt).as_dict().items():
                tokens[kind] += value
            if attempt.outcome != "ok":
                failed_attempts += 1
                wasted += attempt.cost_usd
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
    from atlas.tasks.store import TaskStore

    settings = config.load(config.CliSettings)
    store = TaskStore(firestore.Client(project=settings.project), settings.tasks_collection)
    report = cost_report(store.recent(limit=args.limit))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
