"""The A2A error table: one class per error, carrying its code on every binding.

The JSON-RPC code, the ``google.rpc.ErrorInfo`` reason, the HTTP status and the gRPC status
name come from one row (protocols.md §1.4), so JSON-RPC, REST and gRPC answer the same mistake
the same way and SDK clients can raise typed errors.
"""

from __future__ import annotations

from typing import Any

ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"
DOMAIN = "a2a-protocol.org"


class A2AError(Exception):
    """Base of every error the A2A service raises for a caller's request."""

    code = -32603
    reason = "INTERNAL_ERROR"
    http_status = 500
    grpc_code = "INTERNAL"
    default_message = "internal error"

    def __init__(self, message: str | None = None, metadata: dict[str, str] | None = None
                 ) -> None:
        self.message = message or self.default_message
        self.metadata = metadata or {}
        super().__init__(self.message)


class TaskNotFound(A2AError):
    code, reason, http_status, grpc_code = -32001, "TASK_NOT_FOUND", 404, "NOT_FOUND"
    default_message = "task not found"


# Codes and their gRPC/HTTP mappings follow the A2A v1.0 specification, §5.4.
class TaskNotCancelable(A2AError):
    code, reason, http_status, grpc_code = -32002, "TASK_NOT_CANCELABLE", 409, \
        "FAILED_PRECONDITION"
    default_message = "task cannot be canceled"


class PushNotificationNotSupported(A2AError):
    code, reason, http_status, grpc_code = -32003, "PUSH_NOTIFICATION_NOT_SUPPORTED", 400, \
        "UNIMPLEMENTED"
    default_message = "push notifications are not supported"


class UnsupportedOperation(A2AError):
    code, reason, http_status, grpc_code = -32004, "UNSUPPORTED_OPERATION", 400, \
        "UNIMPLEMENTED"
    default_message = "this operation is not supported"


class ContentTypeNotSupported(A2AError):
    code, reason, http_status, grpc_code = -32005, "CONTENT_TYPE_NOT_SUPPORTED", 415, \
        "INVALID_ARGUMENT"
    default_message = "incompatible content types"


class InvalidAgentResponse(A2AError):
    code, reason, http_status, grpc_code = -32006, "INVALID_AGENT_RESPONSE", 502, "INTERNAL"
    default_message = "invalid agent response"


class ExtendedCardNotConfigured(A2AError):
    code, reason, http_status, grpc_code = -32007, "EXTENDED_AGENT_CARD_NOT_CONFIGURED", 400, \
        "FAILED_PRECONDITION"
    default_message = "the extended agent card is not configured"


class ExtensionSupportRequired(A2AError):
    code, reason, http_status, grpc_code = -32008, "EXTENSION_SUPPORT_REQUIRED", 400, \
        "FAILED_PRECONDITION"
    default_message = "extension support required"


class VersionNotSupported(A2AError):
    code, reason, http_status, grpc_code = -32009, "VERSION_NOT_SUPPORTED", 400, \
        "UNIMPLEMENTED"
    default_message = "protocol version not supported"


class InvalidParams(A2AError):
    code, reason, http_status, grpc_code = -32602, "INVALID_PARAMS", 400, "INVALID_ARGUMENT"
    default_message = "invalid params"


class InvalidRequest(A2AError):
    code, reason, http_status, grpc_code = -32600, "INVALID_REQUEST", 400, "INVALID_ARGUMENT"
    default_message = "invalid request"


class MethodNotFound(A2AError):
    code, reason, http_status, grpc_code = -32601, "METHOD_NOT_FOUND", 404, "UNIMPLEMENTED"
    default_message = "method not found"


class ParseError(A2AError):
    code, reason, http_status, grpc_code = -32700, "PARSE_ERROR", 400, "INVALID_ARGUMENT"
    default_message = "invalid JSON payload"


class InternalError(A2AError):
    """A bug or an unexpected failure; the message stays generic (details go to the log)."""


HTTP_STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                     404: "NOT_FOUND", 405: "UNIMPLEMENTED", 413: "INVALID_ARGUMENT",
                     500: "INTERNAL"}


def error_info(err: A2AError) -> dict[str, Any]:
    """The ``google.rpc.ErrorInfo`` JSON that SDK clients map back to a typed error."""
    return {"@type": ERROR_INFO_TYPE, "reason": err.reason, "domain": DOMAIN,
            "metadata": {str(k): str(v) for k, v in err.metadata.items()}}


def jsonrpc_error(err: A2AError, v1: bool = True) -> dict[str, Any]:
    """The JSON-RPC ``error`` member: v1.0 carries ``data`` as an array with the ErrorInfo."""
    body: dict[str, Any] = {"code": err.code, "message": err.message}
    if v1:
        body["data"] = [error_info(err)]
    elif err.metadata:
        body["data"] = dict(err.metadata)
    return body


def rest_error(err: A2AError) -> dict[str, Any]:
    """The HTTP+JSON error body: ``{"error": {code, status, message, details}}``."""
    return {"error": {"code": err.http_status, "status": err.grpc_code, "message": err.message,
                      "details": [error_info(err)]}}
