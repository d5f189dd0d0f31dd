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

from pydantic import ValidationError

from atlas.design.schema import Design
from atlas.design.writer import build_messages
from atlas.models import Source, TaskMessage


def finetune_example(document: dict[str, Any]) -> dict[str, Any] | None:
    """The example for one task document, or None when it holds no valid design."""
    result = document.get("result") or {}
    if document.get("status") != "succeeded" or result.get("kind") != "design":
        return None
    try:
        task = TaskMessage.model_validate({"prompt": document.get("prompt", ""), **(document.get("hints") or {})})
        design = Design.model_validate({k: v for k, v in result.items() if k != "kind"})
        sources = [Source.model_validate(s) for s in document.get("sources") or []]
    except ValidationError:
        return None
    answer = design.model_dump_json(by_alias=True, exclude_defaults=False)
    return {"messages": [*build_messages(task, sources), {"role": "assistant", "content": answer}]}


def write_examples(documents: Iterable[dict[str, Any]], out: TextIO) -> Iterator[str]:
    """Write one line per exportable document; yield the task id of each one written."""
    for document in documents:
        example = finetune_example(document)
        if example is not None:
            out.write(json.dumps(example, ensure_ascii=False) + "\n")
            yield str(document.get("task_id"))
