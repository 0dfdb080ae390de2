"""A2A over JSON-RPC 2.0: one endpoint (``POST /`` and ``POST /a2a``) for both dialects.

The method name says the dialect: ``SendMessage``, ``GetTask``, … are v1.0 and go to the
service as they are; ``message/send``, ``tasks/get``, … are v0.3 and pass through
``dialects`` on the way in and out. ``A2A-Version`` is checked against the method: a v1.0
method announced as 0.x, a v0.3 method announced as 1.x, or a version we do not speak at all is
-32009 (a missing header is accepted: the method name is unambiguous). Streaming methods answer
with SSE, one JSON-RPC response per event. Every mistake in a request is a JSON-RPC error with
the A2A code (v1.0 errors carry ``data: [ErrorInfo]``); nothing a client sends drops the
connection or reaches the client as a traceback.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

from codetether.a2a import dialects
from codetether.a2a.card import request_base_url
from codetether.a2a.errors import (
    A2AError,
    InternalError,
    InvalidParams,
    InvalidRequest,
    MethodNotFound,
    ParseError,
    VersionNotSupported,
    jsonrpc_error,
)
from codetether.core.sse import encode_sse

log = logging.getLogger("codetether.a2a.jsonrpc")

JSONRPC_PATHS = ("/", "/a2a", "/a2a/")  # clients differ on the trailing slash
HEARTBEAT_SECONDS = 3.0  # an SSE comment this often while a stream is idle


def parse_version(value: str | None) -> tuple[int, int] | None:
    """``"1.0"`` / ``"1.0.0"`` / ``"0.3"`` -> (major, minor); None when absent; -32009 if bad."""
    if value is None or not value.strip():
        return None
    pieces = value.strip().split(".")
    try:
        major, minor = int(pieces[0]), int(pieces[1]) if len(pieces) > 1 else 0
    except ValueError:
        raise VersionNotSupported(f"A2A-Version {value!r} is not a version") from None
    if (major, minor) not in ((1, 0), (0, 3)):
        raise VersionNotSupported(f"A2A version {value} is not supported; this server speaks "
                                  "1.0 and 0.3", {"supportedVersions": "1.0,0.3"})
    return major, minor


def check_version(dialect: str, header: str | None) -> None:
    version = parse_version(header)
    if version is None:
        return
    if dialect == "1.0" and version[0] != 1:
        raise VersionNotSupported(f"A2A-Version {header} does not match a v1.0 method; send "
                                  "A2A-Version: 1.0", {"supportedVersions": "1.0"})
    if dialect == "0.3" and version[0] != 0:
        raise VersionNotSupported(f"A2A-Version {header} does not match a v0.3 method; use the "
                                  "v1.0 method names or send A2A-Version: 0.3",
                                  {"supportedVersions": "0.3"})


class JsonRpcBinding:
    def __init__(self, service: Any, base_url_fn: Callable[[Any], str] | None = None,
                 grpc_url_fn: Callable[[Any], str | None] | None = None,
                 stopping: Any = None) -> None:
        self.service = service
        self.base_url_fn = base_url_fn or request_base_url
        self.grpc_url_fn = grpc_url_fn
        self.stopping = stopping

    # -- HTTP entry point --------------------------------------------------------------------
    def handle(self, request: Any) -> Any:
        from codetether.core.httpserver import Response

        request_id: Any = None
        dialect: str | None = None
        try:
            check_content_type(request.header("content-type"))
            message = self._decode(request.body)
            request_id = _safe_id(message)
            request_id, method, params = _validate(message)
            dialect = dialects.method_dialect(method)
            if dialect is None:
                raise MethodNotFound(f"method not found: {method}")
            request.context["a2a_method"] = method
            check_version(dialect, request.header("a2a-version"))
            op = dialects.OPERATION_OF_METHOD[method]
            params = self._params(op, dialect, params)
            _note_task(request, op, params)
            if op in dialects.STREAMING_OPERATIONS:
                events = self._start_stream(op, params, request)
                return Response.sse(self._sse(events, request_id, dialect))
            result = self._call(op, params, request)
            if dialect == "0.3":
                result = dialects.response_to_v03(op, result)
            _note_result(request, op, result)
            if "id" not in message:
                return Response(204)  # a notification gets no answer
            return Response.json({"jsonrpc": "2.0", "id": request_id, "result": result})
        except A2AError as exc:
            return Response.json(_error(request_id, exc, dialect))
        except Exception:  # a bug: say so without details, keep serving
            log.exception("JSON-RPC request failed")
            return Response.json(_error(request_id, InternalError(), dialect))

    @staticmethod
    def _decode(body: bytes) -> Any:
        if not body:
            raise InvalidRequest("the request body must be a JSON-RPC 2.0 request")
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"parse error: {exc}") from None

    def _params(self, op: str, dialect: str, params: Any) -> dict[str, Any]:
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise InvalidParams("params must be an object")
        if dialect == "0.3":
            try:
                params = dialects.request_to_v1(op, params)
            except (AttributeError, TypeError, KeyError, ValueError) as exc:
                raise InvalidParams(f"invalid params for a v0.3 request: {exc}") from None
            return params
        return dialects.camel_case_names(params)

    # -- operations --------------------------------------------------------------------------
    def _call(self, op: str, params: dict[str, Any], request: Any) -> Any:
        service, principal = self.service, request.principal or ""
        if op == "send":
            return service.send_message(params, principal)
        if op == "get":
            return service.get_task(_str(params, "id"), _opt_int(params, "historyLength"))
        if op == "list":
            return service.list_tasks(params)
        if op == "cancel":
            return service.cancel_task(_str(params, "id"), principal)
        if op == "push_set":
            return self._push_set(params, request)
        if op == "push_get":
            return service.get_push_config(_str(params, "taskId"), params.get("id"))
        if op == "push_list":
            return service.list_push_configs(_str(params, "taskId"))
        if op == "push_delete":
            service.delete_push_config(_str(params, "taskId"), _str(params, "id"))
            return {}
        if op == "extended_card":
            grpc_url = self.grpc_url_fn(request) if self.grpc_url_fn else None
            return service.extended_card(self.base_url_fn(request), grpc_url)
        raise MethodNotFound(f"operation {op} is not served")

    def _push_set(self, params: dict[str, Any], request: Any) -> dict[str, Any]:
        config = dict(params)
        nested = config.pop("config", None) or config.pop("pushNotificationConfig", None)
        if isinstance(nested, dict):  # 1.0 release candidates nested the config
            config = {**nested, **{k: v for k, v in config.items() if k in ("taskId",)}}
        dialect = "0.3" if request.context.get("a2a_method", "").startswith("tasks/") else "1.0"
        return self.service.create_push_config(_str(config, "taskId"), config, dialect=dialect)

    def _start_stream(self, op: str, params: dict[str, Any], request: Any) -> Iterator[dict]:
        if op == "stream":
            return self.service.stream_message(params, request.principal or "",
                                               heartbeat=HEARTBEAT_SECONDS)
        return self.service.subscribe(_str(params, "id"), heartbeat=HEARTBEAT_SECONDS)

    def _sse(self, events: Iterator[dict[str, Any]], request_id: Any, dialect: str
             ) -> Iterator[bytes]:
        try:
            for event in events:
                if not event:  # idle: a comment keeps the connection and finds dead clients
                    if self.stopping is not None and self.stopping.is_set():
                        return
                    yield b": keep-alive\n\n"
                    continue
                result = dialects.to_v03_stream_response(event) if dialect == "0.3" else event
                yield encode_sse(json.dumps({"jsonrpc": "2.0", "id": request_id,
                                             "result": result}, ensure_ascii=False))
        except A2AError as exc:
            yield encode_sse(json.dumps(_error(request_id, exc, dialect)))
        except Exception:
            log.exception("JSON-RPC stream failed")
            yield encode_sse(json.dumps(_error(request_id, InternalError(), dialect)))
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()


def mount_jsonrpc(app: Any, service: Any, paths: tuple[str, ...] = JSONRPC_PATHS,
                  base_url_fn: Callable[[Any], str] | None = None,
                  grpc_url_fn: Callable[[Any], str | None] | None = None) -> JsonRpcBinding:
    """Serve the JSON-RPC endpoint on ``paths`` of ``app`` (bearer auth as the app says)."""
    binding = JsonRpcBinding(service, base_url_fn, grpc_url_fn, app.stopping)
    for path in paths:
        app.add("POST", path, binding.handle)
    _hook_http_errors(app, paths)
    return binding


def _hook_http_errors(app: Any, paths: tuple[str, ...]) -> None:
    """A body the HTTP layer refuses (too large, bad length) still gets a JSON-RPC error."""
    from codetether.core.httpserver import Response

    previous = getattr(app, "error_hook", None)

    def hook(request: Any, exc: Any) -> Any:
        if request.method == "POST" and request.path in paths and exc.status in (400, 413):
            return Response.json(_error(None, InvalidRequest(exc.message), None), exc.status,
                                 headers=exc.headers)
        return previous(request, exc) if previous is not None else None

    app.error_hook = hook


# -- helpers ---------------------------------------------------------------------------------
def check_content_type(value: str | None) -> None:
    """JSON-RPC bodies are JSON; a request that says otherwise gets -32005 (a missing header
    is tolerated: many simple clients send none)."""
    if value is None or not value.strip():
        return
    media = value.split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        from codetether.a2a.errors import ContentTypeNotSupported

        raise ContentTypeNotSupported(f"Content-Type {media} is not supported; send "
                                      "application/json")


def _safe_id(message: Any) -> Any:
    if isinstance(message, dict):
        value = message.get("id")
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return value
    return None


def _validate(message: Any) -> tuple[Any, str, Any]:
    if isinstance(message, list):
        raise InvalidRequest("batch requests are not supported by A2A; send one request")
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        raise InvalidRequest("invalid request: expected a JSON-RPC 2.0 object")
    method = message.get("method")
    if not isinstance(method, str) or not method:
        raise InvalidRequest("invalid request: method must be a non-empty string")
    request_id = message.get("id")
    if request_id is not None and (isinstance(request_id, bool)
                                   or not isinstance(request_id, (str, int))):
        raise InvalidRequest("invalid request: id must be a string or an integer")
    return request_id, method, message.get("params")


def _error(request_id: Any, err: A2AError, dialect: str | None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": jsonrpc_error(err, dialect != "0.3")}


def _str(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidParams(f"params.{name} is required and must be a non-empty string")
    return value


def _opt_int(params: dict[str, Any], name: str) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidParams(f"params.{name} must be a non-negative integer")
    return value


def _note_task(request: Any, op: str, params: dict[str, Any]) -> None:
    """Let the audit hook see which task a request was about."""
    task_id = params.get("id") if op in ("get", "cancel", "subscribe") else params.get("taskId")
    if op in ("send", "stream") and isinstance(params.get("message"), dict):
        task_id = params["message"].get("taskId")
    if isinstance(task_id, str) and task_id:
        request.context["task_id"] = task_id


def _note_result(request: Any, op: str, result: Any) -> None:
    if op == "send" and isinstance(result, dict):
        task = result.get("task") or (result if result.get("kind") == "task" else None)
        if isinstance(task, dict) and isinstance(task.get("id"), str):
            request.context["task_id"] = task["id"]
