"""A local OpenAI-compatible chat-completions server for tests (the OpenAI API cannot be reached here).

The openai SDK talks to it over real HTTP through ``base_url``. By default it answers every request with
a valid design that cites the sources it finds in the prompt; ``script`` queues other behaviours, one per
request: ``"status:429"`` (with Retry-After), ``"status:401"``, ``"status:500"``, ``"invalid_json"``,
``"invent_citation"``, ``"design"``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SOURCE_ID = re.compile(r'<source id="(S\d+)"')


def design_for(prompt_text: str, *, invent: bool = False) -> dict[str, Any]:
    labels = SOURCE_ID.findall(prompt_text) or []
    cited = ["S999"] if invent else labels[:3]
    return {
        "title": "Centralised logging for microservices",
        "summary": "Services log structured JSON to stdout; a collector ships it to a managed log store.",
        "assumptions": ["About 50 services on a managed container platform"],
        "components": [
            {"name": "Collector", "responsibility": "Ship logs", "technologies": ["OpenTelemetry Collector"]},
            {"name": "Log store", "responsibility": "Index and retain logs", "technologies": ["Cloud Logging"]},
        ],
        "data_flows": [{"from": "Collector", "to": "Log store", "description": "batched OTLP export"}],
        "diagram_mermaid": "flowchart LR\n  Services --> Collector --> Store[Log store]",
        "decisions": [
            {"decision": "Managed log store", "alternatives": ["Self-hosted Loki"], "rationale": "Less toil"}
        ],
        "risks": [{"risk": "Log volume cost", "mitigation": "Exclusion filters and sampling of debug logs"}],
        "cost_notes": ["Ingestion is billed per GiB"],
        "rollout_steps": ["Structured logging library", "Collector", "Sinks and retention"],
        "open_questions": ["Retention required by compliance?"],
        "citations": [{"source_id": label, "supports": "logging pipeline guidance"} for label in cited],
    }


class FakeOpenAI:
    def __init__(self) -> None:
        self._script: deque[str] = deque()
        self._lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.latency_s = 0.0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return None

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                status, payload, headers = fake._answer(
                    self.path, body, {k.lower(): v for k, v in self.headers.items()}
                )
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def script(self, *behaviours: str) -> None:
        with self._lock:
            self._script.extend(behaviours)

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self.requests.clear()
            self.latency_s = 0.0

    def completions(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.requests if r["path"].endswith("/chat/completions")]

    def _answer(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            self.requests.append({"path": path, "body": body, "headers": headers})
            behaviour = self._script.popleft() if self._script else "design"
        if self.latency_s:
            time.sleep(self.latency_s)
        if not path.endswith("/chat/completions"):
            return 404, {"error": {"message": f"no route {path}"}}, {}
        if behaviour.startswith("status:"):
            status = int(behaviour.split(":", 1)[1])
            extra = {"Retry-After": "1"} if status == 429 else {}
            return status, {"error": {"message": f"scripted {status}", "type": "scripted", "code": None}}, extra
        prompt_text = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
        if behaviour == "invalid_json":
            content = "this is not JSON"
        else:
            content = json.dumps(design_for(prompt_text, invent=behaviour == "invent_citation"))
        return 200, _completion(body.get("model", "fake-model"), content), {}


def _completion(model: str, content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
        "usage": {
            "prompt_tokens": 1200,
            "completion_tokens": 300,
            "total_tokens": 1500,
            "prompt_tokens_details": {"cached_tokens": 200},
        },
    }
