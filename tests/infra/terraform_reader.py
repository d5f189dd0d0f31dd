"""Reads terraform/ with python-hcl2 8 (which keeps the quotes of strings) for the tests in tests/infra."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2

from stack import REPO

TERRAFORM = REPO / "terraform"
CHECKOV_VENV = REPO / ".atlas" / "checkov-venv"
_LOCAL_REF = re.compile(r"\blocal\.([A-Za-z_][A-Za-z0-9_]*)")


def unquote(value: Any) -> Any:
    """A literal string as Terraform sees it; expressions (``${...}``) and other types are returned as they are."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def is_expression(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("${")


@dataclass
class TerraformConfig:
    """Every ``*.tf`` of one folder, merged: resources by (type, name), locals, variables, per-file origin."""

    resources: dict[tuple[str, str], dict[str, Any]]
    resource_files: dict[tuple[str, str], str]
    locals: dict[str, Any]
    local_files: dict[str, str]
    variables: dict[str, dict[str, Any]]
    providers: dict[str, dict[str, Any]]
    data_sources: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    data_source_files: dict[tuple[str, str], str] = field(default_factory=dict)
    ephemeral_resources: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    ephemeral_resource_files: dict[tuple[str, str], str] = field(default_factory=dict)
    # terraform { required_providers { NAME = { source, version } } }: local name => its literal settings.
    required_providers: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Every provider block, aliases included: (name, file, body).
    provider_blocks: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def resource(self, kind: str, name: str) -> dict[str, Any]:
        key = (kind, name)
        assert key in self.resources, f"terraform/ has no resource {kind}.{name}"
        return self.resources[key]

    def default(self, variable: str) -> Any:
        assert variable in self.variables, f"terraform/variables.tf has no variable {variable}"
        return self.variables[variable].get("default")

    def resolve(self, value: Any) -> Any:
        """Follow ``${local.x}`` and ``${var.x}`` (its default) down to a literal, when the whole value is one."""
        for _ in range(10):
            if not isinstance(value, str):
                return value
            match = re.fullmatch(r"\$\{(local|var)\.([A-Za-z_][A-Za-z0-9_]*)\}", value)
            if match is None:
                return unquote(value)
            kind, name = match.groups()
            value = self.locals[name] if kind == "local" else self.default(name)
        return value

    def env_names(self, expression: Any) -> set[str]:
        """Keys of every literal map local that ``expression`` draws on, following locals through locals."""
        names: set[str] = set()
        seen: set[str] = set()
        pending = _LOCAL_REF.findall(expression) if isinstance(expression, str) else []
        while pending:
            name = pending.pop()
            if name in seen or name not in self.locals:
                continue
            seen.add(name)
            value = self.locals[name]
            if isinstance(value, dict):
                names |= {key for key in value if not key.startswith("__")}
            elif isinstance(value, str):
                pending.extend(_LOCAL_REF.findall(value))
        return names


def _strip_label(label: str) -> str:
    return label.strip('"')


def load_terraform(folder: Path = TERRAFORM) -> TerraformConfig:
    config = TerraformConfig({}, {}, {}, {}, {}, {})
    for path in sorted(folder.glob("*.tf")):
        with path.open() as handle:
            parsed = hcl2.load(handle)
        for section, bodies, files in (
            ("resource", config.resources, config.resource_files),
            ("data", config.data_sources, config.data_source_files),
            ("ephemeral", config.ephemeral_resources, config.ephemeral_resource_files),
        ):
            for block in parsed.get(section, []):
                for kind, named in block.items():
                    for name, body in named.items():
                        key = (_strip_label(kind), _strip_label(name))
                        bodies[key] = body
                        files[key] = path.name
        for block in parsed.get("locals", []):
            for name, value in block.items():
                if not name.startswith("__"):
                    config.locals[name] = value
                    config.local_files[name] = path.name
        for block in parsed.get("variable", []):
            for name, body in block.items():
                config.variables[_strip_label(name)] = body
        for block in parsed.get("provider", []):
            for name, body in block.items():
                config.providers[_strip_label(name)] = body
                config.provider_blocks.append((_strip_label(name), path.name, body))
        for block in parsed.get("terraform", []):
            for required in block.get("required_providers", []):
                for name, settings in required.items():
                    if not name.startswith("__") and isinstance(settings, dict):
                        config.required_providers[name] = {key: unquote(value) for key, value in settings.items()}
    return config


def load_tfvars(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        return {name: value for name, value in hcl2.load(handle).items() if not name.startswith("__")}


def walk(node: Any, path: str = "") -> Any:
    """Yield (path, key, value) for every attribute of a parsed HCL tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key.startswith("__"):
                continue
            yield path, key, value
            yield from walk(value, f"{path}.{_strip_label(key)}" if path else _strip_label(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{path}[{index}]")
