"""terraform/ agrees with the code: every setting is set, names and timings match, nothing is public or literal.

Read with python-hcl2 (no provider, no network): these are the checks `terraform validate` cannot make,
because they compare the configuration with shared/atlas/config.py and infra/local/stack.py.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import AliasChoices
from pydantic_settings import BaseSettings
from terraform_reader import TerraformConfig, is_expression, unquote, walk

import stack
from atlas import config

FUNCTIONS = {"worker": config.WorkerSettings, "retrieval": config.RetrievalSettings}
BASIC_ROLES = {"roles/owner", "roles/editor", "roles/viewer"}
PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")
SECRET_ATTRIBUTE = re.compile(r"(api_key|apikey|secret_data|password|passwd|private_key|credentials|token)$", re.I)
SECRET_LOOKING_VALUE = re.compile(
    r"(sk-[A-Za-z0-9_-]{20,}|AIza[0-9A-Za-z_-]{30,}|-----BEGIN [A-Z ]*PRIVATE KEY|eyJhbGciOi[A-Za-z0-9_-]{20,}"
    r"|ghp_[A-Za-z0-9]{30,}|xox[bp]-[A-Za-z0-9-]{20,})"
)


# --------------------------------------------------------------------------- the settings the code reads


def variable_names(settings_class: type[BaseSettings], field: str) -> tuple[str, ...]:
    """The environment variables that can set ``field`` (any one of them is enough)."""
    info = settings_class.model_fields[field]
    if isinstance(info.validation_alias, AliasChoices):
        return tuple(str(choice) for choice in info.validation_alias.choices)
    return (f"{config.ENV_PREFIX}{field.upper()}",)


def function_env(terraform: TerraformConfig, function: str) -> set[str]:
    """Every variable terraform can set on the function: plain environment and secrets, in any branch."""
    service = terraform.resource("google_cloudfunctions2_function", function)["service_config"][0]
    names = terraform.env_names(service.get("environment_variables"))
    for block in service.get("secret_environment_variables", []):
        names.add(unquote(block["key"]))
    for dynamic in service.get("dynamic", []):
        for label, body in dynamic.items():
            if label.strip('"') == "secret_environment_variables":
                names |= terraform.env_names(body["for_each"])
    return names


def missing_settings(settings_class: type[BaseSettings], env: set[str]) -> list[tuple[str, str]]:
    """(field, variable) for each field of ``settings_class`` that none of its variables in ``env`` sets."""
    return [
        (field, " or ".join(variable_names(settings_class, field)))
        for field in settings_class.model_fields
        if not set(variable_names(settings_class, field)) & env
    ]


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_every_setting_the_code_reads_is_set_for_its_function(terraform: TerraformConfig, function: str) -> None:
    settings_class = FUNCTIONS[function]
    missing = missing_settings(settings_class, function_env(terraform, function))
    assert not missing, "\n".join(
        f"{settings_class.__name__}.{field} (shared/atlas/config.py) is read from {variable}, but terraform never "
        f"sets it for the {function} function (google_cloudfunctions2_function.{function}, terraform/functions.tf): "
        f"add {variable} to local.{function}_env in terraform/locals.tf (a secret: to a secret env map there)"
        for field, variable in missing
    )


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_terraform_sets_only_variables_the_code_reads(terraform: TerraformConfig, function: str) -> None:
    settings_class = FUNCTIONS[function]
    known = {name for field in settings_class.model_fields for name in variable_names(settings_class, field)}
    unknown = sorted(
        name for name in function_env(terraform, function) if name.startswith("ATLAS_") and name not in known
    )
    assert not unknown, (
        f"terraform sets {', '.join(unknown)} for the {function} function, but {settings_class.__name__} "
        "(shared/atlas/config.py) reads no such variable: a typo, or a setting that was removed"
    )


def test_a_setting_missing_from_terraform_is_reported(terraform: TerraformConfig) -> None:
    env = function_env(terraform, "worker") - {"ATLAS_LEASE_S"}
    assert ("lease_s", "ATLAS_LEASE_S") in missing_settings(config.WorkerSettings, env)


def test_llm_api_keys_are_secrets_of_the_worker(terraform: TerraformConfig) -> None:
    worker_secrets = terraform.resource("google_cloudfunctions2_function", "worker")["service_config"][0]["dynamic"]
    for_each = [body["for_each"] for block in worker_secrets for label, body in block.items()]
    assert for_each == ["${local.worker_secret_env}"]
    assert "local.llm_key_envs" in terraform.locals["worker_secret_env"]
    assert "entry.api_key_env" in terraform.locals["llm_key_envs"]


# --------------------------------------------------------------------------- names and the chain


def test_names_agree_with_the_code_defaults(terraform: TerraformConfig) -> None:
    assert unquote(terraform.default("topic_name")) == config.DEFAULT_TOPIC == stack.DEFAULT_TOPIC
    assert unquote(terraform.default("tasks_collection")) == config.DEFAULT_TASKS_COLLECTION
    assert unquote(terraform.default("knowledge_collection")) == config.DEFAULT_KNOWLEDGE_COLLECTION
    # The local stack derives the same names from the topic (infra/local/stack.py, LocalStack.start).
    assert unquote(terraform.locals["dlq_topic_name"]) == "${var.topic_name}-dlq"
    assert unquote(terraform.locals["dlq_inspect_name"]) == "${var.topic_name}-dlq-inspect"
    assert unquote(terraform.locals["worker_subscription"]) == "${var.topic_name}-worker"
    worker_env = terraform.locals["worker_env"]
    assert worker_env["ATLAS_TOPIC"] == "${var.topic_name}"
    assert worker_env["ATLAS_TASKS_COLLECTION"] == "${var.tasks_collection}"
    assert terraform.locals["retrieval_env"]["ATLAS_KNOWLEDGE_COLLECTION"] == "${var.knowledge_collection}"
    if hasattr(config, "DEFAULT_BUDGET_COLLECTION"):
        assert unquote(terraform.default("budget_collection")) == config.DEFAULT_BUDGET_COLLECTION
        assert worker_env["ATLAS_BUDGET_COLLECTION"] == "${var.budget_collection}"


def test_default_llm_chain_is_the_codes_default_chain(terraform: TerraformConfig) -> None:
    entries = [{key: unquote(value) for key, value in entry.items()} for entry in terraform.default("llm_chain")]
    assert tuple(config.ChainEntry(**entry) for entry in entries) == config.DEFAULT_CHAIN


def test_tfvars_examples_are_valid_for_the_code(tfvars_examples: dict[str, dict[str, Any]]) -> None:
    for name, values in tfvars_examples.items():
        assert unquote(values["environment"]) in ("dev", "staging", "prod"), name
        for entry in values.get("llm_chain", []):
            config.ChainEntry(**{key: unquote(value) for key, value in entry.items()})  # raises if invalid
        if "ack_deadline_seconds" in values:
            assert values["ack_deadline_seconds"] <= 600, name


# --------------------------------------------------------------------------- delivery and timings


def _seconds(value: Any) -> int:
    text = str(value)
    assert text.endswith("s"), text
    return int(text[:-1])


def test_ack_deadline_and_lease_cover_the_worker_timeout(terraform: TerraformConfig) -> None:
    worker = terraform.resource("google_cloudfunctions2_function", "worker")["service_config"][0]
    timeout = terraform.resolve(worker["timeout_seconds"])
    subscription = terraform.resource("google_pubsub_subscription", "worker")
    ack_deadline = terraform.resolve(subscription["ack_deadline_seconds"])
    lease = terraform.resolve(terraform.locals["worker_env"]["ATLAS_LEASE_S"])
    assert ack_deadline == stack.ACK_DEADLINE_S, "the cloud and the local stack should share the ack deadline"
    assert timeout <= ack_deadline, f"worker timeout {timeout}s exceeds the ack deadline {ack_deadline}s"
    assert timeout <= lease, f"worker timeout {timeout}s exceeds the lease {lease}s"
    assert lease == config.WorkerSettings.model_fields["lease_s"].default
    deadline = terraform.locals["worker_env"].get("ATLAS_TASK_DEADLINE_S")
    if deadline is not None:
        assert terraform.resolve(deadline) < timeout, "the task deadline must leave the worker time to store the result"


def test_worker_gives_up_on_retrieval_before_retrieval_times_out(terraform: TerraformConfig) -> None:
    retrieval = terraform.resource("google_cloudfunctions2_function", "retrieval")["service_config"][0]
    call_timeout = terraform.resolve(terraform.locals["worker_env"]["ATLAS_RETRIEVAL_TIMEOUT_S"])
    assert call_timeout < terraform.resolve(retrieval["timeout_seconds"])


def test_push_subscription_has_retry_and_dead_letter_policies(terraform: TerraformConfig) -> None:
    subscription = terraform.resource("google_pubsub_subscription", "worker")
    retry = subscription["retry_policy"][0]
    minimum = _seconds(
        terraform.resolve(retry["minimum_backoff"]).replace(
            "${var.retry_minimum_backoff_seconds}", str(terraform.default("retry_minimum_backoff_seconds"))
        )
    )
    maximum = _seconds(
        terraform.resolve(retry["maximum_backoff"]).replace(
            "${var.retry_maximum_backoff_seconds}", str(terraform.default("retry_maximum_backoff_seconds"))
        )
    )
    assert 0 <= minimum <= maximum <= 600
    dead_letter = subscription["dead_letter_policy"][0]
    assert dead_letter["dead_letter_topic"] == "${google_pubsub_topic.dlq.id}"
    assert terraform.resolve(dead_letter["max_delivery_attempts"]) == stack.MAX_DELIVERY_ATTEMPTS == 5
    push = subscription["push_config"][0]
    assert push["oidc_token"][0]["service_account_email"] == "${google_service_account.push.email}"
    assert "google_cloudfunctions2_function.worker.service_config[0].uri" in push["push_endpoint"]
    inspect = terraform.resource("google_pubsub_subscription", "dlq_inspect")
    assert inspect["topic"] == "${google_pubsub_topic.dlq.id}"


def test_pubsub_service_agent_can_dead_letter(terraform: TerraformConfig) -> None:
    publisher = terraform.resource("google_pubsub_topic_iam_member", "pubsub_agent_publishes_dead_letters")
    subscriber = terraform.resource("google_pubsub_subscription_iam_member", "pubsub_agent_acks_dead_letters")
    assert unquote(publisher["role"]) == "roles/pubsub.publisher" and "dlq" in publisher["topic"]
    assert (
        unquote(subscriber["role"]) == "roles/pubsub.subscriber" and "subscription.worker" in subscriber["subscription"]
    )
    for grant in (publisher, subscriber):
        assert grant["member"] == "${google_project_service_identity.pubsub.member}"


# --------------------------------------------------------------------------- who may do what


def _invokers(terraform: TerraformConfig, function: str) -> list[str]:
    return [
        body["member"]
        for (kind, _), body in terraform.resources.items()
        if kind in ("google_cloud_run_v2_service_iam_member", "google_cloudfunctions2_function_iam_member")
        and f"google_cloudfunctions2_function.{function}." in str(body.get("name", body.get("cloud_function")))
    ]


def test_each_function_has_exactly_one_invoker(terraform: TerraformConfig) -> None:
    assert _invokers(terraform, "retrieval") == ["${google_service_account.worker.member}"]
    assert _invokers(terraform, "worker") == ["${google_service_account.push.member}"]


def test_no_public_members(terraform: TerraformConfig) -> None:
    public = [
        f"{kind}.{name}: {key} = {value}"
        for (kind, name), body in terraform.resources.items()
        for _, key, value in walk(body)
        if key in ("member", "members") and any(member in str(value) for member in PUBLIC_MEMBERS)
    ]
    assert not public, "public IAM members in terraform/:\n" + "\n".join(public)


def test_no_basic_roles(terraform: TerraformConfig) -> None:
    everything = [*terraform.resources.values(), *terraform.locals.values()]
    roles = {
        match
        for node in everything
        for _, _, value in walk({"_": node})
        for match in re.findall(r"roles/[A-Za-z.]+", str(value))
    }
    assert roles, "found no roles at all: the reader is broken"
    assert not roles & BASIC_ROLES, f"basic roles in terraform/: {sorted(roles & BASIC_ROLES)}"


def test_no_literal_secrets(terraform: TerraformConfig, tfvars_examples: dict[str, dict[str, Any]]) -> None:
    problems = []
    trees = {
        **{f"{kind}.{name}": body for (kind, name), body in terraform.resources.items()},
        **{f"provider.{name}": body for name, body in terraform.providers.items()},
        # Maps of environment variable => secret *id* (not a value) are the one place a key name is literal.
        **{f"local.{name}": value for name, value in terraform.locals.items() if "secret_env" not in name},
        **tfvars_examples,
    }
    for where, tree in trees.items():
        for path, key, value in walk({"_": tree}):
            if isinstance(value, str) and SECRET_LOOKING_VALUE.search(value):
                problems.append(f"{where} {path}.{key}: looks like a key")
            if SECRET_ATTRIBUTE.search(key.strip('"')) and isinstance(value, str) and not is_expression(value):
                problems.append(f"{where} {path}.{key}: a literal value for a secret attribute")
    for name, body in terraform.variables.items():
        default = body.get("default")
        if SECRET_ATTRIBUTE.search(name) and default not in (None, '""'):
            problems.append(f"variable {name} has a default")
    assert not problems, "\n".join(problems)


def test_secret_values_never_enter_the_state(terraform: TerraformConfig) -> None:
    versions = [
        body for (kind, _), body in terraform.resources.items() if kind == "google_secret_manager_secret_version"
    ]
    for body in versions:
        assert "secret_data" not in body, "use secret_data_wo (write-only), never secret_data"
        assert "secret_data_wo" in body
