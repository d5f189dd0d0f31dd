"""Files platform teams keep, read into knowledge documents: Markdown, HTML, PDF, text, Terraform, YAML.

Every format is written as Markdown (``# title``, ``## section`` per block the format has: a heading, a
page, a Terraform block, a Kubernetes object, a Cloud Build step; code fenced), so the one chunker splits
all of them along their own structure and ingestion stays idempotent through the content-hash chunk ids.
``atlas ingest`` and ``scripts/bench_tasks.py`` read files through :func:`find_files` and :func:`load_file`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from atlas.errors import DocumentError, DocumentParseError, UnreadableDocumentError, UnsupportedDocumentError
from atlas.retrieval.formats.html_pages import html_to_markdown
from atlas.retrieval.formats.pdf_pages import PdfReadFailed, pdf_to_markdown
from atlas.retrieval.formats.structure import escape_prose, fenced, markdown_document
from atlas.retrieval.formats.terraform_blocks import TerraformSyntaxError, split_blocks
from atlas.retrieval.formats.yaml_documents import split_yaml
from atlas.retrieval.index import Document
from atlas.retrieval.service import MAX_DOCUMENT_CHARS


def _decode(data: bytes, path: Path, encoding: str = "utf-8-sig") -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise UnreadableDocumentError(path, f"not UTF-8 text (byte {exc.start})") from exc


SkipKind = Literal["unsupported", "unreadable", "parse_error", "too_large"]
_KINDS: dict[type[DocumentError], SkipKind] = {
    UnsupportedDocumentError: "unsupported",
    UnreadableDocumentError: "unreadable",
    DocumentParseError: "parse_error",
}


@dataclass(frozen=True)
class Skipped:
    """A file that is not ingested, and why."""

    path: Path
    kind: SkipKind
    reason: str


def _markdown(data: bytes, path: Path, source: str) -> Document:
    return Document(source=source, text=_decode(data, path, encoding="utf-8"))  # as `atlas ingest` always read it


def _text(data: bytes, path: Path, source: str) -> Document:
    text = _decode(data, path)
    paragraphs = escape_prose(text.strip())
    return Document(source=source, text=markdown_document(path.name, [], intro=paragraphs), title=path.name)


def _html(data: bytes, path: Path, source: str) -> Document:
    title, text = html_to_markdown(data, path.name)
    return Document(source=source, text=text, title=title)


def _pdf(data: bytes, path: Path, source: str) -> Document:
    try:
        title, text = pdf_to_markdown(data, path.name)
    except PdfReadFailed as exc:
        raise DocumentParseError(path, f"not a readable PDF ({exc})") from exc
    return Document(source=source, text=text, title=title)


def _terraform(data: bytes, path: Path, source: str) -> Document:
    try:
        comment, blocks = split_blocks(_decode(data, path))
    except TerraformSyntaxError as exc:
        raise DocumentParseError(path, f"not valid Terraform: {exc}") from exc
    title = comment or source
    return Document(
        source=source,
        text=markdown_document(title, [(block.header, fenced(block.text, "hcl")) for block in blocks]),
        title=title,
    )


def _yaml(data: bytes, path: Path, source: str) -> Document:
    try:
        comment, sections = split_yaml(_decode(data, path))
    except yaml.YAMLError as exc:
        raise DocumentParseError(path, f"not valid YAML: {_yaml_problem(exc)}") from exc
    title = comment or source
    return Document(
        source=source,
        text=markdown_document(title, [(section.name, fenced(section.text, "yaml")) for section in sections]),
        title=title,
    )


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if problem and mark is not None:
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return " ".join(str(exc).split())


LOADERS: dict[str, Callable[[bytes, Path, str], Document]] = {
    ".md": _markdown,
    ".html": _html,
    ".htm": _html,
    ".pdf": _pdf,
    ".txt": _text,
    ".tf": _terraform,
    ".yaml": _yaml,
    ".yml": _yaml,
}
SUFFIXES = tuple(LOADERS)


def load_document(path: Path, source: str) -> Document:
    """The file at ``path`` as a document named ``source``; its text is "" when the file has nothing to index.

    Raises :class:`UnsupportedDocumentError`, :class:`UnreadableDocumentError` or :class:`DocumentParseError`.
    """
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise UnsupportedDocumentError(path, f"unsupported extension {path.suffix or '(none)'}; "
                                       f"Atlas reads {', '.join(SUFFIXES)}")  # fmt: skip
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableDocumentError(path, f"cannot be read: {exc.strerror or exc}") from exc
    return loader(data, path, source)


def load_file(path: Path, root: Path | None = None) -> Document | Skipped:
    """What ``atlas ingest`` sends for ``path`` (named relative to ``root``, default the working folder), or why
    it skips the file."""
    try:
        document = load_document(path, source_name(path, root))
    except DocumentError as exc:
        return Skipped(path, _KINDS.get(type(exc), "parse_error"), exc.reason)
    if len(document.text) > MAX_DOCUMENT_CHARS:
        size = f"{len(document.text):,} characters of text"
        return Skipped(path, "too_large", f"{size}; a document may have at most {MAX_DOCUMENT_CHARS:,}")
    return document


def find_files(paths: Iterable[Path]) -> tuple[list[Path], list[Skipped]]:
    """The files to ingest under ``paths`` (files as given, folders searched, both sorted), and those skipped.

    In a folder, files and folders whose names start with a dot are left out, and a file of an unsupported
    extension is skipped (and reported); a file named on its own is always tried.
    """
    found: list[Path] = []
    skipped: list[Skipped] = []
    for path in paths:
        if path.is_dir():
            for candidate in sorted(path.rglob("*")):
                if any(part.startswith(".") for part in candidate.relative_to(path).parts) or not candidate.is_file():
                    continue
                if candidate.suffix.lower() in LOADERS:
                    found.append(candidate)
                else:
                    reason = f"unsupported extension {candidate.suffix or '(none)'}"
                    skipped.append(Skipped(candidate, "unsupported", reason))
        elif path.exists():
            found.append(path)
        else:
            skipped.append(Skipped(path, "unreadable", "no such file or folder"))
    return found, skipped


def source_name(path: Path, root: Path | None = None) -> str:
    """A document's name: its path relative to ``root`` (default: the working folder) when inside it."""
    try:
        return path.resolve().relative_to((root or Path.cwd()).resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def empty_reason(path: Path) -> str:
    """Why a file gave no text, for the report."""
    if path.suffix.lower() == ".pdf":
        return "no text layer (scanned pages need OCR first)"
    return "no text to index"
