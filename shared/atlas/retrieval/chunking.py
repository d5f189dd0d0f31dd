"""Heading-aware Markdown chunking with overlap.

A document is split at its headings; each section's paragraphs are packed into chunks of at most
``max_chars``, with the last paragraph (or, for a long paragraph, the last ``overlap_chars``) carried
into the next chunk. Every chunk keeps its source, the document title (the first ``#`` heading), its
section and the document's tags. Its id is a UUID derived from all of that, so ingesting the same file
twice yields the same ids and a changed file (or changed tags) yields new ones (see ``KnowledgeIndex.ingest``).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

CHUNK_NAMESPACE = uuid.UUID("6f9d3c1e-5b0a-4f43-9a57-0e2b1d7c4a10")
DEFAULT_MAX_CHARS = 1200
DEFAULT_OVERLAP_CHARS = 200
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})(.*)$")


@dataclass(frozen=True)
class Chunk:
    id: str
    source: str
    title: str
    section: str
    text: str
    position: int
    tags: tuple[str, ...] = ()

    def embedding_text(self) -> str:
        """What is embedded: the text with its title and section, so a chunk knows its context."""
        heading = f"{self.title} — {self.section}" if self.section else self.title
        return f"{heading}\n{self.text}"

    def payload(self) -> dict[str, object]:
        return {
            "source": self.source,
            "title": self.title,
            "section": self.section,
            "text": self.text,
            "position": self.position,
            "tags": list(self.tags),
        }


def chunk_id(source: str, title: str, section: str, text: str, tags: tuple[str, ...] = ()) -> str:
    parts = (source, title, section, text, *(("\x1e".join(tags),) if tags else ()))
    return str(uuid.uuid5(CHUNK_NAMESPACE, "\x1f".join(parts)))


def chunk_markdown(
    source: str,
    text: str,
    *,
    title: str | None = None,
    tags: tuple[str, ...] = (),
    max_chars: int = DEFAULT_MAX_CHARS,
    overlap_chars: int = DEFAULT_OVERLAP_CHARS,
) -> list[Chunk]:
    """Split the Markdown ``text`` of ``source`` into chunks (empty sections yield nothing)."""
    tags = tuple(sorted(set(tags)))
    if overlap_chars >= max_chars:
        raise ValueError("overlap_chars must be smaller than max_chars")
    sections = _split_sections(text)
    doc_title = title or next((heading for level, heading, _ in sections if level == 1), None) or _stem(source)
    chunks: list[Chunk] = []
    for _, section, body in sections:
        section_name = "" if section == doc_title else section
        for piece in _pack(_paragraphs(body), max_chars, overlap_chars):
            chunks.append(
                Chunk(
                    id=chunk_id(source, doc_title, section_name, piece, tags),
                    source=source,
                    title=doc_title,
                    section=section_name,
                    text=piece,
                    position=len(chunks),
                    tags=tags,
                )
            )
    return chunks


def _split_sections(text: str) -> list[tuple[int, str, str]]:
    """(level, heading, body) for each heading, ignoring '#' lines inside code fences."""
    sections: list[tuple[int, str, list[str]]] = [(0, "", [])]
    fence = ""  # the open fence: closed only by the same character, at least as long, with nothing after it
    for line in text.splitlines():
        opening = _FENCE.match(line)
        if opening and not fence:
            fence = opening.group(1)
        elif opening and opening.group(1).startswith(fence) and not opening.group(2).strip():
            fence = ""
        match = None if fence else _HEADING.match(line)
        if match:
            sections.append((len(match.group(1)), match.group(2).strip(), []))
        else:
            sections[-1][2].append(line)
    return [(level, heading, "\n".join(body).strip()) for level, heading, body in sections]


def _paragraphs(body: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", body) if p.strip()]


def _pack(paragraphs: list[str], max_chars: int, overlap_chars: int) -> list[str]:
    pieces: list[str] = []
    current: list[str] = []
    for paragraph in paragraphs:
        for part in _split_long(paragraph, max_chars, overlap_chars):
            candidate = "\n\n".join([*current, part])
            if current and len(candidate) > max_chars:
                pieces.append("\n\n".join(current))
                tail = current[-1]
                current = [tail] if len(tail) <= overlap_chars else []
                if current and len("\n\n".join([*current, part])) > max_chars:
                    current = []
            current.append(part)
    if current:
        pieces.append("\n\n".join(current))
    return pieces


def _split_long(paragraph: str, max_chars: int, overlap_chars: int) -> list[str]:
    """Cut a paragraph longer than ``max_chars`` at word boundaries, windows overlapping."""
    if len(paragraph) <= max_chars:
        return [paragraph]
    parts: list[str] = []
    start = 0
    while start < len(paragraph):
        end = min(len(paragraph), start + max_chars)
        if end < len(paragraph):
            space = paragraph.rfind(" ", start + max_chars // 2, end)
            end = space if space > start else end
        parts.append(paragraph[start:end].strip())
        if end >= len(paragraph):
            break
        next_start = end - overlap_chars
        space = paragraph.find(" ", next_start, end)
        start = space + 1 if space != -1 else next_start
    return [p for p in parts if p]


def _stem(source: str) -> str:
    name = source.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0].replace("-", " ").replace("_", " ").strip() or source
