"""The A2A gRPC binding, driven by the official a2a-sdk client (grpc.aio inside asyncio.run).

Both services run in one ``grpc.server`` over one ``A2AService`` with the echo executor:
``lf.a2a.v1.A2AService`` through the SDK's ``GrpcTransport`` and ``a2a.v1.A2AService`` through
its ``CompatGrpcTransport`` (a card whose gRPC interface says protocol version 0.3). Status
codes and trailers are also checked on the wire with our own generated stubs. The stubs are
generated once per session if they are missing or stale, so a fresh clone passes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "grpc-test-token"
WAIT = 30.0  # bound on any one scenario; never reached when things work


@pytest.fixture(scope="session", autouse=True)
def stubs():
    """Generate the stubs (scripts/gen_proto.py) unless they are current."""
    script = ROOT / "scripts" / "gen_proto.py"
    check = subprocess.run([sys.executable, str(script), "--check"], capture_output=True)
    if check.returncode != 0:
        subprocess.run([sys.executable, str(script)], check=True, capture_output=True)
    from codetether.a2a.grpc_binding import load_stubs

    return load_stubs()


class Peer:
    """Our server: store, echo executor, service, gRPC on a free loopback port."""

    def __init__(self, tmp_path: Path, auth: bool = True, max_workers: int = 16,
                 executor=None) -> None:
        from codetether.a2a.executors import EchoExecutor
        from codetether.a2a.grpc_binding import serve_grpc
        from codetether.a2a.push import PushSender
        from codetether.a2a.service import A2AService, CardInfo
        from codetether.a2a.store import TaskStore
        from codetether.core.httpserver import TokenAuth

        self.hold = threading.Event()
        self.store = TaskStore(tmp_path / "tasks.db")
        self.auth = TokenAuth({TOKEN: "tester"}) if auth else None
        self.service = A2AService(self.store, executor or EchoExecutor(hold=self.hold),
                                  CardInfo(), PushSender(allow_private=True))
        self.server = serve_grpc(self.service, "127.0.0.1", 0, self.auth,
                                 base_url="http://127.0.0.1:1", max_workers=max_workers)

    def card(self, version: str = "1.0"):
        """The SDK's AgentCard for our gRPC interface, announced as ``version``."""
        from a2a.types import a2a_pb2 as sdk
        from google.protobuf import json_format

        card = json_format.ParseDict(
            self.service.agent_card("http://127.0.0.1:1", self.server.address),
            sdk.AgentCard(), ignore_unknown_fields=True)
        for interface in card.supported_interfaces:
            interface.protocol_version = version
        return card

    def close(self) -> None:
        self.hold.set()
        self.service.shutdown()
        self.server.stop(0)
        self.store.close()


@pytest.fixture
def peer(tmp_path):
    server = Peer(tmp_path)
    yield server
    server.close()


def bearer_channel(target: str, token: str | None = TOKEN):
    """A grpc.aio channel that sends ``authorization: Bearer <token>`` on every call."""
    import grpc

    class _Base:
        def details(self, call):
            metadata = grpc.aio.Metadata(*(tuple(call.metadata) if call.metadata else ()))
            metadata.add("authorization", f"Bearer {token}")
            return grpc.aio.ClientCallDetails(call.method, call.timeout, metadata,
                                              call.credentials, call.wait_for_ready)

    # grpc.aio files each interceptor under one kind only: one class per kind
    class Unary(_Base, grpc.aio.UnaryUnaryClientInterceptor):
        async def intercept_unary_unary(self, continuation, call, request):
            return await continuation(self.details(call), request)

    class Stream(_Base, grpc.aio.UnaryStreamClientInterceptor):
        async def intercept_unary_stream(self, continuation, call, request):
            return await continuation(self.details(call), request)

    interceptors = [Unary(), Stream()] if token else []
    return grpc.aio.insecure_channel(target, interceptors=interceptors)


def sdk_client(card, streaming: bool = True, token: str | None = TOKEN):
    from a2a.client import ClientConfig, ClientFactory

    config = ClientConfig(streaming=streaming, supported_protocol_bindings=["GRPC"],
                          grpc_channel_factory=lambda url: bearer_channel(url, token))
    return ClientFactory(config).create(card)


def run(scenario):
    """Run an async scenario to its end, bounded."""
    async def bounded():
        return await asyncio.wait_for(scenario, WAIT)
    return asyncio.run(bounded())


def message(text: str, message_id: str, **fields):
    from a2a.types import a2a_pb2 as sdk

    return sdk.Message(message_id=message_id, role=sdk.Role.ROLE_USER,
                       parts=[sdk.Part(text=text)], **fields)


def send_request(msg, **configuration):
    from a2a.types import a2a_pb2 as sdk

    request = sdk.SendMessageRequest(message=msg)
    for key, value in configuration.items():
        setattr(request.configuration, key, value)
    return request


async def collect(client, request) -> list:
    return [event async for event in client.send_message(request)]


def kinds(events) -> list[str]:
    return [event.WhichOneof("payload") for event in events]


def state_name(state: int) -> str:
    from a2a.types import a2a_pb2 as sdk

    return sdk.TaskState.Name(state)


# -- v1.0 through the SDK's GrpcTransport -----------------------------------------------------

def test_send_blocking_then_get(peer):
    from a2a.types import a2a_pb2 as sdk

    async def scenario():
        client = sdk_client(peer.card(), streaming=False)
        try:
            [event] = await collect(client, send_request(message("hello grpc", "m-send-1")))
            task = event.task
            fetched = await client.get_task(sdk.GetTaskRequest(id=task.id))
            trimmed = await client.get_task(sdk.GetTaskRequest(id=task.id, history_length=0))
            return task, fetched, trimmed
        finally:
            await client.close()

    task, fetched, trimmed = run(scenario())
    assert state_name(task.status.state) == "TASK_STATE_COMPLETED"
    assert task.artifacts[0].parts[0].text == "hello grpc"
    assert task.status.message.parts[0].text == "Echo: hello grpc"
    assert fetched.id == task.id and fetched.context_id == task.context_id
    assert [m.message_id for m in fetched.history][0] == "m-send-1"
    assert len(trimmed.history) == 0


def test_stream_chunked_artifact_in_order(peer):
    async def scenario():
        client = sdk_client(peer.card())
        try:
            request = send_request(message("x", "tck-stream-artifact-chunked-1"))
            return await collect(client, request)
        finally:
            await client.close()

    events = run(scenario())
    assert kinds(events) == ["task", "status_update", "artifact_update", "artifact_update",
                             "status_update"]
    first, second = events[2].artifact_update, events[3].artifact_update
    assert (first.artifact.parts[0].text, first.append, first.last_chunk) == ("chunk-1 ", True,
                                                                             False)
    assert (second.artifact.parts[0].text, second.last_chunk) == ("chunk-2", True)
    assert first.artifact.artifact_id == second.artifact.artifact_id
    assert state_name(events[-1].status_update.status.state) == "TASK_STATE_COMPLETED"


def test_direct_message_reply_and_rich_parts(peer):
    from a2a.types import a2a_pb2 as sdk
    from google.protobuf import struct_pb2

    data = struct_pb2.Value()
    data.struct_value.update({"key": "value", "count": 42})
    parts = [sdk.Part(text="t"), sdk.Part(raw=b"\x00\x01bytes", filename="b.bin",
                                          media_type="application/octet-stream"),
             sdk.Part(url="https://example.com/a.txt", filename="a.txt"), sdk.Part(data=data)]

    async def scenario():
        client = sdk_client(peer.card())
        try:
            reply = await collect(client, send_request(message("hi", "tck-message-response-1")))
            echoed = await collect(client, send_request(sdk.Message(
                message_id="m-parts", role=sdk.Role.ROLE_USER, parts=parts)))
            return reply, echoed
        finally:
            await client.close()

    reply, echoed = run(scenario())
    assert kinds(reply) == ["message"]
    assert reply[0].message.parts[0].text == "Direct message response"
    artifact = [e for e in echoed if e.HasField("artifact_update")][0].artifact_update.artifact
    assert artifact.parts[0].text == "t"
    assert (artifact.parts[1].raw, artifact.parts[1].filename) == (b"\x00\x01bytes", "b.bin")
    assert artifact.parts[2].url == "https://example.com/a.txt"
    assert dict(artifact.parts[3].data.struct_value) == {"key": "value", "count": 42}
    stored = peer.service.get_task(echoed[0].task.id)
    assert stored["history"][0]["parts"][3] == {"data": {"key": "value", "count": 42}}


def test_list_tasks_filters_and_pages(peer):
    from a2a.types import a2a_pb2 as sdk

    async def scenario():
        client = sdk_client(peer.card(), streaming=False)
        try:
            for index in range(3):
                await collect(client, send_request(message(f"n{index}", f"m-list-{index}",
                                                           context_id="ctx-list")))
            await collect(client, send_request(message("other", "m-list-other")))
            everything = await client.list_tasks(sdk.ListTasksRequest(context_id="ctx-list"))
            page = await client.list_tasks(sdk.ListTasksRequest(context_id="ctx-list",
                                                                page_size=2))
            rest = await client.list_tasks(sdk.ListTasksRequest(
                context_id="ctx-list", page_size=2, page_token=page.next_page_token))
            return everything, page, rest
        finally:
            await client.close()

    everything, page, rest = run(scenario())
    assert everything.total_size == 3 and len(everything.tasks) == 3
    assert {t.context_id for t in everything.tasks} == {"ctx-list"}
    assert len(page.tasks) == 2 and page.next_page_token
    assert len(rest.tasks) == 1 and not rest.next_page_token
    assert {t.id for t in page.tasks} | {t.id for t in rest.tasks} == \
        {t.id for t in everything.tasks}


def test_subscribe_then_cancel_and_typed_errors(peer):
    from a2a.types import a2a_pb2 as sdk
    from a2a.utils.errors import TaskNotCancelableError, UnsupportedOperationError

    async def scenario():
        client = sdk_client(peer.card())
        sender = sdk_client(peer.card(), streaming=False)  # a stream would wait for the end
        try:
            first = await collect(sender, send_request(message("x", "echo-hold-1"),
                                                       return_immediately=True))
            task_id = first[0].task.id
            stream = client.subscribe(sdk.SubscribeToTaskRequest(id=task_id))
            opening = await anext(stream)
            canceled = await client.cancel_task(sdk.CancelTaskRequest(id=task_id))
            rest = [event async for event in stream]
            errors = []
            try:
                await client.cancel_task(sdk.CancelTaskRequest(id=task_id))
            except TaskNotCancelableError as exc:
                errors.append(exc)
            try:
                await anext(client.subscribe(sdk.SubscribeToTaskRequest(id=task_id)))
            except UnsupportedOperationError as exc:
                errors.append(exc)
            return opening, canceled, rest, errors
        finally:
            await client.close()
            await sender.close()

    opening, canceled, rest, errors = run(scenario())
    assert opening.task.id == canceled.id
    assert state_name(canceled.status.state) == "TASK_STATE_CANCELED"
    assert state_name(rest[-1].status_update.status.state) == "TASK_STATE_CANCELED"
    assert [type(e).__name__ for e in errors] == ["TaskNotCancelableError",
                                                  "UnsupportedOperationError"]


def test_input_required_then_answer(peer):
    async def scenario():
        client = sdk_client(peer.card(), streaming=False)
        try:
            [asked] = await collect(client, send_request(message("go", "tck-input-required-1")))
            task = asked.task
            [done] = await collect(client, send_request(message(
                "blue", "m-answer", task_id=task.id, context_id=task.context_id)))
            return task, done.task
        finally:
            await client.close()

    asked, done = run(scenario())
    assert state_name(asked.status.state) == "TASK_STATE_INPUT_REQUIRED"
    assert state_name(done.status.state) == "TASK_STATE_COMPLETED"
    assert done.status.message.parts[0].text == "Received: blue"


def test_push_config_crud(peer):
    from a2a.types import a2a_pb2 as sdk
    from a2a.utils.errors import TaskNotFoundError

    async def scenario():
        client = sdk_client(peer.card(), streaming=False)
        try:
            [event] = await collect(client, send_request(message("x", "m-push")))
            task_id = event.task.id
            created = await client.create_task_push_notification_config(
                sdk.TaskPushNotificationConfig(
                    task_id=task_id, url="http://127.0.0.1:9/hook", token="tok-1",
                    authentication=sdk.AuthenticationInfo(scheme="Bearer", credentials="c")))
            got = await client.get_task_push_notification_config(
                sdk.GetTaskPushNotificationConfigRequest(task_id=task_id, id=created.id))
            listed = await client.list_task_push_notification_configs(
                sdk.ListTaskPushNotificationConfigsRequest(task_id=task_id))
            await client.delete_task_push_notification_config(
                sdk.DeleteTaskPushNotificationConfigRequest(task_id=task_id, id=created.id))
            after = await client.list_task_push_notification_configs(
                sdk.ListTaskPushNotificationConfigsRequest(task_id=task_id))
            with pytest.raises(TaskNotFoundError):
                await client.get_task_push_notification_config(
                    sdk.GetTaskPushNotificationConfigRequest(task_id=task_id, id=created.id))
            return task_id, created, got, listed, after
        finally:
            await client.close()

    task_id, created, got, listed, after = run(scenario())
    assert created.id and created.task_id == task_id
    assert (got.url, got.token, got.authentication.scheme) == ("http://127.0.0.1:9/hook",
                                                               "tok-1", "Bearer")
    assert [c.id for c in listed.configs] == [created.id]
    assert list(after.configs) == []


def test_typed_errors_and_extended_card(peer):
    from a2a.types import a2a_pb2 as sdk
    from a2a.utils.errors import InvalidParamsError, TaskNotFoundError

    async def scenario():
        client = sdk_client(peer.card())
        try:
            with pytest.raises(TaskNotFoundError) as missing:
                await client.get_task(sdk.GetTaskRequest(id="no-such-task"))
            with pytest.raises(InvalidParamsError):
                await collect(client, sdk.SendMessageRequest(message=sdk.Message(
                    message_id="m-empty", role=sdk.Role.ROLE_USER)))
            card = await client.get_extended_agent_card(sdk.GetExtendedAgentCardRequest())
            return missing.value, card
        finally:
            await client.close()

    missing, card = run(scenario())
    assert "no-such-task" in str(missing)
    assert card.name == "CodeTether"
    assert "shell" in [s.id for s in card.skills]  # the extended skills
    assert any(i.protocol_binding == "GRPC" and i.url == peer.server.address
               for i in card.supported_interfaces)


# -- on the wire, with our own stubs -----------------------------------------------------------

def raw_call(peer, stubs, method: str, request, token: str | None = TOKEN, v1: bool = True,
             extra: tuple = ()):
    """Call one rpc with a sync channel; return (code, details, trailing metadata) or the
    reply."""
    import grpc

    metadata = ((("authorization", f"Bearer {token}"),) if token else ()) + extra
    with grpc.insecure_channel(peer.server.address) as channel:
        module = stubs.v1_grpc if v1 else stubs.v03_grpc
        call = getattr(module.A2AServiceStub(channel), method)
        try:
            reply = call(request, metadata=metadata, timeout=WAIT)
            return list(reply) if hasattr(reply, "__iter__") and not hasattr(
                reply, "DESCRIPTOR") else reply
        except grpc.RpcError as exc:
            return exc.code(), exc.details(), dict(exc.trailing_metadata() or ())


def test_error_status_carries_error_info(peer, stubs):
    import grpc
    from google.rpc import error_details_pb2, status_pb2

    code, details, trailers = raw_call(peer, stubs, "GetTask", stubs.v1.GetTaskRequest(id="x"))
    assert code == grpc.StatusCode.NOT_FOUND
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    info = error_details_pb2.ErrorInfo()
    status.details[0].Unpack(info)
    assert (status.code, status.message) == (grpc.StatusCode.NOT_FOUND.value[0], details)
    assert (info.reason, info.domain, info.metadata["taskId"]) == ("TASK_NOT_FOUND",
                                                                  "a2a-protocol.org", "x")

    code, details, _ = raw_call(peer, stubs, "GetTask", stubs.v03.GetTaskRequest(name="x/y/z"),
                                v1=False)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith("InvalidParamsError: bad task name")

    code, details, _ = raw_call(peer, stubs, "GetTask", stubs.v1.GetTaskRequest(id="x"),
                                extra=(("a2a-version", "0.3"),))
    assert code == grpc.StatusCode.UNIMPLEMENTED and "0.3" in details  # spec §5.4


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_auth_required_on_every_service(peer, stubs, token):
    import grpc

    cases = [("GetTask", stubs.v1.GetTaskRequest(id="x"), True),
             ("SubscribeToTask", stubs.v1.SubscribeToTaskRequest(id="x"), True),
             ("GetTask", stubs.v03.GetTaskRequest(name="tasks/x"), False),
             ("TaskSubscription", stubs.v03.TaskSubscriptionRequest(name="tasks/x"), False)]
    for method, request, v1 in cases:
        code, details, _ = raw_call(peer, stubs, method, request, token=token, v1=v1)
        assert code == grpc.StatusCode.UNAUTHENTICATED, method
        assert "bearer token" in details


def test_sdk_client_without_token_is_refused(peer):
    from a2a.client.errors import A2AClientError
    from a2a.types import a2a_pb2 as sdk

    async def scenario():
        client = sdk_client(peer.card(), token=None)
        try:
            with pytest.raises(A2AClientError, match="UNAUTHENTICATED"):
                await client.get_task(sdk.GetTaskRequest(id="x"))
        finally:
            await client.close()

    run(scenario())


def test_server_without_auth_and_stop(tmp_path, stubs):
    server = Peer(tmp_path, auth=False)
    try:
        code, _details, _ = raw_call(server, stubs, "GetTask", stubs.v1.GetTaskRequest(id="x"),
                                     token=None)
        assert code.name == "NOT_FOUND"  # served: not UNAUTHENTICATED
    finally:
        server.close()
    import grpc

    with grpc.insecure_channel(server.server.address) as channel, pytest.raises(grpc.RpcError):
        stubs.v1_grpc.A2AServiceStub(channel).GetTask(stubs.v1.GetTaskRequest(id="x"),
                                                      timeout=2)


class IdleExecutor:
    """Keeps its task working, silently, until released."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def respond(self, message):
        return None

    def execute(self, run) -> None:
        run.working()
        self.release.wait(WAIT)


class Watched:
    """A service stream that tells when its reader asks for the item after the first (and so
    is about to block: the task emits nothing more)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.asked = 0
        self.waiting = threading.Event()

    def __iter__(self):
        return self

    def __next__(self):
        self.asked += 1
        if self.asked == 2:
            self.waiting.set()
        return next(self.inner)

    def close(self) -> None:
        self.inner.close()


def test_clients_that_hang_up_free_their_workers(tmp_path, stubs):
    """With a pool of two workers, three subscriptions abandoned while the server waits for
    the task's next event must not stall the server: each hang-up frees its worker at once."""
    import grpc

    executor = IdleExecutor()
    server = Peer(tmp_path, max_workers=2, executor=executor)
    subscribe, streams = server.service.subscribe, []

    def watched_subscribe(task_id):
        streams.append(Watched(subscribe(task_id)))
        return streams[-1]

    server.service.subscribe = watched_subscribe
    auth = (("authorization", f"Bearer {TOKEN}"),)
    try:
        task = server.service.send_message({"message": {
            "messageId": "m-hangup", "role": "ROLE_USER", "parts": [{"text": "x"}]},
            "configuration": {"returnImmediately": True}}, "tester")["task"]
        with grpc.insecure_channel(server.server.address) as channel:
            stub = stubs.v1_grpc.A2AServiceStub(channel)
            for _ in range(3):
                call = stub.SubscribeToTask(stubs.v1.SubscribeToTaskRequest(id=task["id"]),
                                            metadata=auth, timeout=10)
                assert next(call).task.id == task["id"]
                assert streams[-1].waiting.wait(WAIT)
                call.cancel()
            reply = stub.GetTask(stubs.v1.GetTaskRequest(id=task["id"]), metadata=auth,
                                 timeout=5)
        assert reply.id == task["id"]
    finally:
        executor.release.set()
        server.close()


def test_port_in_use_is_one_clear_error(peer):
    from codetether.a2a.grpc_binding import GrpcUnavailable, serve_grpc

    with pytest.raises(GrpcUnavailable) as caught:
        serve_grpc(peer.service, "127.0.0.1", peer.server.port)
    assert f"127.0.0.1:{peer.server.port}" in caught.value.one_line()
    assert "--grpc-port" in caught.value.one_line()


# -- v0.3 through the SDK's CompatGrpcTransport ------------------------------------------------

def test_v03_send_stream_get_cancel_subscribe(peer):
    from a2a.types import a2a_pb2 as sdk
    from a2a.utils.errors import TaskNotCancelableError, TaskNotFoundError

    async def scenario():
        blocking = sdk_client(peer.card("0.3"), streaming=False)
        streaming = sdk_client(peer.card("0.3"))
        try:
            [sent] = await collect(blocking, send_request(message("hello v03", "m-v03")))
            fetched = await blocking.get_task(sdk.GetTaskRequest(id=sent.task.id))
            chunked = await collect(streaming, send_request(message(
                "x", "tck-stream-artifact-chunked-v03")))
            held = await collect(blocking, send_request(message("x", "echo-hold-v03"),
                                                        return_immediately=True))
            stream = streaming.subscribe(sdk.SubscribeToTaskRequest(id=held[0].task.id))
            opening = await anext(stream)
            canceled = await blocking.cancel_task(sdk.CancelTaskRequest(id=held[0].task.id))
            rest = [event async for event in stream]
            with pytest.raises(TaskNotCancelableError):
                await blocking.cancel_task(sdk.CancelTaskRequest(id=held[0].task.id))
            with pytest.raises(TaskNotFoundError):
                await blocking.get_task(sdk.GetTaskRequest(id="no-such-task"))
            return sent.task, fetched, chunked, opening, canceled, rest
        finally:
            await blocking.close()
            await streaming.close()

    sent, fetched, chunked, opening, canceled, rest = run(scenario())
    assert state_name(sent.status.state) == "TASK_STATE_COMPLETED"
    assert sent.artifacts[0].parts[0].text == "hello v03"
    assert fetched.id == sent.id and fetched.history[0].message_id == "m-v03"
    assert kinds(chunked) == ["task", "status_update", "artifact_update", "artifact_update",
                              "status_update"]
    assert [e.artifact_update.artifact.parts[0].text for e in chunked[2:4]] == ["chunk-1 ",
                                                                               "chunk-2"]
    assert opening.task.id == canceled.id
    assert state_name(canceled.status.state) == "TASK_STATE_CANCELED"  # CANCELLED on the wire
    assert state_name(rest[-1].status_update.status.state) == "TASK_STATE_CANCELED"


def test_v03_parts_push_configs_and_card(peer):
    from a2a.types import a2a_pb2 as sdk
    from google.protobuf import struct_pb2

    data = struct_pb2.Value()
    data.struct_value.update({"key": "value", "count": 42})
    parts = [sdk.Part(raw=b"raw bytes", filename="f.bin", media_type="application/x-test"),
             sdk.Part(url="https://example.com/u.txt", media_type="text/plain"),
             sdk.Part(data=data)]

    async def scenario():
        client = sdk_client(peer.card("0.3"), streaming=False)
        try:
            [sent] = await collect(client, send_request(sdk.Message(
                message_id="m-v03-parts", role=sdk.Role.ROLE_USER, parts=parts)))
            task_id = sent.task.id
            created = await client.create_task_push_notification_config(
                sdk.TaskPushNotificationConfig(task_id=task_id, id="cfg-1",
                                               url="http://127.0.0.1:9/hook", token="t"))
            got = await client.get_task_push_notification_config(
                sdk.GetTaskPushNotificationConfigRequest(task_id=task_id, id="cfg-1"))
            listed = await client.list_task_push_notification_configs(
                sdk.ListTaskPushNotificationConfigsRequest(task_id=task_id))
            await client.delete_task_push_notification_config(
                sdk.DeleteTaskPushNotificationConfigRequest(task_id=task_id, id="cfg-1"))
            after = await client.list_task_push_notification_configs(
                sdk.ListTaskPushNotificationConfigsRequest(task_id=task_id))
            card = await client.get_extended_agent_card(sdk.GetExtendedAgentCardRequest())
            return sent.task, created, got, listed, after, card
        finally:
            await client.close()

    task, created, got, listed, after, card = run(scenario())
    echoed = task.artifacts[0].parts
    assert (echoed[0].raw, echoed[0].filename, echoed[0].media_type) == (
        b"raw bytes", "f.bin", "application/x-test")
    assert (echoed[1].url, echoed[1].media_type) == ("https://example.com/u.txt", "text/plain")
    assert dict(echoed[2].data.struct_value) == {"key": "value", "count": 42}
    stored = peer.service.get_task(task.id)["history"][0]["parts"]
    assert stored[0] == {"raw": base64.b64encode(b"raw bytes").decode(), "filename": "f.bin",
                         "mediaType": "application/x-test"}
    assert (created.id, created.task_id, got.url) == ("cfg-1", task.id, "http://127.0.0.1:9/hook")
    assert [c.id for c in listed.configs] == ["cfg-1"] and list(after.configs) == []
    assert card.name == "CodeTether" and "shell" in [s.id for s in card.skills]
    assert "bearer" in card.security_schemes


def test_v03_non_blocking_send_returns_at_once(peer, stubs):
    request = stubs.v03.SendMessageRequest(
        request=stubs.v03.Message(message_id="echo-hold-raw", role=stubs.v03.ROLE_USER,
                                  content=[stubs.v03.Part(text="x")]),
        configuration=stubs.v03.SendMessageConfiguration(blocking=False))
    reply = raw_call(peer, stubs, "SendMessage", request, v1=False)
    assert reply.WhichOneof("payload") == "task"
    assert stubs.v03.TaskState.Name(reply.task.status.state) in ("TASK_STATE_SUBMITTED",
                                                                 "TASK_STATE_WORKING")
    pushed = raw_call(peer, stubs, "CreateTaskPushNotificationConfig",
                      stubs.v03.CreateTaskPushNotificationConfigRequest(
                          parent=f"tasks/{reply.task.id}", config_id="c9",
                          config=stubs.v03.TaskPushNotificationConfig(
                              push_notification_config=stubs.v03.PushNotificationConfig(
                                  url="http://127.0.0.1:9/h"))), v1=False)
    assert pushed.name == f"tasks/{reply.task.id}/pushNotificationConfigs/c9"


# -- one task store for JSON-RPC and gRPC ------------------------------------------------------

def test_jsonrpc_and_grpc_share_the_task_store(peer):
    binding = pytest.importorskip("codetether.a2a.jsonrpc_binding")
    from a2a.types import a2a_pb2 as sdk

    from codetether.core.httpserver import App

    app = App(auth=peer.auth)
    binding.mount_jsonrpc(app, peer.service)
    http = app.serve("127.0.0.1", 0).start()
    try:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {
            "message": {"messageId": "m-jsonrpc", "role": "ROLE_USER",
                        "parts": [{"text": "via json-rpc"}]}}}).encode()
        request = urllib.request.Request(
            http.url.rstrip("/") + "/a2a", data=body, method="POST",
            headers={"Content-Type": "application/json", "A2A-Version": "1.0",
                     "Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(request, timeout=WAIT) as response:
            jsonrpc_task = json.load(response)["result"]["task"]

        async def scenario():
            client = sdk_client(peer.card(), streaming=False)
            try:
                fetched = await client.get_task(sdk.GetTaskRequest(id=jsonrpc_task["id"]))
                [sent] = await collect(client, send_request(message("via grpc", "m-grpc")))
                return fetched, sent.task
            finally:
                await client.close()

        fetched, grpc_task = run(scenario())
        assert fetched.artifacts[0].parts[0].text == "via json-rpc"
        body = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "GetTask",
                           "params": {"id": grpc_task.id}}).encode()
        request = urllib.request.Request(
            http.url.rstrip("/") + "/a2a", data=body, method="POST",
            headers={"Content-Type": "application/json", "A2A-Version": "1.0",
                     "Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(request, timeout=WAIT) as response:
            via_jsonrpc = json.load(response)["result"]
        assert via_jsonrpc["artifacts"][0]["parts"][0]["text"] == "via grpc"
    finally:
        http.stop()


# -- the stubs themselves ----------------------------------------------------------------------

def test_our_protos_match_the_spec_wire_contract(stubs):
    """Every message, field number, type, label, JSON name, oneof and rpc of our protos equals
    the A2A spec's, as compiled into a2a-sdk (v1.0 and v0.3)."""
    from a2a.compat.v0_3 import a2a_v0_3_pb2
    from a2a.types import a2a_pb2

    assert wire_contract(stubs.v1.DESCRIPTOR) == wire_contract(a2a_pb2.DESCRIPTOR)
    assert wire_contract(stubs.v03.DESCRIPTOR) == wire_contract(a2a_v0_3_pb2.DESCRIPTOR)


def wire_contract(file_descriptor) -> dict:
    out: dict = {"package": file_descriptor.package}

    def walk(message, prefix=""):
        fields = sorted((f.number, f.name, f.type, f.is_repeated, f.has_presence, f.json_name,
                         f.message_type.full_name if f.message_type else "",
                         f.enum_type.full_name if f.enum_type else "",
                         f.containing_oneof.name if f.containing_oneof else "")
                        for f in message.fields)
        out[prefix + message.name] = fields
        for nested in message.nested_types:
            walk(nested, prefix + message.name + ".")

    for message in file_descriptor.message_types_by_name.values():
        walk(message)
    for enum in file_descriptor.enum_types_by_name.values():
        out["enum " + enum.name] = sorted((v.number, v.name) for v in enum.values)
    for service in file_descriptor.services_by_name.values():
        out["service " + service.full_name] = sorted(
            (m.name, m.input_type.full_name, m.output_type.full_name, m.server_streaming)
            for m in service.methods)
    return out


def test_missing_stubs_say_run_make_proto(monkeypatch):
    from codetether.a2a import grpc_binding

    monkeypatch.setitem(sys.modules, "codetether.a2a.grpc_gen", None)
    with pytest.raises(grpc_binding.GrpcUnavailable) as caught:
        grpc_binding.load_stubs()
    assert "make proto" in caught.value.one_line()


def test_gen_proto_check_reports_stale(tmp_path):
    out = tmp_path / "gen"
    script = ROOT / "scripts" / "gen_proto.py"
    missing = subprocess.run([sys.executable, str(script), "--check", "--out", str(out)],
                             capture_output=True, text=True)
    assert missing.returncode == 1
    subprocess.run([sys.executable, str(script), "--out", str(out)], check=True,
                   capture_output=True)
    assert sorted(p.name for p in out.glob("*.py")) == [
        "__init__.py", "_pool.py", "a2a_pb2.py", "a2a_pb2_grpc.py", "a2a_v03_pb2.py",
        "a2a_v03_pb2_grpc.py"]
    fresh = subprocess.run([sys.executable, str(script), "--check", "--out", str(out)])
    assert fresh.returncode == 0
    grpc_module = (out / "a2a_pb2_grpc.py").read_text()
    assert "from . import a2a_pb2 as" in grpc_module
    assert "_descriptor_pool.Default()" not in (out / "a2a_pb2.py").read_text()
