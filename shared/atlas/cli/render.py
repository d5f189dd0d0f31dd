"""Rendering a task document for a terminal: readable text first, then the document as one JSON line."""

from __future__ import annotations

from atlas.design.brief import BriefResult, BriefSource
from atlas.design.schema import Design
from atlas.models import Source
from atlas.tasks.document import TaskDocument

_RULE = "─" * 72


def render_task(document: TaskDocument) -> str:
    lines = [
        _RULE,
        f"Task {document.task_id}  status: {document.status.value.upper()}",
        f"Prompt: {document.prompt or '(not recorded)'}",
        *_header(document),
    ]
    if document.design is not None:
        lines.extend(_render_design(document.design, document.sources))
    elif document.brief is not None:
        lines.extend(_render_brief(document.brief))
    lines.append(_RULE)
    return "\n".join(lines)


def _header(document: TaskDocument) -> list[str]:
    """Model, cost, timings, notice, error and fallbacks: one line each, when the task has them."""
    lines = []
    if document.provider:
        lines.append(f"Model: {document.provider}/{document.model}")
    if "usage" in document.model_fields_set or document.cost_usd is not None:
        usage = document.usage.model_dump()
        tokens = ", ".join(f"{k.removesuffix('_tokens').replace('_', ' ')} {v}" for k, v in usage.items())
        cost = document.cost_usd or 0.0
        lines.append(f"Cost: {cost:.4f} USD  tokens: {tokens}  LLM attempts: {len(document.llm_attempts)}")
    if document.timings_ms:
        timings = ", ".join(f"{k.removesuffix('_ms')} {v:.0f} ms" for k, v in document.timings_ms.items())
        lines.append(f"Timings: {timings}")
    if document.notice:
        lines.append(f"Notice: {document.notice}")
    if document.error is not None:
        lines.append(f"Error [{document.error.code}]: {document.error.message}")
    lines.extend(f"Fallback: {f.entry} ({f.kind}): {f.reason}" for f in document.fallbacks)
    return lines


def design_sections(design: Design) -> list[tuple[str, list[str]]]:
    """The design's sections as (heading, items), in reading order: shared by the terminal and HTML views."""
    return [
        ("Assumptions", list(design.assumptions)),
        ("Components", [f"{c.name}: {c.responsibility} [{', '.join(c.technologies)}]" for c in design.components]),
        ("Data flows", [f"{f.source} → {f.target}: {f.description}" for f in design.data_flows]),
        (
            "Decisions",
            [
                f"{d.decision} — {d.rationale}"
                + (f" (instead of {', '.join(d.alternatives)})" if d.alternatives else "")
                for d in design.decisions
            ],
        ),
        ("Risks", [f"{r.risk} → {r.mitigation}" for r in design.risks]),
        ("Cost notes", list(design.cost_notes)),
        ("Rollout", list(design.rollout_steps)),
        ("Open questions", list(design.open_questions)),
        ("Citations", [f"[{c.source_id}] {c.supports}" for c in design.citations]),
    ]


def source_line(source: Source | BriefSource) -> str:
    """``[S1] Title › Section (origin)``: how a cited source is named."""
    section = f" › {source.section}" if source.section else ""
    label = source.label or source.id[:8]
    return f"[{label}] {source.title}{section} ({source.source})"


def _render_design(design: Design, sources: list[Source]) -> list[str]:
    """The design as Markdown: headings, lists, the diagram in a ``mermaid`` fence, the cited sources."""
    lines = ["", f"# {design.title}", "", design.summary]
    for heading, items in design_sections(design):
        if items:
            lines.extend(["", f"## {heading}", *(f"- {item}" for item in items)])
    if design.diagram_mermaid:
        lines.extend(["", "## Diagram", "```mermaid", design.diagram_mermaid.strip(), "```"])
    cited = {c.source_id for c in design.citations}
    named = [s for s in sources if s.label in cited]
    if named:
        lines.extend(["", "## Sources", *(f"- {source_line(s)}" for s in named)])
    return lines


def _render_brief(brief: BriefResult) -> list[str]:
    lines = ["", f"# {brief.title}", "", brief.summary, "", "## Sources"]
    for source in brief.sources:
        lines.append(f"- {source_line(source)}, score {source.score}")
        lines.append(f"    {source.excerpt}")
    lines.extend(["", f"Next step: {brief.next_step}"])
    return lines
