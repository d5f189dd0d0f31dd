"""The CLI a newcomer lives in, on a real stack: list, show as Markdown and as an HTML page (drawn in headless
Chromium), export-finetune; and a backup restored into a fresh stack finds every task and the same search."""

import json
import os
import time
from pathlib import Path

import pytest
from google.cloud import firestore, pubsub_v1

from atlas import cli
from atlas.cli.follow import follow_task
from atlas.tasks.retrieval_client import RetrievalClient
from stack import LocalStack
from support import TEST_PROJECT
from support.browser import mermaid_js, rendered_dom
from support.running_stack import running_stack

pytestmark = pytest.mark.e2e
QUERIES = ("centralised logging pipeline", "multi-region disaster recovery", "cache invalidation for a read-heavy API")
PROMPTS = {
    "bk-logging": "Design a logging architecture for microservices",
    "bk-dr": "Design a multi-region disaster recovery plan",
    "bk-cache": "Design a caching layer for a read-heavy API",
}


@pytest.fixture(scope="module")
def stack_with_tasks(emulators, _fake_openai_server, model_dir, tmp_path_factory):
    _fake_openai_server.reset()
    state_dir = tmp_path_factory.mktemp("cli-stack")
    with running_stack(emulators, state_dir, base_url=_fake_openai_server.base_url, models=("gpt-4o-mini",)) as (
        state,
        store,
    ):
        publisher = pubsub_v1.PublisherClient()
        topic = publisher.topic_path(state.project, state.topic)
        for task_id, prompt in PROMPTS.items():
            publisher.publish(topic, json.dumps({"prompt": prompt, "task_id": task_id}).encode()).result(30)
        publisher.publish(topic, b'{"prompt": 42, "task_id": "bk-bad"}').result(30)
        extra = {"prompt": "Design a queue for invoices", "task_id": "bk-extra", "colour": "red"}
        publisher.publish(topic, json.dumps(extra).encode()).result(30)
        for task_id in [*PROMPTS, "bk-bad", "bk-extra"]:
            assert follow_task(store, task_id, timeout_s=60, live=False).status in ("succeeded", "failed")
        yield state, store, state_dir / "qdrant"


def searches(retrieval_url):
    client = RetrievalClient(retrieval_url, timeout_s=30)
    return {query: [s.id for s in client.search(query, top_k=8)] for query in QUERIES}


def test_list_shows_recent_tasks_by_status(stack_with_tasks, capsys):
    assert cli.main(["list", "--status", "failed"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["TASK", "STATUS", "STAGE"]
    rows = {line.split()[0]: line for line in out[1:] if not line.startswith(" ")}
    assert set(rows) == {"bk-bad", "bk-extra"}
    why = {line.split()[0]: out[i + 2] for i, line in enumerate(out[1:]) if not line.startswith(" ")}
    assert rows["bk-extra"].endswith("Design a queue for invoices") and rows["bk-bad"].endswith("(prompt not recorded)")
    assert why["bk-extra"].strip().startswith("why: invalid_task: invalid task: unknown field 'colour'")
    assert why["bk-bad"].strip().startswith("why: invalid_task: invalid task: 'prompt'")
    assert cli.main(["list", "--limit", "10"]) == 0
    ids = {line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]}
    assert set(PROMPTS) | {"bk-bad"} <= ids


def test_retrieval_logs_one_json_line_per_search_to_its_log(stack_with_tasks):
    state, _store, _qdrant = stack_with_tasks
    searches(state.retrieval_url)
    log = Path(next(p.log for p in state.processes if p.name == "retrieval"))
    deadline = time.monotonic() + 10
    while True:
        lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
        found = [line for line in lines if line.get("route") == "POST /search"]
        if len(found) >= len(QUERIES) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(found) >= len(QUERIES), log.read_text()[-2000:]
    for line in found:
        assert line["status"] == 200 and line["took_ms"] >= 0 and line["hits"] > 0
        assert isinstance(line["cached"], bool) and line["severity"] == "INFO"


def test_show_renders_markdown_and_a_page_whose_diagram_chromium_draws(stack_with_tasks, capsys, tmp_path):
    page = tmp_path / "bk-logging.html"
    assert cli.main(["show", "bk-logging"]) == 0
    out = capsys.readouterr().out
    assert "## Diagram\n```mermaid\nflowchart LR" in out and "## Sources\n- [S1] " in out
    assert cli.main(["show", "bk-logging", "--html", str(page), "--mermaid-js", str(mermaid_js())]) == 0
    assert capsys.readouterr().out == f"{page.resolve()}\n"  # where the page is, not the whole document
    dom = rendered_dom(page)
    assert 'aria-roledescription="flowchart' in dom and "<svg" in dom  # Mermaid drew the diagram
    assert 'id="S1"' in dom and 'href="#S1"' in dom  # citations link to their sources
    assert 'class="origin" href="file://' in dom and "/knowledge/" in dom  # ... and the sources to their files


def test_submit_prints_just_the_task_id_on_stdout_also_first_with_wait(stack_with_tasks, capsys):
    assert cli.main(["submit", "Design a job queue", "--task-id", "bk-plain"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "bk-plain\n" and "published task bk-plain to " in captured.err
    assert cli.main(["submit", "Design a job queue", "--task-id", "bk-waited", "--wait", "--timeout", "60"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "bk-waited" and json.loads(out[-1])["task_id"] == "bk-waited"
    _state, store, _qdrant = stack_with_tasks
    assert follow_task(store, "bk-plain", timeout_s=60, live=False).status == "succeeded"  # settled for the backup


def test_a_task_rejected_only_for_an_unknown_field_keeps_its_prompt(stack_with_tasks, capsys):
    assert cli.main(["show", "bk-extra"]) == cli.EXIT_TASK_FAILED
    out = capsys.readouterr().out
    assert "Prompt: Design a queue for invoices" in out and "(not recorded)" not in out
    assert "unknown field 'colour'" in out


def test_replay_dlq_dry_run_on_an_empty_dead_letter_queue_answers_quickly_and_says_it_is_pulling(
    stack_with_tasks, capsys
):
    started = time.monotonic()
    assert cli.main(["replay-dlq", "--dry-run"]) == 0
    took = time.monotonic() - started
    captured = capsys.readouterr()
    assert took < 5, took
    assert captured.err.startswith("pulling dead letters from ") and "waiting up to 2s" in captured.err
    assert json.loads(captured.out.strip().splitlines()[-1])["pulled"] == 0


def test_submit_wait_shows_the_design_growing_in_the_terminal(stack_with_tasks, _fake_openai_server, monkeypatch):
    from atlas.cli import follow

    shown: list[str] = []
    real = follow.show_partial

    def recording(before, entry, text):
        after = real(before, entry, text)
        if after != before:
            shown.append(after[1])
        return after

    monkeypatch.setattr(follow, "show_partial", recording)
    monkeypatch.setattr(_fake_openai_server, "chunk_delay_s", 0.4)  # the rehearsal server's pace
    assert cli.main(["submit", "Design a job scheduler", "--task-id", "bk-stream", "--wait", "--timeout", "90"]) == 0
    assert len(shown) >= 3, shown  # the terminal saw the design grow, piece after piece
    assert all(
        later.startswith(earlier) and len(later) > len(earlier)
        for earlier, later in zip(shown, shown[1:], strict=False)
    )


def test_show_of_an_unknown_task_says_what_to_do(stack_with_tasks, capsys):
    assert cli.main(["show", "no-such-task"]) == cli.EXIT_TASK_FAILED
    assert "atlas list" in capsys.readouterr().err


def test_export_finetune_writes_the_prompt_the_model_saw_and_its_design(stack_with_tasks, tmp_path, capsys):
    out = tmp_path / "finetune.jsonl"
    assert cli.main(["export-finetune", "--out", str(out)]) == 0
    examples = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(examples) >= len(PROMPTS)
    for example in examples:
        roles = [m["role"] for m in example["messages"]]
        assert roles == ["system", "user", "assistant"]
        assert '<source id="S1"' in example["messages"][1]["content"]
        assert json.loads(example["messages"][2]["content"])["components"]


def test_export_finetune_since_keeps_only_tasks_updated_from_then_on(stack_with_tasks, tmp_path, capsys):
    out = tmp_path / "since.jsonl"
    assert cli.main(["export-finetune", "--out", str(out), "--since", "2000-01-01"]) == 0
    everything = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert everything["examples"] >= len(PROMPTS)
    assert cli.main(["export-finetune", "--out", str(out), "--since", "2999-01-01T00:00:00+00:00"]) == 1
    assert "wrote 0 examples from 0 succeeded tasks updated since 2999-01-01" in capsys.readouterr().err
    assert out.read_text() == ""


def test_backup_restored_into_a_fresh_stack_finds_every_task_and_the_same_search(
    stack_with_tasks, tmp_path, capsys, monkeypatch
):
    state, store, qdrant_path = stack_with_tasks
    client = firestore.Client(project=TEST_PROJECT)
    collection = os.environ["ATLAS_TASKS_COLLECTION"]
    before = {snap.id: snap.to_dict() for snap in client.collection(collection).stream()}
    results_before = searches(state.retrieval_url)
    backup_dir = tmp_path / "backup"
    assert cli.main(["backup", str(backup_dir), "--qdrant-path", str(qdrant_path)]) == 0
    manifest = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert manifest["firestore"]["kind"] == "emulator_export" and manifest["qdrant"]["kind"] == "edge"

    # A fresh stack: its own emulators (empty), the index restored into a folder of its own first.
    restored_index = tmp_path / "restored-qdrant"
    assert cli.main(["restore", str(backup_dir), "--skip-firestore", "--qdrant-path", str(restored_index)]) == 0
    fresh = LocalStack(tmp_path / "fresh", project=TEST_PROJECT, topic=state.topic, qdrant_path=restored_index)
    with fresh as fresh_state:
        monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", fresh_state.firestore_host)
        monkeypatch.setenv("PUBSUB_EMULATOR_HOST", fresh_state.pubsub_host)
        fresh_client = firestore.Client(project=TEST_PROJECT)
        assert list(fresh_client.collection(collection).limit(1).stream()) == []
        assert cli.main(["restore", str(backup_dir), "--skip-index"]) == 0
        after = {snap.id: snap.to_dict() for snap in fresh_client.collection(collection).stream()}
        assert after == before and set(PROMPTS) | {"bk-bad"} <= set(after)
        deadline = time.monotonic() + 30
        while (results_after := searches(fresh_state.retrieval_url)) != results_before:
            assert time.monotonic() < deadline, (results_before, results_after)
            time.sleep(1)
        assert all(results_after.values())


def test_firestore_only_backup_restores_the_tasks_and_says_how_to_rebuild_the_index(stack_with_tasks, tmp_path, capsys):
    backup_dir = tmp_path / "tasks-only"
    assert cli.main(["backup", str(backup_dir), "--skip-index"]) == 0
    manifest = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert manifest["qdrant"] is None and not (backup_dir / "qdrant").exists()
    assert cli.main(["restore", str(backup_dir)]) == 0
    done = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "atlas ingest knowledge/" in done["qdrant"]["skipped"] and done["firestore"]["imported"]


def test_restore_refuses_a_folder_that_is_not_a_backup(stack_with_tasks, tmp_path, capsys):
    assert cli.main(["restore", str(tmp_path)]) == cli.EXIT_USAGE
    assert "not an Atlas backup" in capsys.readouterr().err


def test_backup_refuses_a_folder_that_is_not_empty(stack_with_tasks, tmp_path, capsys):
    (tmp_path / "something").write_text("x")
    assert cli.main(["backup", str(tmp_path)]) == cli.EXIT_USAGE
    assert "not empty" in capsys.readouterr().err
    assert Path(tmp_path / "something").read_text() == "x"
