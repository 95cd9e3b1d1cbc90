"""A stand-in for the AWS Lambda Runtime API (``2018-06-01``), stdlib only, for the benchmark.

It serves the Rust relay (``lambda_runtime``) and the Python peer (``awslambdaric``) identically:

- ``GET  /2018-06-01/runtime/invocation/next``: long-poll; hands out queued invocations in order,
  with the headers ``Lambda-Runtime-Aws-Request-Id``, ``Lambda-Runtime-Deadline-Ms``,
  ``Lambda-Runtime-Invoked-Function-Arn`` and ``Lambda-Runtime-Trace-Id`` (when given);
- ``POST /2018-06-01/runtime/invocation/{id}/response`` and ``.../{id}/error``: 202, recorded;
- ``POST /2018-06-01/runtime/init/error``: 202, recorded;
- anything else: 404.

Times are ``time.perf_counter()`` (CLOCK_MONOTONIC) of this process, so they compare directly
with times the benchmark driver takes around ``exec``: ``first_next_at`` is when the first
``/next`` request arrived (the function finished its init; taken when its connection was
accepted, in the accepting thread, so handing the request to a handler thread does not count),
``Result.served_at`` when an invocation was handed out and ``Result.done_at`` when its answer
arrived.

One ``RuntimeApi`` serves one function process; ``close()`` releases pending long-polls.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:relay-bench"


@dataclasses.dataclass
class Result:
    request_id: str
    kind: str  # "response" or "error"
    body: bytes
    error_type: str | None
    served_at: float
    done_at: float

    def json(self):
        return json.loads(self.body or b"null")


@dataclasses.dataclass
class _Invocation:
    request_id: str
    payload: bytes
    trace_id: str | None
    deadline_ms: int


class RuntimeApi:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self._cond = threading.Condition()
        self._queue: collections.deque[_Invocation] = collections.deque()
        self._served: dict[str, float] = {}
        self._results: dict[str, Result] = {}
        self._closed = False
        self._accepted: dict[int, float] = {}
        self.first_next_at: float | None = None
        self.init_error: bytes | None = None
        self.unknown: list[str] = []

        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _reply(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    return self.rfile.read(length)
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            break
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    return b"".join(chunks)
                return b""

            def do_GET(self) -> None:
                if self.path != f"{PREFIX}/invocation/next":
                    api.unknown.append(f"GET {self.path}")
                    return self._reply(404, b'{"errorMessage":"not found"}')
                # When the connection carrying this request was accepted (for a fresh process: the
                # moment it first reached out), less sensitive to this server's own scheduling.
                now = api._accepted.pop(id(self.connection), None) or time.perf_counter()
                invocation = api._next(now)
                if invocation is None:  # closed
                    return self._reply(410, b'{"errorMessage":"runtime closed"}')
                headers = {
                    "Content-Type": "application/json",
                    "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                    "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN,
                }
                if invocation.trace_id:
                    headers["Lambda-Runtime-Trace-Id"] = invocation.trace_id
                with api._cond:
                    api._served[invocation.request_id] = time.perf_counter()
                self._reply(200, invocation.payload, headers)

            def do_POST(self) -> None:
                body = self._body()
                now = time.perf_counter()
                parts = self.path[len(PREFIX) :].strip("/").split("/") if self.path.startswith(PREFIX) else []
                if parts == ["init", "error"]:
                    with api._cond:
                        api.init_error = body
                        api._cond.notify_all()
                    return self._reply(202, b'{"status":"OK"}')
                if len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                    request_id = parts[1]
                    with api._cond:
                        served = api._served.get(request_id)
                        if served is None or request_id in api._results:
                            known = False
                        else:
                            known = True
                            api._results[request_id] = Result(
                                request_id,
                                parts[2],
                                body,
                                self.headers.get("Lambda-Runtime-Function-Error-Type"),
                                served,
                                now,
                            )
                            api._cond.notify_all()
                    if not known:
                        return self._reply(400, b'{"errorMessage":"unknown or answered request id"}')
                    return self._reply(202, b'{"status":"OK"}')
                api.unknown.append(f"POST {self.path}")
                self._reply(404, b'{"errorMessage":"not found"}')

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self):
                sock, address = super().get_request()
                api._accepted[id(sock)] = time.perf_counter()
                return sock, address

            def handle_error(self, request, client_address) -> None:
                pass  # a killed function resets its connections: expected, not worth a traceback

        self._server = Server((host, 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="runtime-api", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        """The value of AWS_LAMBDA_RUNTIME_API (host:port)."""
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def _next(self, arrived: float) -> _Invocation | None:
        with self._cond:
            if self.first_next_at is None:
                self.first_next_at = arrived
                self._cond.notify_all()
            while not self._queue and not self._closed:
                self._cond.wait(0.5)
            if self._closed:
                return None
            return self._queue.popleft()

    def invoke(self, payload: bytes, trace_id: str | None = None, timeout_s: float = 60.0) -> str:
        """Queues an invocation; returns its request id."""
        request_id = str(uuid.uuid4())
        deadline_ms = int(time.time() * 1000 + timeout_s * 1000)
        with self._cond:
            self._queue.append(_Invocation(request_id, payload, trace_id, deadline_ms))
            self._cond.notify_all()
        return request_id

    def wait_first_next(self, timeout: float, alive=lambda: True) -> float | None:
        """Waits until the function polls /next for the first time (or its init fails)."""
        end = time.monotonic() + timeout
        with self._cond:
            while self.first_next_at is None and self.init_error is None and time.monotonic() < end:
                if not alive():
                    break
                self._cond.wait(0.01)
            return self.first_next_at

    def wait_result(self, request_id: str, timeout: float, alive=lambda: True) -> Result:
        end = time.monotonic() + timeout
        with self._cond:
            while request_id not in self._results:
                if time.monotonic() >= end:
                    raise TimeoutError(f"no answer to invocation {request_id} within {timeout} s")
                if not alive():
                    raise RuntimeError(f"function exited before answering invocation {request_id}")
                self._cond.wait(0.05)
            return self._results[request_id]

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._server.shutdown()
        self._server.server_close()
