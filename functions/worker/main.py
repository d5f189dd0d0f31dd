"""The worker Cloud Function (gen2, CloudEvent), fed by a Pub/Sub push subscription.

Thin by design: configuration is read once at start (a bad value stops the instance from starting), the
clients are built once per instance and shared by request threads, and each event is handed to
``atlas.pipeline.process_message``. Returning acknowledges the message; an exception (a transient error)
makes functions-framework answer 500 so that Pub/Sub redelivers it with backoff.

``handle_dead_letter`` is a second entry point, fed by a push subscription on the dead-letter topic: it
records the task of each dead letter as failed (``atlas.dead_letter``) and acknowledges.
"""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent

from atlas import config
from atlas.dead_letter import handle_dead_letter_event
from atlas.logs import configure_logging
from atlas.pipeline import PipelineDeps, process_event
from atlas.store import TaskStore
from atlas.worker import build_deps, once

SETTINGS = config.load(config.WorkerSettings)
configure_logging(SETTINGS.log_level)


@once
def _deps() -> PipelineDeps:
    return build_deps(SETTINGS)


@functions_framework.cloud_event
def handle_task(cloud_event: CloudEvent) -> None:
    data = cloud_event.data if isinstance(cloud_event.data, dict) else {}
    process_event(data, event_id=str(cloud_event["id"]), deps=_deps())


@once
def _store() -> TaskStore:
    from google.cloud import firestore

    client = firestore.Client(project=SETTINGS.project)
    return TaskStore(client, SETTINGS.tasks_collection, retention_days=SETTINGS.task_retention_days)


@functions_framework.cloud_event
def handle_dead_letter(cloud_event: CloudEvent) -> None:
    data = cloud_event.data if isinstance(cloud_event.data, dict) else {}
    handle_dead_letter_event(data, event_id=str(cloud_event["id"]), store=_store())
