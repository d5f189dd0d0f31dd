"""A task as one HTML page: the design with its Mermaid diagram drawn, its citations linked to the sources.

Mermaid's script comes from ``mermaid_js`` (a path to ``mermaid.min.js``, which ``make setup`` fetches from
the npm registry into ``.atlas/mermaid/``): referenced as a local file, so the page draws offline on this
machine, or with ``inline_mermaid`` copied into the page, so that the one file draws anywhere (about 5 MB).
Without a local script the page loads Mermaid from a CDN. Every text from the task is escaped:
the design comes from an LLM and the sources from the knowledge base, neither is trusted markup.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from atlas.cli.render import design_sections, source_line
from atlas.design.schema import Design
from atlas.models import Source
from atlas.tasks.document import TaskDocument

_SCRIPT_END = re.compile(r"</(script)", re.IGNORECASE)
MERMAID_CDN = "https://cdn.jsdelivr.net/npm/mermaid@12/dist/mermaid.min.js"

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #1f2328; }
header { border-bottom: 1px solid #d0d7de; margin-bottom: 1rem; }
.status { display: inline-block; padding: 0.1rem 0.6rem; border-radius: 1rem; font-weight: 600; }
.succeeded { background: #dafbe1; } .degraded { background: #fff8c5; } .failed { background: #ffebe9; }
.meta { color: #57606a; font-size: 0.9rem; } pre.mermaid { background: #f6f8fa; padding: 1rem; }
blockquote { color: #57606a; border-left: 0.25rem solid #d0d7de; margin: 0; padding: 0 1rem; }
"""


def task_page(document: TaskDocument, *, mermaid_js: Path | None = None, inline_mermaid: bool = False) -> str:
    """The HTML page of a task document (a design, a brief, or a failure)."""
    e = html.escape
    status = document.status.value
    title = (document.result.title if document.result is not None else None) or document.prompt or document.task_id
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title><style>{_STYLE}</style></head><body>",
        "<header>",
        f"<h1>{e(title)}</h1>",
        f'<p><span class="status {e(status)}">{e(status)}</span> '
        f'<span class="meta">task {e(document.task_id)}</span></p>',
        f"<p><strong>Prompt:</strong> {e(document.prompt or '')}</p>",
        f'<p class="meta">{e(_meta(document))}</p>',
        "</header>",
    ]
    if document.notice:
        parts.append(f"<blockquote>{e(document.notice)}</blockquote>")
    if document.error is not None:
        parts.append(f"<p><strong>Error [{e(document.error.code)}]:</strong> {e(document.error.message)}</p>")
    design = document.design
    if design is not None:
        parts.extend(_design(design))
    elif document.brief is not None:
        parts.append(f"<p>{e(document.brief.summary)}</p>")
    parts.extend(_sources(document.sources))
    if design is not None and design.diagram_mermaid:
        parts.append(_mermaid_script(mermaid_js, inline=inline_mermaid))
        parts.append('<script>mermaid.initialize({startOnLoad: true, securityLevel: "strict"});</script>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _mermaid_script(mermaid_js: Path | None, *, inline: bool) -> str:
    """The tag that loads Mermaid: the local script's text, a reference to it, or the CDN."""
    if mermaid_js is None:
        if inline:
            raise ValueError("inlining Mermaid needs a local mermaid.min.js")
        return f'<script src="{html.escape(MERMAID_CDN)}"></script>'
    if not inline:
        return f'<script src="{html.escape(mermaid_js.resolve().as_uri())}"></script>'
    # A script element ends at the first "</script", wherever it is; "<\/" means the same inside JavaScript.
    code = _SCRIPT_END.sub(r"<\\/\1", mermaid_js.read_text(encoding="utf-8"))
    return f"<script>{code}</script>"


def _meta(document: TaskDocument) -> str:
    bits = []
    if document.provider:
        bits.append(f"{document.provider}/{document.model}")
    if document.cost_usd is not None:
        bits.append(f"{document.cost_usd:.4f} USD")
    total = document.timings_ms.get("total_ms")
    if total is not None:
        bits.append(f"{total / 1000:.1f} s")
    return " · ".join(bits)


def _design(design: Design) -> list[str]:
    e = html.escape
    parts = [f"<p>{e(design.summary)}</p>"]
    if design.diagram_mermaid:
        parts += ["<h2>Diagram</h2>", f'<pre class="mermaid">{e(design.diagram_mermaid.strip())}</pre>']
    for heading, items in design_sections(design):
        if not items:
            continue
        parts.append(f"<h2>{e(heading)}</h2><ul>")
        for item in items:
            text = e(item)
            if heading == "Citations" and item.startswith("["):
                label = item[1 : item.index("]")]
                text = f'<a href="#{e(label)}">[{e(label)}]</a>{e(item[item.index("]") + 1 :])}'
            parts.append(f"<li>{text}</li>")
        parts.append("</ul>")
    return parts


def _sources(sources: list[Source]) -> list[str]:
    if not sources:
        return []
    e = html.escape
    parts = ["<h2>Sources</h2><ol>"]
    for source in sources:
        anchor = e(source.label or source.id)
        parts.append(f'<li id="{anchor}"><strong>{e(source_line(source))}</strong><br>{e(source.text[:600])}</li>')
    parts.append("</ol>")
    return parts
