"""Clients are built once per instance, even when concurrent first requests ask at the same moment."""

import threading
import time

from atlas.instance import once


def test_concurrent_first_calls_build_once():
    calls = []

    @once
    def build():
        calls.append(1)
        time.sleep(0.05)  # widen the window in which a second thread could start building too
        return object()

    barrier = threading.Barrier(8)
    results = []

    def request():
        barrier.wait()
        results.append(build())

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len({id(r) for r in results}) == 1
