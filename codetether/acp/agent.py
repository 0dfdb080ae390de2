"""``codetether acp``: CodeTether as an ACP agent (protocolVersion 1) for editors, over stdio.

Each ``session/new`` builds one agent with ``agent.setup.build_runtime`` (the same composition
as ``run``); its ``mcpServers`` are connected through our MCP client and their tools join the
registry. ``session/prompt`` runs a turn on a worker thread of the JSON-RPC stream and turns the
agent's events into ``session/update`` notifications; it answers with the stop reason only
after every update was written, so the client sees them in order. An "ask" of the permission
engine becomes ``session/request_permission`` (allow once/always, reject once/always);
``session/cancel`` trips the turn's cancel token, which also withdraws a pending permission
request, and the prompt ends with ``cancelled``.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from codetether import __version__
from codetether.agent.events import Event
from codetether.agent.permissions import ApprovalRequest
from codetether.core.cancel import CancelToken
from codetether.core.errors import CodetetherError
from codetether.core.ids import new_id
from codetether.core.jsonrpc import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    Dispatcher,
    JsonRpcError,
)
from codetether.core.jsonrpc_stream import JsonRpcStream, RequestContext

PROTOCOL_VERSION = 1
STOP_REASONS = {"end_turn": "end_turn", "max_steps": "max_turn_requests",
                "cancelled": "cancelled"}
KINDS = {"read": "read", "list": "read", "tree": "read", "file_info": "read", "head_tail": "read",
         "diff": "read", "glob": "search", "grep": "search", "codesearch": "search",
         "write": "edit", "edit": "edit", "multiedit": "edit", "patch": "edit",
         "bash": "execute", "webfetch": "fetch", "websearch": "fetch", "todo_write": "think",
         "todo_read": "think", "plan_enter": "switch_mode", "plan_exit": "switch_mode"}
PERMISSION_OPTIONS = [
    {"optionId": "allow_once", "name": "Allow once", "kind": "allow_once"},
    {"optionId": "allow_always", "name": "Always allow", "kind": "allow_always"},
    {"optionId": "reject_once", "name": "Reject", "kind": "reject_once"},
    {"optionId": "reject_always", "name": "Always reject", "kind": "reject_always"},
]


def _title(name: str, args: dict[str, Any]) -> str:
    for key in ("command", "path", "file_path", "pattern", "url", "query"):
        value = args.get(key)
        if isinstance(value, str) and value:
            value = value.replace("\n", " ")
            return f"{name} {value[:80]}{'…' if len(value) > 80 else ''}"
    return name


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


class AcpSession:
    """One ACP session: an agent, its MCP servers, the running turn's cancel token."""

    def __init__(self, owner: AcpAgent, session_id: str = "") -> None:
        self.owner = owner
        self.id = session_id
        self.agent: Any = None
        self.mcp_servers: list[str] = []
        self.turn_cancel = CancelToken()
        self._busy = threading.Lock()

    def update(self, update: dict[str, Any]) -> None:
        self.owner.notify("session/update", {"sessionId": self.id, "update": update})

    # -- agent events -> session/update ------------------------------------------------------
    def on_event(self, event: Event) -> None:
        data = event.data
        if event.type == "text.delta" and data.get("text"):
            self.update({"sessionUpdate": "agent_message_chunk", "content": _text(data["text"])})
        elif event.type == "thinking.delta" and data.get("text"):
            self.update({"sessionUpdate": "agent_thought_chunk", "content": _text(data["text"])})
        elif event.type == "tool.started":
            self._tool_started(data)
        elif event.type == "tool.finished":
            self._tool_finished(data)

    def _tool_started(self, data: dict[str, Any]) -> None:
        name, args = data.get("name", ""), data.get("args") or {}
        update: dict[str, Any] = {
            "sessionUpdate": "tool_call", "toolCallId": data.get("call_id") or new_id("call"),
            "title": _title(name, args), "kind": KINDS.get(name, "other"),
            "status": "in_progress" if self._allowed(name, args) else "pending",
            "rawInput": args}
        path = args.get("path") or args.get("file_path")
        if isinstance(path, str) and self.agent is not None:
            update["locations"] = [{"path": str((self.agent.rt.workspace / path).resolve())}]
        self.update(update)

    def _allowed(self, name: str, args: dict[str, Any]) -> bool:
        from codetether.tools import registry

        try:
            return self.agent.rt.permissions.decide(registry.get(name), args)[0] == "allow"
        except (KeyError, AttributeError, ImportError):
            return True  # unknown tool: the loop answers it with an error at once

    def _tool_finished(self, data: dict[str, Any]) -> None:
        output = str(data.get("output", ""))
        self.update({"sessionUpdate": "tool_call_update", "toolCallId": data.get("call_id"),
                     "status": "completed" if data.get("success") else "failed",
                     "content": [{"type": "content", "content": _text(output)}] if output else [],
                     "rawOutput": {"output": output, "metadata": data.get("metadata") or {}}})
        if data.get("name") == "todo_write" and data.get("success"):
            self._plan()

    def _plan(self) -> None:
        todos = self.agent.ctx.state.get("todos") or []
        entries = [{"content": t.get("content", ""), "priority": t.get("priority", "medium"),
                    "status": t.get("status", "pending")}
                   for t in todos if isinstance(t, dict) and t.get("status") != "cancelled"]
        self.update({"sessionUpdate": "plan", "entries": entries})

    # -- permissions -------------------------------------------------------------------------
    def approve(self, request: ApprovalRequest) -> str:
        """The permission engine's approver: ask the editor, map its choice to once/always/
        reject. A cancelled turn or a vanished client is a rejection."""
        call_id = request.call_id or new_id("call")
        tool_call = {"toolCallId": call_id, "title": _title(request.tool, request.args),
                     "kind": KINDS.get(request.tool, "other"), "status": "pending",
                     "rawInput": request.args}
        try:
            result = self.owner.request("session/request_permission", {
                "sessionId": self.id, "toolCall": tool_call, "options": PERMISSION_OPTIONS},
                cancel=self.turn_cancel)
        except (CodetetherError, JsonRpcError):
            return "reject"
        outcome = (result or {}).get("outcome") or {}
        choice = outcome.get("optionId") if outcome.get("outcome") == "selected" else None
        if choice in ("allow_once", "allow_always"):
            if request.call_id:
                self.update({"sessionUpdate": "tool_call_update", "toolCallId": call_id,
                             "status": "in_progress"})
            return "once" if choice == "allow_once" else "always"
        if choice == "reject_always":
            self.agent.rt.permissions.remember(request.tool, request.subject, "deny")
        return "reject"

    # -- prompts -----------------------------------------------------------------------------
    def prompt(self, blocks: Any, ctx: RequestContext) -> dict[str, Any]:
        from codetether.providers.base import ImagePart, TextPart

        if not isinstance(blocks, list) or not blocks:
            raise JsonRpcError(INVALID_PARAMS, "prompt must be a non-empty list of content blocks")
        if not self._busy.acquire(blocking=False):
            raise JsonRpcError(INVALID_REQUEST, f"session {self.id} is already running a prompt; "
                                                "cancel it first")
        try:
            text, attachments = _prompt_parts(blocks, TextPart, ImagePart)
            token = self.agent.reset_cancel()
            self.turn_cancel = token
            unlink = ctx.cancel.on_cancel(token.cancel)  # $/cancel_request or a closed stream
            try:
                result = self.agent.run(text, attachments)
            except CodetetherError as exc:
                if token.cancelled:
                    return {"stopReason": "cancelled"}
                raise JsonRpcError(INTERNAL_ERROR, exc.one_line()) from None
            finally:
                unlink()
            return {"stopReason": STOP_REASONS.get(result.stop_reason, "end_turn")}
        finally:
            self._busy.release()

    def replay(self) -> None:
        """``session/load``: the stored conversation as updates, oldest first."""
        from codetether.providers.base import TextPart, ThinkingPart, ToolCallPart, ToolResultPart

        for message in self.agent.session.messages:
            if message.meta.get("reverted") or message.meta.get("summary"):
                continue
            for part in message.parts:
                if isinstance(part, TextPart) and part.text:
                    kind = "user_message_chunk" if message.role == "user" else \
                        "agent_message_chunk"
                    self.update({"sessionUpdate": kind, "content": _text(part.text)})
                elif isinstance(part, ThinkingPart) and part.text:
                    self.update({"sessionUpdate": "agent_thought_chunk",
                                 "content": _text(part.text)})
                elif isinstance(part, ToolCallPart):
                    args = part.parsed_arguments()
                    self.update({"sessionUpdate": "tool_call", "toolCallId": part.id,
                                 "title": _title(part.name, args),
                                 "kind": KINDS.get(part.name, "other"), "status": "pending",
                                 "rawInput": args})
                elif isinstance(part, ToolResultPart):
                    self.update({"sessionUpdate": "tool_call_update",
                                 "toolCallId": part.tool_call_id,
                                 "status": "failed" if part.is_error else "completed",
                                 "content": [{"type": "content",
                                              "content": _text(str(part.content)[:4000])}]})


def _prompt_parts(blocks: list[Any], text_part: Any, image_part: Any) -> tuple[str, list[Any]]:
    """ACP content blocks -> (prompt text, attachments)."""
    texts: list[str] = []
    attachments: list[Any] = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "image" and block.get("data"):
            attachments.append(image_part(block.get("mimeType", "image/png"), block["data"]))
        elif kind == "resource_link":
            texts.append(f"[{block.get('name') or 'resource'}]({block.get('uri', '')})")
        elif kind == "resource":
            resource = block.get("resource") or {}
            if "text" in resource:
                attachments.append(text_part(f'<file path="{resource.get("uri", "")}">\n'
                                             f'{resource["text"]}\n</file>'))
            else:
                texts.append(f"[binary resource {resource.get('uri', '')}]")
    text = "\n".join(t for t in texts if t)
    if not text.strip() and not attachments:
        raise JsonRpcError(INVALID_PARAMS, "the prompt has no text")
    return text or "(see the attached files)", attachments


class AcpAgent:
    """The JSON-RPC side: methods, sessions, and requests back to the client."""

    def __init__(self, *, model: str | None = None, agent_name: str | None = None,
                 access_mode: str | None = None) -> None:
        self.model = model
        self.agent_name = agent_name
        self.access_mode = access_mode
        self.sessions: dict[str, AcpSession] = {}
        self.client_capabilities: dict[str, Any] = {}
        self.stream: JsonRpcStream | None = None
        self._lock = threading.Lock()

    def dispatcher(self) -> Dispatcher:
        d = Dispatcher()
        d.register("initialize", self.initialize)
        d.register("authenticate", lambda params, ctx: {})
        d.register("session/new", _user_errors(self.new_session))
        d.register("session/load", _user_errors(self.load_session))
        d.register("session/prompt", self.prompt)
        d.register("session/cancel", self.cancel)
        d.register("$/cancel_request", self.cancel_request)
        return d

    def serve(self, reader: Any, writer: Any) -> JsonRpcStream:
        self.stream = JsonRpcStream(reader, writer, self.dispatcher(), name="acp", max_workers=16,
                                    inline=("session/cancel", "$/cancel_request"),
                                    on_close=self.shutdown)
        return self.stream.start()

    def notify(self, method: str, params: Any) -> None:
        if self.stream is not None:
            self.stream.notify(method, params)

    def request(self, method: str, params: Any, cancel: CancelToken | None = None) -> Any:
        assert self.stream is not None
        return self.stream.request(method, params, timeout=None, cancel=cancel)

    def shutdown(self) -> None:
        """The client went away: stop running turns and the sessions' MCP servers."""
        from codetether.mcp.bridge import detach

        with self._lock:
            sessions = list(self.sessions.values())
        for session in sessions:
            session.turn_cancel.cancel()
            if session.mcp_servers:
                detach(session.mcp_servers)

    # -- methods -----------------------------------------------------------------------------
    def initialize(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        self.client_capabilities = params.get("clientCapabilities") or {}
        return {"protocolVersion": PROTOCOL_VERSION,
                "agentCapabilities": {
                    "loadSession": True,
                    "promptCapabilities": {"image": True, "audio": False,
                                           "embeddedContext": True},
                    "mcpCapabilities": {"http": True, "sse": False}},
                "authMethods": [],
                "agentInfo": {"name": "codetether", "title": "CodeTether",
                              "version": __version__}}

    def new_session(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        session = self._open(params, None)
        return {"sessionId": session.id}

    def load_session(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        session_id = params.get("sessionId")
        if not isinstance(session_id, str) or not session_id:
            raise JsonRpcError(INVALID_PARAMS, "sessionId is required")
        session = self._open(params, session_id)
        session.replay()
        return {}

    def _open(self, params: dict[str, Any], stored_id: str | None) -> AcpSession:
        from codetether.agent.setup import build_runtime, open_session

        workspace = _workspace(params.get("cwd"))
        stored, store, cfg = open_session(workspace, session_id=stored_id)
        session = AcpSession(self)
        session.mcp_servers = _attach_mcp(params.get("mcpServers") or [], workspace)
        try:
            agent = build_runtime(session=stored, store=store, cfg=cfg, workspace=workspace,
                                  model=self.model, agent_name=self.agent_name,
                                  access_mode=self.access_mode, on_event=session.on_event,
                                  approver=session.approve)
        except BaseException:
            _detach(session.mcp_servers)
            raise
        session.agent, session.id = agent, agent.session.id
        with self._lock:
            self.sessions[session.id] = session
        return session

    def _session(self, params: dict[str, Any]) -> AcpSession:
        session = self.sessions.get(params.get("sessionId"))  # type: ignore[arg-type]
        if session is None:
            raise JsonRpcError(INVALID_PARAMS, f"unknown session {params.get('sessionId')!r}; "
                                               "create one with session/new")
        return session

    def prompt(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        return self._session(params).prompt(params.get("prompt"), ctx)

    def cancel(self, params: dict[str, Any], ctx: RequestContext) -> None:
        session = self.sessions.get(params.get("sessionId"))  # type: ignore[arg-type]
        if session is not None:
            session.turn_cancel.cancel()

    def cancel_request(self, params: dict[str, Any], ctx: RequestContext) -> None:
        ctx.stream.cancel_incoming(params.get("requestId"))


def _workspace(cwd: Any) -> Path:
    if not isinstance(cwd, str) or not Path(cwd).is_absolute():
        raise JsonRpcError(INVALID_PARAMS, "cwd must be an absolute path")
    path = Path(cwd).resolve()
    if not path.is_dir():
        raise JsonRpcError(INVALID_PARAMS, f"cwd {cwd} is not a directory")
    return path


def _attach_mcp(servers: list[Any], workspace: Path) -> list[str]:
    """The client's ``mcpServers`` through our MCP client; a bad entry is skipped (stderr)."""
    import sys

    from codetether.mcp.bridge import attach_servers
    from codetether.mcp.config import ServerSpec

    specs = []
    for raw in servers:
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            continue
        pairs = {p.get("name"): p.get("value") for p in raw.get("env") or raw.get("headers") or []
                 if isinstance(p, dict) and isinstance(p.get("name"), str)}
        kind = raw.get("type", "stdio")
        if kind == "http" and isinstance(raw.get("url"), str):
            specs.append(ServerSpec(raw["name"], "http", url=raw["url"], headers=pairs))
        elif kind == "stdio" and isinstance(raw.get("command"), str):
            specs.append(ServerSpec(raw["name"], "stdio", command=raw["command"],
                                    args=[str(a) for a in raw.get("args") or []], env=pairs))
        else:
            print(f"warning: mcp server {raw['name']!r} ({kind}) is not supported; skipped",
                  file=sys.stderr)
    attach_servers(specs, workspace)
    return [s.name for s in specs]


def _detach(names: list[str]) -> None:
    if names:
        from codetether.mcp.bridge import detach

        detach(names)


def _user_errors(handler: Any) -> Any:
    """A user-fixable error (no provider key, unknown session) as one JSON-RPC error line."""
    def wrapped(params: dict[str, Any], ctx: RequestContext) -> Any:
        try:
            return handler(params, ctx)
        except CodetetherError as exc:
            raise JsonRpcError(INTERNAL_ERROR, exc.one_line()) from None
    return wrapped


def serve_stdio(**options: Any) -> int:
    """Run until the client closes stdin; the protocol owns stdout, logs go to stderr."""
    import os
    import sys

    protocol_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    stream = AcpAgent(**options).serve(sys.stdin.buffer, protocol_out)
    stream.wait_closed()
    stream.drain(5.0)
    return 0
