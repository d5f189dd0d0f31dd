"""What a worker instance builds once from its settings and shares between request threads."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from google.cloud import firestore

from atlas.budget import DailyBudget
from atlas.config import WorkerSettings
from atlas.llm import ProviderChain
from atlas.pipeline import PipelineDeps
from atlas.retrieval_client import RetrievalClient
from atlas.retry import RetryPolicy
from atlas.store import TaskStore

log = logging.getLogger("atlas.worker")
T = TypeVar("T")


def once(build: Callable[[], T]) -> Callable[[], T]:
    """``build()`` run at most once per instance, even when concurrent first requests (gen2 concurrency,
    several threads) ask at the same moment: functools.cache would let both build their own clients."""
    lock = threading.Lock()
    built: list[T] = []

    def get() -> T:
        if not built:
            with lock:
                if not built:
                    built.append(build())
        return built[0]

    return get


def build_chain(settings: WorkerSettings) -> ProviderChain:
    chain = ProviderChain(
        settings.llm_chain,
        policy=RetryPolicy(
            attempts_per_entry=settings.llm_attempts_per_entry,
            retry_after_cap_s=settings.llm_retry_after_cap_s,
            cooldown_s=settings.llm_cooldown_s,
            stall_s=settings.llm_stall_s,
        ),
    )
    for entry in chain.unpriced:
        log.warning("no price for %s in prices.json: its cost counts as 0 USD against the budget", entry.label)
    return chain


def build_deps(settings: WorkerSettings) -> PipelineDeps:
    client = firestore.Client(project=settings.project)
    budget = None
    if settings.daily_budget_usd is not None:
        budget = DailyBudget(client, settings.budget_collection, settings.daily_budget_usd)
    return PipelineDeps(
        store=TaskStore(client, settings.tasks_collection, retention_days=settings.task_retention_days),
        retriever=RetrievalClient(
            settings.retrieval_url, timeout_s=settings.retrieval_timeout_s, auth=settings.retrieval_auth
        ),
        chain=build_chain(settings),
        top_k=settings.retrieval_top_k,
        lease_s=settings.lease_s,
        task_deadline_s=settings.task_deadline_s,
        max_delivery_attempts=settings.max_delivery_attempts,
        input_token_budget=settings.input_token_budget,
        budget=budget,
        over_budget=settings.over_budget,
    )
