"""A2A client over JSON-RPC + SSE, thread-based (urllib, no asyncio), speaking v1.0 or v0.3.

    client = A2AClient("http://127.0.0.1:4096", token="...")
    reply = client.send("hello")              # {"task": {...}} or {"message": {...}}
    for event in client.stream("hello"):      # v1.0 StreamResponse dicts
        ...

Whatever the peer speaks, every result comes back in the **v1.0** JSON shape (see
``dialects``): callers handle one dialect. ``dialect="auto"`` reads the agent card: a v1.0 card
(``supportedInterfaces``) with a JSON-RPC interface at protocol version 1.x gets v1.0
(``SendMessage``, ``A2A-Version: 1.0``); otherwise, or for a legacy card (``protocolVersion``
"0.3.x"), the client speaks v0.3 (``message/send`` and ``kind`` tags). The RPC endpoint is the
chosen interface's URL; a peer without a card is called at the URL given, in v1.0.

Errors are ``A2AClientError`` (a ``CodetetherError``): JSON-RPC errors keep their ``code`` and
``data``; HTTP, connection and protocol failures get a code of None (or the HTTP status) and a
hint. ``transport`` picks the binding: ``"auto"`` takes the card's JSON-RPC interface when
it has one, else its gRPC one (``grpc_client.GrpcTransport``: ``lf.a2a.v1.A2AService`` for
1.x, ``a2a.v1.A2AService`` for 0.3); ``A2AClient.for_grpc("host:port")`` (or a
``grpc://host:port`` URL) talks gRPC to a peer without an HTTP card. Both transports return the
same v1.0 dicts and raise the same errors; ``close()`` releases a gRPC channel.
"""

from __future__ import annotations

import itertools
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

from codetether.a2a import dialects as d
from codetether.core.errors import CodetetherError
from codetether.core.sse import parse_sse

Json = dict[str, Any]
CARD_PATHS = ("/.well-known/agent-card.json", "/.well-known/agent.json")
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
TRANSPORTS = ("auto", "jsonrpc", "grpc")

_HINTS = {
    -32700: "the agent could not parse our request; it may not be an A2A endpoint",
    -32600: "the agent rejected the request shape; it may speak another A2A version",
    -32601: "the agent does not know this method; it may speak another A2A version "
            "(try dialect 0.3 or 1.0)",
    -32602: "check the arguments (task id, message, push config)",
    -32001: "check the task id; the agent may have forgotten old tasks",
    -32002: "only a task that is still running can be canceled",
    -32003: "this agent does not support push notifications",
    -32004: "this agent does not support the operation",
    -32005: "the agent does not accept this content type",
    -32006: "the agent answered with something that is not a valid A2A response",
    -32007: "the agent has no extended card configured",
    -32008: "the agent requires an A2A extension this client does not declare",
    -32009: "the agent speaks another A2A version; try dialect 0.3 or 1.0",
    401: "pass a bearer token (--token or CODETETHER_A2A_TOKEN)",
    403: "the token is not allowed to do this",
}


class A2AClientError(CodetetherError):
    """An A2A call failed: ``code`` is the JSON-RPC error code (or HTTP status, or None)."""

    def __init__(self, code: int | None, message: str, data: Any = None,
                 hint: str | None = None) -> None:
        super().__init__(message, hint if hint is not None else _HINTS.get(code or 0))
        self.code = code
        self.data = data

    @property
    def reason(self) -> str | None:
        """The ``google.rpc.ErrorInfo`` reason of a v1.0 error (``TASK_NOT_FOUND``...)."""
        items = self.data if isinstance(self.data, list) else [self.data]
        for item in items:
            if isinstance(item, dict) and item.get("reason"):
                return str(item["reason"])
        return None


class A2AClient:
    """One peer. Thread-safe: each call is its own HTTP request (or rpc on one channel)."""

    def __init__(self, url: str, token: str | None = None, dialect: str = "auto",
                 timeout: float = 60.0, headers: dict[str, str] | None = None,
                 transport: str = "auto") -> None:
        if dialect not in ("auto", "1.0", "0.3"):
            raise A2AClientError(None, f"unknown A2A dialect {dialect!r}",
                                 hint="use auto, 1.0 or 0.3")
        if transport not in TRANSPORTS:
            raise A2AClientError(None, f"unknown A2A transport {transport!r}",
                                 hint="use auto, jsonrpc or grpc")
        parsed = urllib.parse.urlparse(url)
        self.transport = transport
        # a bare gRPC target (host:port, grpc://): no HTTP card, gRPC from the start
        self._grpc_target = _grpc_target(url, transport)
        self._grpc: Any = None
        self._binding: str | None = "grpc" if self._grpc_target else None
        if self._grpc_target is None and (parsed.scheme not in ("http", "https")
                                          or not parsed.netloc):
            raise A2AClientError(None, f"not an http(s) URL: {url!r}",
                                 hint="give the agent's base URL, e.g. http://127.0.0.1:4096 "
                                      "(a gRPC-only agent: grpc://host:port)")
        self.url = url
        self.token = token
        self.timeout = timeout
        self.extra_headers = dict(headers or {})
        self._wanted = dialect
        self._dialect: str | None = None if dialect == "auto" else dialect
        self._endpoint: str | None = None
        self._card: Json | None = None
        self._raw_card: Json | None = None
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        direct = self._grpc_target is None and parsed.hostname in _LOOPBACK
        self._opener = urllib.request.build_opener(
            *([urllib.request.ProxyHandler({})] if direct else []))

    @classmethod
    def for_grpc(cls, target: str, token: str | None = None, **options: Any) -> A2AClient:
        """A client for a gRPC peer at ``host:port`` (no HTTP agent card needed)."""
        return cls(target, token, transport="grpc", **options)

    def close(self) -> None:
        """Release the gRPC channel, if one was opened (JSON-RPC holds nothing open)."""
        with self._lock:
            grpc, self._grpc = self._grpc, None
        if grpc is not None:
            grpc.close()

    def __enter__(self) -> A2AClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- discovery -------------------------------------------------------------------------

    def card(self, refresh: bool = False) -> Json:
        """The agent card in the v1.0 shape (``raw_card`` keeps what the agent sent)."""
        if self._grpc_target is not None:
            return self._grpc_card(refresh)
        with self._lock:
            if self._card is None or refresh:
                raw = self._fetch_card()
                if raw is None:
                    raise A2AClientError(404, f"no agent card at {self._card_urls()[0]}",
                                         hint="is this the base URL of an A2A agent?")
                self._raw_card, self._card = raw, d.to_v1_card(raw)
            return self._card

    def _grpc_card(self, refresh: bool) -> Json:
        """A bare gRPC peer's card: GetExtendedAgentCard (v1.0 has no public-card rpc); a peer
        without an extended card gets a minimal card naming its gRPC interface."""
        if self._card is None or refresh:
            try:
                raw = self._grpc_transport().card()
            except A2AClientError as exc:
                if exc.code not in (-32007, -32601, -32004):
                    raise
                raw = {"name": self._grpc_target, "description": "", "version": "",
                       "supportedInterfaces": [{"url": self._grpc_target,
                                                "protocolBinding": "GRPC",
                                                "protocolVersion": "1.0"}]}
            with self._lock:
                self._raw_card, self._card = raw, d.to_v1_card(raw)
        return self._card

    @property
    def raw_card(self) -> Json | None:
        return self._raw_card

    @property
    def binding(self) -> str:
        """``"jsonrpc"`` or ``"grpc"``: the transport in use (resolved from the card)."""
        self._resolve()
        assert self._binding is not None
        return self._binding

    @property
    def dialect(self) -> str:
        self._resolve()
        assert self._dialect is not None
        return self._dialect

    @property
    def endpoint(self) -> str:
        self._resolve()
        assert self._endpoint is not None
        return self._endpoint

    def _card_urls(self) -> list[str]:
        if self.url.endswith(".json"):
            return [self.url]
        base = self.url.rstrip("/")
        urls = [base + path for path in CARD_PATHS]
        parsed = urllib.parse.urlparse(self.url)
        origin = f"{parsed.scheme}://{parsed.netloc}"
        if origin != base:
            urls += [origin + path for path in CARD_PATHS]
        return urls

    def _fetch_card(self) -> Json | None:
        for url in self._card_urls():
            try:
                body = self._http("GET", url, None, {"Accept": "application/json"})
            except A2AClientError as exc:
                if exc.code in (404, 405):
                    continue
                raise
            card = _json(body, url)
            if not isinstance(card, dict):
                raise A2AClientError(None, f"agent card at {url} is not a JSON object")
            return card
        return None

    def _resolve(self) -> None:
        """Pick the endpoint and dialect (from the card when it exists)."""
        if self._endpoint is not None and self._dialect is not None:
            return
        if self._grpc_target is not None:
            with self._lock:
                self._endpoint = self._grpc_target
                self._dialect = self._dialect or "1.0"
            return
        try:
            card = self.card()
        except A2AClientError as exc:
            if exc.code != 404 or self.transport == "grpc":
                raise
            card = None
        with self._lock:
            if card is None:
                self._binding, self._endpoint = "jsonrpc", self.url
                self._dialect = self._dialect or "1.0"
                return
            self._binding, self._endpoint, dialect = _choose_binding(
                card, self._wanted, self.transport, self.url)
            self._dialect = self._dialect or dialect

    def _grpc_transport(self) -> Any:
        """The gRPC transport to the resolved endpoint (opened once, shared by threads)."""
        from codetether.a2a.grpc_client import GrpcTransport

        target, dialect = self._grpc_target or self.endpoint, self.dialect  # before the lock
        with self._lock:
            if self._grpc is None:
                self._grpc = GrpcTransport(target, self.token, self.timeout,
                                           headers=self.extra_headers, dialect=dialect)
            return self._grpc

    # -- operations ------------------------------------------------------------------------

    def send(self, message: str | Json, context_id: str | None = None,
             task_id: str | None = None, metadata: Json | None = None, blocking: bool = True,
             configuration: Json | None = None) -> Json:
        """SendMessage: ``{"task": ...}`` or ``{"message": ...}`` (v1.0 shapes)."""
        params = self._send_params(message, context_id, task_id, metadata, blocking,
                                   configuration)
        return self._call("send", params)

    def stream(self, message: str | Json, context_id: str | None = None,
               task_id: str | None = None, metadata: Json | None = None,
               configuration: Json | None = None) -> Iterator[Json]:
        """SendStreamingMessage: yields v1.0 StreamResponse dicts until the stream ends."""
        params = self._send_params(message, context_id, task_id, metadata, True, configuration)
        return self._stream("stream", params)

    def subscribe(self, task_id: str) -> Iterator[Json]:
        """SubscribeToTask (v0.3 ``tasks/resubscribe``): the task's events from now on."""
        return self._stream("subscribe", {"id": task_id})

    def get(self, task_id: str, history_length: int | None = None) -> Json:
        params: Json = {"id": task_id}
        if history_length is not None:
            params["historyLength"] = history_length
        return self._call("get", params)

    def cancel(self, task_id: str, metadata: Json | None = None) -> Json:
        params: Json = {"id": task_id}
        if metadata:
            params["metadata"] = metadata
        return self._call("cancel", params)

    def list_tasks(self, context_id: str | None = None, status: str | None = None,
                   page_size: int | None = None, page_token: str | None = None,
                   history_length: int | None = None,
                   include_artifacts: bool | None = None) -> Json:
        """ListTasks (v1.0 only): ``{tasks, nextPageToken, pageSize, totalSize}``."""
        params: Json = {}
        for key, value in (("contextId", context_id), ("pageSize", page_size),
                           ("pageToken", page_token), ("historyLength", history_length),
                           ("includeArtifacts", include_artifacts)):
            if value is not None:
                params[key] = value
        if status:
            params["status"] = d.state_to_v1(status)
        return self._call("list", params)

    def set_push_config(self, task_id: str, url: str, token: str | None = None,
                        config_id: str | None = None,
                        authentication: Json | None = None) -> Json:
        """CreateTaskPushNotificationConfig; returns the stored config (v1.0 flat shape)."""
        params: Json = {"taskId": task_id, "url": url}
        if config_id:
            params["id"] = config_id
        if token:
            params["token"] = token
        if authentication:
            params["authentication"] = authentication
        return self._call("push_set", params)

    def get_push_config(self, task_id: str, config_id: str) -> Json:
        return self._call("push_get", {"taskId": task_id, "id": config_id})

    def list_push_configs(self, task_id: str) -> list[Json]:
        result = self._call("push_list", {"taskId": task_id})
        return list((result or {}).get("configs") or [])

    def delete_push_config(self, task_id: str, config_id: str) -> None:
        self._call("push_delete", {"taskId": task_id, "id": config_id})

    def extended_card(self) -> Json:
        return self._call("extended_card", {})

    # -- JSON-RPC plumbing -----------------------------------------------------------------

    def _send_params(self, message: str | Json, context_id: str | None, task_id: str | None,
                     metadata: Json | None, blocking: bool, configuration: Json | None) -> Json:
        if isinstance(message, str):
            msg = d.text_message(message, uuid.uuid4().hex)
        elif isinstance(message, dict):
            msg = d.to_v1_message(message) if "kind" in message else dict(message)
            msg.setdefault("messageId", uuid.uuid4().hex)
            msg.setdefault("role", "ROLE_USER")
        else:
            raise A2AClientError(None, "message must be text or a message object")
        if context_id:
            msg["contextId"] = context_id
        if task_id:
            msg["taskId"] = task_id
        params: Json = {"message": msg}
        config = dict(configuration or {})
        if not blocking or self.dialect == "0.3":
            # v0.3 servers disagree on the default, so say "blocking" explicitly there.
            config["returnImmediately"] = not blocking
        if config:
            params["configuration"] = config
        if metadata:
            params["metadata"] = metadata
        return params

    def _method(self, op: str) -> tuple[str, str]:
        dialect = self.dialect
        methods = d.METHODS_V1 if dialect == "1.0" else d.METHODS_V03
        if op not in methods:
            raise A2AClientError(-32004, f"{op} is not part of A2A {dialect} over JSON-RPC",
                                 hint="the agent needs a v1.0 interface for this")
        return dialect, methods[op]

    def _request_body(self, op: str, params: Json) -> tuple[str, bytes, dict[str, str]]:
        dialect, method = self._method(op)
        wire = params if dialect == "1.0" else d.request_to_v03(op, params)
        body = json.dumps({"jsonrpc": "2.0", "id": next(self._ids), "method": method,
                           "params": wire}).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if dialect == "1.0":
            headers["A2A-Version"] = "1.0"
        return dialect, body, headers

    def _call(self, op: str, params: Json) -> Any:
        if self.binding == "grpc":
            return self._grpc_transport().call(op, params)
        dialect, body, headers = self._request_body(op, params)
        headers["Accept"] = "application/json"
        raw = self._http("POST", self.endpoint, body, headers)
        result = _rpc_result(_json(raw, self.endpoint))
        return _to_v1(op, result, dialect)

    def _stream(self, op: str, params: Json) -> Iterator[Json]:
        if self.binding == "grpc":
            return self._grpc_transport().stream(op, params, ends=_ends_stream)
        dialect, body, headers = self._request_body(op, params)
        headers["Accept"] = "text/event-stream"
        response = self._open("POST", self.endpoint, body, headers)
        return _events(response, op, dialect, self.endpoint)

    def _headers(self, extra: dict[str, str]) -> dict[str, str]:
        headers = {"User-Agent": "codetether-a2a", **self.extra_headers, **extra}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def _open(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> Any:
        request = urllib.request.Request(url, data=body, method=method,
                                         headers=self._headers(headers))
        try:
            return self._opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            raise _http_error(exc, url) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise A2AClientError(None, f"cannot reach A2A agent at {url}: {reason}",
                                 hint="is the agent running and the URL right?") from None

    def _http(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> bytes:
        response = self._open(method, url, body, headers)
        try:
            with response:
                return response.read()
        except OSError as exc:
            raise A2AClientError(None, f"A2A agent at {url} broke off: {exc}") from None


def _grpc_target(url: str, transport: str) -> str | None:
    """The gRPC target when ``url`` names one: ``grpc(s)://host:port``, or a bare
    ``host:port`` with ``transport="grpc"``; None for an http(s) URL."""
    text = (url or "").strip()
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if transport == "jsonrpc" or scheme in ("http", "https"):
        return None
    if scheme in ("grpc", "grpcs") or (not scheme and transport == "grpc"):
        from codetether.a2a.grpc_client import parse_target

        target, tls = parse_target(text)
        return f"grpcs://{target}" if tls else target
    return None


def _choose_binding(card: Json, wanted: str, transport: str,
                    fallback: str) -> tuple[str, str, str]:
    """(binding, endpoint, dialect): JSON-RPC when the card offers it (unless ``transport``
    is "grpc"), else its gRPC interface of the wanted version (1.x preferred in auto mode)."""
    interfaces = card.get("supportedInterfaces") or []
    bindings = [(i.get("protocolBinding") or "JSONRPC").upper() for i in interfaces]
    has_jsonrpc = any(b in ("JSONRPC", "JSON-RPC") for b in bindings)
    if transport == "jsonrpc" or (transport == "auto" and has_jsonrpc):
        return ("jsonrpc", *_choose_interface(card, wanted, fallback))
    grpc = [i for i, b in zip(interfaces, bindings, strict=True) if b == "GRPC"]
    if not grpc:
        offered = ", ".join(f"{b} v{i.get('protocolVersion', '?')}"
                            for i, b in zip(interfaces, bindings, strict=True)) or "nothing"
        raise A2AClientError(None, "the agent card lists no JSON-RPC or gRPC interface",
                             hint=f"this client speaks JSON-RPC and gRPC; the agent offers "
                                  f"{offered}")
    modern = [i for i in grpc if not d.is_legacy_version(i.get("protocolVersion"))]
    legacy = [i for i in grpc if d.is_legacy_version(i.get("protocolVersion"))]
    chosen = (legacy + modern if wanted == "0.3" else modern + legacy)[0]
    return "grpc", chosen.get("url") or "", "0.3" if chosen in legacy else "1.0"


def _choose_interface(card: Json, wanted: str, fallback: str) -> tuple[str, str]:
    """(endpoint URL, dialect) from a v1.0-shaped card: the first JSON-RPC interface of the
    wanted version (1.x preferred in auto mode)."""
    jsonrpc = [i for i in card.get("supportedInterfaces") or []
               if (i.get("protocolBinding") or "JSONRPC").upper() in ("JSONRPC", "JSON-RPC")]
    if not jsonrpc:
        raise A2AClientError(None, "the agent card lists no JSON-RPC interface",
                             hint="this client speaks JSON-RPC; the agent offers "
                                  + ", ".join(str(i.get("protocolBinding"))
                                              for i in card.get("supportedInterfaces") or []))
    modern = [i for i in jsonrpc if not d.is_legacy_version(i.get("protocolVersion"))]
    legacy = [i for i in jsonrpc if d.is_legacy_version(i.get("protocolVersion"))]
    order = {"auto": modern + legacy, "1.0": modern + legacy, "0.3": legacy + modern}[wanted]
    chosen = order[0]
    dialect = "0.3" if chosen in legacy else "1.0"
    return chosen.get("url") or fallback, dialect


def _json(raw: bytes, url: str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        snippet = raw[:80].decode("utf-8", "replace")
        raise A2AClientError(None, f"A2A agent at {url} did not answer JSON: {snippet!r}",
                             hint="is this the agent's A2A endpoint?") from None


def _rpc_result(message: Any) -> Any:
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        raise A2AClientError(None, "not a JSON-RPC 2.0 response from the A2A agent")
    error = message.get("error")
    if error is not None:
        if not isinstance(error, dict):
            raise A2AClientError(None, f"A2A agent error: {error}")
        code = error.get("code")
        raise A2AClientError(code if isinstance(code, int) else None,
                             str(error.get("message") or "A2A agent error"), error.get("data"))
    return message.get("result")  # some servers leave out a null result (v0.3 push delete)


def _to_v1(op: str, result: Any, dialect: str) -> Any:
    """Results in the v1.0 shape; a v1.0 peer that answers in v0.3 shapes is converted too."""
    try:
        if dialect == "0.3" or (isinstance(result, dict) and "kind" in result):
            return d.response_to_v1(op, result)
        return result
    except (ValueError, AttributeError, TypeError) as exc:
        raise A2AClientError(-32006, f"unexpected A2A result for {op}: {exc}") from None


def _ends_stream(event: Json) -> bool:
    if "message" in event:
        return True
    status = (event.get("statusUpdate") or event.get("task") or {}).get("status") or {}
    state = status.get("state")
    return d.is_terminal(state) or d.is_interrupted(state)


def _events(response: Any, op: str, dialect: str, url: str) -> Iterator[Json]:
    """Yield StreamResponse dicts; close the connection when done or when the caller stops."""
    try:
        content_type = response.headers.get("Content-Type", "")
        if "text/event-stream" not in content_type:
            # A server may answer a stream request with a plain JSON-RPC error (or result).
            result = _rpc_result(_json(response.read(), url))
            yield _to_v1(op, result, dialect)
            return
        for sse in parse_sse(response):
            if not sse.data.strip():
                continue
            message = _json(sse.data.encode("utf-8"), url)
            event = _to_v1(op, _rpc_result(message), dialect)
            yield event
            if _ends_stream(event):
                return
    except OSError as exc:
        raise A2AClientError(None, f"A2A stream from {url} broke off: {exc}") from None
    finally:
        response.close()


def _http_error(exc: urllib.error.HTTPError, url: str) -> A2AClientError:
    """Turn an HTTP error into an A2AClientError; a JSON-RPC error body wins over the status."""
    try:
        raw = exc.read()
    except OSError:
        raw = b""
    finally:
        exc.close()
    try:
        message = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        message = None
    if isinstance(message, dict) and isinstance(message.get("error"), dict) \
            and message.get("jsonrpc") == "2.0":
        try:
            _rpc_result(message)
        except A2AClientError as rpc_error:
            return rpc_error
    what = {401: "unauthorized", 403: "forbidden", 404: "not found"}.get(exc.code, exc.reason)
    return A2AClientError(exc.code, f"A2A agent at {url} answered HTTP {exc.code} ({what})",
                          raw[:200].decode("utf-8", "replace") or None)


def task_text(result: Json) -> str:
    """The text a person wants from a send/get result: a message's text, else the task's
    artifacts' text, else its status message."""
    if "message" in result and "task" not in result:
        return d.message_text(result["message"])
    task = result.get("task", result)
    texts = ["".join(p.get("text", "") for p in a.get("parts") or [] if "text" in p)
             for a in task.get("artifacts") or []]
    text = "\n".join(t for t in texts if t)
    return text or d.message_text((task.get("status") or {}).get("message"))
