"""The A2A gRPC binding: ``lf.a2a.v1.A2AService`` (v1.0) and ``a2a.v1.A2AService`` (v0.3).

One ``grpc.server`` on a thread pool serves both services over the same ``A2AService`` as the
JSON-RPC and REST bindings, so a task created over one wire can be read over another. The
stubs come from our own ``proto/*.proto``, generated at build time into ``grpc_gen`` (``make
proto``); without them ``serve_grpc`` says so in one line.

v1.0 messages map to the service's canonical dicts through the proto3 JSON mapping
(``MessageToDict`` / ``ParseDict``). v0.3 messages are a third shape -- neither v1.0 nor v0.3
JSON-RPC: resources are named (``tasks/{id}``), parts are ``content`` with ``FilePart`` /
``DataPart`` members, ``TASK_STATE_CANCELLED`` is spelled the British way -- so this module
converts v0.3 proto JSON to v0.3 JSON-RPC shapes and lets ``dialects`` do the rest.

Errors leave as gRPC status codes (protocols.md §1.4) with a ``google.rpc.Status`` carrying the
``ErrorInfo`` in the ``grpc-status-details-bin`` trailer, which is what a2a-sdk's v1.0 client
needs to raise typed errors; its v0.3 client reads ``"<ErrorClass>: message"`` from the status
details instead, so v0.3 replies use that text. Every call needs a valid bearer token in the
``authorization`` metadata (UNAUTHENTICATED otherwise) unless the server runs without auth.
"""

from __future__ import annotations

import base64
import binascii
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from codetether.a2a import dialects
from codetether.a2a.errors import DOMAIN, A2AError, InternalError, InvalidParams
from codetether.core.errors import CodetetherError

log = logging.getLogger("codetether.a2a.grpc")

Json = dict[str, Any]
ANONYMOUS = "anonymous"
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
STUBS_HINT = "run `make proto` (python scripts/gen_proto.py) to generate them from proto/"

# a2a-sdk's v0.3 gRPC client maps "<name>: message" in the status details back to its error
# classes (by JSON-RPC code: the A2A table of protocols.md §1.4 plus the JSON-RPC standard ones)
_V03_ERROR_NAMES = {
    -32001: "TaskNotFoundError", -32002: "TaskNotCancelableError",
    -32003: "PushNotificationNotSupportedError", -32004: "UnsupportedOperationError",
    -32005: "ContentTypeNotSupportedError", -32006: "InvalidAgentResponseError",
    -32007: "ExtendedAgentCardNotConfiguredError", -32008: "ExtensionSupportRequiredError",
    -32009: "VersionNotSupportedError", -32600: "InvalidRequestError",
    -32601: "MethodNotFoundError", -32602: "InvalidParamsError", -32603: "InternalError",
    -32700: "JSONParseError"}


class GrpcUnavailable(CodetetherError):
    """The gRPC binding cannot start: stubs not generated, or the port cannot be bound."""


@dataclass
class Stubs:
    """The generated modules (imported late: only ``serve`` with gRPC needs them)."""

    v1: ModuleType
    v1_grpc: ModuleType
    v03: ModuleType
    v03_grpc: ModuleType


def load_stubs() -> Stubs:
    """Import the generated stubs, or explain in one line how to create them."""
    try:
        from codetether.a2a.grpc_gen import (
            a2a_pb2,
            a2a_pb2_grpc,
            a2a_v03_pb2,
            a2a_v03_pb2_grpc,
        )
    except ImportError as exc:
        raise GrpcUnavailable(f"the A2A gRPC stubs are missing ({exc})", STUBS_HINT) from None
    except Exception as exc:  # e.g. protobuf's gencode/runtime version check
        raise GrpcUnavailable(f"the A2A gRPC stubs cannot be loaded ({exc})",
                              STUBS_HINT) from None
    return Stubs(a2a_pb2, a2a_pb2_grpc, a2a_v03_pb2, a2a_v03_pb2_grpc)


class GrpcServer:
    """A running gRPC server: ``port`` it listens on, ``stop(grace)`` to end it."""

    def __init__(self, server: Any, host: str, port: int) -> None:
        self._server = server
        self.host = host
        self.port = port

    @property
    def address(self) -> str:
        """``host:port`` as a gRPC target (what the agent card advertises)."""
        return f"{_host_for_target(self.host)}:{self.port}"

    def stop(self, grace: float | None = None) -> None:
        """Refuse new calls, give running ones ``grace`` seconds, then cancel them."""
        self._server.stop(grace).wait()

    def wait(self, timeout: float | None = None) -> bool:
        return self._server.wait_for_termination(timeout)


def serve_grpc(service: Any, host: str = "127.0.0.1", port: int = 0, auth: Any = None, *,
               base_url: str = "", grpc_url: str | None = None, max_workers: int = 64
               ) -> GrpcServer:
    """Start serving both A2A services on ``host:port`` (0 picks a free port).

    ``auth`` is a ``TokenAuth``; None serves without authentication (embedding, tests).
    ``base_url`` / ``grpc_url`` are what ``GetExtendedAgentCard`` puts in the card."""
    from concurrent.futures import ThreadPoolExecutor

    import grpc

    stubs = load_stubs()
    server = grpc.server(
        ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="a2a-grpc"),
        options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                 ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                 ("grpc.so_reuseport", 0)])
    target = f"{_host_for_target(host)}:{port}"
    try:
        bound = server.add_insecure_port(target)
    except RuntimeError:
        bound = 0
    if not bound:
        raise GrpcUnavailable(f"cannot listen for gRPC on {target} (address in use or not "
                              "local)", "choose another --grpc-port or stop the other server")
    card_grpc_url = grpc_url or f"{_host_for_target(host)}:{bound}"
    binding = _Binding(service, auth, base_url, card_grpc_url)
    stubs.v1_grpc.add_A2AServiceServicer_to_server(V1Servicer(binding, stubs.v1), server)
    stubs.v03_grpc.add_A2AServiceServicer_to_server(V03Servicer(binding, stubs.v03), server)
    server.start()
    return GrpcServer(server, host, bound)


def _host_for_target(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


# -- the shared machinery: auth, versions, errors, JSON mapping ------------------------------

class _Metadata:
    """gRPC metadata looking like an HTTP request to ``TokenAuth.principal``."""

    def __init__(self, context: Any) -> None:
        self._items = {k.lower(): v for k, v in context.invocation_metadata() or ()
                       if isinstance(v, str)}

    def header(self, name: str, default: str | None = None) -> str | None:
        return self._items.get(name.lower(), default)


class _Binding:
    """What both servicers share: the service, auth, error replies."""

    def __init__(self, service: Any, auth: Any, base_url: str, grpc_url: str) -> None:
        self.service = service
        self.auth = auth
        self.base_url = base_url
        self.grpc_url = grpc_url

    def principal(self, context: Any, v1: bool) -> str:
        """Who is calling; aborts the call with UNAUTHENTICATED without a valid token."""
        import grpc

        meta = _Metadata(context)
        who = ANONYMOUS if self.auth is None else self.auth.principal(meta)
        if who is None:
            context.set_trailing_metadata((("www-authenticate", 'Bearer realm="codetether"'),))
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")
        version = meta.header("a2a-version")
        if v1 and version and version.strip().split(".")[0] != "1":
            self.abort(context, _version_error(version), v03=False)
        return who

    def unary(self, context: Any, v1: bool, call: Callable[[str], Any]) -> Any:
        principal = self.principal(context, v1)
        try:
            return call(principal)
        except A2AError as exc:
            error: A2AError = exc
        except Exception:
            log.exception("gRPC call failed")
            error = InternalError()
        self.abort(context, error, v03=not v1)

    def stream(self, context: Any, v1: bool, start: Callable[[str], Iterator[Json]],
               convert: Callable[[Json], Any]) -> Iterator[Any]:
        """Relay a service stream. Errors in the request end the call before the first item;
        a client that goes away frees this worker at once (see ``_relay``)."""
        principal = self.principal(context, v1)
        error: A2AError | None = None
        events: Iterator[Json] | None = None
        try:
            events = start(principal)
        except A2AError as exc:
            error = exc
        except Exception:
            log.exception("gRPC stream failed to start")
            error = InternalError()
        if error is not None or events is None:
            self.abort(context, error or InternalError(), v03=not v1)
        try:
            for event in _relay(events, context):
                yield convert(event)
        except A2AError as exc:
            error = exc
        except Exception:
            log.exception("gRPC stream failed")
            error = InternalError()
        if error is not None:
            self.abort(context, error, v03=not v1)

    def abort(self, context: Any, error: A2AError, v03: bool) -> None:
        """End the call with the error's status and a google.rpc.Status + ErrorInfo trailer."""
        import grpc
        from google.protobuf import any_pb2
        from google.rpc import error_details_pb2, status_pb2
        from grpc_status import rpc_status

        code = getattr(grpc.StatusCode, error.grpc_code, grpc.StatusCode.INTERNAL)
        message = error.message
        if v03:
            message = f"{_V03_ERROR_NAMES.get(error.code, 'InternalError')}: {message}"
        info = error_details_pb2.ErrorInfo(
            reason=error.reason, domain=DOMAIN,
            metadata={str(k): str(v) for k, v in (error.metadata or {}).items()})
        detail = any_pb2.Any()
        detail.Pack(info)
        status = status_pb2.Status(code=code.value[0], message=message, details=[detail])
        context.abort_with_status(rpc_status.to_status(status))


_END = object()
_GONE = object()


def _relay(events: Iterator[Json], context: Any) -> Iterator[Json]:
    """Items of ``events``, read on a helper thread, until they end or the call does.

    A service stream blocks between events (an agent may think for minutes). If the gRPC
    worker itself waited there, every client that hangs up mid-task would hold one of the
    pool's threads until the task's next event, and enough of them would stall the server.
    So a helper thread waits instead, and the call's termination callback (client gone,
    deadline, server stop) releases the worker immediately; the helper closes the service
    stream (unsubscribing) when its next event arrives or the task ends."""
    box: queue.Queue[Any] = queue.Queue()
    gone = threading.Event()

    def pump() -> None:
        try:
            for event in events:
                if gone.is_set():
                    break
                box.put(event)
            box.put(_END)
        except BaseException as exc:  # handed to the worker, which reports it
            box.put(exc)
        finally:
            _close(events)

    def hung_up() -> None:
        gone.set()
        box.put(_GONE)

    if not context.add_callback(hung_up):  # the call has already ended
        _close(events)
        return
    threading.Thread(target=pump, name="a2a-grpc-stream", daemon=True).start()
    try:
        while True:
            item = box.get()
            if item is _END or item is _GONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        gone.set()


def _close(events: Iterator[Json]) -> None:
    close = getattr(events, "close", None)
    if close is not None:
        close()


def _version_error(version: str) -> A2AError:
    from codetether.a2a.errors import VersionNotSupported

    return VersionNotSupported(f"A2A version {version} is not served by lf.a2a.v1.A2AService; "
                               "use 1.0 here, or a2a.v1.A2AService for 0.3")


def to_dict(message: Any) -> Json:
    """A proto message as proto3 JSON (camelCase), integral numbers back to ints."""
    from google.protobuf import json_format

    return _ints(json_format.MessageToDict(message))


def to_proto(cls: Any, data: Json) -> Any:
    """A service dict as a proto message; fields our proto lacks are dropped, not fatal."""
    from google.protobuf import json_format

    return json_format.ParseDict(data, cls(), ignore_unknown_fields=True)


def _ints(value: Any) -> Any:
    """Struct/Value numbers arrive as doubles; A2A has no double fields, so 42.0 was 42."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2 ** 53:
        return int(value)
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return value


# -- v1.0: lf.a2a.v1.A2AService ---------------------------------------------------------------

class V1Servicer:
    """``lf.a2a.v1.A2AService``: requests and replies are the service's dicts, via proto JSON."""

    def __init__(self, binding: _Binding, pb2: ModuleType) -> None:
        self.b = binding
        self.pb2 = pb2

    def SendMessage(self, request: Any, context: Any) -> Any:
        params = to_dict(request)
        return self.b.unary(context, True, lambda who: to_proto(
            self.pb2.SendMessageResponse, self.b.service.send_message(params, who)))

    def SendStreamingMessage(self, request: Any, context: Any) -> Iterator[Any]:
        params = to_dict(request)
        return self.b.stream(context, True,
                             lambda who: self.b.service.stream_message(params, who),
                             lambda event: to_proto(self.pb2.StreamResponse, event))

    def GetTask(self, request: Any, context: Any) -> Any:
        history = request.history_length if request.HasField("history_length") else None
        return self.b.unary(context, True, lambda who: to_proto(
            self.pb2.Task, self.b.service.get_task(request.id, history)))

    def ListTasks(self, request: Any, context: Any) -> Any:
        params = to_dict(request)
        return self.b.unary(context, True, lambda who: to_proto(
            self.pb2.ListTasksResponse, self.b.service.list_tasks(params)))

    def CancelTask(self, request: Any, context: Any) -> Any:
        return self.b.unary(context, True, lambda who: to_proto(
            self.pb2.Task, self.b.service.cancel_task(request.id, who)))

    def SubscribeToTask(self, request: Any, context: Any) -> Iterator[Any]:
        return self.b.stream(context, True, lambda who: self.b.service.subscribe(request.id),
                             lambda event: to_proto(self.pb2.StreamResponse, event))

    def CreateTaskPushNotificationConfig(self, request: Any, context: Any) -> Any:
        config = to_dict(request)
        return self.b.unary(context, True, lambda who: to_proto(
            self.pb2.TaskPushNotificationConfig,
            self.b.service.create_push_config(request.task_id, config)))

    def GetTaskPushNotificationConfig(self, request: Any, context: Any) -> Any:
        return self.b.unary(context, True, lambda who: to_proto(
            self.pb2.TaskPushNotificationConfig,
            self.b.service.get_push_config(request.task_id, request.id)))

    def ListTaskPushNotificationConfigs(self, request: Any, context: Any) -> Any:
        return self.b.unary(context, True, lambda who: to_proto(
            self.pb2.ListTaskPushNotificationConfigsResponse,
            self.b.service.list_push_configs(request.task_id)))

    def DeleteTaskPushNotificationConfig(self, request: Any, context: Any) -> Any:
        from google.protobuf import empty_pb2

        def delete(who: str) -> Any:
            self.b.service.delete_push_config(request.task_id, request.id)
            return empty_pb2.Empty()
        return self.b.unary(context, True, delete)

    def GetExtendedAgentCard(self, request: Any, context: Any) -> Any:
        return self.b.unary(context, True, lambda who: to_proto(
            self.pb2.AgentCard, self.b.service.extended_card(self.b.base_url, self.b.grpc_url)))


# -- v0.3: a2a.v1.A2AService -------------------------------------------------------------------

class V03Servicer:
    """``a2a.v1.A2AService``: v0.3 proto JSON <-> v0.3 JSON-RPC shapes <-> the service's v1.0."""

    def __init__(self, binding: _Binding, pb2: ModuleType) -> None:
        self.b = binding
        self.pb2 = pb2

    def SendMessage(self, request: Any, context: Any) -> Any:
        params = send_params_from_v03(to_dict(request), request.HasField("configuration"))
        return self.b.unary(context, False, lambda who: to_proto(
            self.pb2.SendMessageResponse,
            stream_response_to_v03(self.b.service.send_message(params, who))))

    def SendStreamingMessage(self, request: Any, context: Any) -> Iterator[Any]:
        params = send_params_from_v03(to_dict(request), request.HasField("configuration"))
        return self.b.stream(context, False,
                             lambda who: self.b.service.stream_message(params, who),
                             lambda event: to_proto(self.pb2.StreamResponse,
                                                    stream_response_to_v03(event)))

    def GetTask(self, request: Any, context: Any) -> Any:
        history = request.history_length or None  # v0.3: 0 means "not set"
        return self.b.unary(context, False, lambda who: to_proto(
            self.pb2.Task, task_to_v03(self.b.service.get_task(task_name(request.name),
                                                               history))))

    def CancelTask(self, request: Any, context: Any) -> Any:
        return self.b.unary(context, False, lambda who: to_proto(
            self.pb2.Task, task_to_v03(self.b.service.cancel_task(task_name(request.name),
                                                                  who))))

    def TaskSubscription(self, request: Any, context: Any) -> Iterator[Any]:
        return self.b.stream(context, False,
                             lambda who: self.b.service.subscribe(task_name(request.name)),
                             lambda event: to_proto(self.pb2.StreamResponse,
                                                    stream_response_to_v03(event)))

    def CreateTaskPushNotificationConfig(self, request: Any, context: Any) -> Any:
        body = to_dict(request)

        def create(who: str) -> Any:
            task_id = task_name(request.parent)
            config = push_config_from_v03(body.get("config") or {}, task_id,
                                          request.config_id)
            created = self.b.service.create_push_config(task_id, config, dialect="0.3")
            return to_proto(self.pb2.TaskPushNotificationConfig, push_config_to_v03(created))
        return self.b.unary(context, False, create)

    def GetTaskPushNotificationConfig(self, request: Any, context: Any) -> Any:
        def get(who: str) -> Any:
            task_id, config_id = config_name(request.name)
            config = self.b.service.get_push_config(task_id, config_id)
            return to_proto(self.pb2.TaskPushNotificationConfig, push_config_to_v03(config))
        return self.b.unary(context, False, get)

    def ListTaskPushNotificationConfig(self, request: Any, context: Any) -> Any:
        def listing(who: str) -> Any:
            result = self.b.service.list_push_configs(task_name(request.parent))
            return to_proto(self.pb2.ListTaskPushNotificationConfigResponse,
                            {"configs": [push_config_to_v03(c) for c in result["configs"]],
                             "nextPageToken": result.get("nextPageToken", "")})
        return self.b.unary(context, False, listing)

    def DeleteTaskPushNotificationConfig(self, request: Any, context: Any) -> Any:
        from google.protobuf import empty_pb2

        def delete(who: str) -> Any:
            self.b.service.delete_push_config(*config_name(request.name))
            return empty_pb2.Empty()
        return self.b.unary(context, False, delete)

    def GetAgentCard(self, request: Any, context: Any) -> Any:
        """v0.3's only card rpc: the extended card when there is one, else the public card."""
        def card(who: str) -> Any:
            from codetether.a2a.errors import ExtendedCardNotConfigured

            service, base, grpc_url = self.b.service, self.b.base_url, self.b.grpc_url
            try:
                found = service.extended_card(base, grpc_url)
            except ExtendedCardNotConfigured:
                found = service.agent_card(base, grpc_url)
            return to_proto(self.pb2.AgentCard, card_to_v03(found))
        return self.b.unary(context, False, card)


# -- v0.3 proto JSON <-> v1.0 dicts ------------------------------------------------------------

_STATE_OUT = {"TASK_STATE_CANCELED": "TASK_STATE_CANCELLED"}
_STATE_IN = {v: k for k, v in _STATE_OUT.items()}


def task_name(name: str) -> str:
    """``tasks/{id}`` -> id (a bare id is accepted too)."""
    parts = (name or "").split("/")
    if len(parts) == 2 and parts[0] == "tasks" and parts[1]:
        return parts[1]
    if len(parts) == 1 and parts[0]:
        return parts[0]
    raise InvalidParams(f"bad task name {name!r}: expected tasks/{{id}}")


def config_name(name: str) -> tuple[str, str]:
    """``tasks/{id}/pushNotificationConfigs/{config}`` -> (id, config)."""
    parts = (name or "").split("/")
    if len(parts) == 4 and parts[0] == "tasks" and parts[2] == "pushNotificationConfigs" \
            and parts[1] and parts[3]:
        return parts[1], parts[3]
    raise InvalidParams(f"bad push notification config name {name!r}: expected "
                        "tasks/{id}/pushNotificationConfigs/{configId}")


def _bytes_in(wire_b64: str) -> str:
    """``FilePart.file_with_bytes`` -> the base64 of the file's content.

    a2a-sdk's v0.3 binding puts the *base64 text* of the content into this bytes field (its
    JSON model holds base64 strings), so bytes that are valid base64 text are taken as that
    text; anything else is raw content, as the proto type suggests."""
    wire = base64.b64decode(wire_b64 or "")
    try:
        text = wire.decode("ascii")
        base64.b64decode(text, validate=True)
    except (UnicodeDecodeError, binascii.Error, ValueError):
        return wire_b64
    return text


def _bytes_out(content_b64: str) -> str:
    """The base64 of a file's content -> ``file_with_bytes`` as a2a-sdk's v0.3 client reads it
    (the base64 text itself, as bytes), in proto JSON (base64 once more)."""
    return base64.b64encode((content_b64 or "").encode("ascii")).decode("ascii")


def part_from_v03(part: Json) -> Json:
    """v0.3 proto Part -> v1.0 part (through the v0.3 JSON-RPC shape)."""
    meta = {"metadata": part["metadata"]} if part.get("metadata") else {}
    if "file" in part:
        file = part["file"] or {}
        body: Json = ({"bytes": _bytes_in(file.get("fileWithBytes", ""))}
                      if "fileWithBytes" in file else {"uri": file.get("fileWithUri", "")})
        for key in ("name", "mimeType"):
            if file.get(key):
                body[key] = file[key]
        return dialects.to_v1_part({"kind": "file", "file": body, **meta})
    if "data" in part:
        return dialects.to_v1_part({"kind": "data", "data": (part["data"] or {}).get("data", {}),
                                    **meta})
    return dialects.to_v1_part({"kind": "text", "text": part.get("text", ""), **meta})


def part_to_v03(part: Json) -> Json:
    """v1.0 part -> v0.3 proto Part."""
    legacy = dialects.to_v03_part(part)
    out: Json = {}
    if legacy["kind"] == "file":
        file = legacy.get("file") or {}
        body: Json = ({"fileWithBytes": _bytes_out(file["bytes"])} if "bytes" in file
                      else {"fileWithUri": file.get("uri", "")})
        for key in ("name", "mimeType"):
            if file.get(key):
                body[key] = file[key]
        out["file"] = body
    elif legacy["kind"] == "data":
        out["data"] = {"data": legacy.get("data") or {}}
    else:
        out["text"] = legacy.get("text", "")
    if legacy.get("metadata"):
        out["metadata"] = legacy["metadata"]
    return out


def message_from_v03(message: Json) -> Json:
    return dialects.to_v1_message({**message,
                                   "parts": [part_from_v03(p) for p in message.get("content")
                                             or []]})


def message_to_v03(message: Json) -> Json:
    out = {k: v for k, v in message.items() if k in (
        "messageId", "contextId", "taskId", "role", "metadata", "extensions")}
    out["content"] = [part_to_v03(p) for p in message.get("parts") or []]
    return out


def status_to_v03(status: Json) -> Json:
    out: Json = {"state": _STATE_OUT.get(status.get("state", ""), status.get("state"))}
    if status.get("message"):
        out["message"] = message_to_v03(status["message"])
    if status.get("timestamp"):
        out["timestamp"] = status["timestamp"]
    return out


def artifact_to_v03(artifact: Json) -> Json:
    out = {k: v for k, v in artifact.items() if k != "parts"}
    out["parts"] = [part_to_v03(p) for p in artifact.get("parts") or []]
    return out


def task_to_v03(task: Json) -> Json:
    out = {k: v for k, v in task.items() if k in ("id", "contextId", "metadata")}
    out["status"] = status_to_v03(task.get("status") or {})
    out["artifacts"] = [artifact_to_v03(a) for a in task.get("artifacts") or []]
    out["history"] = [message_to_v03(m) for m in task.get("history") or []]
    return out


def stream_response_to_v03(response: Json) -> Json:
    """A v1.0 StreamResponse / SendMessageResponse -> the v0.3 proto one. ``final`` marks the
    status update that ends the stream (terminal or interrupted state)."""
    if "task" in response:
        return {"task": task_to_v03(response["task"])}
    if "message" in response:
        return {"message": message_to_v03(response["message"])}
    if "statusUpdate" in response:
        update = dict(response["statusUpdate"])
        state = (update.get("status") or {}).get("state")
        update["final"] = dialects.is_terminal(state) or dialects.is_interrupted(state)
        update["status"] = status_to_v03(update.get("status") or {})
        return {"statusUpdate": update}
    if "artifactUpdate" in response:
        update = dict(response["artifactUpdate"])
        update["artifact"] = artifact_to_v03(update.get("artifact") or {})
        return {"artifactUpdate": update}
    raise InvalidParams("StreamResponse has none of task, message, statusUpdate, artifactUpdate")


def send_params_from_v03(request: Json, has_configuration: bool) -> Json:
    """v0.3 proto SendMessageRequest -> v1.0 SendMessageRequest params.

    proto3 cannot tell ``blocking: false`` from absent: a configuration that is present means
    what it says (false = return at once, the v0.3 default); no configuration at all means the
    v1.0 default (wait), as a2a-sdk's own v0.3 server does."""
    params: Json = {"message": message_from_v03(request.get("message") or {})}
    if request.get("metadata"):
        params["metadata"] = request["metadata"]
    if has_configuration:
        config = request.get("configuration") or {}
        v1: Json = {}
        if config.get("acceptedOutputModes"):
            v1["acceptedOutputModes"] = config["acceptedOutputModes"]
        if config.get("pushNotification"):
            v1["taskPushNotificationConfig"] = dialects.to_v1_push_config(
                config["pushNotification"])
        if config.get("historyLength"):
            v1["historyLength"] = config["historyLength"]
        v1["returnImmediately"] = not config.get("blocking", False)
        params["configuration"] = v1
    return params


def push_config_from_v03(config: Json, task_id: str, config_id: str = "") -> Json:
    """v0.3 proto TaskPushNotificationConfig (+ the request's config_id) -> v1.0 flat config."""
    inner = dict(config.get("pushNotificationConfig") or {})
    if not inner.get("id") and config_id:
        inner["id"] = config_id
    return dialects.to_v1_push_config(inner, task_id)


def push_config_to_v03(config: Json) -> Json:
    name = f"tasks/{config.get('taskId', '')}/pushNotificationConfigs/{config.get('id', '')}"
    return {"name": name, "pushNotificationConfig": dialects.to_v03_push_config(config)}


def card_to_v03(card: Json) -> Json:
    """v1.0 card -> v0.3 proto AgentCard: the v0.3 JSON card, except that security schemes
    and requirements keep their proto (v1.0-like) shapes."""
    out = dialects.to_v03_card(card)
    out["securitySchemes"] = card.get("securitySchemes") or {}
    out["security"] = card.get("securityRequirements") or []
    skills_v1 = card.get("skills") or []
    out["skills"] = [{**skill, "security": v1.get("securityRequirements") or []}
                     for skill, v1 in zip(out.get("skills") or [], skills_v1, strict=False)]
    return out


__all__ = ["GrpcServer", "GrpcUnavailable", "Stubs", "load_stubs", "serve_grpc"]
