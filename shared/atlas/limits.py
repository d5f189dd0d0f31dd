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
"""

from __future__ import annotations

TASK_DEADLINE_S = 210
WORKER_TIMEOUT_S = 240
ACK_DEADLINE_S = 300
LEASE_S = 300


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


assert not problems(), problems()
