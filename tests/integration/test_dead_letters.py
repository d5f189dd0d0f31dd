"""Dead letters against the real emulators: the store's dead-letter and reopen transitions, the handler, and
a whole cycle — a task whose retrieval is down is redelivered by a real push subscription until Pub/Sub
dead-letters it, the handler records it failed with the reason and the attempt count, and a replay after
the fix finishes it under the same task id."""

import base64
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from google.cloud import pubsub_v1

from atlas.config import ChainEntry
from atlas.errors import RetrievalUnavailableError, TaskBusyError
from atlas.llm.chain import ProviderChain
from atlas.models import TaskError, TaskMessage, TaskStatus
from atlas.tasks.dead_letter import (
    ATTR_DELIVERY_COUNT,
    ATTR_PUBLISH_TIME,
    ATTR_SUBSCRIPTION,
    DeadLetterOutcome,
    handle_dead_letter_event,
)
from atlas.tasks.document import DeadLetterRecord, DeliveryReport
from atlas.tasks.pipeline import PipelineDeps, process_event
from atlas.tasks.replay import replay_dead_letters
from atlas.tasks.store import DeadLetterResult, ReopenResult
from support import TEST_PROJECT

pytestmark = pytest.mark.integration
TASK = TaskMessage(prompt="Design a cache")
FIVE = DeadLetterRecord(delivery_count=5)
PROMPT = b'{"prompt": "Design a logging architecture for microservices"}'


class Sources:
    def __init__(self) -> None:
        self.down = True

    def search(self, query, *, top_k, filter=None):
        if self.down:
            raise RetrievalUnavailableError("retrieval answered 503")
        return []


def deps(store, retriever) -> PipelineDeps:
    chain = ProviderChain([ChainEntry(provider="openai", model="gpt-4o-mini")], environ={})
    # Many delivery attempts allowed: the transient error keeps raising, so Pub/Sub's own limit (5) applies.
    return PipelineDeps(store=store, retriever=retriever, chain=chain, top_k=3, max_delivery_attempts=50)


def event(data: bytes, message_id: str, attributes: dict[str, str] | None = None) -> dict:
    return {
        "message": {"data": base64.b64encode(data).decode(), "messageId": message_id, "attributes": attributes or {}}
    }


def released(store, task_id="t1"):
    store.claim(task_id, TASK, message_id="m1", owner="a", lease_s=60, publish_time="2026-01-01T00:00:00.000Z")
    store.release(task_id, owner="a", error=TaskError(code="llm_unavailable", message="every provider 429"))


def test_dead_letter_records_failed_with_the_last_error_and_counts(store):
    released(store)
    record = DeadLetterRecord(subscription="s", delivery_count=5)
    assert store.dead_letter("t1", record=record) is DeadLetterResult.RECORDED
    document = store.get("t1")
    assert document.status == "failed" and document.error.code == "dead_lettered" and document.lease is None
    assert "5 deliveries" in document.error.message and "llm_unavailable: every provider 429" in document.error.message
    assert document.dead_letter == DeadLetterRecord(subscription="s", delivery_count=5, claims=1)


def test_dead_letter_leaves_a_terminal_task_alone_and_a_live_lease_busy(store):
    store.claim("t1", TASK, message_id="m1", owner="a", lease_s=60)
    assert store.dead_letter("t1", record=FIVE) is DeadLetterResult.BUSY
    store.finish("t1", owner="a", status=TaskStatus.SUCCEEDED, report=DeliveryReport())
    assert store.dead_letter("t1", record=FIVE) is DeadLetterResult.ALREADY_TERMINAL
    assert store.get("t1").status == "succeeded"


def test_dead_letter_of_a_never_claimed_task_creates_it_failed(store):
    assert store.dead_letter("t9", record=FIVE, message=TASK) is DeadLetterResult.RECORDED
    document = store.get("t9")
    assert document.status == "failed" and document.prompt == TASK.prompt and document.error.code == "dead_lettered"


def test_reopen_only_dead_lettered_tasks_and_keep_history(store):
    released(store)
    assert store.reopen("t1") is ReopenResult.NOT_DEAD_LETTERED
    store.dead_letter("t1", record=FIVE)
    assert store.reopen("t1") is ReopenResult.REOPENED
    document = store.get("t1")
    assert document.status == "queued" and document.error is None and document.attempts == 0
    assert document.history[0].error.code == "dead_lettered" and document.replays == 1
    assert store.reopen("t1") is ReopenResult.NOT_DEAD_LETTERED
    assert store.reopen("nope") is ReopenResult.MISSING


def test_handler_traces_a_task_by_body_id_or_publish_time(store):
    released(store, "t1")
    attributes = {ATTR_DELIVERY_COUNT: "5", ATTR_PUBLISH_TIME: "2026-01-01T00:00:00.000Z", ATTR_SUBSCRIPTION: "s"}
    # No task_id in the body, a new message id: found by the original publish time.
    assert handle_dead_letter_event(
        event(b'{"prompt": "Design a cache"}', "99", attributes), event_id="e", store=store
    ) is (DeadLetterOutcome.RECORDED)
    assert store.get("t1").error.code == "dead_lettered"
    body = b'{"prompt": "p", "task_id": "t2"}'
    assert handle_dead_letter_event(
        event(body, "100", attributes | {ATTR_PUBLISH_TIME: "x"}), event_id="e", store=store
    ) is (DeadLetterOutcome.RECORDED)
    assert store.get("t2").status == "failed"
    assert handle_dead_letter_event(event(body, "101", attributes), event_id="e", store=store) is (
        DeadLetterOutcome.ALREADY_TERMINAL
    )


def test_handler_logs_and_acknowledges_what_it_cannot_trace(store, caplog):
    assert handle_dead_letter_event(event(b"\xff", "7", {ATTR_DELIVERY_COUNT: "5"}), event_id="e", store=store) is (
        DeadLetterOutcome.UNKNOWN_TASK
    )
    assert handle_dead_letter_event({"nothing": 1}, event_id="e", store=store) is DeadLetterOutcome.UNKNOWN_TASK
    assert "dead letter of an unknown task" in caplog.text


def test_handler_asks_for_redelivery_while_a_delivery_still_runs(store):
    store.claim("t3", TASK, message_id="m", owner="a", lease_s=60)
    with pytest.raises(TaskBusyError):
        handle_dead_letter_event(event(b'{"prompt": "p", "task_id": "t3"}', "8"), event_id="e", store=store)


class PushServer:
    """Stands in for the worker function: each push runs ``process_event``; an exception answers 500."""

    def __init__(self, handler) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                try:
                    handler(body)
                    status = 204
                except Exception:
                    status = 500
                outer.deliveries += 1
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.deliveries = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def stop(self) -> None:
        self.server.shutdown()


def wait_for(predicate, timeout_s=90):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_dead_lettered_task_is_recorded_then_replayed_under_the_same_id(emulators, store):
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    name = f"dl-{uuid.uuid4().hex[:8]}"
    topic, dlq = publisher.topic_path(TEST_PROJECT, name), publisher.topic_path(TEST_PROJECT, f"{name}-dlq")
    inspect = subscriber.subscription_path(TEST_PROJECT, f"{name}-dlq-inspect")
    handler_pull = subscriber.subscription_path(TEST_PROJECT, f"{name}-dlq-handler")
    worker_sub = subscriber.subscription_path(TEST_PROJECT, f"{name}-worker")
    sources = Sources()
    pipeline = deps(store, sources)
    server = PushServer(lambda body: process_event(body, event_id="", deps=pipeline))
    publisher.create_topic(name=topic)
    publisher.create_topic(name=dlq)
    subscriber.create_subscription(request={"name": inspect, "topic": dlq})
    subscriber.create_subscription(request={"name": handler_pull, "topic": dlq})
    subscriber.create_subscription(
        request={
            "name": worker_sub,
            "topic": topic,
            "push_config": {"push_endpoint": f"{server.url}/projects/{TEST_PROJECT}/topics/{name}"},
            "retry_policy": {"minimum_backoff": {"seconds": 0}, "maximum_backoff": {"seconds": 1}},
            "dead_letter_policy": {"dead_letter_topic": dlq, "max_delivery_attempts": 5},
        }
    )
    try:
        task_id = publisher.publish(topic, PROMPT, team="infra").result(timeout=30)  # the task id: the message id

        # The dead letter, as the handler's push subscription would carry it (checked here: Pub/Sub's attributes).
        received = wait_for(
            lambda: (
                subscriber.pull(request={"subscription": handler_pull, "max_messages": 1}, timeout=10).received_messages
            )
        )[0]
        attributes = dict(received.message.attributes)
        assert attributes[ATTR_DELIVERY_COUNT] == "5" and attributes[ATTR_SUBSCRIPTION] == f"{name}-worker"
        assert attributes["team"] == "infra" and ATTR_PUBLISH_TIME in attributes
        assert received.message.message_id != task_id  # a dead letter has a new id: traced by publish time
        assert server.deliveries == 5
        assert store.get(task_id).last_error.code == "retrieval_unavailable"

        dead_letter = event(bytes(received.message.data), received.message.message_id, attributes)
        assert handle_dead_letter_event(dead_letter, event_id="e", store=store) is DeadLetterOutcome.RECORDED
        document = store.get(task_id)
        assert document.status == "failed" and document.error.code == "dead_lettered"
        assert "after 5 deliveries" in document.error.message and "retrieval_unavailable" in document.error.message
        assert document.attempts == 5 and document.dead_letter.delivery_count == 5

        dry = replay_dead_letters(subscriber, publisher, subscription=inspect, topic=topic, store=store, dry_run=True)
        assert dry.pulled == 1 and dry.replayed == 0 and store.get(task_id).status == "failed"

        sources.down = False  # the fix
        summary = replay_dead_letters(
            subscriber, publisher, subscription=inspect, topic=topic, store=store, max_messages=5
        )
        assert summary.replayed == 1 and summary.tasks == [{"task_id": task_id, "action": "replayed"}]
        finished = wait_for(
            lambda: (store.get(task_id).status in ("succeeded", "degraded", "failed")) and store.get(task_id)
        )
        assert finished.status == "degraded"  # no LLM configured here: the point is the same id, not the design
        assert finished.replays == 1 and finished.history[0].attempts == 5
        assert finished.attempts == 1
        again = replay_dead_letters(subscriber, publisher, subscription=inspect, topic=topic, store=store)
        assert again.pulled == 0
    finally:
        subscriber.delete_subscription(request={"subscription": worker_sub})
        server.stop()
