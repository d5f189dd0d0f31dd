"""The rehearsal is one switch: `stack.py up --rehearsal` (`make up REHEARSAL=1`) starts the local
OpenAI-compatible server with the stack, points the worker's chain at it, and `down` stops it with the rest."""

import json
import os
import subprocess
import sys

import pytest

from stack import REPO, load_state

pytestmark = pytest.mark.e2e
STACK = [sys.executable, str(REPO / "infra/local/stack.py")]


def test_up_with_rehearsal_designs_through_the_local_server_and_down_stops_it(model_dir, tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OPENAI_API_KEY", "ATLAS_LLM_CHAIN", "PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST")
    }
    env["ATLAS_LOCAL_STATE_DIR"] = str(tmp_path / "stack")
    up = subprocess.run([*STACK, "up", "--rehearsal"], env=env, capture_output=True, text=True, timeout=300)
    state = load_state(tmp_path / "stack")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert state is not None and state.llm_url and "Rehearsal: the worker's chain is the local" in up.stdout
        assert "the same whatever the prompt" in up.stdout
        server = next(p for p in state.processes if p.name == "rehearsal-llm")
        assert server.alive()
        shell = (
            f'cd {REPO / "tests"} && eval "$(cd "$(git rev-parse --show-toplevel)" && '
            '.venv/bin/python infra/local/stack.py env)" && atlas ingest ../knowledge/ >/dev/null && '
            'atlas submit "Design a logging architecture for microservices" --wait --timeout 120'
        )
        done = subprocess.run(["bash", "-c", shell], env=env, capture_output=True, text=True, timeout=300, cwd=REPO)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        document = json.loads(done.stdout.strip().splitlines()[-1])
        assert document["status"] == "succeeded" and document["model"] == "gpt-4o-mini"
        assert "── streaming from openai_compatible/gpt-4o-mini ──" in done.stderr
    finally:
        down = subprocess.run([*STACK, "down"], env=env, capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    assert state is not None and not any(p.alive() for p in state.processes)  # the server too
    assert load_state(tmp_path / "stack") is None
