"""The time limits agree: Terraform's worker timeout, ack deadline, lease and task deadline are the ones of
shared/atlas/limits.py, which the settings' defaults and the local stack use too."""

from typing import Any

from terraform_reader import TerraformConfig

import stack
from atlas import config, limits


def _terraform_limits(terraform: TerraformConfig) -> dict[str, Any]:
    worker = terraform.resource("google_cloudfunctions2_function", "worker")["service_config"][0]
    subscription = terraform.resource("google_pubsub_subscription", "worker")
    env = terraform.locals["worker_env"]
    return {
        "task_deadline_s": terraform.resolve(env["ATLAS_TASK_DEADLINE_S"]),
        "worker_timeout_s": terraform.resolve(worker["timeout_seconds"]),
        "ack_deadline_s": terraform.resolve(subscription["ack_deadline_seconds"]),
        "lease_s": terraform.resolve(env["ATLAS_LEASE_S"]),
    }


def test_terraform_uses_the_limits_of_the_code(terraform: TerraformConfig) -> None:
    assert _terraform_limits(terraform) == {
        "task_deadline_s": limits.TASK_DEADLINE_S,
        "worker_timeout_s": limits.WORKER_TIMEOUT_S,
        "ack_deadline_s": limits.ACK_DEADLINE_S,
        "lease_s": limits.LEASE_S,
    }


def test_terraform_limits_satisfy_the_ordering(terraform: TerraformConfig) -> None:
    assert limits.problems(**_terraform_limits(terraform)) == []


def test_code_defaults_and_local_stack_use_the_limits() -> None:
    fields = config.WorkerSettings.model_fields
    assert fields["task_deadline_s"].default == limits.TASK_DEADLINE_S
    assert fields["lease_s"].default == limits.LEASE_S
    assert stack.ACK_DEADLINE_S == limits.ACK_DEADLINE_S


def test_the_ordering_check_can_fail() -> None:
    assert len(limits.problems(task_deadline_s=240, worker_timeout_s=240, ack_deadline_s=200, lease_s=100)) == 3
