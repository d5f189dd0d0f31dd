"""Finished tasks as fine-tuning examples (OpenAI chat format, one JSON object a line).

Each example is exactly what the model was asked (the system prompt, and the user prompt with the task
and its packed sources, rebuilt by :func:`atlas.design.writer.build_messages` from what the task document
stored) and the design it answered, so a model tuned on them learns Atlas's own task: a cited design
in the schema. Only ``succeeded`` tasks with a design are exported; degraded briefs are not designs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from atlas.design.writer import build_messages
from atlas.models import TaskStatus
from atlas.tasks.document import TaskDocument


def finetune_example(document: TaskDocument) -> dict[str, Any] | None:
    """The example for one task document, or None when it holds no design of a task it can rebuild."""
    design = document.design
    task = document.task_message()
    if document.status is not TaskStatus.SUCCEEDED or design is None or task is None:
        return None
    answer = design.model_dump_json(by_alias=True, exclude={"kind"})
    return {"messages": [*build_messages(task, document.sources), {"role": "assistant", "content": answer}]}


def write_examples(documents: Iterable[TaskDocument], out: TextIO) -> Iterator[str]:
    """Write one line per exportable document; yield the task id of each one written."""
    for document in documents:
        example = finetune_example(document)
        if example is not None:
            out.write(json.dumps(example, ensure_ascii=False) + "\n")
            yield document.task_id
