"""The retrieval-only brief: what a task gets when no LLM provider can write a design.

It lists the sources a design would draw on, with short excerpts, and says plainly why there is no
design and how to configure a provider. A task that ends with a brief has status ``degraded``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from atlas.models import Source, TaskMessage

EXCERPT_CHARS = 400
CONFIGURE_PROVIDER_HINT = (
    "Set OPENAI_API_KEY for the worker, or ATLAS_LLM_CHAIN to a JSON list of providers "
    '(for a local Ollama: [{"provider": "openai_compatible", "model": "llama3.1", '
    '"base_url": "http://localhost:11434/v1"}]); see README.md, section "Configure an LLM provider".'
)


class BriefSource(BaseModel):
    """A source as a brief lists it: where it comes from, and an excerpt instead of the whole text."""

    model_config = ConfigDict(extra="ignore")

    label: str | None = None
    id: str
    title: str
    section: str = ""
    source: str
    score: float
    excerpt: str


class BriefResult(BaseModel):
    """The result of a ``degraded`` task: the sources a design would draw on, and what to configure."""

    model_config = ConfigDict(extra="ignore")

    kind: Literal["brief"] = "brief"
    title: str
    summary: str
    sources: list[BriefSource]
    next_step: str


def build_brief(task: TaskMessage, sources: list[Source], reason: str) -> BriefResult:
    """The brief for ``task`` from the retrieved ``sources``."""
    return BriefResult(
        title=f"Retrieval-only brief: {_shorten(task.prompt, 80)}",
        summary=(
            f"No design was written: {reason} "
            f"These {len(sources)} sources from the knowledge base are what a design would draw on."
        ),
        sources=[
            BriefSource(
                label=source.label,
                id=source.id,
                title=source.title,
                section=source.section,
                source=source.source,
                score=round(source.score, 4),
                excerpt=_shorten(source.text, EXCERPT_CHARS),
            )
            for source in sources
        ],
        next_step=CONFIGURE_PROVIDER_HINT,
    )


def _shorten(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    return flat[: limit - 1].rsplit(" ", 1)[0] + "…"
