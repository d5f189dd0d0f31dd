"""The worker Cloud Function (gen2, CloudEvent), fed by a Pub/Sub push subscription.

Thin by design: configuration is read once at start (a bad value stops the instance from starting), the
clients are built once per instance and shared by request threads, and each event is handed to
``atlas.tasks.pipeline.process_event``. Returning acknowledges the message; an exception (a transient error)
makes functions-framework answer 500 so that Pub/Sub redelivers it with backoff.

``handle_dead_letter`` is a second entry point, fed by a push subscription on the dead-letter topic: it
records the task of each dead letter as failed (``atlas.tasks.dead_letter``) and acknowledges.

Every request logs under its trace and execution id, and then writes the instance's metrics if they are
due (``atlas.observability.export``: at most once per interval, and once more at shutdown).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import flask
import functions_framework
from cloudevents.http import CloudEvent

from atlas import config
from atlas.instance import once
from atlas.observability.export import install_shutdown_hooks
from atlas.observability.logs import configure_logging, log_context, trace_fields
from atlas.tasks.dead_letter import handle_dead_letter_event
from atlas.tasks.pipeline import PipelineDeps, process_event
from atlas.tasks.store import TaskStore
from atlas.tasks.worker import Telemetry, build_deps, build_telemetry

SETTINGS = config.load(config.WorkerSettings)
configure_logging(SETTINGS.log_level)
install_shutdown_hooks()


@once
def _telemetry() -> Telemetry:
    return build_telemetry(SETTINGS)


@once
def _deps() -> PipelineDeps:
    return build_deps(SETTINGS, _telemetry().metrics)


@contextmanager
def _request(cloud_event: CloudEvent) -> Iterator[dict]:
    """The event's data, with the request's trace and execution id bound to every log line; the
    instance's metrics are written afterwards if they are due."""
    data = cloud_event.data if isinstance(cloud_event.data, dict) else {}
    message = data.get("message") if isinstance(data.get("message"), dict) else {}
    attributes = message.get("attributes") if isinstance(message.get("attributes"), dict) else {}
    headers = flask.request.headers if flask.has_request_context() else {}
    execution_id = headers.get("Function-Execution-Id") or str(cloud_event["id"])
    try:
        with log_context(
            labels={"execution_id": execution_id}, fields=trace_fields(SETTINGS.project, headers, attributes)
        ):
            yield data
    finally:
        _telemetry().flush_if_due()


@functions_framework.cloud_event
def handle_task(cloud_event: CloudEvent) -> None:
    with _request(cloud_event) as data:
        process_event(data, event_id=str(cloud_event["id"]), deps=_deps())


@once
def _store() -> TaskStore:
    from google.cloud import firestore

    client = firestore.Client(project=SETTINGS.project)
    return TaskStore(client, SETTINGS.tasks_collection, retention_days=SETTINGS.task_retention_days)


@functions_framework.cloud_event
def handle_dead_letter(cloud_event: CloudEvent) -> None:
    with _request(cloud_event) as data:
        handle_dead_letter_event(data, event_id=str(cloud_event["id"]), store=_store(), metrics=_telemetry().metrics)
