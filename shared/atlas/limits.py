"""The time limits of a task, in one place: task deadline < function timeout ≤ ack deadline, lease ≥ timeout.

- ``TASK_DEADLINE_S``: what the pipeline gives a task (retrieval, generation, retries, fallbacks); the
  default of ``ATLAS_TASK_DEADLINE_S``. It must leave the function time to store the outcome.
- ``WORKER_TIMEOUT_S``: the worker function's timeout (Terraform ``local.worker_timeout_s``).
- ``ACK_DEADLINE_S``: the push subscription's ack deadline (Terraform and the local stack). A push still
  running past it is delivered again, so it must be at least the function timeout.
- ``LEASE_S``: the claim's lease (``ATLAS_LEASE_S``), renewed while a generation streams. It must outlive
  the function timeout, or a delivery still running could be taken over by a redelivery.

``config.WorkerSettings`` takes its defaults from here, ``infra/local/stack.py`` its ack deadline, and
``tests/infra/test_time_limits.py`` checks that Terraform's values are these and satisfy :func:`problems`.

The other tunables that more than one place needs have their one home here too (the variable that sets each
is in its comment): the settings' defaults, the pipeline's, the retry policy's, the store's, the metrics
exporter's and the local stack's are these names, and ``tests/unit/test_defaults.py`` proves every copy equal.
"""

from __future__ import annotations

TASK_DEADLINE_S = 210
WORKER_TIMEOUT_S = 240
ACK_DEADLINE_S = 300
LEASE_S = 300

MAX_DELIVERY_ATTEMPTS = 5  # ATLAS_MAX_DELIVERY_ATTEMPTS: the push subscription's dead-letter threshold
INPUT_TOKEN_BUDGET = 8000  # ATLAS_INPUT_TOKEN_BUDGET: estimated input tokens of one task's prompt
LLM_ATTEMPTS_PER_ENTRY = 3  # ATLAS_LLM_ATTEMPTS_PER_ENTRY
LLM_RETRY_AFTER_CAP_S = 20.0  # ATLAS_LLM_RETRY_AFTER_CAP_S
LLM_COOLDOWN_S = 60.0  # ATLAS_LLM_COOLDOWN_S
LLM_STALL_S = 20.0  # ATLAS_LLM_STALL_S
TASK_RETENTION_DAYS = 30  # ATLAS_TASK_RETENTION_DAYS
METRICS_INTERVAL_S = 10.0  # ATLAS_METRICS_INTERVAL_S
MIN_METRICS_INTERVAL_S = 5.0  # Cloud Monitoring's limit: one point per time series every 5 seconds


def problems(
    *,
    task_deadline_s: float = TASK_DEADLINE_S,
    worker_timeout_s: float = WORKER_TIMEOUT_S,
    ack_deadline_s: float = ACK_DEADLINE_S,
    lease_s: float = LEASE_S,
) -> list[str]:
    """What is wrong with these limits (empty when they agree)."""
    found = []
    if not task_deadline_s < worker_timeout_s:
        found.append(
            f"the task deadline ({task_deadline_s}s) must be shorter than the function timeout ({worker_timeout_s}s)"
        )
    if not worker_timeout_s <= ack_deadline_s:
        found.append(f"the function timeout ({worker_timeout_s}s) must not exceed the ack deadline ({ack_deadline_s}s)")
    if not worker_timeout_s <= lease_s:
        found.append(f"the lease ({lease_s}s) must outlive the function timeout ({worker_timeout_s}s)")
    return found


def lease_problems(*, task_deadline_s: float, lease_s: float) -> list[str]:
    """What is wrong with a task deadline and lease a worker runs with (empty when they agree): the settings
    and the pipeline both refuse a deadline that a redelivery could overtake."""
    if task_deadline_s < lease_s:
        return []
    return [
        f"ATLAS_TASK_DEADLINE_S ({task_deadline_s}) must be shorter than ATLAS_LEASE_S ({lease_s}), or a running "
        "task could lose its lease to a redelivery"
    ]


assert not problems(), problems()
