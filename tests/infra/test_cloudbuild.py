"""cloudbuild.yaml: gcloud's own parser accepts it, and the checks that parser does not make.

gcloud has no validation command, but ``gcloud builds submit`` parses the file offline with
``googlecloudsdk.api_lib.cloudbuild.config`` (unknown fields, wrong types, bad substitution names). It
does not check what fails a real build later: duplicate step ids, ``waitFor`` targets that do not exist,
substitutions defined but never used (or used but never defined), and shell variables not escaped as
``$$VAR``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from stack import REPO

CLOUDBUILD = REPO / "cloudbuild.yaml"
# https://cloud.google.com/build/docs/configuring-builds/substitute-variable-values#using_default_substitutions
BUILT_IN = {
    "PROJECT_ID",
    "PROJECT_NUMBER",
    "LOCATION",
    "BUILD_ID",
    "COMMIT_SHA",
    "SHORT_SHA",
    "REVISION_ID",
    "REPO_NAME",
    "REPO_FULL_NAME",
    "BRANCH_NAME",
    "TAG_NAME",
    "REF_NAME",
    "TRIGGER_NAME",
    "TRIGGER_BUILD_CONFIG_PATH",
    "SERVICE_ACCOUNT_EMAIL",
    "SERVICE_ACCOUNT",
}
# $$ (an escaped dollar), ${NAME} or $NAME (a substitution).
_DOLLAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")

_PARSER = """
import sys
sdk = sys.argv[1]
sys.path[:0] = [sdk + "/lib", sdk + "/lib/third_party"]
from googlecloudsdk.api_lib.cloudbuild import cloudbuild_util, config
config.LoadCloudbuildConfigFromPath(sys.argv[2], cloudbuild_util.GetMessagesModule())
"""


def gcloud_sdk_root() -> str:
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        pytest.fail("gcloud is not on PATH: install the Google Cloud CLI (README, prerequisites)")
    result = subprocess.run(
        [gcloud, "info", "--format=value(installation.sdk_root)"], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def gcloud_parse(path: Path) -> subprocess.CompletedProcess[str]:
    """Parse ``path`` the way ``gcloud builds submit`` does, in a separate interpreter (gcloud's sys.path)."""
    return subprocess.run(
        [sys.executable, "-c", _PARSER, gcloud_sdk_root(), str(path)], capture_output=True, text=True, timeout=120
    )


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [text for value in node.values() for text in _strings(value)]
    if isinstance(node, list):
        return [text for value in node for text in _strings(value)]
    return []


def problems(build: dict[str, Any]) -> list[str]:
    """Everything a real build would trip over that gcloud's parser lets through."""
    found: list[str] = []
    steps = build.get("steps", [])
    ids = [step.get("id") for step in steps]
    for step_id in {step_id for step_id in ids if ids.count(step_id) > 1}:
        found.append(f"step id {step_id!r} is used twice")
    if None in ids:
        found.append("every step needs an id (waitFor refers to them)")
    for step in steps:
        for target in step.get("waitFor", []):
            if target != "-" and target not in ids:
                found.append(f"step {step.get('id')!r} waits for {target!r}, which is no step id")
        if step.get("id") in step.get("waitFor", []):
            found.append(f"step {step.get('id')!r} waits for itself")
    defined = set(build.get("substitutions", {}))
    for name in defined:
        if not re.fullmatch(r"_[A-Z0-9_]+", name):
            found.append(f"user substitution {name} must start with _ and be upper case")
    used: set[str] = set()
    everything = {key: value for key, value in build.items() if key != "substitutions"}
    for text in _strings(everything):
        for match in _DOLLAR.finditer(text):
            name = match.group(1) or match.group(2)
            if name is None:
                continue
            if name in defined or name in BUILT_IN:
                used.add(name)
            else:
                found.append(
                    f"${name} is neither a substitution nor built in: write $${name} for a shell variable, "
                    f"or define {name} under substitutions"
                )
    for name in sorted(defined - used):
        found.append(f"substitution {name} is defined but never used (a real build rejects it)")
    return found


@pytest.fixture(scope="module")
def build() -> dict[str, Any]:
    return yaml.safe_load(CLOUDBUILD.read_text())


def test_gcloud_accepts_cloudbuild_yaml() -> None:
    result = gcloud_parse(CLOUDBUILD)
    assert result.returncode == 0, result.stderr[-2000:]


def test_gcloud_rejects_an_unknown_field(tmp_path: Path) -> None:
    broken = tmp_path / "cloudbuild.yaml"
    broken.write_text("steps:\n  - name: ubuntu\n    args: ['true']\n    waitfor: ['-']\n")
    result = gcloud_parse(broken)
    assert result.returncode != 0 and "waitfor" in result.stderr


def test_cloudbuild_yaml_has_no_problems(build: dict[str, Any]) -> None:
    assert problems(build) == []


def test_the_pipeline_has_every_stage(build: dict[str, Any]) -> None:
    ids = [step["id"] for step in build["steps"]]
    for stage in ("test", "checkov", "package", "tf-fmt", "tf-validate", "tf-plan", "tf-apply", "smoke"):
        assert stage in ids
    assert ids.index("tf-plan") < ids.index("tf-apply") < ids.index("smoke")
    text = CLOUDBUILD.read_text()
    assert "make test" in text and "make package" in text and "environments/${_ENV}.tfvars" in text
    assert "gcloud pubsub topics publish" in text and "firestore.googleapis.com" in text


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        (lambda b: b["steps"].append(dict(b["steps"][0])), "is used twice"),
        (lambda b: b["steps"][1]["waitFor"].append("tset"), "which is no step id"),
        (lambda b: b["substitutions"].update(_UNUSED="x"), "_UNUSED is defined but never used"),
        (lambda b: b["steps"][0]["args"].append("echo $HOME"), "write $$HOME"),
        (lambda b: b["steps"][0]["args"].append("echo ${_MISSING}"), "define _MISSING"),
    ],
)
def test_each_problem_is_caught(build: dict[str, Any], mutation: Any, expected: str) -> None:
    mutated = yaml.safe_load(yaml.safe_dump(build))
    mutation(mutated)
    assert any(expected in problem for problem in problems(mutated)), problems(mutated)
