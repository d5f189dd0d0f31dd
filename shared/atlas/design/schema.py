"""The structured architecture design an LLM must return, and the check that its citations are real.

The JSON schema of :class:`Design` is sent to providers that support structured output; whatever comes
back is validated here, so a design stored on a task is always well-formed and cites only sources that
retrieval actually returned.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Component(_Strict):
    name: str = Field(min_length=1)
    responsibility: str = Field(min_length=1)
    technologies: list[str] = Field(default_factory=list)


class DataFlow(_Strict):
    source: str = Field(min_length=1, alias="from")
    target: str = Field(min_length=1, alias="to")
    description: str

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Decision(_Strict):
    decision: str = Field(min_length=1)
    alternatives: list[str] = Field(default_factory=list)
    rationale: str = Field(min_length=1)


class Risk(_Strict):
    risk: str = Field(min_length=1)
    mitigation: str = Field(min_length=1)


class Citation(_Strict):
    source_id: str = Field(min_length=1, description="The id of a retrieved source, such as S1.")
    supports: str = Field(min_length=1, description="What in the design this source supports.")


class Design(_Strict):
    """A complete, cited architecture design."""

    title: str = Field(min_length=1)
    summary: str = Field(min_length=1)
    assumptions: list[str] = Field(default_factory=list)
    components: list[Component] = Field(min_length=1)
    data_flows: list[DataFlow] = Field(default_factory=list)
    diagram_mermaid: str = Field(default="", description="A Mermaid flowchart of the components.")
    decisions: list[Decision] = Field(default_factory=list)
    risks: list[Risk] = Field(default_factory=list)
    cost_notes: list[str] = Field(default_factory=list)
    rollout_steps: list[str] = Field(default_factory=list)
    open_questions: list[str] = Field(default_factory=list)
    citations: list[Citation] = Field(default_factory=list)

    def unknown_citations(self, known_ids: Iterable[str]) -> list[str]:
        """Citation ids that name no retrieved source (an invented citation)."""
        known = set(known_ids)
        return sorted({c.source_id for c in self.citations if c.source_id not in known})
