"""Writing a cited design: prompt from version-controlled templates, generation, validation.

Sources are labelled S1..Sn in rank order and fenced in ``<source>`` tags as untrusted data. The
model's answer must parse as a :class:`~atlas.design.schema.Design` and cite only those labels; anything else
is invalid output: the same entry gets one repair request (``design_repair.md``, with the error), then
the chain moves to its next entry.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import cache
from importlib import resources
from string import Template

from pydantic import ValidationError

from atlas.config import ChainEntry
from atlas.design.packing import Packed, pack_sources
from atlas.design.schema import Design
from atlas.errors import InvalidOutputError
from atlas.llm.attempts import Attempt, TextSink
from atlas.llm.chain import ChainFailure, Generation, ProviderChain, parse_json_object
from atlas.llm.retry import Deadline
from atlas.llm.tokens import estimate_message_tokens
from atlas.models import Source, TaskMessage

SCHEMA_NAME = "architecture_design"


def source_label(rank: int) -> str:
    """The id a source is cited by: S1 for the best-ranked one."""
    return f"S{rank + 1}"


@cache
def _template(name: str) -> Template:
    return Template(resources.files("atlas.design.prompts").joinpath(name).read_text(encoding="utf-8"))


@cache
def design_schema() -> dict[str, object]:
    return Design.model_json_schema(by_alias=True)


def _fence(source: Source, label: str) -> str:
    text = source.text.replace("</source>", "</ source>")
    section = f' section="{source.section}"' if source.section else ""
    return f'<source id="{label}" title="{source.title}"{section} origin="{source.source}">\n{text}\n</source>'


def build_messages(task: TaskMessage, sources: list[Source]) -> list[dict[str, str]]:
    """The chat messages asking for a design of ``task`` grounded in ``sources``."""
    fenced = "\n\n".join(_fence(source, source_label(rank)) for rank, source in enumerate(sources))
    hints = task.hints()
    user = _template("design_user.md").substitute(
        prompt=task.prompt,
        hints=json.dumps(hints, ensure_ascii=False) if hints else "(none)",
        sources=fenced or "(the knowledge base returned nothing)",
    )
    return [
        {"role": "system", "content": _template("design_system.md").template},
        {"role": "user", "content": user},
    ]


def parse_design(content: str, labels: set[str]) -> Design:
    """Validate the model's output as a Design citing only ``labels``; raise InvalidOutputError."""
    try:
        design = Design.model_validate(parse_json_object(content))
    except ValidationError as exc:
        raise InvalidOutputError(f"the output does not match the design schema: {exc.errors()[:3]}") from exc
    invented = design.unknown_citations(labels)
    if invented:
        raise InvalidOutputError(f"the design cites sources that were not retrieved: {', '.join(invented)}")
    return design


def repair_messages(messages: list[dict[str, str]], bad_output: str, error: str) -> list[dict[str, str]]:
    """``messages`` followed by the invalid answer and a request to fix it."""
    return [
        *messages,
        {"role": "assistant", "content": bad_output},
        {"role": "user", "content": _template("design_repair.md").substitute(error=error)},
    ]


def fit_sources(task: TaskMessage, sources: list[Source], *, input_token_budget: int) -> Packed:
    """The distinct sources that fit the input budget once the prompt itself is counted, labelled S1..Sn."""
    overhead = estimate_message_tokens(build_messages(task, []))
    packed = pack_sources(sources, budget_tokens=max(0, input_token_budget - overhead))
    labelled = [source.model_copy(update={"label": source_label(rank)}) for rank, source in enumerate(packed.sources)]
    return Packed(labelled, packed.duplicates, packed.dropped, packed.truncated, packed.tokens + overhead)


def write_design(
    chain: ProviderChain,
    task: TaskMessage,
    sources: list[Source],
    *,
    deadline: Deadline,
    on_text: TextSink | None = None,
    on_attempt: Callable[[Attempt], None] | None = None,
    entries: Sequence[ChainEntry] | None = None,
) -> Generation[Design] | ChainFailure:
    """Ask ``chain`` for a design of ``task`` grounded in ``sources`` (already packed and labelled)."""
    labels = {source_label(rank) for rank in range(len(sources))}
    return chain.generate_json(
        build_messages(task, sources),
        schema_name=SCHEMA_NAME,
        schema=design_schema(),
        parse=lambda content: parse_design(content, labels),
        repair=repair_messages,
        deadline=deadline,
        on_text=on_text,
        on_attempt=on_attempt,
        entries=entries,
    )
