"""The Pub/Sub topics and subscriptions of the local stack, created as Terraform defines them in the cloud."""

from __future__ import annotations

from typing import Protocol

from atlas import limits

ACK_DEADLINE_S = limits.ACK_DEADLINE_S  # atlas/limits.py: task deadline < function timeout <= ack deadline
MAX_DELIVERY_ATTEMPTS = limits.MAX_DELIVERY_ATTEMPTS
MIN_BACKOFF_S = 1
MAX_BACKOFF_S = 10
DEAD_LETTER_ACK_DEADLINE_S = 60


class Endpoints(Protocol):
    """Where the subscriptions point: the stack's project, topic names and push endpoints."""

    project: str
    topic: str
    dlq_topic: str
    subscription: str
    dlq_subscription: str
    pubsub_host: str
    worker_url: str
    dead_letter_url: str
    dlq_push_subscription: str


def create_subscriptions(
    state: Endpoints,
    *,
    ack_deadline_s: int = ACK_DEADLINE_S,
    backoff_s: tuple[int, int] = (MIN_BACKOFF_S, MAX_BACKOFF_S),
) -> None:
    """Topic, dead-letter topic and the worker's push subscription, as Terraform defines them.

    The dead-letter topic has two subscriptions: a push one to the dead-letter handler (records the task as
    failed) and a pull one that keeps every dead letter for inspection and ``atlas replay-dlq``.
    """
    import grpc
    from google.api_core.exceptions import AlreadyExists
    from google.pubsub_v1 import PublisherClient, SubscriberClient
    from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport
    from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

    channel = grpc.insecure_channel(state.pubsub_host)
    publisher = PublisherClient(transport=PublisherGrpcTransport(channel=channel))
    subscriber = SubscriberClient(transport=SubscriberGrpcTransport(channel=channel))
    topic = f"projects/{state.project}/topics/{state.topic}"
    dlq_topic = f"projects/{state.project}/topics/{state.dlq_topic}"
    for name in (topic, dlq_topic):
        try:
            publisher.create_topic(name=name)
        except AlreadyExists:
            pass
    requests = [
        {"name": f"projects/{state.project}/subscriptions/{state.dlq_subscription}", "topic": dlq_topic},
        {
            "name": f"projects/{state.project}/subscriptions/{state.subscription}",
            "topic": topic,
            # The topic in the path gives the CloudEvent a realistic source (//pubsub.googleapis.com/projects/..).
            "push_config": {"push_endpoint": f"{state.worker_url}/projects/{state.project}/topics/{state.topic}"},
            "ack_deadline_seconds": ack_deadline_s,
            "retry_policy": {
                "minimum_backoff": {"seconds": backoff_s[0]},
                "maximum_backoff": {"seconds": backoff_s[1]},
            },
            "dead_letter_policy": {"dead_letter_topic": dlq_topic, "max_delivery_attempts": MAX_DELIVERY_ATTEMPTS},
        },
    ]
    if state.dead_letter_url:
        requests.append(
            {
                "name": f"projects/{state.project}/subscriptions/{state.dlq_push_subscription}",
                "topic": dlq_topic,
                "push_config": {
                    "push_endpoint": f"{state.dead_letter_url}/projects/{state.project}/topics/{state.dlq_topic}"
                },
                "ack_deadline_seconds": DEAD_LETTER_ACK_DEADLINE_S,
                "retry_policy": {"minimum_backoff": {"seconds": backoff_s[0]}, "maximum_backoff": {"seconds": 60}},
            }
        )
    for request in requests:
        try:
            subscriber.create_subscription(request=request)
        except AlreadyExists:
            pass
    channel.close()
