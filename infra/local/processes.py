"""Process groups of the local stack: start one in its own session, stop its whole group, restart it when it dies.

Every process gets its own session, so its pid is also its process group id: stopping it ends the group
(gunicorn's workers, the emulators' Java children). A :class:`Supervisor` replaces a process that died, as Cloud
Run replaces an instance.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Process:
    name: str
    pid: int  # also the process group id: every process is started in a new session
    log: str

    def alive(self) -> bool:
        try:
            os.killpg(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(Path(self.log).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@dataclass(frozen=True)
class Spec:
    """How to start a process again: its command line and environment."""

    argv: list[str]
    env: Mapping[str, str]


def start_process(name: str, argv: list[str], env: Mapping[str, str], log_dir: Path) -> Process:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with open(log_path, "ab") as log:
        popen = subprocess.Popen(
            argv,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=REPO,
        )
    return Process(name=name, pid=popen.pid, log=str(log_path))


def stop_process(process: Process, timeout_s: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left after ``timeout_s``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                os.waitpid(process.pid, os.WNOHANG)
            except ChildProcessError:
                pass
            if not process.alive():
                return
            time.sleep(0.1)


def leader_exited(process: Process) -> bool:
    """Whether the group's leader (a child of this process) has exited; reaps it if so."""
    try:
        pid, _ = os.waitpid(process.pid, os.WNOHANG)
    except ChildProcessError:
        return not process.alive()
    return pid == process.pid


class Supervisor:
    """Watches ``processes`` (a list it updates in place) and restarts those it has a :class:`Spec` for."""

    def __init__(self, processes: list[Process], specs: Mapping[str, Spec], log_dir: Path) -> None:
        self._processes = processes
        self._specs = dict(specs)
        self._log_dir = log_dir
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="stack-supervisor", daemon=True)
        self.restarts: dict[str, int] = {}

    def start(self) -> Supervisor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _watch(self) -> None:
        while not self._stopping.wait(0.25):
            for index, process in enumerate(list(self._processes)):
                if process.name not in self._specs or not leader_exited(process):
                    continue
                try:
                    os.killpg(process.pid, signal.SIGKILL)  # what is left of the group (gunicorn's workers)
                except ProcessLookupError:
                    pass
                if self._stopping.is_set():
                    return
                spec = self._specs[process.name]
                self._processes[index] = start_process(process.name, spec.argv, spec.env, self._log_dir)
                self.restarts[process.name] = self.restarts.get(process.name, 0) + 1
                print(f"stack: {process.name} died; restarted it", file=sys.stderr, flush=True)
