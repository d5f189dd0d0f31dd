"""What a parser found, written as Markdown that ``chunk_markdown`` splits along it.

A document becomes ``# title``, then ``## section`` and its body per block (a page, a heading, a Terraform
block, a Kubernetes object). Prose lines that the chunker would take for a heading or a code fence are
escaped with a backslash, as Markdown escapes them. Code is fenced with blank lines dropped and is cut at
line boundaries into fenced pieces of at most ``PIECE_CHARS``: the chunker splits a section at blank lines
and packs what it split into chunks of ``ATLAS_CHUNK_MAX_CHARS`` (1,200 by default), so every chunk then
holds whole fences and whole lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

PIECE_CHARS = 1000  # under the chunker's default 1,200, leaving room for the fence lines
TITLE_CHARS = 200  # the ingest API takes titles of up to 300 characters
_LOOKS_LIKE_MARKUP = re.compile(r"^(\s*)(#{1,6}\s|```|~~~)")
_BACKTICK_FENCE = re.compile(r"^\s*(`{3,})")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")
_LICENCE = re.compile(r"copyright|licen[cs]e|spdx", re.IGNORECASE)
_DIVIDER = re.compile(r"^[-=*_~#]{3}")  # "# --- Networking -----": a divider, not a title


def one_line(text: str, limit: int = TITLE_CHARS) -> str:
    """``text`` with its whitespace collapsed, cut to ``limit`` characters: a title or a section name."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def comment_title(comment_lines: Iterable[str]) -> str:
    """A title from a file's leading comment (its lines without the comment markers): the first sentence
    of its first paragraph; "" for a licence header, a divider line or no comment."""
    paragraph: list[str] = []
    for line in comment_lines:
        if not line.strip():
            if paragraph:
                break
            continue
        paragraph.append(line.strip())
    text = " ".join(paragraph)
    if not text or _LICENCE.search(text) or _DIVIDER.match(text):
        return ""
    return one_line(_SENTENCE_END.split(text, maxsplit=1)[0])


def escape_prose(text: str) -> str:
    """Escape the lines of ``text`` that would read as a heading or a fence (``\\# not a heading``)."""
    return "\n".join(_LOOKS_LIKE_MARKUP.sub(r"\1\\\2", line) for line in text.splitlines())


def fenced(code: str, language: str = "") -> str:
    """``code`` as one or more fenced blocks separated by blank lines, each at most about ``PIECE_CHARS``."""
    lines = [line.rstrip() for line in code.splitlines() if line.strip()]
    if not lines:
        return ""
    longest = max((len(m.group(1)) for line in lines if (m := _BACKTICK_FENCE.match(line))), default=0)
    fence = "`" * max(3, longest + 1)  # longer than any fence inside, so it closes only where it should
    return "\n\n".join(f"{fence}{language}\n" + "\n".join(piece) + f"\n{fence}" for piece in _cut(lines))


def _cut(lines: list[str]) -> list[list[str]]:
    """Greedy pieces of at most ``PIECE_CHARS``, cut where possible before a line at the outermost indentation."""
    pieces: list[list[str]] = []
    current: list[str] = []
    size = 0
    for line in lines:
        if current and size + len(line) + 1 > PIECE_CHARS:
            cut = _boundary(current)
            pieces.append(current[:cut])
            current = current[cut:]
            size = sum(len(kept) + 1 for kept in current)
        current.append(line)
        size += len(line) + 1
    if current:
        pieces.append(current)
    return pieces


def _boundary(lines: list[str]) -> int:
    """Where to cut ``lines``: before the last line, in their second half, that is indented least; else at the end."""
    indents = [len(line) - len(line.lstrip()) for line in lines]
    outermost = min(indents[1:], default=0)
    for index in range(len(lines) - 1, max(1, len(lines) // 2) - 1, -1):
        if indents[index] == outermost:
            return index
    return len(lines)


def markdown_document(title: str, sections: Iterable[tuple[str, str]], intro: str = "") -> str:
    """``# title``, the intro, then ``## name`` and body per section; "" when there is no body at all."""
    parts = [part for part in (intro.strip(),) if part]
    for name, body in sections:
        if body.strip():
            parts.append(f"## {one_line(name)}\n\n{body.strip()}")
    if not parts:
        return ""
    return "\n\n".join([f"# {one_line(title)}", *parts]) + "\n"
