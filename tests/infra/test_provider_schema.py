"""terraform/ against the providers' own schemas: what `terraform validate` would reject, without the binaries.

The schema is the one `make provider-schema` derives from the pinned CDK bindings
(requirements-provider-schema.txt, scripts/provider_schema.py); tests/infra/schema_check.py compares.
A fixture with one mistake of each kind proves that each kind is caught, with the exact message.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from schema_check import UNCHECKED, check, load_schema, version_range
from terraform_reader import TerraformConfig, load_terraform

from stack import REPO

FIXTURE = Path(__file__).parent / "fixtures" / "provider_schema_mistakes"
PINS = REPO / "requirements-provider-schema.txt"

FIXTURE_FINDINGS = [
    "main.tf: data.google_secret_manager_secret_version.data_source: secret: missing required argument",
    "main.tf: data.google_secret_manager_secret_version.data_source: secrets: unknown argument (did you mean secret?)",
    "main.tf: google_cloudfunction2_function.unknown_type: unknown resource type in hashicorp/google 8.7.0 "
    "(did you mean google_cloudfunctions2_function?)",
    "main.tf: google_cloudfunctions2_function.dynamic: build_config.sources: unknown block (did you mean source?)",
    'main.tf: google_cloudfunctions2_function.dynamic: service_config.ingress_settings: "ALLOW_EVERYONE" is not one '
    "of ALLOW_ALL, ALLOW_INTERNAL_ONLY, ALLOW_INTERNAL_AND_GCLB",
    "main.tf: google_cloudfunctions2_function.dynamic: service_config.secret_environment_variables.version: "
    "missing required argument",
    "main.tf: google_cloudfunctions2_function.dynamic: service_config.secret_volume: unknown block "
    "(did you mean secret_volumes?)",
    'main.tf: google_monitoring_alert_policy.missing_block: alert_strategy.notification_prompts: "REOPENED" is not '
    "one of NOTIFICATION_PROMPT_UNSPECIFIED, OPENED, CLOSED",
    "main.tf: google_monitoring_alert_policy.missing_block: conditions: missing required block",
    "main.tf: google_project_service_identity.needs_beta: unknown resource type in hashicorp/google 8.7.0 "
    "(hashicorp/google-beta has it: set provider)",
    "main.tf: google_pubsub_subscription.nested: expiration_policy: is a block, not an argument: "
    "write expiration_policy { ... }",
    "main.tf: google_pubsub_subscription.nested: labels: is an argument, not a block: write labels = ...",
    "main.tf: google_pubsub_subscription.nested: push_config.oidc_token.service_account_email: "
    "missing required argument",
    "main.tf: google_pubsub_subscription.nested: retry_policy: 2 blocks, at most 1 allowed",
    "main.tf: google_pubsub_topic.unknown_argument: ingestion_data_source_settings.platform_logs_settings.severity: "
    '"LOUD" is not one of SEVERITY_UNSPECIFIED, DISABLED, DEBUG, INFO, WARNING, ERROR',
    "main.tf: google_pubsub_topic.unknown_argument: message_retention_durations: unknown argument "
    "(did you mean message_retention_duration?)",
    "main.tf: google_service_account.missing_argument: account_id: missing required argument",
    "main.tf: provider.google: regoin: unknown argument (did you mean region?)",
]


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    try:
        return load_schema()
    except (FileNotFoundError, ValueError) as error:
        pytest.fail(str(error))


def test_terraform_has_only_what_the_provider_schemas_allow(terraform: TerraformConfig, schema: dict[str, Any]) -> None:
    report = check(terraform, schema)
    assert not report.findings, "terraform/ against the providers' schemas:\n" + "\n".join(map(str, report.findings))
    # The check read what it should have: every google resource (about 50), the beta one, the provider blocks.
    assert report.checked["hashicorp/google"] >= 50, report.checked
    assert report.checked["hashicorp/google-beta"] >= 1, report.checked
    assert set(report.unchecked) <= set(UNCHECKED), report.unchecked


def test_each_kind_of_mistake_is_reported(schema: dict[str, Any]) -> None:
    report = check(load_terraform(FIXTURE), schema)
    assert [str(finding) for finding in report.findings] == FIXTURE_FINDINGS


def test_versions_tf_pins_each_provider_to_the_schema_it_is_checked_against(
    terraform: TerraformConfig, schema: dict[str, Any]
) -> None:
    """Every version the constraint admits has every argument the check accepts: the schema's major, from its minor."""
    checked = 0
    for name, settings in terraform.required_providers.items():
        provider = schema["providers"].get(str(settings["source"]).lower())
        if provider is None:
            continue
        checked += 1
        major, minor, patch = (int(part) for part in provider["version"].split("."))
        low, high = version_range(str(settings["version"]))
        assert low[:2] == (major, minor) and low <= (major, minor, patch), (
            f"{name}: {settings['version']} admits versions older than {major}.{minor}, "
            f"but the schema is of {provider['version']}: pin ~> {major}.{minor}"
        )
        assert high is not None and high <= (major + 1, 0, 0), (
            f"{name}: {settings['version']} admits {major + 1}.x, whose schema was not checked: pin ~> {major}.{minor}"
        )
    assert checked >= 2, "found no provider of terraform/versions.tf in the schema"


def test_the_schema_is_derived_from_the_pinned_bindings(schema: dict[str, Any]) -> None:
    pins = set(re.findall(r"^([A-Za-z0-9][\w.-]*==[^\s\\;]+)", PINS.read_text(), re.MULTILINE))
    derived = {provider["bindings"] for provider in schema["providers"].values()}
    assert derived == pins, "the schema is stale: run `make provider-schema`"


@pytest.mark.parametrize(
    ("constraint", "low", "high"),
    [
        ("~> 8.7", (8, 7, 0), (9, 0, 0)),
        ("~> 8.7.1", (8, 7, 1), (8, 8, 0)),
        (">= 8.7, < 9", (8, 7, 0), (9, 0, 0)),
        ("8.7.0", (8, 7, 0), (8, 7, 1)),
        (">= 1.11", (1, 11, 0), None),
    ],
)
def test_version_constraints_are_read_as_terraform_reads_them(
    constraint: str, low: tuple[int, ...], high: tuple[int, ...] | None
) -> None:
    assert version_range(constraint) == (low, high)
