"""A real a2a-sdk server (Starlette app served by uvicorn in a thread on 127.0.0.1:0) with a
deterministic echo executor, as the peer our A2A client is tested against.

The executor keys on the message text:
    "reply ..."  answers with a Message (no task)
    "ask ..."    goes to input-required
    "wait ..."   stays working until canceled
    "chunks"     streams two artifact chunks (append / lastChunk)
    anything else: working -> artifact "echo: <text>" -> completed
"""

from __future__ import annotations

import asyncio
import socket
import threading
from dataclasses import dataclass

from a2a.helpers.proto_helpers import new_task_from_user_message, new_text_message, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryPushNotificationConfigStore, InMemoryTaskStore, TaskUpdater
from a2a.types import a2a_pb2 as pb


class EchoExecutor(AgentExecutor):
    def __init__(self) -> None:
        self.cancelled: dict[str, asyncio.Event] = {}

    async def execute(self, context: RequestContext, event_queue) -> None:
        text = context.get_user_input() if context.message else ""
        if text.startswith("reply"):
            await event_queue.enqueue_event(new_text_message(
                f"echo: {text}", context_id=context.context_id, role=pb.Role.ROLE_AGENT))
            return
        task = context.current_task or new_task_from_user_message(context.message)
        if not context.current_task:
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        await updater.start_work()
        if text.startswith("ask"):
            await updater.requires_input(updater.new_agent_message([new_text_part("which?")]))
            return
        if text.startswith("wait"):
            stop = self.cancelled.setdefault(task.id, asyncio.Event())
            await stop.wait()
            return
        if text == "chunks":
            await updater.add_artifact([new_text_part("chunk-1 ")], artifact_id="a1",
                                       append=False, last_chunk=False)
            await updater.add_artifact([new_text_part("chunk-2")], artifact_id="a1",
                                       append=True, last_chunk=True)
        else:
            await updater.add_artifact([new_text_part(f"echo: {text}")], name="response")
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue) -> None:
        self.cancelled.setdefault(context.task_id, asyncio.Event()).set()
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        await updater.cancel()


def make_card(url: str, versions: tuple[str, ...]) -> pb.AgentCard:
    return pb.AgentCard(
        name="sdk-echo", description="a2a-sdk echo peer", version="1.0.0",
        supported_interfaces=[pb.AgentInterface(url=url, protocol_binding="JSONRPC",
                                                protocol_version=v) for v in versions],
        capabilities=pb.AgentCapabilities(streaming=True, push_notifications=True),
        default_input_modes=["text/plain"], default_output_modes=["text/plain"],
        skills=[pb.AgentSkill(id="echo", name="echo", description="echoes", tags=["test"])])


@dataclass
class Peer:
    url: str
    server: object
    thread: threading.Thread
    calls: list  # (JSON-RPC method, A2A-Version header or None) per request

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_peer(versions: tuple[str, ...] = ("1.0", "0.3"), token: str | None = None,
               card_mode: str = "sdk") -> Peer:
    """Serve the echo agent; ``versions`` are the interfaces in the card, in preference order.
    ``card_mode``: "sdk" (the SDK's card route), "legacy" (a pure v0.3 card, made by the SDK's
    own converter, at ``/.well-known/agent.json`` only, like an old server) or "none"."""
    import json

    import uvicorn
    from a2a.compat.v0_3.conversions import to_compat_agent_card
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # connections queue in the kernel until uvicorn runs: no start-up wait
    port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    card = make_card(url, versions)
    handler = DefaultRequestHandler(agent_executor=EchoExecutor(), task_store=InMemoryTaskStore(),
                                    agent_card=card,
                                    push_config_store=InMemoryPushNotificationConfigStore())
    routes = []
    if card_mode == "sdk":
        routes += create_agent_card_routes(card)
    elif card_mode == "legacy":
        legacy = to_compat_agent_card(card).model_dump(by_alias=True, exclude_none=True,
                                                        mode="json")

        async def legacy_card(_request):
            return JSONResponse(legacy)

        routes.append(Route("/.well-known/agent.json", legacy_card, methods=["GET"]))
    routes += create_jsonrpc_routes(handler, "/", enable_v0_3_compat=True)
    calls: list = []

    class RecordAndAuth:
        """Records each JSON-RPC call's method and headers; enforces the bearer token."""

        def __init__(self, app) -> None:
            self.app = app

        async def __call__(self, scope, receive, send) -> None:
            if scope["type"] != "http":
                await self.app(scope, receive, send)
                return
            headers = dict(scope["headers"])
            if token and not scope["path"].startswith("/.well-known") \
                    and headers.get(b"authorization") != f"Bearer {token}".encode():
                await JSONResponse({"error": "unauthorized"}, 401)(scope, receive, send)
                return
            body = b""

            async def recording_receive():
                nonlocal body
                message = await receive()
                if message["type"] == "http.request":
                    body += message.get("body", b"")
                    if not message.get("more_body"):
                        try:
                            method = json.loads(body).get("method")
                        except ValueError:
                            method = None
                        version = headers.get(b"a2a-version")
                        calls.append((method, version.decode() if version else None))
                return message

            await self.app(scope, recording_receive, send)

    app = Starlette(routes=routes, middleware=[Middleware(RecordAndAuth)])
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    return Peer(url, server, thread, calls)
