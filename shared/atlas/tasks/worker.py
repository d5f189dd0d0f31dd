"""What a worker instance builds once from its settings and shares between request threads."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from google.cloud import firestore

from atlas.config import WorkerSettings
from atlas.llm.budget import DailyBudget
from atlas.llm.chain import ProviderChain
from atlas.llm.retry import RetryPolicy
from atlas.observability.export import MetricsExporter, Resource, flush_on_shutdown, instance_id, monitoring_client
from atlas.observability.metrics import InstanceMetrics
from atlas.tasks.pipeline import PipelineDeps
from atlas.tasks.retrieval_client import RetrievalClient
from atlas.tasks.store import TaskStore
from atlas.tasks.task_metrics import TaskMetrics

log = logging.getLogger("atlas.tasks.worker")


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


@dataclass(frozen=True)
class Telemetry:
    """This instance's metrics: what the pipeline records into, and what writes it (None when disabled)."""

    metrics: TaskMetrics
    exporter: MetricsExporter | None

    def flush_if_due(self) -> None:
        if self.exporter is not None:
            self.exporter.flush_if_due()


def build_telemetry(settings: WorkerSettings) -> Telemetry:
    """The instance's running totals, and an exporter that also writes once more at shutdown."""
    metrics = InstanceMetrics()
    if not settings.metrics_enabled:
        return Telemetry(TaskMetrics(metrics), None)
    exporter = MetricsExporter(
        metrics,
        resource=Resource(
            project_id=settings.project, location=settings.region, job=settings.metrics_job, task_id=instance_id()
        ),
        client_factory=lambda: monitoring_client(settings.monitoring_endpoint),
        interval_s=settings.metrics_interval_s,
    )
    flush_on_shutdown(exporter)
    return Telemetry(TaskMetrics(metrics), exporter)


def build_deps(settings: WorkerSettings, metrics: TaskMetrics | None = None) -> PipelineDeps:
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
        metrics=metrics or TaskMetrics(),
    )
