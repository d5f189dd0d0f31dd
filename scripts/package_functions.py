#!/usr/bin/env python3
"""Build the deploy bundles of the two functions, with a stable content hash, and the manifest Terraform reads.

Cloud Functions uploads one folder, so ``../shared`` cannot be referenced from a function: each bundle is
assembled instead, at its root:

- ``main.py`` (and anything else) from ``functions/<name>/``;
- the ``atlas`` package from ``shared/atlas/`` with its data files (prompts, price table, stop words), with
  only the layers the function imports: the worker leaves out ``retrieval/`` (the index side, which needs
  Qdrant and fastembed) and ``cli/``; retrieval leaves out ``tasks/``, ``design/``, ``llm/`` and ``cli/``
  (tests/infra/test_function_bundles.py checks that each ships exactly what its ``main.py`` reaches);
- ``requirements.txt``: the function's direct pins (``functions/<name>/requirements.txt``, which must agree
  with the root ``requirements.txt``) plus every transitive dependency pinned from ``constraints.txt``, so
  that the build in the cloud installs exactly what was tested;
- retrieval only: the embedding model under ``model/`` (``ATLAS_EMBEDDING_MODEL_DIR=/workspace/model``).
  The int8 model (about 23 MB, ``scripts/build_embedding_model.py --quantize``, ``make setup`` builds it)
  is the default: the fp32 one (90 MB) alone nearly fills the 100 MB source limit.

Each zip is byte-for-byte reproducible: entries sorted, fixed timestamps (1980-01-01) and modes (0644),
no directory entries. It is named after the SHA-256 of its content (entry names and bytes), so the same
sources give the same name on any machine, and Terraform's object name changes exactly when the content
does. ``dist/manifest.json`` lists each bundle's zip, hashes and sizes.

Usage: ``python scripts/package_functions.py [--out dist] [--model-dir DIR] [--only worker]``.
Run it with the project's venv (it reads installed package metadata to resolve transitive pins).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import io
import json
import re
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODEL_DIR = REPO / ".atlas" / "models" / "all-MiniLM-L6-v2-int8"
MANIFEST_NAME = "manifest.json"
MANIFEST_SCHEMA = 1
# Cloud Functions: 100 MB for a zipped source, 500 MB unzipped (with the installed dependencies).
MAX_ZIP_BYTES = 100 * 1000 * 1000
MAX_UNZIPPED_BYTES = 500 * 1000 * 1000
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644
SKIPPED_NAMES = {"__pycache__", ".DS_Store", ".pytest_cache", ".ruff_cache"}
SKIPPED_SUFFIXES = {".pyc", ".pyo"}
# The runtime of both functions (terraform/functions.tf: python311 on Linux x86_64): environment
# markers of transitive requirements are evaluated for it, not for the machine that packages.
TARGET_MARKERS = {
    **default_environment(),
    "python_version": "3.11",
    "python_full_version": "3.11.0",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}


class PackagingError(Exception):
    """A bundle cannot be built as asked; the message says what to fix."""


@dataclass(frozen=True)
class BundleSpec:
    name: str
    function_dir: Path
    excluded_subpackages: tuple[str, ...] = ()
    with_model: bool = False


BUNDLES = {
    "worker": BundleSpec("worker", REPO / "functions" / "worker", excluded_subpackages=("retrieval", "cli")),
    "retrieval": BundleSpec(
        "retrieval",
        REPO / "functions" / "retrieval",
        excluded_subpackages=("tasks", "design", "llm", "cli"),
        with_model=True,
    ),
}


# --------------------------------------------------------------------------- requirements


def read_pins(path: Path) -> dict[str, Requirement]:
    """``name==version`` lines of a requirements file, by canonical name; anything else is refused."""
    pins: dict[str, Requirement] = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        specifiers = list(requirement.specifier)
        if len(specifiers) != 1 or specifiers[0].operator != "==":
            raise PackagingError(f"{path}:{number}: {line!r} is not pinned with ==")
        pins[canonicalize_name(requirement.name)] = requirement
    return pins


def _pinned_version(requirement: Requirement) -> str:
    return next(iter(requirement.specifier)).version


def _dependencies(distribution: str, extras: frozenset[str]) -> Iterator[Requirement]:
    try:
        requires = importlib.metadata.requires(distribution) or []
    except importlib.metadata.PackageNotFoundError as exc:
        raise PackagingError(
            f"{distribution} is not installed in this environment: run the packaging with the project's venv "
            "(make package)"
        ) from exc
    for line in requires:
        requirement = Requirement(line)
        if requirement.marker is None:
            yield requirement
            continue
        for extra in extras | {""}:
            if requirement.marker.evaluate({**TARGET_MARKERS, "extra": extra}):
                yield requirement
                break


def dependency_closure(direct: dict[str, Requirement]) -> set[str]:
    """Canonical names of the direct requirements and everything they need on the target runtime."""
    seen: dict[str, frozenset[str]] = {}
    queue = [(name, frozenset(requirement.extras)) for name, requirement in direct.items()]
    while queue:
        name, extras = queue.pop()
        known = seen.get(name)
        if known is not None and extras <= known:
            continue
        extras = extras | (known or frozenset())
        seen[name] = extras
        for requirement in _dependencies(name, extras):
            queue.append((canonicalize_name(requirement.name), frozenset(requirement.extras)))
    return set(seen)


def bundle_requirements(spec: BundleSpec) -> str:
    """The bundle's requirements.txt: direct pins, then every transitive dependency pinned from constraints.txt."""
    direct_file = spec.function_dir / "requirements.txt"
    if not direct_file.is_file():
        raise PackagingError(f"{direct_file} is missing: list the function's direct dependencies there, pinned")
    direct = read_pins(direct_file)
    root = read_pins(REPO / "requirements.txt")
    constraints = read_pins(REPO / "constraints.txt")
    for name, requirement in direct.items():
        expected = root.get(name) or constraints.get(name)
        if expected is None or _pinned_version(expected) != _pinned_version(requirement):
            where = f"{_pinned_version(expected)} there" if expected else "absent there"
            raise PackagingError(
                f"{direct_file}: {requirement} disagrees with requirements.txt/constraints.txt ({where}); "
                "the functions must deploy the versions the tests ran with"
            )
    transitive = sorted(dependency_closure(direct) - set(direct))
    missing = [name for name in transitive if name not in constraints]
    if missing:
        raise PackagingError(
            f"constraints.txt has no pin for {', '.join(missing)} (needed by {direct_file}): refresh it with pip freeze"
        )
    lines = [
        f"# Generated by scripts/package_functions.py for the {spec.name} function: do not edit.",
        f"# Direct dependencies (functions/{spec.name}/requirements.txt):",
        *(str(direct[name]) for name in sorted(direct)),
        "# Their dependencies on python311/linux, pinned from constraints.txt:",
        *(f"{constraints[name].name}=={_pinned_version(constraints[name])}" for name in transitive),
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- files


def _tree(root: Path, prefix: str, excluded: tuple[str, ...] = ()) -> Iterator[tuple[str, Path]]:
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part in SKIPPED_NAMES for part in relative.parts) or path.suffix in SKIPPED_SUFFIXES:
            continue
        if relative.parts and relative.parts[0] in excluded:
            continue
        if path.is_file():
            yield f"{prefix}{relative.as_posix()}", path


def bundle_files(spec: BundleSpec, model_dir: Path | None) -> dict[str, bytes]:
    """Archive name → content of every file of the bundle."""
    files: dict[str, bytes] = {}
    for name, path in _tree(spec.function_dir, ""):
        if name != "requirements.txt":  # replaced by the generated, fully pinned one
            files[name] = path.read_bytes()
    if "main.py" not in files:
        raise PackagingError(f"{spec.function_dir}/main.py is missing")
    package = REPO / "shared" / "atlas"
    for name, path in _tree(package, "atlas/", spec.excluded_subpackages):
        files[name] = path.read_bytes()
    files["requirements.txt"] = bundle_requirements(spec).encode()
    if spec.with_model:
        if model_dir is None or not (model_dir / "model.onnx").is_file():
            raise PackagingError(
                f"no embedding model at {model_dir}: build it with `make setup` (or scripts/build_embedding_model.py "
                "--out .atlas/models/all-MiniLM-L6-v2 --quantize) or pass --model-dir"
            )
        for name, path in _tree(model_dir, "model/"):
            files[name] = path.read_bytes()
    return files


def content_hash(files: dict[str, bytes]) -> str:
    """SHA-256 over the sorted entry names and their bytes: independent of zlib and of file timestamps."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return digest.hexdigest()


def write_zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
            info.external_attr = FILE_MODE << 16
            info.create_system = 3  # unix, so that the mode above is honoured
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, files[name], compresslevel=9)
    return buffer.getvalue()


# --------------------------------------------------------------------------- bundles


def build_bundle(spec: BundleSpec, out_dir: Path, model_dir: Path | None) -> dict[str, object]:
    files = bundle_files(spec, model_dir)
    unzipped = sum(len(data) for data in files.values())
    data = write_zip(files)
    if len(data) > MAX_ZIP_BYTES:
        raise PackagingError(
            f"the {spec.name} bundle is {len(data) / 1e6:.1f} MB zipped, over the Cloud Functions limit of "
            f"{MAX_ZIP_BYTES / 1e6:.0f} MB: use the int8 model (--model-dir .atlas/models/all-MiniLM-L6-v2-int8)"
        )
    if unzipped > MAX_UNZIPPED_BYTES:
        raise PackagingError(f"the {spec.name} bundle is {unzipped / 1e6:.1f} MB unzipped, over 500 MB")
    digest = content_hash(files)
    zip_name = f"{spec.name}-{digest[:16]}.zip"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / zip_name).write_bytes(data)
    for stale in out_dir.glob(f"{spec.name}-*.zip"):
        if stale.name != zip_name and re.fullmatch(rf"{spec.name}-[0-9a-f]{{16}}\.zip", stale.name):
            stale.unlink()
    return {
        "zip": zip_name,
        "content_sha256": digest,
        "zip_sha256": hashlib.sha256(data).hexdigest(),
        "zip_bytes": len(data),
        "unzipped_bytes": unzipped,
        "files": len(files),
    }


def write_manifest(out_dir: Path, bundles: dict[str, dict[str, object]]) -> Path:
    manifest_path = out_dir / MANIFEST_NAME
    previous: dict[str, object] = {}
    if manifest_path.is_file():
        previous = json.loads(manifest_path.read_text()).get("bundles", {})
    manifest = {"schema": MANIFEST_SCHEMA, "bundles": {**previous, **bundles}}
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest_path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Build the function bundles and dist/manifest.json.")
    parser.add_argument("--out", type=Path, default=REPO / "dist", help="output folder (default: dist)")
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=DEFAULT_MODEL_DIR,
        help="embedding model folder shipped with retrieval (default: the int8 model built by make setup)",
    )
    parser.add_argument("--only", choices=sorted(BUNDLES), action="append", help="build only this bundle")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = args.only or sorted(BUNDLES)
    try:
        built = {name: build_bundle(BUNDLES[name], args.out, args.model_dir.resolve()) for name in names}
    except PackagingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    manifest = write_manifest(args.out, built)
    for name, entry in built.items():
        print(
            f"{name}: {args.out / str(entry['zip'])} ({int(entry['zip_bytes']) / 1e6:.1f} MB, {entry['files']} files)"
        )
    print(f"manifest: {manifest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
