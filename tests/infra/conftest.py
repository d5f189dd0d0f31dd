"""Fixtures of tests/infra: terraform/ and its tfvars examples, parsed once."""

from __future__ import annotations

from typing import Any

import pytest
from terraform_reader import TERRAFORM, TerraformConfig, load_terraform, load_tfvars


@pytest.fixture(scope="session")
def terraform() -> TerraformConfig:
    return load_terraform()


@pytest.fixture(scope="session")
def tfvars_examples() -> dict[str, dict[str, Any]]:
    examples = sorted((TERRAFORM / "environments").glob("*.tfvars.example"))
    assert examples, "terraform/environments has no *.tfvars.example"
    return {path.name: load_tfvars(path) for path in examples}
