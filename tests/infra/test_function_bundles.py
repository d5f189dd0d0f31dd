"""The deploy bundles of scripts/package_functions.py: reproducible, complete, and they serve a push envelope.

The serving test unzips both bundles and runs each under functions-framework from its own folder, as
Cloud Functions does: the ``atlas`` package comes from the bundle, not from the repository.
"""

from __future__ import annotations

import ast
import base64
import importlib.metadata
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from command_lines import function_argv
from processes import Process, free_port, stop_process
from readiness import wait_for_http

from stack import DEFAULT_MODEL_DIR, REPO
from support import TEST_PROJECT

PACKAGER = REPO / "scripts" / "package_functions.py"
INT8_MODEL = DEFAULT_MODEL_DIR


def package(out: Path) -> dict:
    if not (INT8_MODEL / "model.onnx").is_file():
        pytest.fail(f"no int8 model at {INT8_MODEL}: run `make setup`")
    result = subprocess.run(
        [sys.executable, str(PACKAGER), "--out", str(out), "--model-dir", str(INT8_MODEL)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return json.loads((out / "manifest.json").read_text())["bundles"]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    package(out)
    return out


def _zip(dist: Path, name: str) -> zipfile.ZipFile:
    manifest = json.loads((dist / "manifest.json").read_text())["bundles"]
    return zipfile.ZipFile(dist / manifest[name]["zip"])


def test_rebuilding_gives_the_same_bytes_and_names(dist: Path, tmp_path: Path) -> None:
    first = json.loads((dist / "manifest.json").read_text())["bundles"]
    second = package(tmp_path)
    assert first == second
    for entry in first.values():
        assert (dist / entry["zip"]).read_bytes() == (tmp_path / entry["zip"]).read_bytes()
        assert entry["zip"].split("-")[-1] == f"{entry['content_sha256'][:16]}.zip"


def test_bundles_have_fixed_times_and_modes_and_fit_the_limit(dist: Path) -> None:
    for name in ("worker", "retrieval"):
        archive = _zip(dist, name)
        infos = archive.infolist()
        assert [info.filename for info in infos] == sorted(info.filename for info in infos)
        assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
        assert {info.external_attr >> 16 for info in infos} == {0o100644}
        assert Path(archive.filename).stat().st_size < 100 * 1000 * 1000


def test_worker_bundle_ships_the_task_layers_their_data_and_no_index_side(dist: Path) -> None:
    names = set(_zip(dist, "worker").namelist())
    assert {"main.py", "requirements.txt", "atlas/__init__.py", "atlas/tasks/pipeline.py"} <= names
    assert {"atlas/llm/prices.json", "atlas/observability/metrics_catalog.json"} <= names
    assert any(name.startswith("atlas/design/prompts/") and name.endswith(".md") for name in names)
    assert not any(
        name.startswith(("atlas/retrieval/", "atlas/cli/", "model/")) or "__pycache__" in name for name in names
    )


def test_retrieval_bundle_carries_the_model_and_no_task_side(dist: Path) -> None:
    names = set(_zip(dist, "retrieval").namelist())
    assert {"main.py", "requirements.txt", "atlas/retrieval/service.py", "model/model.onnx"} <= names
    assert {"model/tokenizer.json", "model/config.json", "model/tokenizer_config.json"} <= names
    assert not any(name.startswith(("atlas/tasks/", "atlas/design/", "atlas/llm/", "atlas/cli/")) for name in names)


@pytest.mark.parametrize("name", ["worker", "retrieval"])
def test_each_bundle_ships_exactly_the_atlas_packages_its_main_reaches(dist: Path, name: str) -> None:
    archive = _zip(dist, name)
    names = archive.namelist()
    shipped = {entry.split("/")[1] for entry in names if entry.startswith("atlas/") and entry.count("/") >= 2}
    reached = {
        module.split(".")[1]
        for module in _atlas_modules(archive)
        if module.count(".") >= 1 and f"atlas/{module.split('.')[1]}/__init__.py" in names
    }
    assert shipped == reached, f"the {name} bundle ships {sorted(shipped)} but its main.py reaches {sorted(reached)}"


def _module_file(names: set[str], module: str) -> str | None:
    path = module.replace(".", "/")
    for candidate in (f"{path}.py", f"{path}/__init__.py"):
        if candidate in names:
            return candidate
    return None


def _imports(archive: zipfile.ZipFile) -> set[str]:
    """Third-party top-level modules imported by main.py and every atlas module it reaches (lazy imports too)."""
    return _walk(archive)[0]


def _atlas_modules(archive: zipfile.ZipFile) -> set[str]:
    """The atlas modules main.py reaches, directly or through other atlas modules (lazy imports too)."""
    return _walk(archive)[1]


def _walk(archive: zipfile.ZipFile) -> tuple[set[str], set[str]]:
    names = set(archive.namelist())
    modules: set[str] = set()
    atlas_modules: set[str] = set()
    pending, seen = ["main.py"], set()
    while pending:
        filename = pending.pop()
        if filename in seen:
            continue
        seen.add(filename)
        for node in ast.walk(ast.parse(archive.read(filename))):
            imported: list[str] = []
            if isinstance(node, ast.Import):
                imported = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            for module in imported:
                if module.split(".")[0] == "atlas":
                    # the package __init__ of each level runs too
                    parts = module.split(".")
                    for depth in range(1, len(parts) + 1):
                        found = _module_file(names, ".".join(parts[:depth]))
                        if found:
                            pending.append(found)
                            atlas_modules.add(".".join(parts[:depth]))
                else:
                    modules.add(module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - {"__future__"}, atlas_modules


@pytest.mark.parametrize("name", ["worker", "retrieval"])
def test_bundle_requirements_cover_every_import(dist: Path, name: str) -> None:
    archive = _zip(dist, name)
    pinned = {
        line.split("==")[0].lower().replace("_", "-")
        for line in archive.read("requirements.txt").decode().splitlines()
        if line and not line.startswith("#")
    }
    providers = importlib.metadata.packages_distributions()
    uncovered = {
        module: providers.get(module, ["<not installed>"])
        for module in _imports(archive)
        if not {dist.lower().replace("_", "-") for dist in providers.get(module, [])} & pinned
    }
    assert not uncovered, f"the {name} bundle imports modules its requirements.txt does not install: {uncovered}"


# --------------------------------------------------------------------------- serving


def _serve(folder: Path, target: str, signature: str, env: dict[str, str], log: Path) -> tuple[Process, int]:
    port = free_port()
    clean = {key: value for key, value in os.environ.items() if not key.startswith("ATLAS_") and key != "PYTHONPATH"}
    process = subprocess.Popen(
        function_argv(target, signature, port),  # the bundle's own main.py, as Cloud Functions runs it
        cwd=folder,
        env={**clean, **env},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return Process(name=f"bundle {target}", pid=process.pid, log=str(log)), port


@pytest.fixture
def unzipped(dist: Path, tmp_path: Path) -> Iterator[dict[str, Path]]:
    folders = {}
    for name in ("worker", "retrieval"):
        folders[name] = tmp_path / name
        _zip(dist, name).extractall(folders[name])
    yield folders


def _post(url: str, body: dict) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.integration
def test_built_bundles_serve_a_push_envelope(emulators, unzipped: dict[str, Path], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for folder in unzipped.values():
        where = subprocess.run(
            [sys.executable, "-c", "import atlas; print(atlas.__file__)"], cwd=folder, capture_output=True, text=True
        )
        assert where.stdout.strip().startswith(str(folder)), f"atlas imported from {where.stdout} instead of the bundle"

    retrieval, retrieval_port = _serve(
        unzipped["retrieval"],
        "retrieval",
        "http",
        {
            "ATLAS_QDRANT_PATH": str(tmp_path / "qdrant"),
            "ATLAS_EMBEDDING_MODEL_DIR": str(unzipped["retrieval"] / "model"),
        },
        tmp_path / "retrieval.log",
    )
    collection = f"tasks-{uuid.uuid4().hex[:10]}"
    worker, worker_port = _serve(
        unzipped["worker"],
        "handle_task",
        "cloudevent",
        {
            "ATLAS_PROJECT": TEST_PROJECT,
            "ATLAS_TASKS_COLLECTION": collection,
            "ATLAS_RETRIEVAL_URL": f"http://127.0.0.1:{retrieval_port}",
            "FIRESTORE_EMULATOR_HOST": emulators["firestore"],
        },
        tmp_path / "worker.log",
    )
    try:
        retrieval_url = f"http://127.0.0.1:{retrieval_port}"
        wait_for_http(f"{retrieval_url}/health", retrieval)
        status, body = _post(
            f"{retrieval_url}/ingest",
            {"documents": [{"source": "logging.md", "title": "Logging", "text": "# Logging\n\nShip structured "
                            "JSON logs from every service to a central pipeline with retention tiers."}]},
        )  # fmt: skip
        assert status == 200, body
        # The worker answers any path once it is up (functions-framework); a GET is not a valid event.
        wait_for_http(f"http://127.0.0.1:{worker_port}/", worker, ok_any=True)
        envelope = {
            "subscription": f"projects/{TEST_PROJECT}/subscriptions/atlas-tasks-worker",
            "message": {
                "data": base64.b64encode(json.dumps({"prompt": "Design a logging architecture"}).encode()).decode(),
                "messageId": "bundle-1",
                "attributes": {},
            },
        }
        status, body = _post(f"http://127.0.0.1:{worker_port}/projects/{TEST_PROJECT}/topics/atlas-tasks", envelope)
        assert status == 200, f"{body!r}\n{(tmp_path / 'worker.log').read_text()[-3000:]}"
    finally:
        stop_process(worker)
        stop_process(retrieval)

    from google.cloud import firestore

    document = firestore.Client(project=TEST_PROJECT).collection(collection).document("bundle-1").get().to_dict()
    assert document["status"] == "degraded", document  # no LLM key in tests: the retrieval-only brief
    assert any("logging.md" in json.dumps(source) for source in document["sources"])
