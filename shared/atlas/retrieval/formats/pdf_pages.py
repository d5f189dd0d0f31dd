"""PDF files by page, from their text layer: a section per page, named after the outline (bookmarks) when
the file has one. The title is the document's metadata title, else its first line of text.

A scanned PDF has no text layer and gives no text (OCR is out of scope). A damaged file makes pypdf fail in
many ways (its own errors, but also ValueError, KeyError and others from deep in the parser), so every
failure while reading is reported as a parse error of that one file.
"""

from __future__ import annotations

import io
import logging
import zlib

from pypdf import PdfReader
from pypdf.errors import PyPdfError

from atlas.errors import AtlasError
from atlas.retrieval.formats.structure import escape_prose, markdown_document, one_line

READ_ERRORS = (PyPdfError, ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError, zlib.error)


class PdfReadFailed(AtlasError):
    """The PDF cannot be read; the message says why (reported as a DocumentParseError)."""

    code = "pdf_unreadable"


def pdf_to_markdown(data: bytes, fallback_title: str) -> tuple[str, str]:
    """(title, Markdown text); the text is "" when no page has a text layer."""
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its warnings on oddities it works around are noise
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise PdfReadFailed("encrypted with a password")
        pages = [page.extract_text() or "" for page in reader.pages]
        headings = _outline_pages(reader)
        metadata_title = (reader.metadata.title if reader.metadata else None) or ""
    except READ_ERRORS as exc:
        raise PdfReadFailed(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from exc
    first_line = next((line.strip() for text in pages for line in text.splitlines() if line.strip()), "")
    title = one_line(str(metadata_title)) or one_line(first_line) or fallback_title
    sections = []
    heading = ""
    for number, text in enumerate(pages, start=1):
        heading = headings.get(number - 1, heading)
        name = f"{heading} (page {number})" if heading else f"page {number}"
        sections.append((name, _paragraphs(text)))
    return title, markdown_document(title, sections)


def _outline_pages(reader: PdfReader) -> dict[int, str]:
    """Page index → the last outline entry that starts on it (entries at every depth, in reading order)."""
    starts: dict[int, str] = {}

    def visit(items: list[object]) -> None:
        for item in items:
            if isinstance(item, list):
                visit(item)
                continue
            page = reader.get_destination_page_number(item)  # type: ignore[arg-type]
            title = one_line(str(getattr(item, "title", "") or ""))
            if page is not None and page >= 0 and title:
                starts[page] = title

    visit(list(reader.outline))
    return starts


def _paragraphs(text: str) -> str:
    """The page's lines, blank lines kept as paragraph breaks, escaped for the chunker."""
    return escape_prose("\n".join(line.rstrip() for line in text.splitlines()).strip())
