"""The gRPC transport of the A2A client: ``lf.a2a.v1.A2AService`` with synchronous grpcio.

    transport = GrpcTransport("127.0.0.1:50051", token="...")
    transport.call("get", {"id": task_id})          # v1.0 dict in, v1.0 dict out
    for event in transport.stream("stream", params):
        ...

``A2AClient`` uses this when the agent card offers only gRPC (or ``transport="grpc"``), so
callers see the same methods and the same v1.0 JSON shapes as over JSON-RPC: requests go in
through ``ParseDict``, replies come out through ``MessageToDict`` (camelCase). Every call carries
the bearer token in ``authorization`` metadata and a deadline; a stream is an iterator that
cancels its call when the consumer stops iterating, so no server worker is left waiting.

Errors become the same ``A2AClientError`` as over JSON-RPC: the ``google.rpc.ErrorInfo`` in the
``grpc-status-details-bin`` trailer names the A2A error, which maps back to its JSON-RPC code
(``errors``); ``data`` is the ErrorInfo list a v1.0 JSON-RPC error carries. A v0.3 server's
``"<ErrorClass>: message"`` details are understood too.

``dialect="0.3"`` speaks ``a2a.v1.A2AService`` instead: requests and replies are converted
between v1.0 dicts and the v0.3 proto shapes (named resources ``tasks/{id}``, ``content``
parts, ``TASK_STATE_CANCELLED``) with the converters of ``grpc_binding``; v0.3 has no
ListTasks, and its card comes from ``GetAgentCard``.
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from codetether.a2a import errors as a2a_errors
from codetether.a2a.client import A2AClientError

Json = dict[str, Any]
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
STREAM_TIMEOUT = 3600.0  # a stream's deadline: an agent may work for a long time
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
# HTTP headers gRPC owns (or that make no sense as metadata): not copied from ``headers``
_RESERVED_HEADERS = {"content-type", "te", "user-agent", "host", "connection", "accept",
                     "content-length", "transfer-encoding", "authorization"}


@dataclass(frozen=True)
class _Rpc:
    """One client operation: the rpc, its request message, and how to read the reply."""

    method: str
    request: str
    streaming: bool = False
    defaults: tuple[tuple[str, Any], ...] = ()


RPCS: dict[str, _Rpc] = {
    "send": _Rpc("SendMessage", "SendMessageRequest"),
    "stream": _Rpc("SendStreamingMessage", "SendMessageRequest", streaming=True),
    "subscribe": _Rpc("SubscribeToTask", "SubscribeToTaskRequest", streaming=True),
    "get": _Rpc("GetTask", "GetTaskRequest"),
    "cancel": _Rpc("CancelTask", "CancelTaskRequest"),
    "list": _Rpc("ListTasks", "ListTasksRequest",
                 defaults=(("tasks", []), ("nextPageToken", ""), ("pageSize", 0),
                           ("totalSize", 0))),
    "push_set": _Rpc("CreateTaskPushNotificationConfig", "TaskPushNotificationConfig"),
    "push_get": _Rpc("GetTaskPushNotificationConfig", "GetTaskPushNotificationConfigRequest"),
    "push_list": _Rpc("ListTaskPushNotificationConfigs",
                      "ListTaskPushNotificationConfigsRequest",
                      defaults=(("configs", []), ("nextPageToken", ""))),
    "push_delete": _Rpc("DeleteTaskPushNotificationConfig",
                        "DeleteTaskPushNotificationConfigRequest"),
    "extended_card": _Rpc("GetExtendedAgentCard", "GetExtendedAgentCardRequest"),
}


# v0.3 operations: (rpc, request message); the request dicts come from ``_v03_request``
RPCS_V03: dict[str, tuple[str, str]] = {
    "send": ("SendMessage", "SendMessageRequest"),
    "stream": ("SendStreamingMessage", "SendMessageRequest"),
    "subscribe": ("TaskSubscription", "TaskSubscriptionRequest"),
    "get": ("GetTask", "GetTaskRequest"),
    "cancel": ("CancelTask", "CancelTaskRequest"),
    "push_set": ("CreateTaskPushNotificationConfig", "CreateTaskPushNotificationConfigRequest"),
    "push_get": ("GetTaskPushNotificationConfig", "GetTaskPushNotificationConfigRequest"),
    "push_list": ("ListTaskPushNotificationConfig", "ListTaskPushNotificationConfigRequest"),
    "push_delete": ("DeleteTaskPushNotificationConfig",
                    "DeleteTaskPushNotificationConfigRequest"),
    "extended_card": ("GetAgentCard", "GetAgentCardRequest"),
}


def parse_target(url: str) -> tuple[str, bool]:
    """(gRPC target ``host:port``, use TLS) from what a card or a person gives: ``host:port``,
    ``grpc://host:port``, ``grpcs://`` or ``https://`` (TLS), ``http://`` (plain)."""
    text = (url or "").strip()
    if "://" not in text:
        target, tls = text, False
    else:
        parsed = urllib.parse.urlparse(text)
        if parsed.scheme not in ("grpc", "grpcs", "http", "https") or not parsed.netloc:
            raise A2AClientError(None, f"not a gRPC address: {url!r}",
                                 hint="give host:port, e.g. 127.0.0.1:50051")
        target, tls = parsed.netloc, parsed.scheme in ("grpcs", "https")
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise A2AClientError(None, f"not a gRPC address: {url!r}",
                             hint="give host:port, e.g. 127.0.0.1:50051")
    return target, tls


class GrpcTransport:
    """One gRPC peer. Thread-safe: the channel is shared, each call is its own rpc."""

    def __init__(self, target: str, token: str | None = None, timeout: float = 60.0,
                 stream_timeout: float | None = None,
                 headers: dict[str, str] | None = None, dialect: str = "1.0") -> None:
        if dialect not in ("1.0", "0.3"):
            raise A2AClientError(None, f"unknown A2A dialect {dialect!r}", hint="use 1.0 or 0.3")
        self.target, self.tls = parse_target(target)
        self.dialect = dialect
        self.token = token
        self.timeout = timeout
        self.stream_timeout = max(stream_timeout or STREAM_TIMEOUT, timeout)
        self.extra_headers = {k.lower(): v for k, v in (headers or {}).items()
                              if k.lower() not in _RESERVED_HEADERS}
        self._lock = threading.Lock()
        self._channel: Any = None
        self._stub: Any = None
        self._pb2: Any = None

    # -- the channel -----------------------------------------------------------------------

    def _ready(self) -> tuple[Any, Any]:
        """(stub, pb2 module), opening the channel on first use."""
        with self._lock:
            if self._stub is None:
                self._open()
            return self._stub, self._pb2

    def _open(self) -> None:
        try:
            import grpc

            from codetether.a2a.grpc_binding import load_stubs
        except ImportError as exc:
            raise A2AClientError(None, f"gRPC is not available ({exc.name} is missing)",
                                 hint="install grpcio and protobuf, or use the JSON-RPC "
                                      "interface (--transport jsonrpc)") from None
        from codetether.core.errors import CodetetherError

        try:
            stubs = load_stubs()
        except CodetetherError as exc:
            raise A2AClientError(None, exc.message, hint=exc.hint) from None
        options = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                   ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)]
        if self.target.rpartition(":")[0] in _LOOPBACK:
            options.append(("grpc.enable_http_proxy", 0))  # as the JSON-RPC client does
        if self.tls:
            channel = grpc.secure_channel(self.target, grpc.ssl_channel_credentials(), options)
        else:
            channel = grpc.insecure_channel(self.target, options)
        self._channel = channel
        v1 = self.dialect == "1.0"
        self._stub = (stubs.v1_grpc if v1 else stubs.v03_grpc).A2AServiceStub(channel)
        self._pb2 = stubs.v1 if v1 else stubs.v03

    def close(self) -> None:
        """Close the channel (running streams end with a cancel)."""
        with self._lock:
            if self._channel is not None:
                self._channel.close()
            self._channel = self._stub = self._pb2 = None

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        items = {**({"a2a-version": "1.0"} if self.dialect == "1.0" else {}),
                 **self.extra_headers}
        if self.token:
            items["authorization"] = f"Bearer {self.token}"
        return tuple(items.items())

    # -- operations ------------------------------------------------------------------------

    def call(self, op: str, params: Json) -> Any:
        """A unary operation: v1.0 params in, the v1.0 result out (None for Empty)."""
        rpc = _rpc(op, streaming=False)
        stub, pb2 = self._ready()
        rpc, request = self._prepare(pb2, rpc, op, params)
        import grpc

        try:
            reply = getattr(stub, rpc.method)(request, metadata=self._metadata(),
                                              timeout=self.timeout)
        except grpc.RpcError as exc:
            raise rpc_error(exc, self.target, self.timeout) from None
        return self._result(op, params, _reply(reply, rpc))

    def stream(self, op: str, params: Json,
               ends: Callable[[Json], bool] | None = None) -> Iterator[Json]:
        """A streaming operation: StreamResponse dicts until the server ends the stream (or
        ``ends(event)`` says the last one came). As over JSON-RPC, the agent's errors raise
        while iterating; an iterator dropped unread cancels its call when collected."""
        rpc = _rpc(op, streaming=True)
        stub, pb2 = self._ready()
        rpc, request = self._prepare(pb2, rpc, op, params)
        call = getattr(stub, rpc.method)(request, metadata=self._metadata(),
                                         timeout=self.stream_timeout)
        convert = None if self.dialect == "1.0" else _stream_response_from_v03
        return _events(call, self.target, self.stream_timeout, ends, convert)

    def card(self) -> Json:
        """The agent card: ``GetExtendedAgentCard`` (v1.0 has no public-card rpc), or v0.3's
        ``GetAgentCard``."""
        return self.call("extended_card", {})

    def _prepare(self, pb2: Any, rpc: _Rpc, op: str, params: Json) -> tuple[_Rpc, Any]:
        """(the rpc to call, its request message) for this transport's dialect."""
        if self.dialect == "1.0":
            return rpc, _request(pb2, rpc, op, params)
        if op not in RPCS_V03:
            raise A2AClientError(-32004, f"{op} is not part of A2A 0.3 over gRPC",
                                 hint="the agent needs a v1.0 interface for this")
        method, request_name = RPCS_V03[op]
        legacy = _Rpc(method, request_name, rpc.streaming)
        return legacy, _request(pb2, legacy, op, _v03_request(op, params))

    def _result(self, op: str, params: Json, result: Any) -> Any:
        if self.dialect == "1.0" or result is None:
            return result
        try:
            return _v03_result(op, params, result)
        except (ValueError, AttributeError, TypeError, KeyError) as exc:
            raise A2AClientError(-32006, f"unexpected A2A 0.3 gRPC result for {op}: {exc}"
                                 ) from None


def _rpc(op: str, streaming: bool) -> _Rpc:
    rpc = RPCS.get(op)
    if rpc is None or rpc.streaming != streaming:
        raise A2AClientError(-32004, f"{op} is not an A2A gRPC operation")
    return rpc


def _request(pb2: Any, rpc: _Rpc, op: str, params: Json) -> Any:
    from google.protobuf import json_format

    try:
        return json_format.ParseDict(params, getattr(pb2, rpc.request)(),
                                     ignore_unknown_fields=True)
    except (json_format.ParseError, TypeError, ValueError) as exc:
        raise A2AClientError(-32602, f"bad {op} request for gRPC: {exc}") from None


def _reply(message: Any, rpc: _Rpc) -> Any:
    """The reply as proto3 JSON; Empty is None, and fields proto3 leaves out at their default
    value (an empty list, a zero total) are put back as JSON-RPC peers send them."""
    from codetether.a2a.grpc_binding import to_dict

    if message.DESCRIPTOR.full_name == "google.protobuf.Empty":
        return None
    result = to_dict(message)
    for key, value in rpc.defaults:
        result.setdefault(key, value)
    return result


def _events(call: Any, target: str, deadline: float, ends: Callable[[Json], bool] | None,
            convert: Callable[[Json], Json] | None = None) -> Iterator[Json]:
    """Yield the stream's events; cancel the call when done or when the consumer stops."""
    import grpc

    try:
        for message in call:
            event = _reply(message, RPCS["stream"])
            if convert is not None:
                try:
                    event = convert(event)
                except (ValueError, AttributeError, TypeError, KeyError) as exc:
                    raise A2AClientError(-32006, f"unexpected A2A 0.3 stream event: {exc}"
                                         ) from None
            yield event
            if ends is not None and ends(event):
                return
    except grpc.RpcError as exc:
        raise rpc_error(exc, target, deadline) from None
    finally:
        call.cancel()


# -- v0.3: v1.0 dicts <-> a2a.v1 proto JSON --------------------------------------------------

def _v03_request(op: str, params: Json) -> Json:
    """A v1.0 request dict as the v0.3 proto request's JSON."""
    from codetether.a2a import grpc_binding as gb

    if op in ("send", "stream"):
        config = params.get("configuration") or {}
        legacy: Json = {"blocking": not config.get("returnImmediately", False)}
        for key in ("acceptedOutputModes", "historyLength"):
            if config.get(key):
                legacy[key] = config[key]
        if config.get("taskPushNotificationConfig"):
            legacy["pushNotification"] = _push_to_v03(config["taskPushNotificationConfig"])
        request: Json = {"message": gb.message_to_v03(params["message"]),
                         "configuration": legacy}
        if params.get("metadata"):
            request["metadata"] = params["metadata"]
        return request
    if op in ("get", "cancel", "subscribe"):
        request = {"name": f"tasks/{params['id']}"}
        if op == "get" and params.get("historyLength"):
            request["historyLength"] = params["historyLength"]
        return request
    if op == "push_set":
        return {"parent": f"tasks/{params['taskId']}", "configId": params.get("id", ""),
                "config": {"pushNotificationConfig": _push_to_v03(params)}}
    if op in ("push_get", "push_delete"):
        return {"name": f"tasks/{params['taskId']}/pushNotificationConfigs/{params['id']}"}
    if op == "push_list":
        return {"parent": f"tasks/{params['taskId']}"}
    return {}


def _push_to_v03(config: Json) -> Json:
    from codetether.a2a import dialects

    return dialects.to_v03_push_config({k: v for k, v in config.items() if k != "taskId"})


def _v03_result(op: str, params: Json, result: Json) -> Any:
    """A v0.3 proto reply (as JSON) in the v1.0 shape of the JSON-RPC client's results."""
    from codetether.a2a import dialects
    from codetether.a2a import grpc_binding as gb

    if op == "send":
        return _stream_response_from_v03(result)
    if op in ("get", "cancel"):
        return _task_from_v03(result)
    if op in ("push_set", "push_get"):
        task_id, config_id = gb.config_name(result.get("name", ""))
        return gb.push_config_from_v03(result, task_id, config_id)
    if op == "push_list":
        configs = []
        for config in result.get("configs") or []:
            task_id, config_id = gb.config_name(config.get("name", ""))
            configs.append(gb.push_config_from_v03(config, task_id, config_id))
        return {"configs": configs, "nextPageToken": result.get("nextPageToken", "")}
    if op == "extended_card":
        card = dialects.to_v1_card(result)
        # our v0.3 proto card keeps security in the proto (v1.0-like) shapes
        for key, v1_key in (("securitySchemes", "securitySchemes"),
                            ("security", "securityRequirements")):
            if result.get(key):
                card[v1_key] = result[key]
        return card
    return result


def _status_from_v03(status: Json) -> Json:
    from codetether.a2a import grpc_binding as gb

    out: Json = {"state": gb._STATE_IN.get(status.get("state", ""), status.get("state", ""))}
    if status.get("message"):
        out["message"] = gb.message_from_v03(status["message"])
    if status.get("timestamp"):
        out["timestamp"] = status["timestamp"]
    return out


def _artifact_from_v03(artifact: Json) -> Json:
    from codetether.a2a import grpc_binding as gb

    return {**artifact, "parts": [gb.part_from_v03(p) for p in artifact.get("parts") or []]}


def _task_from_v03(task: Json) -> Json:
    from codetether.a2a import grpc_binding as gb

    out = {k: v for k, v in task.items() if k in ("id", "contextId", "metadata")}
    out["status"] = _status_from_v03(task.get("status") or {})
    if task.get("artifacts"):
        out["artifacts"] = [_artifact_from_v03(a) for a in task["artifacts"]]
    if task.get("history"):
        out["history"] = [gb.message_from_v03(m) for m in task["history"]]
    return out


def _stream_response_from_v03(response: Json) -> Json:
    from codetether.a2a import grpc_binding as gb

    if "task" in response:
        return {"task": _task_from_v03(response["task"])}
    if "msg" in response or "message" in response:
        return {"message": gb.message_from_v03(response.get("message") or response["msg"])}
    if "statusUpdate" in response:
        update = {k: v for k, v in response["statusUpdate"].items() if k != "final"}
        update["status"] = _status_from_v03(update.get("status") or {})
        return {"statusUpdate": update}
    if "artifactUpdate" in response:
        update = dict(response["artifactUpdate"])
        update["artifact"] = _artifact_from_v03(update.get("artifact") or {})
        return {"artifactUpdate": update}
    raise ValueError("a StreamResponse with none of task, message, statusUpdate, "
                     "artifactUpdate")


# -- errors ----------------------------------------------------------------------------------

def _error_tables() -> tuple[dict[str, int], dict[str, int]]:
    """(ErrorInfo reason -> JSON-RPC code, v0.3 error class name -> code), from ``errors``."""
    from codetether.a2a.grpc_binding import _V03_ERROR_NAMES

    reasons = {cls.reason: cls.code for cls in vars(a2a_errors).values()
               if isinstance(cls, type) and issubclass(cls, a2a_errors.A2AError)}
    return reasons, {name: code for code, name in _V03_ERROR_NAMES.items()}


def rpc_error(exc: Any, target: str, deadline: float) -> A2AClientError:
    """A failed rpc as an ``A2AClientError`` with the code a JSON-RPC peer would have sent."""
    import grpc

    status = exc.code()
    details = exc.details() or status.name
    info = _error_info(exc)
    reasons, v03_names = _error_tables()
    name, sep, rest = details.partition(": ")
    if sep and name in v03_names:  # a v0.3 server's "<ErrorClass>: message"
        details = rest or details
    if info is not None and info.get("reason") in reasons:
        return A2AClientError(reasons[info["reason"]], details, [info])
    if sep and name in v03_names:
        return A2AClientError(v03_names[name], details)
    if status == grpc.StatusCode.UNAUTHENTICATED:
        return A2AClientError(401, f"A2A agent at {target} refused the call: {details}",
                              hint="pass the agent's bearer token (--token or "
                                   "CODETETHER_A2A_TOKEN)")
    if status == grpc.StatusCode.PERMISSION_DENIED:
        return A2AClientError(403, f"A2A agent at {target} refused the call: {details}")
    if status == grpc.StatusCode.UNAVAILABLE:
        return A2AClientError(None, f"cannot reach A2A agent at {target} over gRPC: {details}",
                              hint="is the agent running with gRPC on that host:port? "
                                   "(codetether serve --grpc-port)")
    if status == grpc.StatusCode.DEADLINE_EXCEEDED:
        return A2AClientError(None, f"A2A agent at {target} did not answer within "
                                    f"{deadline:g}s", hint="raise --timeout")
    if status == grpc.StatusCode.UNIMPLEMENTED:
        return A2AClientError(-32601, f"A2A agent at {target}: {details}",
                              hint="the agent does not serve this A2A gRPC service or "
                                   "method; try the other dialect or its JSON-RPC interface")
    return A2AClientError(None, f"A2A agent at {target} failed the call ({status.name}): "
                                f"{details}")


def _error_info(exc: Any) -> Json | None:
    """The ``google.rpc.ErrorInfo`` of the status-details trailer, as v1.0 JSON-RPC ``data``
    carries it; None when there is none (or the trailer is not valid)."""
    try:
        from google.protobuf import json_format
        from google.rpc import error_details_pb2
        from grpc_status import rpc_status
    except ImportError:
        return None
    try:
        status = rpc_status.from_call(exc)
    except (ValueError, AttributeError, TypeError):
        return None
    for detail in getattr(status, "details", None) or ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return {"@type": a2a_errors.ERROR_INFO_TYPE,
                    **json_format.MessageToDict(info)}
    return None


__all__ = ["GrpcTransport", "RPCS", "RPCS_V03", "parse_target", "rpc_error"]
