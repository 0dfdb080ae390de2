"""JSON-RPC 2.0: message shapes, errors and a method dispatcher shared by A2A, MCP, ACP, LSP.

Transport-free on purpose: the HTTP servers hand one decoded request to ``Dispatcher.dispatch``;
the stdio endpoints (``core.jsonrpc_stream``) do the same per line. A handler returns a result
or raises ``JsonRpcError``; any other exception becomes -32603 with a generic message (the
traceback goes to the log, never to the peer).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

log = logging.getLogger("codetether.jsonrpc")

Handler = Callable[..., Any]


class JsonRpcError(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def decode(text: str | bytes) -> Any:
    """Parse one message (or batch); malformed JSON is a -32700 error."""
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise JsonRpcError(PARSE_ERROR, f"parse error: {exc}") from None


def encode(message: dict[str, Any]) -> str:
    """One line of compact JSON (no embedded newlines: safe for newline-delimited streams)."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def request(id: Any, method: str, params: Any = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": id, "method": method}
    if params is not None:
        message["params"] = params
    return message


def notification(method: str, params: Any = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    return message


def result_response(id: Any, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id, "result": result}


def error_response(id: Any, error: JsonRpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id, "error": error.to_json()}


def is_response(message: Any) -> bool:
    return isinstance(message, dict) and "method" not in message and (
        "result" in message or "error" in message)


def validate_request(message: Any) -> tuple[Any, str, Any]:
    """(id, method, params) of a well-formed request or notification, else -32600."""
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        raise JsonRpcError(INVALID_REQUEST, "invalid request: expected a JSON-RPC 2.0 object")
    method = message.get("method")
    if not isinstance(method, str) or not method:
        raise JsonRpcError(INVALID_REQUEST, "invalid request: method must be a non-empty string")
    request_id = message.get("id")
    if request_id is not None and (isinstance(request_id, bool)
                                   or not isinstance(request_id, (str, int, float))):
        raise JsonRpcError(INVALID_REQUEST, "invalid request: id must be a string or number")
    params = message.get("params")
    if params is not None and not isinstance(params, (dict, list)):
        raise JsonRpcError(INVALID_REQUEST, "invalid request: params must be an object or array")
    return request_id, method, params


class Dispatcher:
    """Method name -> handler. Handlers take the params object as keyword arguments is NOT
    assumed: they get ``(params, context)`` so unknown fields never break them."""

    def __init__(self) -> None:
        self._handlers: dict[str, Callable[[Any, Any], Any]] = {}

    def register(self, method: str, handler: Callable[[Any, Any], Any]) -> None:
        self._handlers[method] = handler

    def method(self, name: str) -> Callable[[Callable[[Any, Any], Any]], Callable[[Any, Any], Any]]:
        def decorate(func: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
            self.register(name, func)
            return func
        return decorate

    def has(self, method: str) -> bool:
        return method in self._handlers

    def call(self, method: str, params: Any, context: Any = None) -> Any:
        handler = self._handlers.get(method)
        if handler is None:
            raise JsonRpcError(METHOD_NOT_FOUND, f"method not found: {method}")
        return handler(params if params is not None else {}, context)

    def dispatch(self, message: Any, context: Any = None) -> dict[str, Any] | None:
        """Handle one decoded message; the response, or None for a notification."""
        request_id = message.get("id") if isinstance(message, dict) else None
        try:
            request_id, method, params = validate_request(message)
            result = self.call(method, params, context)
        except JsonRpcError as exc:
            return None if _is_notification(message) else error_response(request_id, exc)
        except Exception:
            log.exception("JSON-RPC handler failed")
            if _is_notification(message):
                return None
            return error_response(request_id, JsonRpcError(INTERNAL_ERROR, "internal error"))
        return None if _is_notification(message) else result_response(request_id, result)


def _is_notification(message: Any) -> bool:
    return isinstance(message, dict) and "id" not in message and "method" in message
