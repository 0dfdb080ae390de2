"""The HTTP kernel every CodeTether server uses: routing, JSON bodies, bearer auth, SSE, limits.

Built on ``http.server.ThreadingHTTPServer`` (a thread per connection, no event loop). An
``App`` maps ``(method, pattern)`` to handlers ``(Request) -> Response``; patterns are paths
with ``{name}`` segments (``/tasks/{id}:cancel`` works: a name stops at ``/`` and ``:``, and
``{name:path}`` takes the rest). Every route needs the bearer token unless declared public.

Handlers raise ``HttpError`` for client mistakes; anything else becomes a 500 with a generic
body (the traceback goes to the log). A body over ``max_body`` is refused with 413 before it is
read. ``on_request`` sees every finished request (the audit log hangs here).
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("codetether.http")

DEFAULT_MAX_BODY = 8 * 1024 * 1024


class HttpError(Exception):
    """A client error with the JSON body to send (``{"error": message}`` unless given)."""

    def __init__(self, status: int, message: str, body: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.body = body if body is not None else {"error": message}
        self.headers = headers or {}


@dataclass
class Request:
    method: str
    path: str  # decoded, without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    client: str
    params: dict[str, str] = field(default_factory=dict)  # from the route pattern
    principal: str | None = None  # who the token belongs to ("bearer" for the server token)
    context: dict[str, Any] = field(default_factory=dict)  # handlers may note session/task ids

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        """The body as JSON; malformed or missing JSON is a 400."""
        if not self.body:
            raise HttpError(400, "the request body must be JSON")
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HttpError(400, f"malformed JSON: {exc}") from None


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    stream: Iterable[bytes] | None = None  # chunked body (SSE); ``body`` is ignored then

    @classmethod
    def json(cls, data: Any, status: int = 200, content_type: str = "application/json",
             headers: dict[str, str] | None = None) -> Response:
        body = json.dumps(data, ensure_ascii=False, default=str).encode("utf-8")
        return cls(status, body, {"Content-Type": content_type, **(headers or {})})

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain; charset=utf-8"
             ) -> Response:
        return cls(status, text.encode("utf-8"), {"Content-Type": content_type})

    @classmethod
    def sse(cls, events: Iterable[bytes], headers: dict[str, str] | None = None) -> Response:
        """A Server-Sent Events stream; each item is one encoded event (``core.sse.encode_sse``)."""
        return cls(200, b"", {"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                              "X-Accel-Buffering": "no", **(headers or {})}, stream=events)


Handler = Callable[[Request], Response]


@dataclass
class Route:
    method: str
    pattern: str
    regex: re.Pattern[str]
    handler: Handler
    public: bool


def compile_pattern(pattern: str) -> re.Pattern[str]:
    out = []
    for piece in re.split(r"(\{[^}]+\})", pattern):
        if piece.startswith("{") and piece.endswith("}"):
            name, _, kind = piece[1:-1].partition(":")
            out.append(f"(?P<{name}>.+)" if kind == "path" else f"(?P<{name}>[^/:]+)")
        else:
            out.append(re.escape(piece))
    return re.compile("^" + "".join(out) + "$")


class TokenAuth:
    """Bearer tokens, compared in constant time. ``tokens`` maps token -> principal name."""

    def __init__(self, tokens: dict[str, str]) -> None:
        self.tokens = {t.encode(): who for t, who in tokens.items() if t}

    def principal(self, request: Request) -> str | None:
        header = request.header("authorization") or ""
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return None
        given = value.strip().encode()
        found = None
        for token, who in self.tokens.items():
            if hmac.compare_digest(given, token):  # check every token: no early exit
                found = who
        return found


class App:
    def __init__(self, auth: TokenAuth | None = None, max_body: int = DEFAULT_MAX_BODY,
                 on_request: Callable[[Request, int, float], None] | None = None) -> None:
        self.auth = auth
        self.max_body = max_body
        self.on_request = on_request
        self.routes: list[Route] = []
        self.stopping = threading.Event()  # long-lived streams end when this is set
        # Reshapes an HTTP-level refusal (413, bad length) for a route's protocol, e.g. as a
        # JSON-RPC error on the A2A endpoint; returns None to keep the default body.
        self.error_hook: Callable[[Request, HttpError], Response | None] | None = None

    def add(self, method: str, pattern: str, handler: Handler, public: bool = False) -> None:
        self.routes.append(Route(method.upper(), pattern, compile_pattern(pattern), handler,
                                 public))

    def route(self, method: str, pattern: str, public: bool = False):
        def decorate(handler: Handler) -> Handler:
            self.add(method, pattern, handler, public)
            return handler
        return decorate

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """(route, params, path_exists): path_exists tells a 405 from a 404."""
        path_exists = False
        for route in self.routes:
            found = route.regex.match(path)
            if not found:
                continue
            path_exists = True
            if route.method == method:
                params = {k: urllib.parse.unquote(v) for k, v in found.groupdict().items()}
                return route, params, True
        return None, {}, path_exists

    def handle(self, request: Request) -> Response:
        route, params, exists = self.match(request.method, request.path)
        if route is None:
            raise HttpError(405 if exists else 404,
                            "method not allowed" if exists else f"no route for {request.path}")
        if not route.public:
            principal = self.auth.principal(request) if self.auth else None
            if principal is None:
                raise HttpError(401, "missing or invalid bearer token",
                                headers={"WWW-Authenticate": 'Bearer realm="codetether"'})
            request.principal = principal
        request.params = params
        return route.handler(request)

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> Server:
        return Server((host, port), self)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # listen backlog; the default 5 drops bursts of connections

    def __init__(self, address: tuple[str, int], app: App) -> None:
        self.app = app
        super().__init__(address, _handler_class(app))
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def url(self) -> str:
        host = self.server_address[0]
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{self.port}"

    def start(self) -> Server:
        """Serve in a background thread (tests, and servers that run several listeners)."""
        self._thread = threading.Thread(target=self.serve_forever, args=(0.1,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.app.stopping.set()
        self.shutdown()
        self.server_close()

    def handle_error(self, request, client_address) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            log.exception("error serving %s", client_address)


def _handler_class(app: App) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "codetether"
        # headers and body go out in two writes: without TCP_NODELAY, Nagle + delayed ACK
        # add ~40 ms to every keep-alive response
        disable_nagle_algorithm = True
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s - " + format, self.client_address[0], *args)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PUT(self) -> None:
            self._serve("PUT")

        def do_PATCH(self) -> None:
            self._serve("PATCH")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def _serve(self, method: str) -> None:
            started = time.monotonic()
            request: Request | None = None
            self._partial: Request | None = None  # set once the head is parsed
            status = 500
            try:
                request = self._read_request(method)
                response = app.handle(request)
            except HttpError as exc:
                request = request or self._partial  # a refused body is still a request
                response = Response.json(exc.body, exc.status, headers=exc.headers)
                if app.error_hook is not None and request is not None:
                    response = app.error_hook(request, exc) or response
                if exc.status == 413:
                    self.close_connection = True
            except Exception:
                log.exception("handler failed for %s %s", method, self.path)
                response = Response.json({"error": "internal error"}, 500)
            status = response.status
            try:
                self._write(response)
            except OSError:
                self.close_connection = True
            finally:
                if app.on_request is not None and request is not None:
                    try:
                        app.on_request(request, status, time.monotonic() - started)
                    except Exception:
                        log.exception("on_request hook failed")

        def _read_request(self, method: str) -> Request:
            parts = urllib.parse.urlsplit(self.path)
            headers = {k.lower(): v for k, v in self.headers.items()}
            request = Request(method, urllib.parse.unquote(parts.path) or "/",
                              urllib.parse.parse_qs(parts.query), headers, b"",
                              self.client_address[0])
            self._partial = request
            try:
                length = int(headers.get("content-length") or 0)
            except ValueError:
                raise HttpError(400, "bad Content-Length") from None
            if length < 0:
                raise HttpError(400, "bad Content-Length")
            if length > app.max_body:
                raise HttpError(413, f"body of {length} bytes is over the "
                                     f"{app.max_body}-byte limit")
            if headers.get("transfer-encoding", "").lower() == "chunked":
                request.body = self._read_chunked()
            else:
                request.body = self.rfile.read(length) if length else b""
            return request

        def _read_chunked(self) -> bytes:
            body = bytearray()
            while True:
                line = self.rfile.readline(1024).split(b";")[0].strip()
                try:
                    size = int(line, 16)
                except ValueError:
                    raise HttpError(400, "bad chunked encoding") from None
                if size == 0:
                    self.rfile.readline(1024)
                    return bytes(body)
                if len(body) + size > app.max_body:
                    raise HttpError(413, f"body is over the {app.max_body}-byte limit")
                body += self.rfile.read(size)
                self.rfile.readline(1024)

        def _write(self, response: Response) -> None:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            if response.stream is None:
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(response.body)
                return
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            stream: Iterator[bytes] = iter(response.stream)
            try:
                for chunk in stream:
                    if chunk:
                        self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                        self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()  # let the generator release its subscription

    return Handler
