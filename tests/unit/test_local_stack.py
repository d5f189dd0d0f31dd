"""The local stack's parts on their own: command lines built in one place, supervision, the front end."""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request

from command_lines import function_argv, retrieval_argv, worker_argv
from front_end import FrontEnd
from processes import Process, Spec, Supervisor, free_port, start_process, stop_process

from stack import REPO


def test_every_functions_framework_command_line_comes_from_command_lines():
    built_elsewhere = [
        str(path.relative_to(REPO))
        for folder in ("infra", "scripts", "tests")
        for path in (REPO / folder).rglob("*.py")
        if path.name not in ("command_lines.py", "test_local_stack.py") and "--signature-type" in path.read_text()
    ]
    assert built_elsewhere == []


def test_the_worker_and_retrieval_are_served_from_their_sources_and_a_bundle_from_its_own_main():
    serve = [sys.executable, "-m", "functions_framework"]
    where = ["--host", "127.0.0.1", "--port", "8080"]
    assert worker_argv("handle_dead_letter", 8080) == [
        *serve, "--source", "functions/worker/main.py", "--target", "handle_dead_letter", "--signature-type",
        "cloudevent", *where,
    ]  # fmt: skip
    assert retrieval_argv(8080)[3:9] == ["--source", "functions/retrieval/main.py", "--target", "retrieval",
                                         "--signature-type", "http"]  # fmt: skip
    assert "--source" not in function_argv("handle_task", "cloudevent", 8080)


def test_the_supervisor_restarts_a_process_that_died_and_only_those_it_has_a_spec_for(tmp_path):
    sleeper = Spec([sys.executable, "-c", "import time; time.sleep(60)"], {})
    processes = [start_process(name, sleeper.argv, sleeper.env, tmp_path) for name in ("worker", "other")]
    supervisor = Supervisor(processes, {"worker": sleeper}, tmp_path).start()
    first = processes[0]
    try:
        stop_process(first, timeout_s=2)
        stop_process(processes[1], timeout_s=2)
        deadline = time.monotonic() + 10
        while supervisor.restarts.get("worker", 0) < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert supervisor.restarts == {"worker": 1}
        assert processes[0].pid != first.pid and processes[0].alive() and not processes[1].alive()
    finally:
        supervisor.stop()
        for process in processes:
            stop_process(process, timeout_s=2)


def test_the_front_end_answers_503_when_no_instance_accepts_within_its_wait():
    port = free_port()
    front = FrontEnd(port, [free_port()], wait_s=0.5).start()
    try:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10)
            status = 200
        except urllib.error.HTTPError as exc:
            status = exc.code
        assert status == 503
    finally:
        front.stop()


def test_a_process_log_tail_says_so_when_there_is_no_log(tmp_path):
    assert Process("x", 1, str(tmp_path / "missing.log")).log_tail() == "(no log)"


def test_make_up_prints_the_lines_the_readme_runs_next():
    from stack import ENV_LINE, up_message

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    newcomer = readme.split("## From a fresh clone", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    printed = up_message(REPO / ".atlas" / "stack")
    assert "logs in .atlas/stack/logs" in printed[0] and "any directory of the checkout" in printed[0]
    assert ENV_LINE in printed[1] and "activates .venv" in printed[1]
    for line in printed[1:3]:
        assert line.split("    #")[0].strip() in newcomer, line
    assert "source .venv/bin/activate" not in newcomer  # the eval line does it


def test_the_eval_line_works_from_any_directory_of_the_checkout_and_activates_the_venv(tmp_path):
    import json
    import os
    import subprocess

    from stack import ENV_LINE

    state = {
        "project": "p", "topic": "t", "dlq_topic": "t-dlq", "subscription": "s", "dlq_subscription": "s-dlq",
        "pubsub_host": "127.0.0.1:8681", "firestore_host": "127.0.0.1:8682",
        "retrieval_url": "http://127.0.0.1:1", "worker_url": "http://127.0.0.1:2",
    }  # fmt: skip
    (tmp_path / "state.json").write_text(json.dumps(state))
    environment = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PUBSUB_EMULATOR_HOST")}
    environment.update(ATLAS_LOCAL_STATE_DIR=str(tmp_path), PATH="/usr/bin:/bin")
    script = f'{ENV_LINE} && echo "$PUBSUB_EMULATOR_HOST" && command -v atlas && pwd'
    for where in (REPO, REPO / "tests" / "unit", REPO / "infra" / "local"):
        done = subprocess.run(
            ["bash", "-c", script], cwd=where, env=environment, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == ["127.0.0.1:8681", str(REPO / ".venv" / "bin" / "atlas"), str(where)]
