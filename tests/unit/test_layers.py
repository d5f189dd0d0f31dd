"""The package's layers, and imports that flow one way: cli → tasks → design → llm → core, with retrieval and
observability on the core alone. Every ``atlas`` import of every module counts (lazy ones and TYPE_CHECKING
ones too), read from the source, so a layer cannot lean on a higher one even for a type."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from stack import REPO

PACKAGE = REPO / "shared" / "atlas"
CORE = {"__init__", "config", "errors", "limits", "models", "instance"}  # the small core at the top
# What each layer may import besides itself. Lower layers are reachable from every layer above them.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "observability": {"core"},
    "retrieval": {"core"},
    "llm": {"core"},
    "design": {"llm", "core"},
    # A task records its metrics and logs its progress: tasks use observability (which uses only the core).
    "tasks": {"design", "llm", "observability", "core"},
    # `atlas ingest` reads files with retrieval's format readers, and `atlas backup` packs the embedded index
    # with its shard archive: two reasons for the cli, and only the cli, to reach into retrieval.
    "cli": {"tasks", "design", "llm", "observability", "retrieval", "core"},
}
FUNCTIONS = {  # what each deployable's entry point may import (its bundle ships exactly these)
    "worker": {"tasks", "design", "llm", "observability", "core"},
    "retrieval": {"retrieval", "observability", "core"},
}


def layer_of(module: str) -> str:
    """The layer of a dotted atlas module name: a subpackage's name, or core for the modules at the top."""
    parts = module.split(".")
    if parts[0] != "atlas":
        raise ValueError(module)
    if len(parts) == 1 or parts[1] in CORE:
        return "core"
    if parts[1] in ALLOWED:
        return parts[1]
    raise AssertionError(f"{module} belongs to no layer: put it in one of {sorted(ALLOWED)} or the core")


def atlas_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "atlas"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "atlas":
            assert node.level == 0, f"{path}: relative import"
            found |= {f"{node.module}.{alias.name}" if node.module == "atlas" else node.module for alias in node.names}
    return found


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_is_in_a_layer():
    assert {layer_of(module_name(path)) for path in MODULES} == set(ALLOWED)
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.stem not in CORE)
    assert loose == [], "a module at the top of the package that is not the core: move it into its layer"


@pytest.mark.parametrize("path", MODULES, ids=lambda path: module_name(path))
def test_imports_flow_down_the_layers(path: Path):
    layer = layer_of(module_name(path))
    upward = sorted(
        imported
        for imported in atlas_imports(path)
        if layer_of(imported) != layer and layer_of(imported) not in ALLOWED[layer]
    )
    assert upward == [], f"{layer} may import {sorted(ALLOWED[layer])} and itself"


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_each_function_imports_only_its_layers(function: str):
    layers = {layer_of(imported) for imported in atlas_imports(REPO / "functions" / function / "main.py")}
    assert layers <= FUNCTIONS[function]


def test_the_layer_check_catches_an_upward_import(tmp_path: Path):
    module = tmp_path / "chain.py"
    module.write_text("from atlas.tasks.store import TaskStore\nimport atlas.cli.app\n")
    assert {layer_of(name) for name in atlas_imports(module)} - ALLOWED["llm"] == {"tasks", "cli"}
