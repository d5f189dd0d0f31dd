"""Terraform files split into their top-level blocks, each kept as written.

A scanner that knows HCL's quoted strings (with ``${...}`` templates inside), heredocs and comments finds
where each top-level block opens and closes. A full HCL parse would drop the comments (often the best
prose in the file) and refuse syntax newer than the parser; this needs neither. Comments just above a
block belong to it; the file's leading comment, unless it is a licence header, is its title.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from atlas.errors import AtlasError
from atlas.retrieval.formats.structure import comment_title

_HEREDOC = re.compile(r"<<-?([A-Za-z_][A-Za-z0-9_-]*)[ \t]*\r?\n")


class TerraformSyntaxError(AtlasError):
    """The file's braces, strings, heredocs or comments do not close (reported as a DocumentParseError)."""

    code = "terraform_syntax"


@dataclass(frozen=True)
class Block:
    header: str  # resource "google_pubsub_topic" "tasks"
    text: str  # the block as written, with the comments just above it


def split_blocks(text: str) -> tuple[str, list[Block]]:
    """The file's leading comment (or "") and its top-level blocks, in order."""
    scanner = _Scanner(text)
    blocks: list[Block] = []
    region_start = 0  # where the text that belongs to the next block begins
    header_start: int | None = None  # the first code character of the next block's header
    depth = 0
    while (position := scanner.next_token()) is not None:
        char = text[position]
        if char == "{":
            if depth == 0 and header_start is None:
                header_start = position
            depth += 1
        elif char == "}":
            depth -= 1
            if depth < 0:
                raise TerraformSyntaxError(f"a closing brace with nothing open, line {_line(text, position)}")
            if depth == 0:
                end = _line_end(text, position + 1)
                header = text[header_start:position].split("{", 1)[0] if header_start is not None else ""
                blocks.append(
                    Block(header=" ".join(header.split()) or "(block)", text=text[region_start:end].strip("\n"))
                )
                region_start, header_start = end, None
        elif depth == 0 and header_start is None:
            header_start = position
    if depth > 0:
        raise TerraformSyntaxError(f"a block opened at line {_line(text, header_start or 0)} is not closed")
    rest = text[region_start:]
    if header_start is not None:  # code after the last block that opens none (an attribute at the top level)
        blocks.append(Block(header="(top level)", text=rest.strip("\n")))
    elif rest.strip() and blocks:  # trailing comments stay with the last block
        blocks[-1] = Block(blocks[-1].header, f"{blocks[-1].text}\n{rest.strip(chr(10))}")
    return _leading_comment(text), blocks


class _Scanner:
    """Yields the position of every code character that is not inside a string, heredoc or comment."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._at = 0

    def next_token(self) -> int | None:
        text = self._text
        while self._at < len(text):
            at = self._at
            char = text[at]
            if char == "#" or text.startswith("//", at):
                self._at = _line_end(text, at)
            elif text.startswith("/*", at):
                close = text.find("*/", at + 2)
                if close == -1:
                    raise TerraformSyntaxError(f"a /* comment at line {_line(text, at)} is not closed")
                self._at = close + 2
            elif char == '"':
                self._at = _string_end(text, at)
                return at
            elif heredoc := _HEREDOC.match(text, at):
                closing = re.compile(rf"^[ \t]*{re.escape(heredoc.group(1))}[ \t]*\r?$", re.MULTILINE)
                found = closing.search(text, heredoc.end())
                if found is None:
                    name = heredoc.group(1)
                    raise TerraformSyntaxError(f"the heredoc <<{name} at line {_line(text, at)} is not closed")
                self._at = found.end()
                return at
            elif char.isspace():
                self._at += 1
            else:
                self._at += 1
                return at
        return None


def _string_end(text: str, start: int) -> int:
    """The index after the quoted string opening at ``start``, ``${...}`` templates (with strings) inside."""
    at = start + 1
    while at < len(text):
        char = text[at]
        if char == "\\":
            at += 2
        elif char == '"':
            return at + 1
        elif char == "\n":
            break
        elif text.startswith(("$${", "%%{"), at):  # escaped template markers
            at += 3
        elif text.startswith(("${", "%{"), at):
            at = _template_end(text, at + 2)
        else:
            at += 1
    raise TerraformSyntaxError(f"a string at line {_line(text, start)} is not closed")


def _template_end(text: str, at: int) -> int:
    depth = 1
    start = at
    while at < len(text):
        char = text[at]
        if char == '"':
            at = _string_end(text, at)
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return at + 1
        at += 1
    raise TerraformSyntaxError(f"a ${{...}} template at line {_line(text, start)} is not closed")


def _leading_comment(text: str) -> str:
    """The title the file's leading comment gives (see ``comment_title``)."""
    lines: list[str] = []
    for raw in text.lstrip().splitlines():
        line = raw.strip()
        if not line.startswith(("#", "//", "/*", "*")):
            break
        lines.append(line.strip("#/*").strip())
    return comment_title(lines)


def _line(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def _line_end(text: str, position: int) -> int:
    end = text.find("\n", position)
    return len(text) if end == -1 else end + 1
