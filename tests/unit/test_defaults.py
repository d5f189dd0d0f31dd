"""Every tunable has one home (``atlas/limits.py``, or ``stack.DEFAULT_MODEL_DIR`` for the local model), and
every copy of it elsewhere is that value: the settings, the pipeline, the retry policy, the store, the metrics
exporter, the local stack, the scripts and the Makefile."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
from pathlib import Path

import pytest

import stack
from atlas import config, limits
from atlas.llm.retry import RetryPolicy
from atlas.observability.export import MetricsExporter
from atlas.tasks.pipeline import PipelineDeps
from atlas.tasks.store import TaskStore
from stack import REPO

SETTINGS = config.WorkerSettings.model_fields


def _default(function: object, name: str) -> object:
    return inspect.signature(function).parameters[name].default  # type: ignore[arg-type]


def test_the_settings_defaults_are_the_limits():
    assert {name: SETTINGS[name].default for name in (
        "task_deadline_s", "lease_s", "max_delivery_attempts", "input_token_budget", "llm_attempts_per_entry",
        "llm_retry_after_cap_s", "llm_cooldown_s", "llm_stall_s", "task_retention_days", "metrics_interval_s",
    )} == {
        "task_deadline_s": limits.TASK_DEADLINE_S, "lease_s": limits.LEASE_S,
        "max_delivery_attempts": limits.MAX_DELIVERY_ATTEMPTS, "input_token_budget": limits.INPUT_TOKEN_BUDGET,
        "llm_attempts_per_entry": limits.LLM_ATTEMPTS_PER_ENTRY, "llm_retry_after_cap_s": limits.LLM_RETRY_AFTER_CAP_S,
        "llm_cooldown_s": limits.LLM_COOLDOWN_S, "llm_stall_s": limits.LLM_STALL_S,
        "task_retention_days": limits.TASK_RETENTION_DAYS, "metrics_interval_s": limits.METRICS_INTERVAL_S,
    }  # fmt: skip


def test_the_pipelines_defaults_are_the_settings_defaults():
    fields = {field.name: field.default for field in dataclasses.fields(PipelineDeps)}
    for name in ("lease_s", "task_deadline_s", "max_delivery_attempts", "input_token_budget", "over_budget"):
        assert fields[name] == SETTINGS[name].default, name


def test_the_retry_policys_defaults_are_the_settings_defaults():
    policy = RetryPolicy()
    assert (policy.attempts_per_entry, policy.retry_after_cap_s, policy.cooldown_s, policy.stall_s) == (
        SETTINGS["llm_attempts_per_entry"].default,
        SETTINGS["llm_retry_after_cap_s"].default,
        SETTINGS["llm_cooldown_s"].default,
        SETTINGS["llm_stall_s"].default,
    )


def test_the_store_and_the_exporter_defaults_are_the_settings_defaults():
    assert _default(TaskStore, "retention_days") == SETTINGS["task_retention_days"].default
    assert _default(MetricsExporter, "interval_s") == SETTINGS["metrics_interval_s"].default
    assert SETTINGS["metrics_interval_s"].metadata[0].ge == limits.MIN_METRICS_INTERVAL_S


def test_the_local_stack_uses_the_codes_topic_and_dead_letter_threshold():
    import metric_service

    assert metric_service.MIN_SPACING_S == limits.MIN_METRICS_INTERVAL_S
    assert stack.DEFAULT_TOPIC == config.CoreSettings.model_fields["topic"].default
    assert stack.MAX_DELIVERY_ATTEMPTS == SETTINGS["max_delivery_attempts"].default
    assert stack.ACK_DEADLINE_S == limits.ACK_DEADLINE_S


def test_the_pipeline_refuses_a_deadline_and_lease_that_the_settings_refuse(monkeypatch):
    monkeypatch.setenv("ATLAS_PROJECT", "p")
    monkeypatch.setenv("ATLAS_RETRIEVAL_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("ATLAS_LEASE_S", "60")
    with pytest.raises(config.ConfigError, match="ATLAS_TASK_DEADLINE_S"):
        config.load(config.WorkerSettings)
    with pytest.raises(ValueError, match="ATLAS_TASK_DEADLINE_S"):
        PipelineDeps(store=None, retriever=None, chain=None, top_k=3, lease_s=60)  # type: ignore[arg-type]
    assert PipelineDeps(store=None, retriever=None, chain=None, top_k=3).lease_s == limits.LEASE_S  # type: ignore[arg-type]


def _model_dir_constant(script: Path) -> Path:
    """``DEFAULT_MODEL_DIR = REPO / ...`` of a script, read without running it."""
    for node in ast.parse(script.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "DEFAULT_MODEL_DIR" for t in node.targets):
            return eval(compile(ast.Expression(node.value), str(script), "eval"), {"REPO": REPO})  # noqa: S307
    raise AssertionError(f"{script} has no DEFAULT_MODEL_DIR")


@pytest.mark.parametrize("script", ["package_functions.py", "bench_retrieval.py", "bench_tasks.py"])
def test_every_script_defaults_to_the_model_the_stack_uses(script):
    assert _model_dir_constant(REPO / "scripts" / script) == stack.DEFAULT_MODEL_DIR


def test_the_makefile_builds_and_exports_the_model_the_stack_uses():
    makefile = (REPO / "Makefile").read_text()
    variables = dict(re.findall(r"^([A-Z_0-9]+) :?= (.+)$", makefile, re.MULTILINE))
    model_dir = variables["MODEL_DIR"].replace("$(STATE)", variables["STATE"])
    int8 = variables["MODEL_INT8_DIR"].replace("$(MODEL_DIR)", model_dir)
    assert REPO / int8 == stack.DEFAULT_MODEL_DIR
    assert "export ATLAS_EMBEDDING_MODEL_DIR ?= $(abspath $(MODEL_INT8_DIR))" in makefile


def test_the_stacks_retrieval_gets_the_int8_model_when_the_environment_names_none(tmp_path):
    env = stack.retrieval_env({"PATH": "/bin"}, tmp_path / "index", {})
    assert env["ATLAS_EMBEDDING_MODEL_DIR"] == str(stack.DEFAULT_MODEL_DIR)
    assert env["ATLAS_QDRANT_PATH"] == str(tmp_path / "index")
    named = stack.retrieval_env({"ATLAS_EMBEDDING_MODEL_DIR": "/models/x"}, tmp_path, {})
    assert named["ATLAS_EMBEDDING_MODEL_DIR"] == "/models/x"


def test_no_script_or_test_names_the_fp32_model_as_its_default():
    fp32 = re.compile(r"""["']all-MiniLM-L6-v2["']\s*\)?\s*(?:$|,|\))""", re.MULTILINE)
    offenders = [
        str(path.relative_to(REPO))
        for folder in ("scripts", "tests", "infra/local")
        for path in (REPO / folder).rglob("*.py")
        if path.name != "build_embedding_model.py" and fp32.search(path.read_text())
    ]
    assert offenders == []
