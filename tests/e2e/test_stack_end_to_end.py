"""End to end: publish to the Pub/Sub emulator; the push subscription drives the worker under
functions-framework, which asks the retrieval function (HTTP) and a local OpenAI-compatible server."""

import json
import os
import shutil
import subprocess
import time

import pytest
from google.api_core.exceptions import DeadlineExceeded
from google.cloud import pubsub_v1

from atlas import cli
from atlas.cli.follow import follow_task
from support.running_stack import running_stack

pytestmark = pytest.mark.e2e
PROMPT = b'{"prompt": "Design a logging architecture for microservices"}'
CHAIN_MODELS = ("gpt-4o", "gpt-4.1", "gpt-4o-mini")


@pytest.fixture(scope="module")
def atlas_stack(emulators, _fake_openai_server, model_dir, tmp_path_factory):
    # Three entries, priced from atlas/prices.json; each test scripts the fake per model. No cooldown, so that
    # one test's failing entries do not change the next test's chain.
    with running_stack(
        emulators,
        tmp_path_factory.mktemp("stack"),
        base_url=_fake_openai_server.base_url,
        models=CHAIN_MODELS,
        worker_env={"ATLAS_LLM_COOLDOWN_S": "0"},
    ) as running:
        yield running


def publish(state, data: bytes) -> str:
    publisher = pubsub_v1.PublisherClient()
    return publisher.publish(publisher.topic_path(state.project, state.topic), data).result(timeout=30)


def wait_terminal(store, task_id, timeout_s=60):
    document = follow_task(store, task_id, timeout_s=timeout_s)
    assert document is not None and document.is_terminal, document
    return document


def test_published_task_ends_with_a_cited_design(atlas_stack, fake_openai):
    state, store = atlas_stack
    document = wait_terminal(store, publish(state, PROMPT))
    assert document.status == "succeeded" and document.design is not None
    labels = {source.label for source in document.sources}
    assert document.sources[0].source in {"knowledge/logging-pipelines.md", "knowledge/log-storage-and-search.md"}
    assert {c.source_id for c in document.design.citations} <= labels
    assert document.attempts == 1 and document.timings_ms["retrieval_ms"] > 0


def test_task_published_with_the_gcloud_cli_runs(atlas_stack, tmp_path):
    state, store = atlas_stack
    env = {
        **os.environ,
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_PUBSUB": f"http://{state.pubsub_host}/",
        "CLOUDSDK_AUTH_DISABLE_CREDENTIALS": "true",
        "CLOUDSDK_CORE_PROJECT": state.project,
        "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),
    }
    out = subprocess.run(
        [
            shutil.which("gcloud"),
            "pubsub",
            "topics",
            "publish",
            state.topic,
            "--format=value(messageIds)",
            '--message={"prompt": "Design a multi-region disaster recovery plan", "task_id": "gcloud-1"}',
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert out.stdout.strip()
    document = wait_terminal(store, "gcloud-1")
    assert document.status == "succeeded" and document.message_id == out.stdout.strip()


def test_bad_inputs_fail_with_a_reason_and_are_never_redelivered(atlas_stack):
    state, store = atlas_stack
    bad = {
        "invalid-json": b"{not json",
        "missing-prompt": b'{"cloud": "gcp"}',
        "unknown-field": b'{"prompt": "p", "colour": "red"}',
        "empty-prompt": b'{"prompt": ""}',
        "oversized-prompt": b'{"prompt": "' + b"x" * 9000 + b'"}',
        "not-utf8": b"\xff\xfe\xfa binary",
    }
    ids = {name: publish(state, data) for name, data in bad.items()}
    for name, task_id in ids.items():
        document = wait_terminal(store, task_id)
        assert document.status == "failed", name
        assert document.error.code == "invalid_task" and document.error.message, name
    time.sleep(3)  # a redelivery (retry backoff is 1 s locally) would have shown up by now
    subscriber = pubsub_v1.SubscriberClient()
    try:
        dead = subscriber.pull(
            subscription=subscriber.subscription_path(state.project, state.dlq_subscription), max_messages=10, timeout=3
        ).received_messages
    except DeadlineExceeded:
        dead = []
    assert list(dead) == []
    assert all(store.get(task_id).attempts == 1 for task_id in ids.values())


def test_same_task_id_published_twice_is_generated_once(atlas_stack, fake_openai):
    state, store = atlas_stack
    data = b'{"prompt": "Design a caching layer", "task_id": "dup-1"}'
    publish(state, data)
    assert wait_terminal(store, "dup-1").status == "succeeded"
    publish(state, data)
    time.sleep(2)
    assert len(fake_openai.completions()) == 1
    assert store.get("dup-1").attempts == 1


def test_cli_submit_wait_prints_the_document_with_json_as_last_line(atlas_stack, capsys):
    code = cli.main(["submit", "Design a metrics and alerting stack", "--task-id", "cli-1", "--cloud", "gcp",
                     "--wait", "--timeout", "60"])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    assert any("status: SUCCEEDED" in line for line in out)
    last = json.loads(out[-1])
    assert last["task_id"] == "cli-1" and last["status"] == "succeeded" and last["hints"] == {"cloud": "gcp"}


def test_cli_show_of_an_unknown_task_exits_1(atlas_stack, capsys):
    assert cli.main(["show", "no-such-task"]) == 1
    assert "no task no-such-task" in capsys.readouterr().err


def test_rate_limited_then_cut_stream_ends_succeeded_on_the_third_entry_with_fallbacks_and_cost(
    atlas_stack, fake_openai, capsys
):
    fake_openai.default_for("gpt-4o", "status:429")
    fake_openai.default_for("gpt-4.1", "cut")
    fake_openai.chunk_delay_s = 0.2
    fake_openai.usage = {"prompt_tokens": 100_000, "cached_tokens": 20_000, "completion_tokens": 10_000}
    code = cli.main(["submit", "Design a logging architecture for microservices", "--task-id", "chain-1", "--wait"])
    captured = capsys.readouterr()
    assert code == 0
    document = json.loads(captured.out.strip().splitlines()[-1])
    print(json.dumps(document, indent=2)[:6000])
    assert document["status"] == "succeeded" and document["model"] == "gpt-4o-mini"
    assert [(f["entry"], f["kind"]) for f in document["fallbacks"]] == [
        ("openai_compatible/gpt-4o", "transient"),
        ("openai_compatible/gpt-4.1", "broken_stream"),
    ]
    outcomes = [(a["entry"].split("/")[1], a["outcome"]) for a in document["llm_attempts"]]
    assert outcomes == [("gpt-4o", "transient")] * 3 + [("gpt-4.1", "broken_stream"), ("gpt-4o-mini", "ok")]
    mini = 0.08 * 0.15 + 0.02 * 0.075 + 0.01 * 0.60
    cut = document["llm_attempts"][3]["cost_usd"]
    assert cut > 0 and document["cost_usd"] == pytest.approx(mini + cut)
    assert "partial" not in document
    # `atlas submit --wait` showed the design growing as it streamed.
    assert "── streaming from openai_compatible/gpt-4o-mini ──" in captured.err
    assert '{"title": "Centralised logging' in captured.err
