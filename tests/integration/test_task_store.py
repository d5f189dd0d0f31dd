"""The task store against the real Firestore emulator."""

import threading
from datetime import UTC, datetime, timedelta

from atlas.models import TaskError, TaskMessage, TaskStatus
from atlas.tasks.document import DeliveryReport
from atlas.tasks.store import ClaimResult

TASK = TaskMessage(prompt="Design a cache")


def test_first_claim_creates_a_running_task_with_a_lease(store):
    claim = store.claim("t1", TASK, message_id="m1", owner="a", lease_s=60)
    assert claim.result is ClaimResult.CLAIMED and claim.attempt == 1
    document = store.get("t1")
    assert document.status is TaskStatus.RUNNING and document.lease.owner == "a" and document.prompt == TASK.prompt


def test_duplicate_of_a_finished_task_is_acknowledged_without_work(store):
    store.claim("t1", TASK, message_id="m1", owner="a", lease_s=60)
    assert store.finish("t1", owner="a", status=TaskStatus.SUCCEEDED, report=DeliveryReport())
    claim = store.claim("t1", TASK, message_id="m2", owner="b", lease_s=60)
    assert claim.result is ClaimResult.DUPLICATE and claim.status is TaskStatus.SUCCEEDED
    assert store.get("t1").lease is None


def test_live_lease_makes_a_second_delivery_busy(store):
    store.claim("t1", TASK, message_id="m1", owner="a", lease_s=60)
    assert store.claim("t1", TASK, message_id="m1", owner="b", lease_s=60).result is ClaimResult.BUSY


def test_expired_lease_is_taken_over_and_the_old_owner_cannot_finish(store, firestore_client, collection_name):
    store.claim("t1", TASK, message_id="m1", owner="a", lease_s=60)
    past = datetime.now(UTC) - timedelta(seconds=1)
    firestore_client.collection(collection_name).document("t1").update({"lease.expires_at": past})
    claim = store.claim("t1", TASK, message_id="m1", owner="b", lease_s=60)
    assert claim.result is ClaimResult.CLAIMED and claim.attempt == 2
    assert not store.finish("t1", owner="a", status=TaskStatus.SUCCEEDED, report=DeliveryReport())
    assert store.finish("t1", owner="b", status=TaskStatus.DEGRADED, report=DeliveryReport())
    assert store.get("t1").status is TaskStatus.DEGRADED


def test_released_task_is_queued_with_the_error_and_claimable_again(store):
    store.claim("t1", TASK, message_id="m1", owner="a", lease_s=60)
    assert store.release("t1", owner="a", error=TaskError(code="retrieval_unavailable", message="down"))
    document = store.get("t1")
    assert document.status == "queued" and document.last_error.code == "retrieval_unavailable"
    assert "lease" not in document.model_fields_set
    claim = store.claim("t1", TASK, message_id="m1", owner="b", lease_s=60)
    assert claim.result is ClaimResult.CLAIMED and claim.attempt == 2


def test_rejected_message_is_recorded_once_and_never_clobbers_a_task(store):
    error = TaskError(code="invalid_task", message="not JSON")
    assert store.record_rejected("bad", message_id="m1", error=error, raw_excerpt="{oops")
    assert not store.record_rejected("bad", message_id="m1", error=error, raw_excerpt="{oops")
    assert store.get("bad").status is TaskStatus.FAILED and store.get("bad").error.code == "invalid_task"
    store.claim("good", TASK, message_id="m2", owner="a", lease_s=60)
    assert not store.record_rejected("good", message_id="m3", error=error, raw_excerpt="")
    assert store.get("good").status is TaskStatus.RUNNING


def test_concurrent_claims_have_exactly_one_winner(store):
    results = []

    def claim(owner):
        results.append(store.claim("race", TASK, message_id="m", owner=owner, lease_s=60).result)

    threads = [threading.Thread(target=claim, args=(f"owner-{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == sorted([ClaimResult.CLAIMED] + [ClaimResult.BUSY] * 3)
