"""checkov on terraform/: zero failed checks, every skip justified, and our own policies catch public IAM.

checkov runs from its own venv (make checkov builds .atlas/checkov-venv): it ships a module named hcl2
that clashes with python-hcl2, which the other tests here use.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from terraform_reader import CHECKOV_VENV

from stack import REPO

POLICIES = REPO / "infra" / "checkov"
FIXTURE = Path(__file__).parent / "fixtures" / "public_iam"


def checkov(folder: Path) -> dict[str, Any]:
    binary = CHECKOV_VENV / "bin" / "checkov"
    if not binary.is_file():
        pytest.fail(f"checkov is not installed at {binary}: run `make checkov`")
    result = subprocess.run(
        [
            str(binary),
            "--directory",
            str(folder),
            "--framework",
            "terraform",
            "--skip-download",
            "--compact",
            "--external-checks-dir",
            str(POLICIES),
            "--output",
            "json",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(result.stdout)
    return report[0] if isinstance(report, list) else report


def test_terraform_has_no_failed_checks_and_every_skip_is_justified() -> None:
    report = checkov(REPO / "terraform")
    failed = [f"{check['check_id']} {check['resource']}" for check in report["results"]["failed_checks"]]
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    assert report["summary"]["passed"] > 50, "checkov found almost nothing to check: is it reading terraform/?"
    for check in report["results"]["skipped_checks"]:
        reason = (check.get("check_result") or {}).get("suppress_comment") or ""
        assert len(reason) >= 40, f"{check['check_id']} on {check['resource']} is skipped without a real reason"


def test_custom_policies_catch_public_iam_on_services_and_secrets() -> None:
    report = checkov(FIXTURE)
    failed = {(check["check_id"], check["resource"]) for check in report["results"]["failed_checks"]}
    assert failed >= {
        ("CKV2_ATLAS_1", "google_cloud_run_v2_service_iam_member.public_run"),
        ("CKV2_ATLAS_1", "google_cloudfunctions2_function_iam_member.public_function"),
        ("CKV2_ATLAS_2", "google_cloud_run_v2_service_iam_binding.public_run_binding"),
        ("CKV2_ATLAS_3", "google_secret_manager_secret_iam_member.public_secret"),
        ("CKV2_ATLAS_4", "google_secret_manager_secret_iam_binding.public_secret_binding"),
    }
    assert not any(resource.endswith("private_secret") for _, resource in failed)
