"""The HTTP side of the scripted LLM: routing, chunked streaming, cuts, and the request record.

Wire formats plug in as ``Format`` objects (``formats.py`` lists them); each one says which
requests it answers and turns a ``Turn`` into the exact bytes its vendor would send.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from tests.scripted_llm.script import Turn


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    raw_body: bytes
    body: Any = None  # parsed JSON when the body was JSON
    received_at: float = 0.0  # time.monotonic() when the request arrived
    finished_at: float = 0.0  # ... and when its reply was sent (benchmarks subtract this time)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Reply:
    """What a format wants sent: status, headers, and body pieces (each piece = one event)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    events: Iterable[bytes] = ()


class Format(Protocol):
    name: str

    def matches(self, request: RecordedRequest) -> bool: ...

    def reply(self, turn: Turn, request: RecordedRequest) -> Reply: ...

    def error_reply(self, turn: Turn, request: RecordedRequest) -> Reply: ...

    def models_reply(self, models: list[str], request: RecordedRequest) -> Reply | None: ...


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """A client that hangs up (a cancel test) is expected; anything else is printed."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class ScriptedLLMServer:
    """``with ScriptedLLMServer([Turn(text="hi")]) as llm: ... llm.url ... llm.requests``"""

    def __init__(self, turns: Iterable[Turn] = (), models: Iterable[str] = ("scripted-model",)):
        from tests.scripted_llm.formats import FORMATS

        self._formats: list[Format] = list(FORMATS)
        self._turns: deque[Turn] = deque(turns)
        self.models = list(models)
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._served = threading.Condition(self._lock)
        self._release = threading.Event()
        self.holding = threading.Event()  # set while a held stream waits for release()
        self._httpd = _QuietServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True,
                                        kwargs={"poll_interval": 0.05})  # fast stop()

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> ScriptedLLMServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> ScriptedLLMServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- script ------------------------------------------------------------------------------
    def enqueue(self, *turns: Turn) -> None:
        with self._lock:
            self._turns.extend(turns)

    @property
    def remaining(self) -> int:
        with self._lock:
            return len(self._turns)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> bool:
        """Block until ``count`` requests were recorded (synchronisation, not sleeping)."""
        with self._served:
            return self._served.wait_for(lambda: len(self.requests) >= count, timeout)

    def release(self) -> None:
        """Let a stream paused by ``Turn.hold_after`` continue (or notice its client left)."""
        self._release.set()

    def _next_turn(self) -> Turn | None:
        with self._lock:
            return self._turns.popleft() if self._turns else None

    def _record(self, request: RecordedRequest) -> None:
        with self._served:
            self.requests.append(request)
            self._served.notify_all()

    # -- HTTP --------------------------------------------------------------------------------
    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                server._handle(self, "GET")

            def do_POST(self) -> None:
                server._handle(self, "POST")

        return Handler

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        started = time.monotonic()
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        request = RecordedRequest(method, handler.path,
                                  {k.lower(): v for k, v in handler.headers.items()}, raw, body,
                                  received_at=started)
        self._record(request)
        fmt = next((f for f in self._formats if f.matches(request)), None)
        if fmt is None:
            self._send_plain(handler, 404, b'{"error":{"message":"no scripted route"}}')
            return
        if method == "GET":
            reply = fmt.models_reply(self.models, request)
            if reply is None:
                self._send_plain(handler, 404, b'{"error":{"message":"no models route"}}')
            else:
                self._send_reply(handler, reply, None)
            return
        turn = self._next_turn()
        if turn is None:
            exhausted = b'{"error":{"message":"scripted LLM: script exhausted"}}'
            self._send_plain(handler, 500, exhausted)
            return
        reply = fmt.reply(turn, request) if turn.status == 200 else fmt.error_reply(turn, request)
        ok = turn.status == 200
        self._send_reply(handler, reply, turn.cut_after if ok else None,
                         turn.hold_after if ok else None)
        request.finished_at = time.monotonic()

    @staticmethod
    def _send_plain(handler: BaseHTTPRequestHandler, status: int, body: bytes) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _send_reply(self, handler: BaseHTTPRequestHandler, reply: Reply, cut_after: int | None,
                    hold_after: int | None = None) -> None:
        """Send with chunked encoding, one chunk per event; a cut drops the connection."""
        handler.send_response(reply.status)
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for count, event in enumerate(reply.events):
            if hold_after is not None and count == hold_after:
                self.holding.set()
                self._release.wait(30)
            if cut_after is not None and count >= cut_after:
                handler.wfile.flush()
                handler.close_connection = True
                handler.connection.shutdown(2)
                return
            try:
                handler.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
                handler.wfile.flush()
            except OSError:  # the client went away (cancelled): nothing more to send
                handler.close_connection = True
                return
        handler.wfile.write(b"0\r\n\r\n")
        handler.wfile.flush()
