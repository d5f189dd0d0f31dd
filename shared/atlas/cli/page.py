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
li.source { margin-bottom: 0.8rem; } .excerpt { margin: 0.2rem 0; }
.badge { font-size: 0.75rem; padding: 0 0.4rem; border-radius: 0.5rem; }
.badge.cited { background: #dafbe1; } .badge.uncited, .badge.retrieved { background: #eaeef2; color: #57606a; }
ol.uncited { color: #57606a; } .chunk { white-space: pre-wrap; background: #f6f8fa; padding: 0.5rem; }
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
    cited = {c.source_id for c in design.citations} if design is not None else None
    parts.extend(_sources(document.sources, cited))
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


def _sources(sources: list[Source], cited: set[str] | None) -> list[str]:
    """The sources: the ones the design cites first, then the ones retrieved but not cited, each with a link
    to its file (when it is one on this machine), an excerpt, and its whole text a click away."""
    if not sources:
        return []
    e = html.escape
    if cited is None:  # a brief: nothing cites, everything was retrieved
        groups = [("Sources (retrieved)", "retrieved", sources)]
    else:
        groups = [
            ("Sources cited by the design", "cited", [s for s in sources if (s.label or s.id) in cited]),
            ("Retrieved, not cited", "uncited", [s for s in sources if (s.label or s.id) not in cited]),
        ]
    parts = []
    for heading, kind, members in groups:
        if not members:
            continue
        parts.append(f'<h2>{e(heading)}</h2><ol class="sources {kind}">')
        for source in members:
            anchor = e(source.label or source.id)
            name = e(source_line(source))
            href = source_href(source.source)
            name = f'<a class="origin" href="{e(href)}">{name}</a>' if href else name
            badge = {"cited": "cited", "uncited": "not cited", "retrieved": "retrieved"}[kind]
            text = plain_text(source.text)
            parts.append(
                f'<li id="{anchor}" class="source {kind}"><span class="badge {kind}">{badge}</span> '
                f"<strong>{name}</strong>"
                f'<p class="excerpt">{e(excerpt(text))}</p>'
                f'<details><summary>the whole chunk</summary><div class="chunk">{e(text)}</div></details></li>'
            )
        parts.append("</ol>")
    return parts


def source_href(origin: str, root: Path | None = None) -> str | None:
    """Where a source's origin can be opened: a web address as is, a file (relative to ``root``, default the
    current directory, which is the checkout's when atlas runs there) as a file: URI; None otherwise."""
    if re.match(r"https?://", origin):
        return origin
    try:
        path = Path(origin)
        candidate = path if path.is_absolute() else (root or Path.cwd()) / path
        return candidate.resolve().as_uri() if candidate.is_file() else None
    except (OSError, ValueError):
        return None


_FENCE = re.compile(r"^\s*(```|~~~).*$", re.MULTILINE)
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+", re.MULTILINE)
_QUOTE = re.compile(r"^\s{0,3}>\s?", re.MULTILINE)
_BULLET = re.compile(r"^(\s*)[-*+]\s+", re.MULTILINE)
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$\n?", re.MULTILINE)
_RULE = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$", re.MULTILINE)
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_STRONG = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_EMPHASIS = re.compile(r"(?<![\w*])([*_])(?=\S)(.+?)(?<=\S)\1(?![\w*])")
_CODE = re.compile(r"`+([^`]+)`+")


def plain_text(markdown: str) -> str:
    """A source's text with its Markdown syntax stripped (headings, emphasis, links, code marks, quotes,
    tables' rules and pipes, bullets as •): what the page shows, escaped, instead of the raw marks."""
    text = _FENCE.sub("", markdown)
    text = _TABLE_RULE.sub("", text)
    text = _RULE.sub("", text)
    text = _HEADING.sub("", text)
    text = _QUOTE.sub("", text)
    text = _BULLET.sub(r"\1• ", text)
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _CODE.sub(r"\1", text)
    text = _STRONG.sub(r"\2", text)
    text = _EMPHASIS.sub(r"\2", text)
    lines = []
    for line in text.splitlines():
        if line.strip().startswith("|") or line.count(" | ") >= 1:
            line = " · ".join(cell.strip() for cell in line.strip().strip("|").split("|"))
        lines.append(line.rstrip())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def excerpt(text: str, limit: int = 320) -> str:
    """The start of ``text`` on one line, at most ``limit`` characters: ended at a sentence when one ends in the
    second half, else at a word, with an ellipsis when anything was left out."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit + 1]
    sentence = max(cut.rfind(mark) for mark in (". ", "! ", "? ", ": "))
    if sentence >= limit // 2:
        return flat[: sentence + 1] + " …"
    word = cut.rfind(" ")
    head = flat[:word] if word > 0 else flat[:limit]
    return head.rstrip(" ,;:—-–(") + "…"
