"""HTML pages (Confluence and wiki exports) as Markdown: headings h1-h6, paragraphs, lists, tables, code.

Scripts, styles, navigation, footers and forms are dropped. The title is the page's first ``h1``, else its
``<title>``, else the file name. Links and emphasis keep only their text: the words are what is searched.
"""

from __future__ import annotations

import re

from bs4 import BeautifulSoup
from bs4.element import Comment, Declaration, Doctype, NavigableString, ProcessingInstruction, Tag

from atlas.retrieval.formats.structure import escape_prose, fenced, markdown_document, one_line

_DROPPED_TAGS = ["script", "style", "noscript", "template", "nav", "footer", "form", "button", "select", "svg",
                 "canvas", "iframe", "object", "embed", "head"]  # fmt: skip
_DROPPED_ROLES = {"navigation", "search", "contentinfo", "banner"}
_BLOCKS = {"p", "div", "section", "article", "main", "aside", "header", "blockquote", "ul", "ol", "dl", "dt", "dd",
           "figure", "figcaption", "table", "thead", "tbody", "tfoot", "hr", "details", "summary", "body", "html",
           "address", "center"}  # fmt: skip
_HEADING = re.compile(r"^h([1-6])$")
_LANGUAGE = re.compile(r"(?:language-|lang-|brush:\s*)([A-Za-z0-9_+-]+)")
_SKIPPED_STRINGS = (Comment, Declaration, Doctype, ProcessingInstruction)


def html_to_markdown(data: bytes, fallback_title: str) -> tuple[str, str]:
    """(title, Markdown text); the text is "" when the page has no words."""
    soup = BeautifulSoup(data, "html.parser")
    page_title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup.find_all(_DROPPED_TAGS):
        tag.decompose()
    for tag in soup.find_all(True, attrs={"role": True}):
        if not tag.decomposed and str(tag.get("role", "")).lower() in _DROPPED_ROLES:
            tag.decompose()
    first_h1 = soup.find("h1")
    title = one_line(first_h1.get_text(" ")) if first_h1 else ""
    title = title or one_line(page_title) or fallback_title
    writer = _Writer(skip_heading=title if first_h1 else None)
    writer.walk(soup)
    writer.flush()
    sections = writer.sections
    intro = sections.pop(0)[1] if sections and sections[0][0] is None else ""
    return title, markdown_document(title, [(str(name), body) for name, body in sections], intro=intro)


class _Writer:
    """Walks the tree in document order and collects (heading, body) sections of Markdown blocks."""

    def __init__(self, skip_heading: str | None) -> None:
        self._skip_heading = skip_heading
        self.sections: list[tuple[str | None, str]] = []
        self._name: str | None = None
        self._blocks: list[str] = []
        self._inline: list[str] = []
        self._prefix = ""
        self._joined = ""  # what the last block holds, when more of the same may join it ("li", "tr")

    def walk(self, node: Tag) -> None:
        for child in node.children:
            if isinstance(child, _SKIPPED_STRINGS):
                continue
            if isinstance(child, NavigableString):
                self._inline.append(str(child))
            elif isinstance(child, Tag):
                self._element(child)

    def _element(self, tag: Tag) -> None:
        name = tag.name.lower()
        if _HEADING.match(name):
            self._paragraph()
            text = one_line(tag.get_text(" "))
            if text and text == self._skip_heading:
                self._skip_heading = None  # the title, written as "# title" already
            elif text:
                self._section(text)
        elif name == "pre":
            self._paragraph()
            self._blocks.append(fenced(tag.get_text(), _language(tag)))
            self._joined = ""
        elif name == "br":
            self._inline.append("\n")
        elif name == "li":
            self._paragraph()
            self._prefix = "- "
            self.walk(tag)
            self._paragraph(joined="li")
        elif name == "tr":
            self._paragraph()
            cells = [" ".join(cell.get_text(" ").split()) for cell in tag.find_all(["td", "th"], recursive=False)]
            self._inline = [" | ".join(cell for cell in cells if cell)]
            self._paragraph(joined="tr")
        elif name in _BLOCKS:
            self._paragraph()
            self.walk(tag)
            self._paragraph()
        else:
            self.walk(tag)

    def _paragraph(self, joined: str = "") -> None:
        """End the paragraph being collected; list items (and table rows) that follow each other share one."""
        lines = [" ".join(line.split()) for line in "".join(self._inline).split("\n")]
        text = "\n".join(line for line in lines if line)
        if text:
            text = escape_prose(self._prefix + text)
            if joined and joined == self._joined and self._blocks:
                self._blocks[-1] += "\n" + text
            else:
                self._blocks.append(text)
            self._joined = joined
        self._inline, self._prefix = [], ""

    def _section(self, name: str) -> None:
        self.flush()
        self._name = name

    def flush(self) -> None:
        self._paragraph()
        if self._blocks or self._name is None:
            self.sections.append((self._name, "\n\n".join(self._blocks)))
        self._blocks, self._joined = [], ""


def _language(tag: Tag) -> str:
    """The code's language from Markdown-style classes or Confluence's ``brush: x`` parameters."""
    hints = [*tag.get_attribute_list("class"), str(tag.get("data-syntaxhighlighter-params", ""))]
    code = tag.find("code")
    if isinstance(code, Tag):
        hints.extend(code.get_attribute_list("class"))
    for hint in hints:
        if match := _LANGUAGE.search(str(hint)):
            return match.group(1).lower()
    return ""
