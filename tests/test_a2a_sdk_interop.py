"""The official a2a-sdk client (a peer we did not write) against our server: JSON-RPC v1.0,
the v0.3 compat transport and HTTP+JSON — send, stream, get, list, cancel, subscribe, push
config CRUD and typed errors. The SDK is async-only; each test runs it with ``asyncio.run``."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from a2a.client import ClientConfig, ClientFactory
from a2a.client.card_resolver import A2ACardResolver
from a2a.types.a2a_pb2 import (
    CancelTaskRequest,
    DeleteTaskPushNotificationConfigRequest,
    GetExtendedAgentCardRequest,
    GetTaskPushNotificationConfigRequest,
    GetTaskRequest,
    ListTaskPushNotificationConfigsRequest,
    ListTasksRequest,
    Message,
    Part,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    SubscribeToTaskRequest,
    TaskPushNotificationConfig,
    TaskState,
)
from a2a.utils.errors import (
    TaskNotCancelableError,
    TaskNotFoundError,
    UnsupportedOperationError,
)

from tests.test_a2a_jsonrpc import AUTH, A2AServer

BINDINGS = ["JSONRPC", "HTTP+JSON"]


@pytest.fixture
def a2a(tmp_path):
    server = A2AServer(tmp_path / "tasks.db")
    yield server
    server.stop()


def with_client(a2a, binding, body, legacy: bool = False, streaming: bool = True):
    """Run ``await body(client)`` with an SDK client made from our served card."""
    async def main():
        async with httpx.AsyncClient(headers=AUTH, timeout=30) as http:
            resolver = A2ACardResolver(http, a2a.url)
            path = "/.well-known/agent.json" if legacy else None
            card = await resolver.get_agent_card(relative_card_path=path)
            config = ClientConfig(streaming=streaming, supported_protocol_bindings=[binding],
                                  httpx_client=http)
            client = ClientFactory(config).create(card)
            try:
                return await body(client)
            finally:
                await client.close()
    return asyncio.run(main())


def request(message_id: str, text: str = "hello", return_immediately: bool = False,
            **fields) -> SendMessageRequest:
    message = Message(message_id=message_id, role=Role.ROLE_USER, parts=[Part(text=text)],
                      **fields)
    config = SendMessageConfiguration(return_immediately=return_immediately)
    return SendMessageRequest(message=message, configuration=config)


async def collect(stream) -> list:
    return [event async for event in stream]


async def start_and_leave(client, message_id: str) -> str:
    """Start a streaming task, read its first event, then hang up: the task keeps running."""
    stream = client.send_message(request(message_id))
    first = await anext(stream)
    await stream.aclose()
    return first.task.id


@pytest.mark.parametrize("binding", BINDINGS)
def test_send_get_list(a2a, binding):
    async def body(client):
        [sent] = await collect(client.send_message(request("tck-artifact-data-1")))
        task = sent.task
        assert task.status.state == TaskState.TASK_STATE_COMPLETED
        assert dict(task.artifacts[0].parts[0].data.struct_value) == {"key": "value",
                                                                      "count": 42.0}
        got = await client.get_task(GetTaskRequest(id=task.id))
        assert got.id == task.id and got.status.state == TaskState.TASK_STATE_COMPLETED
        [direct] = await collect(client.send_message(request("tck-message-response-1")))
        assert direct.message.parts[0].text == "Direct message response"
        listed = await client.list_tasks(ListTasksRequest(page_size=10))
        assert listed.total_size == 1 and listed.tasks[0].id == task.id
        with pytest.raises(TaskNotFoundError):
            await client.get_task(GetTaskRequest(id="no-such-task"))
    with_client(a2a, binding, body, streaming=False)


@pytest.mark.parametrize("binding", BINDINGS)
def test_stream_chunks_in_order(a2a, binding):
    async def body(client):
        events = await collect(client.send_message(request("tck-stream-artifact-chunked-1")))
        kinds = [e.WhichOneof("payload") for e in events]
        assert kinds == ["task", "status_update", "artifact_update", "artifact_update",
                         "status_update"]
        chunks = [e.artifact_update for e in events if e.HasField("artifact_update")]
        assert [c.artifact.parts[0].text for c in chunks] == ["chunk-1 ", "chunk-2"]
        assert chunks[1].append and chunks[1].last_chunk
        assert events[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
    with_client(a2a, binding, body)


@pytest.mark.parametrize("binding", BINDINGS)
def test_subscribe_cancel_and_typed_errors(a2a, binding):
    async def body(client):
        task_id = await start_and_leave(client, "echo-hold-1")
        stream = client.subscribe(SubscribeToTaskRequest(id=task_id))
        first = await anext(stream)
        assert first.task.id == task_id
        a2a.hold.set()
        rest = [e async for e in stream]
        assert rest[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
        with pytest.raises(UnsupportedOperationError):
            await collect(client.subscribe(SubscribeToTaskRequest(id=task_id)))
        with pytest.raises(TaskNotCancelableError):
            await client.cancel_task(CancelTaskRequest(id=task_id))
        a2a.hold.clear()
        held_id = await start_and_leave(client, "echo-hold-2")
        canceled = await client.cancel_task(CancelTaskRequest(id=held_id))
        assert canceled.status.state == TaskState.TASK_STATE_CANCELED
        with pytest.raises(TaskNotFoundError):
            await client.cancel_task(CancelTaskRequest(id="no-such-task"))
    with_client(a2a, binding, body)


@pytest.mark.parametrize("binding", BINDINGS)
def test_push_config_crud(a2a, binding):
    async def body(client):
        [sent] = await collect(client.send_message(request("m-1")))
        task_id = sent.task.id
        made = await client.create_task_push_notification_config(TaskPushNotificationConfig(
            task_id=task_id, url="http://127.0.0.1:9/hook", token="tok-1"))
        assert made.task_id == task_id and made.id and made.token == "tok-1"
        got = await client.get_task_push_notification_config(
            GetTaskPushNotificationConfigRequest(task_id=task_id, id=made.id))
        assert got.url == "http://127.0.0.1:9/hook"
        listed = await client.list_task_push_notification_configs(
            ListTaskPushNotificationConfigsRequest(task_id=task_id))
        assert [c.id for c in listed.configs] == [made.id]
        await client.delete_task_push_notification_config(
            DeleteTaskPushNotificationConfigRequest(task_id=task_id, id=made.id))
        listed = await client.list_task_push_notification_configs(
            ListTaskPushNotificationConfigsRequest(task_id=task_id))
        assert list(listed.configs) == []
        with pytest.raises(TaskNotFoundError):
            await client.list_task_push_notification_configs(
                ListTaskPushNotificationConfigsRequest(task_id="no-such-task"))
        card = await client.get_extended_agent_card(GetExtendedAgentCardRequest())
        assert "shell" in {s.id for s in card.skills}
    with_client(a2a, binding, body, streaming=False)


def test_v03_compat_transport(a2a):
    async def body(client):
        [sent] = await collect(client.send_message(request("tck-artifact-text-1")))
        task = sent.task
        assert task.status.state == TaskState.TASK_STATE_COMPLETED
        assert task.artifacts[0].parts[0].text == "Generated text content"
        got = await client.get_task(GetTaskRequest(id=task.id))
        assert got.id == task.id
        with pytest.raises(TaskNotFoundError):
            await client.get_task(GetTaskRequest(id="no-such-task"))
        made = await client.create_task_push_notification_config(TaskPushNotificationConfig(
            task_id=task.id, url="http://127.0.0.1:9/hook", token="t"))
        got_config = await client.get_task_push_notification_config(
            GetTaskPushNotificationConfigRequest(task_id=task.id, id=made.id))
        assert got_config.url == "http://127.0.0.1:9/hook"
        listed = await client.list_task_push_notification_configs(
            ListTaskPushNotificationConfigsRequest(task_id=task.id))
        assert [c.id for c in listed.configs] == [made.id]
        await client.delete_task_push_notification_config(
            DeleteTaskPushNotificationConfigRequest(task_id=task.id, id=made.id))
        [held] = await collect(client.send_message(request("tck-input-required-1")))
        assert held.task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        canceled = await client.cancel_task(CancelTaskRequest(id=held.task.id))
        assert canceled.status.state == TaskState.TASK_STATE_CANCELED
    with_client(a2a, "JSONRPC", body, legacy=True, streaming=False)


def test_v03_compat_streaming(a2a):
    async def body(client):
        events = await collect(client.send_message(request("tck-stream-001-x")))
        assert events[0].HasField("task")
        texts = [e.artifact_update.artifact.parts[0].text for e in events
                 if e.HasField("artifact_update")]
        assert texts == ["Stream hello from TCK"]
        assert events[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
        held_id = await start_and_leave(client, "echo-hold-9")
        stream = client.subscribe(SubscribeToTaskRequest(id=held_id))
        first = await anext(stream)
        assert first.task.id == held_id
        a2a.hold.set()
        rest = [e async for e in stream]
        assert rest[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
    with_client(a2a, "JSONRPC", body, legacy=True)
