"""The part of `terraform validate` that needs only the providers' schemas, without the provider binaries.

The schema is .atlas/provider-schema/schema.json (``make provider-schema``: scripts/provider_schema.py
derives it from the pinned CDK bindings in requirements-provider-schema.txt). For every resource, data
source, ephemeral resource and provider block whose provider has a schema there, ``check`` reports:

- a resource or data source type its provider does not have;
- an argument or block the schema does not have, or an argument written as a block and vice versa;
- a required argument or block that is missing, at every level (``dynamic`` blocks' ``content`` too);
- more blocks of a kind than the schema allows (it tells "at most one" from "any number");
- a literal string outside an argument's documented set (``Possible values: [...]`` in the provider's
  docs); expressions, templates and variables are left alone.

It does not evaluate expressions: the types of computed values, conflicting arguments, and anything the
provider checks in its own code (value formats, ranges) are still for the real `terraform validate` and
`plan` in Cloud Build.
"""

from __future__ import annotations

import difflib
import json
import re
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from terraform_reader import TerraformConfig

from stack import REPO

SCHEMA = REPO / ".atlas" / "provider-schema" / "schema.json"
SCHEMA_FORMAT = 1
# Providers whose schema cannot be had offline: their blocks are left to `terraform validate` in Cloud Build.
UNCHECKED = {
    "qdrant/qdrant-cloud": "no prebuilt CDK bindings (nor any other copy of its schema) on PyPI or npm",
}
META_ARGUMENTS = {
    "resource": {"count", "for_each", "provider", "depends_on", "lifecycle", "provisioner", "connection"},
    "data": {"count", "for_each", "provider", "depends_on", "lifecycle"},
    "ephemeral": {"count", "for_each", "provider", "depends_on", "lifecycle"},
    "provider": {"alias", "version"},
}
_SECTIONS = {"resource": "resources", "data": "data_sources", "ephemeral": "ephemeral_resources"}
_NOUNS: dict[str, str] = {"resource": "resource type", "data": "data source", "ephemeral": "ephemeral resource type"}


@dataclass(frozen=True, order=True)
class Finding:
    file: str
    address: str  # google_pubsub_topic.tasks, data.google_project.this, provider.google
    path: str  # where in the block: service_config.ingress_settings ("" for the block itself)
    message: str

    def __str__(self) -> str:
        return ": ".join(part for part in (self.file, self.address, self.path, self.message) if part)


@dataclass
class Report:
    findings: list[Finding]
    checked: dict[str, int]  # provider source => blocks checked against its schema
    unchecked: dict[str, list[str]]  # provider source => addresses left alone (UNCHECKED)


@cache
def load_schema(path: Path = SCHEMA) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `make provider-schema`")
    schema = json.loads(path.read_text())
    if schema.get("format") != SCHEMA_FORMAT:
        raise ValueError(f"{path} is of format {schema.get('format')}, not {SCHEMA_FORMAT}: run `make provider-schema`")
    return schema


def _is_block_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) and v.get("__is_block__") for v in value)


def _literal(value: Any) -> str | None:
    """The text of a literal string; None for expressions, templates, heredocs and other types."""
    if not (isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"'):
        return None
    inner = value[1:-1]
    if "${" in inner or "%{" in inner or inner.startswith("<<"):
        return None
    return re.sub(r"\\(.)", r"\1", inner)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _guess(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
    return f" (did you mean {close[0]}?)" if close else ""


class _Checker:
    def __init__(self, file: str, address: str, findings: list[Finding]) -> None:
        self.file, self.address, self.findings = file, address, findings

    def report(self, path: str, message: str) -> None:
        self.findings.append(Finding(self.file, self.address, path, message))

    def values(self, path: str, spec: dict[str, Any], value: Any) -> None:
        allowed = spec.get("values")
        if not allowed:
            return
        for item in value if isinstance(value, list) else [value]:
            text = _literal(item)
            if text is not None and text != "" and text not in allowed:
                self.report(path, f'"{text}" is not one of {", ".join(allowed)}')

    def block(
        self, body: dict[str, Any], schema: dict[str, Any], path: str = "", meta: frozenset[str] = frozenset()
    ) -> None:
        attributes: dict[str, Any] = schema.get("attributes", {})
        blocks: dict[str, Any] = schema.get("blocks", {})
        known = sorted([*attributes, *blocks])
        given: set[str] = set()
        counts: Counter[str] = Counter()
        dynamic: set[str] = set()
        for key, value in body.items():
            name = key.strip('"')
            if key.startswith("__") or name in meta:
                continue
            where = _join(path, name)
            if name == "dynamic" and "dynamic" not in attributes and isinstance(value, list):
                for entry in value:
                    for label, generator in entry.items():
                        if label.startswith("__"):
                            continue
                        label = label.strip('"')
                        target = _join(path, label)
                        if label in blocks:
                            dynamic.add(label)
                            for content in generator.get("content", []):
                                self.block(content, blocks[label], target)
                        elif label in attributes:
                            self.report(target, "is an argument, not a block: dynamic blocks generate blocks only")
                        else:
                            self.report(target, f"unknown block{_guess(label, known)}")
                continue
            if _is_block_list(value):
                if name in blocks:
                    counts[name] += len(value)
                    for index, item in enumerate(value):
                        self.block(item, blocks[name], f"{where}[{index}]" if len(value) > 1 else where)
                elif name in attributes:
                    self.report(where, f"is an argument, not a block: write {name} = ...")
                else:
                    self.report(where, f"unknown block{_guess(name, known)}")
                continue
            given.add(name)
            if name in attributes:
                self.values(where, attributes[name], value)
            elif name in blocks:
                self.report(where, f"is a block, not an argument: write {name} {{ ... }}")
            else:
                self.report(where, f"unknown argument{_guess(name, known)}")
        for name, spec in attributes.items():
            if spec.get("required") and name not in given:
                self.report(_join(path, name), "missing required argument")
        for name, spec in blocks.items():
            if spec.get("required") and not counts[name] and name not in dynamic and name not in given:
                self.report(_join(path, name), "missing required block")
            if spec.get("max_items") == 1 and counts[name] > 1:
                self.report(_join(path, name), f"{counts[name]} blocks, at most 1 allowed")


def _provider_name(kind: str, body: dict[str, Any]) -> str:
    """The local name of the provider configuration a resource uses: its provider argument, or its type's prefix."""
    chosen = body.get("provider")
    if isinstance(chosen, str):
        return chosen.removeprefix("${").removesuffix("}").strip('"').split(".")[0]
    return kind.split("_", 1)[0]


def check(config: TerraformConfig, schema: dict[str, Any] | None = None) -> Report:
    schema = load_schema() if schema is None else schema
    providers: dict[str, Any] = schema["providers"]
    report = Report([], Counter(), {})

    def source_of(name: str) -> str:
        return str(config.required_providers.get(name, {}).get("source", f"hashicorp/{name}")).lower()

    def provider_schema(source: str, file: str, address: str) -> dict[str, Any] | None:
        if source in providers:
            report.checked[source] += 1
            return providers[source]
        if source in UNCHECKED:
            report.unchecked.setdefault(source, []).append(address)
            return None
        report.findings.append(
            Finding(file, address, "", f"no schema for provider {source}: pin its bindings in "
                    "requirements-provider-schema.txt, or add it to UNCHECKED with the reason")
        )  # fmt: skip
        return None

    sections = {
        "resource": (config.resources, config.resource_files),
        "data": (config.data_sources, config.data_source_files),
        "ephemeral": (config.ephemeral_resources, config.ephemeral_resource_files),
    }
    for section, (bodies, files) in sections.items():
        for (kind, name), body in sorted(bodies.items()):
            file = files[(kind, name)]
            address = f"{kind}.{name}" if section == "resource" else f"{section}.{kind}.{name}"
            source = source_of(_provider_name(kind, body))
            provider = provider_schema(source, file, address)
            if provider is None:
                continue
            checker = _Checker(file, address, report.findings)
            types = provider[_SECTIONS[section]]
            if kind not in types:
                elsewhere = sorted(other for other, p in providers.items() if kind in p[_SECTIONS[section]])
                hint = f" ({', '.join(elsewhere)} has it: set provider)" if elsewhere else _guess(kind, list(types))
                checker.report("", f"unknown {_NOUNS[section]} in {source} {provider['version']}{hint}")
                continue
            checker.block(body, types[kind], meta=frozenset(META_ARGUMENTS[section]))
    for name, file, body in config.provider_blocks:
        provider = provider_schema(source_of(name), file, f"provider.{name}")
        if provider is not None:
            _Checker(file, f"provider.{name}", report.findings).block(
                body, provider["provider"], meta=frozenset(META_ARGUMENTS["provider"])
            )
    report.findings.sort()
    return report


# --------------------------------------------------------------------------- version constraints


def _version(text: str) -> tuple[int, int, int]:
    major, minor, patch = ([int(part) for part in text.split(".")] + [0, 0])[:3]
    return major, minor, patch


def version_range(constraint: str) -> tuple[tuple[int, int, int], tuple[int, int, int] | None]:
    """[lowest, highest) of the versions a constraint admits: ``~>``, ``>=``, ``<`` and ``=``, comma-separated."""
    low, high = (0, 0, 0), None
    for part in constraint.split(","):
        match = re.fullmatch(r"\s*(~>|>=|<|=|)\s*(\d+(?:\.\d+){0,2})\s*", part)
        if match is None:
            raise ValueError(f"cannot read the version constraint {constraint!r}")
        operator, text = match.groups()
        number = _version(text)
        upper: tuple[int, int, int] | None = None
        if operator == "~>":  # ~> 8.7: >= 8.7.0, < 9.0.0; ~> 8.7.1: >= 8.7.1, < 8.8.0
            upper = (number[0] + 1, 0, 0) if text.count(".") < 2 else (number[0], number[1] + 1, 0)
        elif operator in ("", "="):
            upper = (number[0], number[1], number[2] + 1)
        elif operator == "<":
            upper, number = number, (0, 0, 0)
        low = max(low, number)
        if upper is not None:
            high = upper if high is None else min(high, upper)
    return low, high
