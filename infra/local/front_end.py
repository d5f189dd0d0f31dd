"""The front end of the local stack's worker instances, as Cloud Run's: the push endpoint keeps answering while an
instance restarts.

Needed with the emulator: after a burst of refused connections it stopped pushing to the subscription
altogether (docs/architecture.md, "Load and fault test").
"""

from __future__ import annotations

import itertools
import threading
import time


class FrontEnd:
    """A minimal front end for the worker instances, as Cloud Run's: forwards each request to the next
    instance in turn, waiting (up to ``wait_s``) for one to accept connections while it restarts; a request
    whose instance died answers 503."""

    def __init__(self, port: int, backend_ports: list[int], wait_s: float = 60.0) -> None:
        import http.client
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                return None

            def do_GET(self) -> None:  # noqa: N802
                self._forward()

            def do_POST(self) -> None:  # noqa: N802
                self._forward()

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                deadline = time.monotonic() + front.wait_s
                status, payload = 503, b"worker unavailable"
                while True:
                    connection = http.client.HTTPConnection("127.0.0.1", front.next_backend(), timeout=600)
                    try:
                        connection.request(self.command, self.path, body=body, headers=headers)
                    except ConnectionRefusedError:
                        connection.close()
                        if time.monotonic() > deadline:
                            break
                        time.sleep(0.2)
                        continue
                    try:
                        response = connection.getresponse()
                        status, payload = response.status, response.read()
                    except (OSError, http.client.HTTPException):
                        status, payload = 503, b"the worker died while handling the request"
                    finally:
                        connection.close()
                    break
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._backends = itertools.cycle(backend_ports)
        self._backends_lock = threading.Lock()
        self.wait_s = wait_s

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                return None  # the emulator drops idle keep-alive connections: not an error

        self._server = Server(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="stack-front-end", daemon=True)

    def next_backend(self) -> int:
        with self._backends_lock:
            return next(self._backends)

    def start(self) -> FrontEnd:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
