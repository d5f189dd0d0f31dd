"""YAML files split along what they describe: Kubernetes objects, Cloud Build steps, top-level keys.

The file is composed (PyYAML's node tree, with line marks) rather than loaded, so custom tags such as
CloudFormation's ``!Ref`` need no constructor, and every section is the file's own text with its comments.
A document with ``apiVersion`` and ``kind`` is a Kubernetes object (section ``Kind/name``); a document
with a ``steps`` list is a Cloud Build file (a section per step, by id and builder); any other mapping is
split by top-level key, a list by item.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import yaml

from atlas.retrieval.formats.structure import comment_title

NULL_TAG = "tag:yaml.org,2002:null"


@dataclass(frozen=True)
class Section:
    name: str
    text: str  # the YAML as written, dedented


def split_yaml(text: str) -> tuple[str, list[Section]]:
    """The file's leading comment (or "") and its sections; raises ``yaml.YAMLError`` on invalid YAML."""
    lines = text.splitlines()
    documents = [node for node in yaml.compose_all(text, Loader=yaml.SafeLoader) if not _is_empty(node)]
    sections: list[Section] = []
    previous_end = 0
    for number, node in enumerate(documents, start=1):
        prefix = f"document {number}: " if len(documents) > 1 else ""
        start = _comment_start(lines, previous_end, node.start_mark.line)
        end = _last_line(node)
        sections.extend(_sections(node, lines, start, end, prefix))
        previous_end = end
    return _leading_comment(lines), sections


def _sections(node: yaml.Node, lines: list[str], start: int, end: int, prefix: str) -> list[Section]:
    kind, name = _scalar(_get(node, "kind")), _scalar(_get(_get(node, "metadata"), "name"))
    if kind and _scalar(_get(node, "apiVersion")):
        return [Section(f"{kind}/{name or '(unnamed)'}", _slice(lines, start, end))]
    steps = _get(node, "steps")
    if (
        isinstance(node, yaml.MappingNode)
        and isinstance(steps, yaml.SequenceNode)
        and all(_get(step, "name") is not None for step in steps.value)
    ):
        sections = []
        previous_end = start
        for number, step in enumerate(steps.value, start=1):
            sections.append(_step(number, step, lines, previous_end))
            previous_end = _last_line(step)
        return sections + [
            Section(f"{prefix}{_scalar(key) or 'key'}", text)
            for key, text in _pairs(node, lines, start, end)
            if _scalar(key) != "steps"
        ]
    if isinstance(node, yaml.MappingNode):
        return [Section(f"{prefix}{_scalar(key) or 'key'}", text) for key, text in _pairs(node, lines, start, end)]
    if isinstance(node, yaml.SequenceNode):
        return [
            Section(f"{prefix}{_scalar(_get(item, 'name')) or f'item {number}'}", _slice_node(item, lines))
            for number, item in enumerate(node.value, start=1)
        ]
    return [Section(prefix.rstrip(": ") or "value", _slice(lines, start, end))]


def _step(number: int, step: yaml.Node, lines: list[str], floor: int) -> Section:
    step_id, builder = _scalar(_get(step, "id")), _scalar(_get(step, "name"))
    name = f"step {number}: {step_id} ({builder})" if step_id else f"step {number}: {builder}"
    return Section(name, _slice(lines, _comment_start(lines, floor, step.start_mark.line), _last_line(step)))


def _pairs(node: yaml.MappingNode, lines: list[str], start: int, end: int) -> list[tuple[yaml.Node, str]]:
    """Each top-level key with its text, the comment lines just above a key belonging to it."""
    pairs = []
    previous_end = start
    for key, value in node.value:
        key_start = _comment_start(lines, previous_end, key.start_mark.line)
        value_end = max(_last_line(value), key.start_mark.line + 1)
        pairs.append((key, _slice(lines, key_start, value_end)))
        previous_end = value_end
    return pairs


def _slice_node(node: yaml.Node, lines: list[str]) -> str:
    return _slice(lines, node.start_mark.line, _last_line(node))


def _slice(lines: list[str], start: int, end: int) -> str:
    kept = [line for line in lines[start:end] if not line.startswith(("---", "..."))]
    return textwrap.dedent("\n".join(kept)).strip("\n")


def _comment_start(lines: list[str], floor: int, start: int) -> int:
    """Move ``start`` up over the comment lines right above it (not past ``floor``)."""
    while start > floor and lines[start - 1].strip().startswith("#"):
        start -= 1
    return start


def _last_line(node: yaml.Node) -> int:
    """The line after the node's last line of content. A block collection's own end mark is where the next
    token starts (the next item, or a comment above it), so it ends with its last child instead."""
    children: list[yaml.Node] = []
    if isinstance(node, yaml.MappingNode) and not node.flow_style:
        children = [part for pair in node.value for part in pair]
    elif isinstance(node, yaml.SequenceNode) and not node.flow_style:
        children = list(node.value)
    if not children:
        return max(_end_line(node), node.start_mark.line + 1)
    return max(_last_line(child) for child in children)


def _end_line(node: yaml.Node) -> int:
    """The line after the node's last line (a mark at column 0 is already the next line)."""
    return node.end_mark.line if node.end_mark.column == 0 else node.end_mark.line + 1


def _leading_comment(lines: list[str]) -> str:
    """The title the file's leading comment gives (see ``comment_title``)."""
    comment: list[str] = []
    for line in lines:
        stripped = line.strip()
        if stripped == "---" and not comment:
            continue
        if not stripped.startswith("#"):
            break
        comment.append(stripped.lstrip("#").strip())
    return comment_title(comment)


def _get(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    return next((value for k, value in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)


def _scalar(node: yaml.Node | None) -> str:
    return str(node.value).strip() if isinstance(node, yaml.ScalarNode) else ""


def _is_empty(node: yaml.Node | None) -> bool:
    return node is None or (isinstance(node, yaml.ScalarNode) and node.tag == NULL_TAG and not node.value)
