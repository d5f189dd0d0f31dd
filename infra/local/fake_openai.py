"""A local OpenAI-compatible chat-completions server for tests and scripts/loadtest.py (the OpenAI API cannot
be reached here). Run alone: ``python infra/local/fake_openai.py --port 8090``.

The openai SDK talks to it over real HTTP (HTTP/1.1, chunked server-sent events when ``stream`` is set)
through ``base_url``. By default it answers every request with a valid design that cites the sources it
finds in the prompt. Behaviours can be queued, one per request, for any model (``script``) or for one
model (``script_model``), or set as a model's standing behaviour (``default_for``):

- ``"design"``: a valid, cited design
- ``"status:NNN"``: that HTTP error (429 carries ``Retry-After: <retry_after>``)
- ``"context_overflow"``: 400 with ``code: context_length_exceeded``
- ``"invalid_json"``, ``"schema_break"``, ``"invent_citation"``: answers that must not be accepted
- ``"refuse"``: a structured-output refusal
- ``"length"``: half the design, then ``finish_reason: length``
- ``"cut"``: half the design, then the connection is dropped mid-stream
- ``"stall"``: half the design, then silence for ``stall_s`` seconds

With ``fault_rate`` above 0, a request with no scripted behaviour gets one of ``FAULTS`` at that rate
(chosen by a seeded random generator). Each recorded request says in ``outcome`` whether the whole answer
was sent (``"answered"``); the load test counts generations from that.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import socket
import threading
import time
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SOURCE_ID = re.compile(r'<source id="(S\d+)"')
STREAM_PIECES = 12
# Run from the command line (the rehearsal), the server streams at a pace a person can follow; the tests'
# instances stream as fast as they can unless a test sets chunk_delay_s.
REHEARSAL_CHUNK_DELAY_MS = 400.0
FAULTS = ("status:429", "status:500", "stall", "cut")


def design_for(prompt_text: str, *, invent: bool = False, model: str = "fake") -> dict[str, Any]:
    labels = SOURCE_ID.findall(prompt_text) or []
    cited = ["S999"] if invent else labels[:3]
    return {
        "title": f"Centralised logging for microservices (by {model})",
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
    def __init__(self, port: int = 0) -> None:
        self._script: deque[str] = deque()
        self._model_script: dict[str, deque[str]] = defaultdict(deque)
        self._model_default: dict[str, str] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.requests: list[dict[str, Any]] = []
        self.reset()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                return None

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                fake._handle(self, body)

        self._server = _QuietServer(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def script(self, *behaviours: str) -> None:
        with self._lock:
            self._script.extend(behaviours)

    def script_model(self, model: str, *behaviours: str) -> None:
        with self._lock:
            self._model_script[model].extend(behaviours)

    def default_for(self, model: str, behaviour: str) -> None:
        with self._lock:
            self._model_default[model] = behaviour

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self._model_script.clear()
            self._model_default.clear()
            self.requests.clear()
            self.latency_s = 0.0  # before answering
            self.chunk_delay_s = 0.0  # between streamed pieces
            self.stall_s = 30.0
            self.retry_after = "1"
            self.usage = {"prompt_tokens": 1200, "completion_tokens": 300, "cached_tokens": 200}
            self.fault_rate = 0.0
            self.rng = random.Random(0)

    def completions(self, model: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                r
                for r in self.requests
                if r["path"].endswith("/chat/completions") and (model is None or r["body"].get("model") == model)
            ]

    def _behaviour(self, model: str) -> str:
        with self._lock:
            queue = self._model_script.get(model)
            if queue:
                return queue.popleft()
            if self._script:
                return self._script.popleft()
            if model not in self._model_default and self.fault_rate and self.rng.random() < self.fault_rate:
                return self.rng.choice(FAULTS)
            return self._model_default.get(model, "design")

    def _handle(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        model = str(body.get("model", "fake-model"))
        headers = {k.lower(): v for k, v in handler.headers.items()}
        record: dict[str, Any] = {"path": handler.path, "body": body, "headers": headers, "outcome": None}
        with self._lock:
            self.requests.append(record)
        if not handler.path.endswith("/chat/completions"):
            return _send_json(handler, 404, {"error": {"message": f"no route {handler.path}"}})
        behaviour = self._behaviour(model)
        record["behaviour"] = behaviour
        if self.latency_s:
            time.sleep(self.latency_s)
        if behaviour.startswith("status:"):
            status = int(behaviour.split(":", 1)[1])
            extra = {"Retry-After": self.retry_after} if status == 429 else {}
            error = {"message": f"scripted {status}", "type": "scripted", "code": None}
            return _send_json(handler, status, {"error": error}, extra)
        if behaviour == "context_overflow":
            error = {
                "message": "This model's maximum context length is 128 tokens.",
                "type": "invalid_request_error",
                "code": "context_length_exceeded",
            }
            return _send_json(handler, 400, {"error": error})
        content, refusal = self._content(behaviour, body, model)
        if not body.get("stream"):
            message = {"role": "assistant", "content": content, "refusal": refusal or None}
            finish = "length" if behaviour == "length" else "stop"
            choice = {"index": 0, "finish_reason": finish, "message": message}
            _send_json(handler, 200, _chunk(model, [choice], usage=self._usage(), kind="chat.completion"))
            record["outcome"] = "answered"
            return None
        if self._stream(handler, model, behaviour, content, refusal, body):
            record["outcome"] = "answered"
        return None

    def _content(self, behaviour: str, body: dict[str, Any], model: str) -> tuple[str, str]:
        prompt_text = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
        if behaviour == "refuse":
            return "", "I can't help with that request."
        if behaviour == "invalid_json":
            return "this is not JSON", ""
        design = design_for(prompt_text, invent=behaviour == "invent_citation", model=model)
        if behaviour == "schema_break":
            del design["components"]
        return json.dumps(design), ""

    def _usage(self) -> dict[str, Any]:
        usage = self.usage
        return {
            "prompt_tokens": usage["prompt_tokens"],
            "completion_tokens": usage["completion_tokens"],
            "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"],
            "prompt_tokens_details": {"cached_tokens": usage["cached_tokens"]},
        }

    def _stream(
        self,
        handler: BaseHTTPRequestHandler,
        model: str,
        behaviour: str,
        content: str,
        refusal: str,
        body: dict[str, Any],
    ) -> bool:
        """Stream the answer; True when all of it was sent."""
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        size = max(1, -(-len(content) // STREAM_PIECES))
        pieces = [content[i : i + size] for i in range(0, len(content), size)]
        broken = behaviour in ("cut", "stall", "length")
        if broken:
            pieces = pieces[: len(pieces) // 2]
        _event(handler, _chunk(model, [{"index": 0, "delta": {"role": "assistant", "content": ""}}]))
        for piece in pieces:
            if self.chunk_delay_s:
                time.sleep(self.chunk_delay_s)
            _event(handler, _chunk(model, [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]))
        if refusal:
            _event(handler, _chunk(model, [{"index": 0, "delta": {"refusal": refusal}, "finish_reason": None}]))
        if behaviour == "cut":
            handler.wfile.flush()
            handler.connection.shutdown(socket.SHUT_RDWR)  # no terminating chunk: a broken transfer
            handler.close_connection = True
            return False
        if behaviour == "stall":
            self._stopping.wait(self.stall_s)
            handler.close_connection = True
            return False
        finish = "length" if behaviour == "length" else "stop"
        _event(handler, _chunk(model, [{"index": 0, "delta": {}, "finish_reason": finish}]))
        if (body.get("stream_options") or {}).get("include_usage"):
            _event(handler, _chunk(model, [], usage=self._usage()))
        _write_chunk(handler, b"data: [DONE]\n\n")
        _write_chunk(handler, b"")
        return True


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hang up on purpose here (a closed stream, a stall given up on); that is not an error.
        return None


def _chunk(model: str, choices: list[dict[str, Any]], usage: Any = None, kind: str = "chat.completion.chunk") -> Any:
    return {
        "id": "chatcmpl-fake",
        "object": kind,
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": usage,
    }


def _event(handler: BaseHTTPRequestHandler, payload: dict[str, Any]) -> None:
    _write_chunk(handler, f"data: {json.dumps(payload)}\n\n".encode())


def _write_chunk(handler: BaseHTTPRequestHandler, data: bytes) -> None:
    handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
    handler.wfile.flush()


def _send_json(
    handler: BaseHTTPRequestHandler, status: int, payload: Any, headers: dict[str, str] | None = None
) -> None:
    data = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.end_headers()
    handler.wfile.write(data)


def configured(args: argparse.Namespace) -> FakeOpenAI:
    """The server the command line asks for (not started)."""
    fake = FakeOpenAI(port=args.port)
    fake.fault_rate, fake.latency_s = args.fault_rate, args.latency_ms / 1000
    fake.chunk_delay_s = args.chunk_delay_ms / 1000
    return fake


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the fake OpenAI-compatible API until interrupted.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument(
        "--chunk-delay-ms",
        type=float,
        default=REHEARSAL_CHUNK_DELAY_MS,
        help=f"the pause between the {STREAM_PIECES} streamed pieces of a design, so a person watching "
        "`atlas submit --wait` sees it grow (default: %(default)s ms, about 5 s a design; 0: as fast as it can)",
    )
    args = parser.parse_args(argv)
    fake = configured(args)
    fake.start()
    print(fake.base_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
