"""Headless Chromium for the tests that look at a page as a person would."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from stack import REPO


def chromium() -> str:
    """The Chromium binary; skipped when it is missing, except in CI (.ci/run installs it), where it fails."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run installs the Debian package")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


def mermaid_js() -> Path:
    path = Path(os.environ.get("ATLAS_MERMAID_JS") or REPO / ".atlas" / "mermaid" / "mermaid.min.js")
    if not path.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"no Mermaid script at {path}: `make setup` fetches it")
        pytest.skip(f"no Mermaid script at {path}: run `make setup`")
    return path


def rendered_dom(page: Path, timeout_s: float = 90) -> str:
    """The page's DOM after its scripts ran (the same flags as the machine's tested recipe)."""
    with tempfile.TemporaryDirectory() as profile:
        out = subprocess.run(
            [
                chromium(),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--allow-file-access-from-files",
                "--virtual-time-budget=20000",
                "--dump-dom",
                page.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout
