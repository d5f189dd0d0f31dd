"""Rendering a task document for a terminal: readable text first, then the document as one JSON line."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

_RULE = "─" * 72


def to_json_line(document: dict[str, Any]) -> str:
    """The document as a single line of JSON (timestamps as ISO 8601)."""
    return json.dumps(document, default=_json_default, ensure_ascii=False, sort_keys=True)


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def render_task(document: dict[str, Any]) -> str:
    lines = [
        _RULE,
        f"Task {document.get('task_id')}  status: {str(document.get('status', '?')).upper()}",
        f"Prompt: {document.get('prompt', '(not recorded)')}",
    ]
    if document.get("provider"):
        lines.append(f"Model: {document['provider']}/{document.get('model')}")
    if document.get("usage") or document.get("cost_usd") is not None:
        usage = document.get("usage") or {}
        tokens = ", ".join(f"{k.removesuffix('_tokens').replace('_', ' ')} {v}" for k, v in usage.items())
        attempts = len(document.get("llm_attempts") or [])
        cost = float(document.get("cost_usd") or 0)
        lines.append(f"Cost: {cost:.4f} USD  tokens: {tokens}  LLM attempts: {attempts}")
    timings = document.get("timings_ms") or {}
    if timings:
        lines.append("Timings: " + ", ".join(f"{k.removesuffix('_ms')} {v:.0f} ms" for k, v in timings.items()))
    if document.get("notice"):
        lines.append(f"Notice: {document['notice']}")
    error = document.get("error")
    if error:
        lines.append(f"Error [{error.get('code')}]: {error.get('message')}")
    for fallback in document.get("fallbacks") or []:
        lines.append(f"Fallback: {fallback.get('entry')} ({fallback.get('kind')}): {fallback.get('reason')}")
    result = document.get("result") or {}
    if result.get("kind") == "design":
        lines.extend(_render_design(result, document.get("sources") or []))
    elif result.get("kind") == "brief":
        lines.extend(_render_brief(result))
    lines.append(_RULE)
    return "\n".join(lines)


def design_sections(design: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """The design's sections as (heading, items), in reading order: shared by the terminal and HTML views."""
    return [
        ("Assumptions", [str(a) for a in design.get("assumptions", [])]),
        (
            "Components",
            [
                f"{c['name']}: {c['responsibility']} [{', '.join(c.get('technologies', []))}]"
                for c in design.get("components", [])
            ],
        ),
        (
            "Data flows",
            [f"{f.get('from')} → {f.get('to')}: {f.get('description')}" for f in design.get("data_flows", [])],
        ),
        (
            "Decisions",
            [
                f"{d['decision']} — {d['rationale']}"
                + (f" (instead of {', '.join(d['alternatives'])})" if d.get("alternatives") else "")
                for d in design.get("decisions", [])
            ],
        ),
        ("Risks", [f"{r['risk']} → {r['mitigation']}" for r in design.get("risks", [])]),
        ("Cost notes", [str(c) for c in design.get("cost_notes", [])]),
        ("Rollout", [str(s) for s in design.get("rollout_steps", [])]),
        ("Open questions", [str(q) for q in design.get("open_questions", [])]),
        ("Citations", [f"[{c['source_id']}] {c['supports']}" for c in design.get("citations", [])]),
    ]


def source_line(source: dict[str, Any]) -> str:
    """``[S1] Title › Section (origin)``: how a cited source is named."""
    section = f" › {source['section']}" if source.get("section") else ""
    label = source.get("label") or str(source.get("id", ""))[:8]
    return f"[{label}] {source.get('title')}{section} ({source.get('source')})"


def _render_design(design: dict[str, Any], sources: list[dict[str, Any]]) -> list[str]:
    """The design as Markdown: headings, lists, the diagram in a ``mermaid`` fence, the cited sources."""
    lines = ["", f"# {design.get('title')}", "", str(design.get("summary", ""))]
    for heading, items in design_sections(design):
        if items:
            lines.extend(["", f"## {heading}", *(f"- {item}" for item in items)])
    if design.get("diagram_mermaid"):
        lines.extend(["", "## Diagram", "```mermaid", str(design["diagram_mermaid"]).strip(), "```"])
    cited = {c.get("source_id") for c in design.get("citations", [])}
    named = [s for s in sources if s.get("label") in cited]
    if named:
        lines.extend(["", "## Sources", *(f"- {source_line(s)}" for s in named)])
    return lines


def _render_brief(brief: dict[str, Any]) -> list[str]:
    lines = ["", f"# {brief.get('title')}", "", str(brief.get("summary", "")), "", "## Sources"]
    for source in brief.get("sources", []):
        lines.append(f"- {source_line(source)}, score {source.get('score')}")
        lines.append(f"    {source.get('excerpt')}")
    lines.extend(["", f"Next step: {brief.get('next_step')}"])
    return lines
