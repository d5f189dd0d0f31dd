import pytest
from pydantic import ValidationError

from atlas.models import MAX_PROMPT_CHARS, TaskMessage


def test_minimal_task_needs_only_a_prompt():
    task = TaskMessage.model_validate({"prompt": "  Design a logging architecture  "})
    assert task.prompt == "Design a logging architecture"
    assert task.task_id is None


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"prompt": ""},
        {"prompt": "   "},
        {"prompt": "x" * (MAX_PROMPT_CHARS + 1)},
        {"prompt": 42},
        {"prompt": "ok", "colour": "blue"},
        {"prompt": "ok", "task_id": "has/slash"},
        {"prompt": "ok", "task_id": "__reserved__"},
        {"prompt": "ok", "constraints": [""]},
        {"prompt": "ok", "cloud": "mainframe"},
        {"prompt": "ok", "budget_usd_per_month": -5},
    ],
)
def test_invalid_task_messages_are_rejected(payload):
    with pytest.raises(ValidationError):
        TaskMessage.model_validate(payload)


def test_retrieval_query_includes_constraints_and_cloud():
    task = TaskMessage(prompt="Design queues", constraints=("EU data residency",), cloud="aws")
    query = task.retrieval_query()
    assert "Design queues" in query and "EU data residency" in query and "AWS" in query


def test_hints_leave_out_prompt_and_defaults():
    task = TaskMessage(prompt="p", task_id="t1", budget_usd_per_month=500)
    assert task.hints() == {"budget_usd_per_month": 500.0}
