"""`make demo`'s script on its own stack: with no LLM credentials the task ends degraded, exit code 0."""

import json
import os
import subprocess
import sys

import pytest

from atlas.config import ChainEntry, chain_to_env
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


def test_demo_honours_the_llm_chain_from_the_environment(model_dir, fake_openai):
    entry = ChainEntry(provider="openai_compatible", model="gpt-4o-mini", base_url=fake_openai.base_url)
    chain = chain_to_env((entry,))
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST")},
        "ATLAS_LLM_CHAIN": chain,
    }
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts/demo.py")], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert last["status"] == "succeeded" and last["model"] == "gpt-4o-mini" and last["result"]["kind"] == "design"
    assert last["cost_usd"] > 0 and "Cost: " in result.stdout
