"""`make demo`'s script on its own stack: with no LLM credentials the task ends degraded, exit code 0."""

import json
import os
import subprocess
import sys

import pytest

from stack import REPO

pytestmark = pytest.mark.e2e


def test_demo_without_credentials_ends_degraded_with_exit_code_0(model_dir):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OPENAI_API_KEY", "ATLAS_LLM_CHAIN", "PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST")
    }
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts/demo.py")], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert last["status"] == "degraded" and last["result"]["kind"] == "brief"
    assert "Retrieval-only brief" in result.stdout and "OPENAI_API_KEY" in last["notice"]
