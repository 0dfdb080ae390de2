"""A2A v1.0 over HTTP+JSON (the REST binding, protocols.md §1.1).

``POST /message:send``, ``POST /message:stream``, ``GET /tasks/{id}``, ``GET /tasks``,
``POST /tasks/{id}:cancel``, ``GET|POST /tasks/{id}:subscribe`` and the push-config routes under
``/tasks/{id}/pushNotificationConfigs``, plus ``GET /extendedAgentCard`` — each also under a
``/{tenant}`` prefix (one tenant here: the segment is accepted and ignored). Bodies are
``application/json``; errors are ``{"error": {code, status, message, details: [ErrorInfo]}}``
with the HTTP status of the A2A error table; streams are SSE with one bare StreamResponse per
event.
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
    ParseError,
    VersionNotSupported,
    rest_error,
)
from codetether.a2a.jsonrpc_binding import HEARTBEAT_SECONDS, check_content_type, parse_version
from codetether.core.sse import encode_sse

log = logging.getLogger("codetether.a2a.rest")

CONTENT_TYPE = "application/json"  # what the v1.0 spec's HTTP+JSON binding and its TCK expect


class RestBinding:
    def __init__(self, service: Any, base_url_fn: Callable[[Any], str] | None = None,
                 grpc_url_fn: Callable[[Any], str | None] | None = None) -> None:
        self.service = service
        self.base_url_fn = base_url_fn or request_base_url
        self.grpc_url_fn = grpc_url_fn

    def routes(self) -> list[tuple[str, str, Callable[[Any], Any]]]:
        return [
            ("POST", "/message:send", self.send),
            ("POST", "/message:stream", self.stream),
            ("GET", "/tasks", self.list),
            ("GET", "/tasks/{id}", self.get),
            ("POST", "/tasks/{id}:cancel", self.cancel),
            ("GET", "/tasks/{id}:subscribe", self.subscribe),
            ("POST", "/tasks/{id}:subscribe", self.subscribe),
            ("POST", "/tasks/{id}/pushNotificationConfigs", self.push_create),
            ("GET", "/tasks/{id}/pushNotificationConfigs", self.push_list),
            ("GET", "/tasks/{id}/pushNotificationConfigs/{config_id}", self.push_get),
            ("DELETE", "/tasks/{id}/pushNotificationConfigs/{config_id}", self.push_delete),
            ("GET", "/extendedAgentCard", self.extended_card),
        ]

    # -- handlers ----------------------------------------------------------------------------
    def send(self, request: Any) -> Any:
        result = self.service.send_message(_body(request), request.principal or "")
        task = result.get("task")
        if isinstance(task, dict):
            request.context["task_id"] = task.get("id")
        return _json(result)

    def stream(self, request: Any) -> Any:
        return _sse(self.service.stream_message(_body(request), request.principal or "",
                                                heartbeat=HEARTBEAT_SECONDS))

    def get(self, request: Any) -> Any:
        request.context["task_id"] = request.params["id"]
        return _json(self.service.get_task(request.params["id"],
                                           _query_int(request, "historyLength")))

    def list(self, request: Any) -> Any:
        params: dict[str, Any] = {}
        for name in ("contextId", "status", "pageToken", "statusTimestampAfter"):
            if request.arg(name) is not None:
                params[name] = request.arg(name)
        for name in ("pageSize", "historyLength"):
            value = _query_int(request, name)
            if value is not None:
                params[name] = value
        include = request.arg("includeArtifacts")
        if include is not None:
            params["includeArtifacts"] = include.lower() in ("true", "1", "yes")
        return _json(self.service.list_tasks(params))

    def cancel(self, request: Any) -> Any:
        request.context["task_id"] = request.params["id"]
        return _json(self.service.cancel_task(request.params["id"], request.principal or ""))

    def subscribe(self, request: Any) -> Any:
        request.context["task_id"] = request.params["id"]
        return _sse(self.service.subscribe(request.params["id"], heartbeat=HEARTBEAT_SECONDS))

    def push_create(self, request: Any) -> Any:
        body = _body(request)
        nested = body.get("config")
        config = {**nested} if isinstance(nested, dict) else dict(body)
        task_id = request.params["id"]
        if config.get("taskId") not in (None, "", task_id):
            raise InvalidParams("taskId in the body does not match the URL")
        config["taskId"] = task_id
        return _json(self.service.create_push_config(task_id, config))

    def push_list(self, request: Any) -> Any:
        return _json(self.service.list_push_configs(request.params["id"]))

    def push_get(self, request: Any) -> Any:
        return _json(self.service.get_push_config(request.params["id"],
                                                  request.params["config_id"]))

    def push_delete(self, request: Any) -> Any:
        self.service.delete_push_config(request.params["id"], request.params["config_id"])
        return _json({})

    def extended_card(self, request: Any) -> Any:
        grpc_url = self.grpc_url_fn(request) if self.grpc_url_fn else None
        return _json(self.service.extended_card(self.base_url_fn(request), grpc_url))


def mount_rest(app: Any, service: Any, prefix: str = "", tenants: bool = True,
               base_url_fn: Callable[[Any], str] | None = None,
               grpc_url_fn: Callable[[Any], str | None] | None = None) -> RestBinding:
    """Register the REST routes under ``prefix`` (and ``prefix/{tenant}`` when ``tenants``)."""
    binding = RestBinding(service, base_url_fn, grpc_url_fn)
    prefix = prefix.rstrip("/")
    for method, path, handler in binding.routes():
        app.add(method, prefix + path, _guard(handler))
    if tenants:
        for method, path, handler in binding.routes():
            app.add(method, prefix + "/{tenant}" + path, _guard(handler))
    return binding


def _guard(handler: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A2A errors as REST error bodies; a bug as a generic 500 (details in the log)."""
    def guarded(request: Any) -> Any:
        try:
            version = parse_version(request.header("a2a-version"))
            if version is not None and version[0] != 1:
                raise VersionNotSupported(
                    f"A2A-Version {request.header('a2a-version')} is not served over HTTP+JSON "
                    "here; send A2A-Version: 1.0", {"supportedVersions": "1.0"})
            return handler(request)
        except A2AError as exc:
            return _json(rest_error(exc), exc.http_status)
        except Exception:
            log.exception("REST request failed")
            err = InternalError()
            return _json(rest_error(err), err.http_status)
    guarded.__name__ = getattr(handler, "__name__", "handler")
    return guarded


def _json(data: Any, status: int = 200) -> Any:
    from codetether.core.httpserver import Response

    return Response.json(data, status, content_type=CONTENT_TYPE)


def _body(request: Any) -> dict[str, Any]:
    check_content_type(request.header("content-type"))
    if not request.body:
        raise InvalidParams("the request body must be a JSON object")
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ParseError(f"malformed JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidParams("the request body must be a JSON object")
    return dialects.camel_case_names(body)


def _query_int(request: Any, name: str) -> int | None:
    value = request.arg(name)
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise InvalidParams(f"query parameter {name} must be a non-negative integer")
    return int(value)


def _sse(events: Iterator[dict[str, Any]]) -> Any:
    from codetether.core.httpserver import Response

    def encode() -> Iterator[bytes]:
        try:
            for event in events:
                if not event:  # idle: a comment keeps the connection and finds dead clients
                    yield b": keep-alive\n\n"
                    continue
                yield encode_sse(json.dumps(event, ensure_ascii=False))
        except A2AError as exc:
            yield encode_sse(json.dumps(rest_error(exc)), event="error")
        except Exception:
            log.exception("REST stream failed")
            yield encode_sse(json.dumps(rest_error(InternalError())), event="error")
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()

    return Response.sse(encode())
