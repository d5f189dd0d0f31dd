"""End to end through the local stack: a task whose LLM keeps failing transiently is dead-lettered by the
push subscription after 5 deliveries, the stack's dead-letter handler records it failed with the reason and
the attempt count, and ``atlas replay-dlq`` after the fix finishes it under the same task id."""


import pytest
from google.cloud import pubsub_v1

from atlas import cli
from atlas.cli.follow import follow_task
from support.running_stack import running_stack

pytestmark = pytest.mark.e2e
MODEL = "gpt-4o-mini"


@pytest.fixture(scope="module")
def dl_stack(emulators, _fake_openai_server, model_dir, tmp_path_factory):
    with running_stack(
        emulators,
        tmp_path_factory.mktemp("stack-dl"),
        base_url=_fake_openai_server.base_url,
        models=[MODEL],
        worker_env={
            "ATLAS_LLM_COOLDOWN_S": "0",
            "ATLAS_LLM_ATTEMPTS_PER_ENTRY": "1",
            # More than the subscription's 5: the worker never degrades, so Pub/Sub's dead-letter policy decides.
            "ATLAS_MAX_DELIVERY_ATTEMPTS": "10",
        },
        min_backoff_s=0,
        max_backoff_s=1,
    ) as running:
        yield running


def test_dead_lettered_task_is_recorded_then_replayed_after_the_fix(dl_stack, fake_openai, capsys):
    state, store = dl_stack
    fake_openai.default_for(MODEL, "status:500")
    publisher = pubsub_v1.PublisherClient()
    topic = publisher.topic_path(state.project, state.topic)
    task_id = publisher.publish(topic, b'{"prompt": "Design a logging architecture"}').result(timeout=30)

    document = follow_task(store, task_id, timeout_s=120, live=False)
    assert document.status == "failed", document
    assert document.error.code == "dead_lettered"
    assert "after 5 deliveries" in document.error.message and "llm_unavailable" in document.error.message
    assert document.attempts == 5 and document.dead_letter.delivery_count == 5
    assert len(fake_openai.completions(MODEL)) == 5

    fake_openai.reset()  # the fix
    capsys.readouterr()
    assert cli.main(["replay-dlq", "--max", "10"]) == 0
    assert '"replayed": 1' in capsys.readouterr().out
    document = follow_task(store, task_id, timeout_s=120, live=False)
    assert document.status == "succeeded", document
    assert document.replays == 1 and document.history[0].error.code == "dead_lettered"
