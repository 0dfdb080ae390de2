"""Our MCP client: talk to an external MCP server over stdio or streamable HTTP.

Thread-based (no asyncio, no SDK: the SDK costs a second of import time). The handshake is
always ``initialize`` then ``notifications/initialized`` — never a ``server/discover`` probe
first, because some servers then lock the connection to the 2026 protocol. Every request has a
timeout, a server that dies fails the call in flight instead of hanging it, and
``ServerHandle`` restarts a dead server once before reporting it.

Errors: ``McpConfigError`` (the entry cannot work: missing command, bad URL) versus
``McpConnectionError`` (it could not be reached, died, timed out) versus ``McpRemoteError``
(the server answered with a JSON-RPC error).
"""

from __future__ import annotations

import collections
import http.client
import itertools
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from codetether import __version__
from codetether.core import jsonrpc
from codetether.core.cancel import CancelToken
from codetether.core.errors import CodetetherError
from codetether.core.jsonrpc import Dispatcher, JsonRpcError
from codetether.core.jsonrpc_stream import (
    JsonRpcStream,
    RequestCancelledError,
    RequestTimeoutError,
    StreamClosedError,
)
from codetether.mcp.config import McpConfigError, ServerSpec

log = logging.getLogger("codetether.mcp.client")

LATEST_VERSION = "2025-11-25"
SUPPORTED_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
MAX_PAGES = 50
STDERR_LINES = 20

ProgressCallback = Callable[[float, float | None, str | None], None]


class McpConnectionError(CodetetherError):
    """The server could not be started or reached, died, or did not answer in time."""


class McpAuthRequired(McpConnectionError):
    """The HTTP server wants credentials (401/403)."""


class McpRemoteError(CodetetherError):
    """The server answered a request with a JSON-RPC error."""

    def __init__(self, message: str, hint: str | None = None, code: int = 0) -> None:
        super().__init__(message, hint)
        self.code = code


class McpCancelled(CodetetherError):
    exit_code = 130


def cancel_notice(request_id: Any, reason: str) -> dict[str, Any]:
    """What MCP sends when a client gives up on a request."""
    return jsonrpc.notification("notifications/cancelled",
                                {"requestId": request_id, "reason": reason})


# ---- transports --------------------------------------------------------------------------------

class StdioConnection:
    """The server as a child process (its own process group), JSON-RPC over its stdin/stdout."""

    def __init__(self, spec: ServerSpec, dispatcher: Dispatcher) -> None:
        self.spec = spec
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        if spec.cwd and not Path(spec.cwd).expanduser().is_dir():
            raise McpConfigError(f"mcp server '{spec.name}': cwd {spec.cwd} is not a directory",
                                 f"fix [mcp.servers.{spec.name}] cwd")
        try:
            self.proc = subprocess.Popen(
                [spec.command, *spec.args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, env={**os.environ, **spec.env},
                cwd=Path(spec.cwd).expanduser() if spec.cwd else None, start_new_session=True)
        except FileNotFoundError:
            raise McpConfigError(f"mcp server '{spec.name}': command {spec.command!r} not found",
                                 f"install it, or fix [mcp.servers.{spec.name}] command") from None
        except PermissionError:
            raise McpConfigError(f"mcp server '{spec.name}': {spec.command!r} is not executable",
                                 f"fix [mcp.servers.{spec.name}] command") from None
        except OSError as exc:
            raise McpConnectionError(f"cannot start mcp server '{spec.name}': {exc}") from None
        threading.Thread(target=self._drain_stderr, name=f"mcp-{spec.name}-stderr",
                         daemon=True).start()
        self.stream = JsonRpcStream(self.proc.stdout, self.proc.stdin, dispatcher,  # type: ignore[arg-type]
                                    name=f"mcp server '{spec.name}'", max_workers=4,
                                    inline=("notifications/progress", "notifications/cancelled"),
                                    cancel_notice=cancel_notice).start()

    def _drain_stderr(self) -> None:
        debug = os.environ.get("CODETETHER_MCP_DEBUG") == "1"
        assert self.proc.stderr is not None
        for raw in iter(self.proc.stderr.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self._stderr.append(line)
                if debug:
                    print(f"[mcp {self.spec.name}] {line}", file=sys.stderr)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None and not self.stream.closed

    def death(self) -> str:
        """Why the server is gone, for messages: exit code and its last stderr line."""
        code = self.proc.poll()
        if code is None:
            try:
                code = self.proc.wait(0.5)
            except subprocess.TimeoutExpired:
                code = None
        what = "stopped answering" if code is None else f"exited with code {code}"
        tail = next((line for line in reversed(self._stderr) if line.strip()), "")
        return f"{what}: {tail[:300]}" if tail else what

    def request(self, method: str, params: Any, timeout: float,
                cancel: CancelToken | None) -> Any:
        return self.stream.request(method, params, timeout, cancel)

    def notify(self, method: str, params: Any = None) -> None:
        self.stream.notify(method, params)

    def close(self) -> None:
        """EOF on stdin first (the polite MCP shutdown), then SIGTERM, then SIGKILL."""
        self.stream.close("closed by the client")
        for sig, wait in ((None, 2.0), (signal.SIGTERM, 2.0), (signal.SIGKILL, 2.0)):
            if sig is not None:
                try:
                    os.killpg(self.proc.pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
            try:
                self.proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        for pipe in (self.proc.stdout, self.proc.stderr):
            try:
                pipe.close()  # type: ignore[union-attr]
            except OSError:
                pass


class HttpConnection:
    """Streamable HTTP (2025-03-26 .. 2025-11-25): every message is a POST; the answer is JSON
    or an SSE stream that may carry notifications and server requests before the response."""

    def __init__(self, spec: ServerSpec, dispatcher: Dispatcher) -> None:
        self.spec = spec
        self.dispatcher = dispatcher
        self.url = urllib.parse.urlsplit(spec.url)
        self.session_id: str | None = None
        self.protocol_version: str | None = None
        self._ids = itertools.count(1)
        self._closed = False
        self.last_error = ""

    @property
    def alive(self) -> bool:
        return not self._closed

    def death(self) -> str:
        return self.last_error or "the connection was closed"

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json",
                   "Accept": "application/json, text/event-stream",
                   "User-Agent": f"codetether/{__version__}", **self.spec.headers}
        if self.session_id:
            headers["Mcp-Session-Id"] = self.session_id
        if self.protocol_version:
            headers["MCP-Protocol-Version"] = self.protocol_version
        return headers

    def _open(self, method: str, body: bytes | None, timeout: float,
              cancel: CancelToken | None) -> tuple[http.client.HTTPConnection,
                                                    http.client.HTTPResponse, Callable[[], None]]:
        host = self.url.hostname or "127.0.0.1"
        if self.url.scheme == "https":
            import ssl

            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, self.url.port or 443, timeout=timeout,
                context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(host, self.url.port or 80, timeout=timeout)
        target = self.url.path or "/"
        if self.url.query:
            target += "?" + self.url.query
        opened: list[socket.socket] = []

        def shut() -> None:
            sock = conn.sock or (opened[0] if opened else None)
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        unregister = cancel.on_cancel(shut) if cancel else (lambda: None)
        try:
            conn.request(method, target, body=body, headers=self._headers())
            if conn.sock is not None:
                opened.append(conn.sock)
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            unregister()
            conn.close()
            if cancel and cancel.cancelled:
                raise McpCancelled(f"{method} to mcp server '{self.spec.name}' cancelled") from None
            self.last_error = _describe(exc)
            raise McpConnectionError(
                f"cannot reach mcp server '{self.spec.name}' at {self.spec.url}: {self.last_error}",
                "check that the server is running and the URL is right") from None
        return conn, response, unregister

    def _check_status(self, response: http.client.HTTPResponse) -> None:
        if response.status < 400:
            return
        body = response.read(2000).decode("utf-8", "replace").strip()
        name = self.spec.name
        if response.status in (401, 403):
            raise McpAuthRequired(f"mcp server '{name}' needs authorization "
                                  f"(HTTP {response.status})",
                                  f"add a header: codetether mcp remove {name} && codetether mcp "
                                  f"add {name} --url URL --header 'Authorization=Bearer ...'")
        if response.status == 404 and self.session_id:
            self._closed = True
            self.last_error = "the server ended the session (HTTP 404)"
            raise McpConnectionError(f"mcp server '{name}' ended the session (HTTP 404)")
        raise McpConnectionError(f"mcp server '{name}' answered HTTP {response.status}: "
                                 f"{body[:200] or response.reason}")

    def request(self, method: str, params: Any, timeout: float,
                cancel: CancelToken | None) -> Any:
        request_id = next(self._ids)
        body = json.dumps(jsonrpc.request(request_id, method, params)).encode()
        conn, response, unregister = self._open("POST", body, timeout, cancel)
        try:
            self._check_status(response)
            if method == "initialize":
                self.session_id = response.getheader("Mcp-Session-Id") or self.session_id
            kind = (response.getheader("Content-Type") or "").split(";")[0].strip().lower()
            deadline = time.monotonic() + timeout
            if kind == "text/event-stream":
                return self._from_sse(response, request_id, method, deadline, cancel)
            data = response.read()
            if response.status == 202 or not data.strip():
                raise McpConnectionError(f"mcp server '{self.spec.name}' sent no answer to "
                                         f"{method} (HTTP {response.status})")
            return self._answer(_json(data, self.spec.name), request_id)
        except (OSError, http.client.HTTPException) as exc:
            if cancel and cancel.cancelled:
                self._cancel_remote(request_id)
                raise McpCancelled(f"{method} to mcp server '{self.spec.name}' cancelled") from None
            if isinstance(exc, TimeoutError | socket.timeout):
                self._cancel_remote(request_id)
                raise RequestTimeoutError(f"no answer to {method} within {timeout:g} s") from None
            self.last_error = _describe(exc)
            raise StreamClosedError(f"connection lost during {method}: {self.last_error}") from None
        finally:
            unregister()
            conn.close()

    def _from_sse(self, response: http.client.HTTPResponse, request_id: int, method: str,
                  deadline: float, cancel: CancelToken | None) -> Any:
        from codetether.core.sse import parse_sse

        for event in parse_sse(iter(response.readline, b"")):
            if not event.data.strip():
                continue
            message = _json(event.data.encode(), self.spec.name)
            for item in message if isinstance(message, list) else [message]:
                if jsonrpc.is_response(item) and item.get("id") == request_id:
                    return self._answer(item, request_id)
                self._incoming(item)
            if time.monotonic() > deadline:
                self._cancel_remote(request_id)
                raise RequestTimeoutError(f"no answer to {method} in time")
        raise StreamClosedError(f"the server closed the event stream before answering {method}")

    def _incoming(self, message: Any) -> None:
        """A notification or a server->client request inside an SSE stream."""
        if not isinstance(message, dict) or "method" not in message:
            return
        reply = self.dispatcher.dispatch(message, None)
        if reply is not None:
            threading.Thread(target=self._post_quietly, args=(reply,), daemon=True).start()

    def _post_quietly(self, message: dict[str, Any]) -> None:
        try:
            conn, response, unregister = self._open("POST", json.dumps(message).encode(),
                                                    self.spec.timeout, None)
            response.read()
            unregister()
            conn.close()
        except CodetetherError as exc:
            log.debug("mcp %s: posting %s failed: %s", self.spec.name, message.get("id"), exc)

    def _answer(self, message: Any, request_id: int) -> Any:
        items = message if isinstance(message, list) else [message]
        for item in items:
            if isinstance(item, dict) and item.get("id") == request_id:
                if "error" in item:
                    error = item["error"] if isinstance(item["error"], dict) else {}
                    raise JsonRpcError(int(error.get("code", jsonrpc.INTERNAL_ERROR)),
                                       str(error.get("message", "error")), error.get("data"))
                return item.get("result")
            self._incoming(item)
        raise McpConnectionError(f"mcp server '{self.spec.name}' answered with no response "
                                 f"to request {request_id}")

    def _cancel_remote(self, request_id: int) -> None:
        threading.Thread(target=self._post_quietly, args=(cancel_notice(request_id, "cancelled"),),
                         daemon=True).start()

    def notify(self, method: str, params: Any = None) -> None:
        body = json.dumps(jsonrpc.notification(method, params)).encode()
        conn, response, unregister = self._open("POST", body, self.spec.timeout, None)
        try:
            self._check_status(response)
            response.read()
        finally:
            unregister()
            conn.close()

    def close(self) -> None:
        """DELETE ends the session (servers may answer 405: that is fine)."""
        if self._closed:
            return
        self._closed = True
        if self.session_id:
            try:
                conn, response, unregister = self._open("DELETE", None, 5.0, None)
                response.read()
                unregister()
                conn.close()
            except CodetetherError:
                pass


def _json(data: bytes, name: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        raise McpConnectionError(f"mcp server '{name}' sent something that is not JSON: "
                                 f"{data[:120]!r}") from None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    return str(exc) or type(exc).__name__


# ---- the client --------------------------------------------------------------------------------

class McpClient:
    """One connection to one server, after the ``initialize`` handshake."""

    def __init__(self, spec: ServerSpec, *, roots: list[Path] | None = None,
                 on_tools_changed: Callable[[], None] | None = None) -> None:
        self.spec = spec
        self.roots = roots or []
        self.on_tools_changed = on_tools_changed
        self.server_info: dict[str, Any] = {}
        self.capabilities: dict[str, Any] = {}
        self.protocol_version = ""
        self.instructions = ""
        self._progress: dict[str, ProgressCallback] = {}
        self._tokens = itertools.count(1)
        self._conn: StdioConnection | HttpConnection | None = None
        self.dispatcher = self._dispatcher()

    def _dispatcher(self) -> Dispatcher:
        d = Dispatcher()
        d.register("ping", lambda params, ctx: {})
        d.register("roots/list", lambda params, ctx: {"roots": [
            {"uri": root.resolve().as_uri(), "name": root.name} for root in self.roots]})
        d.register("notifications/progress", self._on_progress)
        d.register("notifications/tools/list_changed", self._on_tools_changed)
        d.register("notifications/message", self._on_log)
        for name in ("notifications/cancelled", "notifications/resources/list_changed",
                     "notifications/prompts/list_changed", "notifications/resources/updated"):
            d.register(name, lambda params, ctx: None)
        return d

    def _on_progress(self, params: Any, ctx: Any) -> None:
        callback = self._progress.get(str(params.get("progressToken")))
        if callback is not None:
            callback(params.get("progress", 0), params.get("total"), params.get("message"))

    def _on_tools_changed(self, params: Any, ctx: Any) -> None:
        if self.on_tools_changed is not None:
            self.on_tools_changed()

    def _on_log(self, params: Any, ctx: Any) -> None:
        if os.environ.get("CODETETHER_MCP_DEBUG") == "1":
            print(f"[mcp {self.spec.name}] {params.get('level')}: {params.get('data')}",
                  file=sys.stderr)

    # -- connecting --------------------------------------------------------------------------
    def connect(self) -> McpClient:
        if self.spec.type == "http":
            self._conn = HttpConnection(self.spec, self.dispatcher)
        else:
            self._conn = StdioConnection(self.spec, self.dispatcher)
        try:
            result = self._call("initialize", {
                "protocolVersion": LATEST_VERSION,
                "capabilities": {"roots": {"listChanged": False}} if self.roots else {},
                "clientInfo": {"name": "codetether", "version": __version__}})
            if not isinstance(result, dict):
                raise McpConnectionError(f"mcp server '{self.spec.name}' sent a malformed "
                                         "initialize result")
            version = result.get("protocolVersion")
            if version not in SUPPORTED_VERSIONS:
                raise McpConnectionError(
                    f"mcp server '{self.spec.name}' speaks protocol {version!r}, which this "
                    f"client does not ({', '.join(SUPPORTED_VERSIONS)})",
                    "use a server release that supports the initialize handshake")
            self.protocol_version = version
            self.capabilities = result.get("capabilities") or {}
            self.server_info = result.get("serverInfo") or {}
            self.instructions = result.get("instructions") or ""
            if isinstance(self._conn, HttpConnection):
                self._conn.protocol_version = version
            self._conn.notify("notifications/initialized")
        except BaseException:
            self.close()
            raise
        return self

    @property
    def alive(self) -> bool:
        return self._conn is not None and self._conn.alive

    def death(self) -> str:
        return self._conn.death() if self._conn else "not started"

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    # -- requests ----------------------------------------------------------------------------
    def _call(self, method: str, params: Any = None, *, timeout: float | None = None,
              cancel: CancelToken | None = None) -> Any:
        if self._conn is None:
            raise McpConnectionError(f"mcp server '{self.spec.name}' is not connected")
        timeout = timeout or self.spec.timeout
        name = self.spec.name
        try:
            return self._conn.request(method, params, timeout, cancel)
        except StreamClosedError:
            raise McpConnectionError(f"mcp server '{name}' {self.death()} (during {method})",
                                     "check it with `codetether mcp list`; set "
                                     "CODETETHER_MCP_DEBUG=1 to see its stderr") from None
        except RequestTimeoutError:
            raise McpConnectionError(f"mcp server '{name}' did not answer {method} within "
                                     f"{timeout:g} s",
                                     f"raise [mcp.servers.{name}] timeout or check the server"
                                     ) from None
        except RequestCancelledError:
            raise McpCancelled(f"{method} to mcp server '{name}' cancelled") from None
        except JsonRpcError as exc:
            raise McpRemoteError(f"mcp server '{name}' refused {method}: {exc.message} "
                                 f"(code {exc.code})", code=exc.code) from None

    def ping(self) -> None:
        self._call("ping", {})

    def list_tools(self) -> list[dict[str, Any]]:
        return self._paged("tools/list", "tools")

    def list_resources(self) -> list[dict[str, Any]]:
        return self._paged("resources/list", "resources")

    def list_prompts(self) -> list[dict[str, Any]]:
        return self._paged("prompts/list", "prompts")

    def _paged(self, method: str, key: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        for _ in range(MAX_PAGES):
            result = self._call(method, {"cursor": cursor} if cursor else {}) or {}
            items += [t for t in result.get(key, []) if isinstance(t, dict)]
            cursor = result.get("nextCursor")
            if not cursor:
                break
        return items

    def call_tool(self, name: str, arguments: dict[str, Any], *, timeout: float | None = None,
                  cancel: CancelToken | None = None,
                  on_progress: ProgressCallback | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"name": name, "arguments": arguments}
        token = None
        if on_progress is not None:
            token = f"ct-{next(self._tokens)}"
            self._progress[token] = on_progress
            params["_meta"] = {"progressToken": token}
        try:
            result = self._call("tools/call", params, timeout=timeout, cancel=cancel)
        finally:
            if token:
                self._progress.pop(token, None)
        if not isinstance(result, dict):
            raise McpRemoteError(f"mcp server '{self.spec.name}' sent a malformed tools/call "
                                 "result")
        return result

    def read_resource(self, uri: str) -> dict[str, Any]:
        return self._call("resources/read", {"uri": uri}) or {}

    def get_prompt(self, name: str, arguments: dict[str, str]) -> dict[str, Any]:
        return self._call("prompts/get", {"name": name, "arguments": arguments}) or {}


def result_text(result: dict[str, Any]) -> str:
    """A tools/call result as text for a model or a terminal."""
    parts: list[str] = []
    for block in result.get("content") or []:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            parts.append(str(block.get("text", "")))
        elif kind in ("image", "audio"):
            size = len(block.get("data", "")) * 3 // 4
            parts.append(f"[{kind}: {block.get('mimeType', '?')}, about {size} bytes]")
        elif kind == "resource":
            resource = block.get("resource") or {}
            parts.append(str(resource.get("text") or f"[resource {resource.get('uri', '')}]"))
        elif kind == "resource_link":
            parts.append(f"[resource link {block.get('uri', '')}: {block.get('name', '')}]")
    if not parts and result.get("structuredContent") is not None:
        parts.append(json.dumps(result["structuredContent"], ensure_ascii=False))
    return "\n".join(parts)


class ServerHandle:
    """A configured server for the life of a session: started on first use, restarted once if
    it dies, then reported as failed (each later call fails at once with the reason)."""

    MAX_STARTS = 2

    def __init__(self, spec: ServerSpec, *, roots: list[Path] | None = None,
                 on_tools_changed: Callable[[], None] | None = None) -> None:
        self.spec = spec
        self.roots = roots
        self.on_tools_changed = on_tools_changed
        self._client: McpClient | None = None
        self._starts = 0
        self._lock = threading.RLock()
        self.failure = ""

    def client(self) -> McpClient:
        with self._lock:
            current = self._client
            if current is not None and current.alive:
                return current
            if current is not None:
                self.failure = current.death()
                current.close()
                self._client = None
            if self._starts >= self.MAX_STARTS:
                raise McpConnectionError(
                    f"mcp server '{self.spec.name}' is down ({self.failure}) and was already "
                    "restarted once", "check it with `codetether mcp list`")
            if self._starts:
                print(f"mcp server '{self.spec.name}' {self.failure}; restarting it",
                      file=sys.stderr)
            self._starts += 1
            client = McpClient(self.spec, roots=self.roots,
                               on_tools_changed=self.on_tools_changed)
            try:
                client.connect()
            except CodetetherError as exc:
                self.failure = exc.message
                raise
            self._client = client
            return client

    @property
    def started(self) -> bool:
        return self._client is not None

    def list_tools(self) -> list[dict[str, Any]]:
        return self.client().list_tools()

    def call_tool(self, name: str, arguments: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self.client().call_tool(name, arguments, **kwargs)

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()
