"""Waiting until a process of the local stack answers, and failing early (with its log) when it died instead."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

from processes import Process

START_TIMEOUT_S = 90


class StackError(RuntimeError):
    """A part of the local stack did not start; the message carries the end of its log."""


def wait_for_http(url: str, process: Process | None, timeout_s: float = START_TIMEOUT_S, ok_any: bool = False) -> None:
    """Wait until ``url`` answers (200, or any HTTP status when ``ok_any``); fail early if the process died."""
    deadline = time.monotonic() + timeout_s
    last_error = ""
    while time.monotonic() < deadline:
        if process is not None and not process.alive():
            raise StackError(f"{process.name} exited while starting; its log ends with:\n{process.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            if ok_any:
                return
            last_error = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            last_error = str(exc)
        time.sleep(0.2)
    tail = process.log_tail() if process else ""
    raise StackError(f"{url} did not answer within {timeout_s}s ({last_error}); log:\n{tail}")


def wait_for_grpc(endpoint: str, process: Process, timeout_s: float = START_TIMEOUT_S) -> None:
    import grpc

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not process.alive():
            raise StackError(f"{process.name} exited while starting; its log ends with:\n{process.log_tail()}")
        channel = grpc.insecure_channel(endpoint)
        try:
            grpc.channel_ready_future(channel).result(timeout=1)
            return
        except grpc.FutureTimeoutError:
            continue
        finally:
            channel.close()
    raise StackError(f"{process.name} did not listen on {endpoint} within {timeout_s}s:\n{process.log_tail()}")
