"""The rehearsal server (infra/local/fake_openai.py run from the command line) streams at a pace a person
can see: its pieces arrive over seconds, not all at once."""

import json
import subprocess
import sys
import time
import urllib.request

from fake_openai import REHEARSAL_CHUNK_DELAY_MS, STREAM_PIECES

from stack import REPO


def test_run_from_the_command_line_it_streams_a_design_over_seconds():
    server = subprocess.Popen(
        [sys.executable, str(REPO / "infra/local/fake_openai.py"), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = server.stdout.readline().strip()
        body = {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "Design a queue"}]}
        request = urllib.request.Request(
            f"{base_url}/chat/completions",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": "Bearer x"},
        )
        arrivals = []
        with urllib.request.urlopen(request, timeout=60) as response:
            for raw in response:
                line = raw.decode().strip()
                if line.startswith("data: {") and '"content": "' in line and '"content": ""' not in line:
                    arrivals.append(time.monotonic())
    finally:
        server.terminate()
        server.wait(10)
    assert len(arrivals) == STREAM_PIECES
    spread = arrivals[-1] - arrivals[0]
    expected = (STREAM_PIECES - 1) * REHEARSAL_CHUNK_DELAY_MS / 1000
    assert expected >= 3 and spread >= expected * 0.9, spread
