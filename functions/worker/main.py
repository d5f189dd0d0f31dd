"""The worker Cloud Function (gen2, CloudEvent), fed by a Pub/Sub push subscription.

Thin by design: configuration is read once at start (a bad value stops the instance from starting), the
clients are built once per instance and shared by request threads, and each event is handed to
``atlas.pipeline.process_message``. Returning acknowledges the message; an exception (a transient error)
makes functions-framework answer 500 so that Pub/Sub redelivers it with backoff.
"""

from __future__ import annotations

import functools

import functions_framework
from cloudevents.http import CloudEvent
from google.cloud import firestore

from atlas import config
from atlas.llm import ProviderChain
from atlas.logs import configure_logging
from atlas.pipeline import PipelineDeps, process_event
from atlas.retrieval_client import RetrievalClient
from atlas.store import TaskStore

SETTINGS = config.load(config.WorkerSettings)
configure_logging(SETTINGS.log_level)


@functools.cache
def _deps() -> PipelineDeps:
    return PipelineDeps(
        store=TaskStore(firestore.Client(project=SETTINGS.project), SETTINGS.tasks_collection),
        retriever=RetrievalClient(
            SETTINGS.retrieval_url, timeout_s=SETTINGS.retrieval_timeout_s, auth=SETTINGS.retrieval_auth
        ),
        chain=ProviderChain(SETTINGS.llm_chain),
        top_k=SETTINGS.retrieval_top_k,
        lease_s=SETTINGS.lease_s,
    )


@functions_framework.cloud_event
def handle_task(cloud_event: CloudEvent) -> None:
    data = cloud_event.data if isinstance(cloud_event.data, dict) else {}
    process_event(data, event_id=str(cloud_event["id"]), deps=_deps())
