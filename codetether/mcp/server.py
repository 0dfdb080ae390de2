"""``codetether mcp serve``: our tools, files and sessions for any MCP client, over stdio.

Handshake-era MCP (2024-11-05 .. 2025-11-25): the client's protocol version is echoed when we
support it, else we answer with our latest. ``server/discover`` (2026) gets -32601, which makes
new clients fall back to ``initialize``.

Tool calls go through the permission engine with no approver: the access mode (flag, else
config) decides, and an "ask" comes back as an ``isError`` result that says how to allow it.
A call that carries ``_meta.progressToken`` gets ``notifications/progress`` while it runs (a
heartbeat, plus the tool's live output as messages); ``notifications/cancelled`` trips the
call's cancel token, which stops the tool (the shell kills its process group).
"""

from __future__ import annotations

import base64
import itertools
import mimetypes
import os
import threading
import urllib.parse
from pathlib import Path
from typing import Any

from codetether import __version__
from codetether.core.jsonrpc import INVALID_PARAMS, Dispatcher, JsonRpcError
from codetether.core.jsonrpc_stream import JsonRpcStream, RequestContext
from codetether.tools import registry
from codetether.tools.base import Limits, Tool, ToolContext, ToolError, ToolResult, cap_output

LATEST_VERSION = "2025-11-25"
SUPPORTED_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
RESOURCE_NOT_FOUND = -32002
# not offered: they need a person at the keyboard (interactive) or a model (task)
EXCLUDED_TOOLS = frozenset({"task"})
PAGE_SIZE = 200
MAX_RESOURCES = 5000
MAX_READ_BYTES = 4 * 1024 * 1024
SKIP_DIRS = frozenset({".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv",
                       ".mypy_cache", ".pytest_cache", ".ruff_cache", ".tox", "dist", "build",
                       ".codetether"})
SESSION_PREFIX = "codetether://session/"

PROMPTS: dict[str, dict[str, Any]] = {
    "code_review": {
        "description": "Review a file for bugs, risks and style, with concrete fixes.",
        "arguments": [
            {"name": "path", "description": "file to review, relative to the workspace",
             "required": True},
            {"name": "focus", "description": "what to look at most (e.g. security)",
             "required": False}],
        "template": ("Review the code below for correctness bugs, security problems, edge "
                     "cases and readability. For each finding give the line, why it matters and "
                     "a concrete fix. {focus}\n\n<file path=\"{path}\">\n{code}\n</file>"),
    },
    "explain_code": {
        "description": "Explain what a file does and how its parts fit together.",
        "arguments": [
            {"name": "path", "description": "file to explain, relative to the workspace",
             "required": True},
            {"name": "question", "description": "a specific question about it",
             "required": False}],
        "template": ("Explain what this code does, how its main parts fit together and anything "
                     "surprising in it. {question}\n\n<file path=\"{path}\">\n{code}\n</file>"),
    },
}


def exposed_tools() -> list[Tool]:
    """What ``tools/list`` offers: the built-in registry minus interactive and model-bound
    tools (and minus tools bridged in from other MCP servers)."""
    out = []
    for name in registry.names():
        if name in EXCLUDED_TOOLS or registry.TOOLS.get(name) == registry.DYNAMIC:
            continue
        tool = registry.get(name)
        if not tool.interactive:
            out.append(tool)
    return out


def tool_json(tool: Tool) -> dict[str, Any]:
    return {"name": tool.name, "description": tool.description,
            "inputSchema": tool.parameters or {"type": "object", "properties": {}},
            "annotations": {"readOnlyHint": bool(tool.read_only),
                            "destructiveHint": not tool.read_only,
                            "openWorldHint": tool.name in ("webfetch", "websearch", "bash")}}


class McpServer:
    def __init__(self, workspace: Path, cfg: Any = None, access_mode: str | None = None,
                 progress_interval: float = 1.0, bus: Any = None) -> None:
        from codetether.agent.permissions import PermissionEngine
        from codetether.core import paths

        self.workspace = workspace.resolve()
        self.cfg = cfg
        self.data_dir = paths.data_dir()
        get = cfg.get if cfg is not None else (lambda key, default=None: default)
        rules = {k: v for k, v in (get("permissions") or {}).items() if k != "access_mode"}
        self.permissions = PermissionEngine(
            rules, access_mode or get("permissions.access_mode", "ask"), self.workspace,
            self.data_dir, approver=None)
        self.progress_interval = progress_interval
        self.state: dict[str, Any] = {}  # todos etc., shared by the calls of this connection
        self.lock = threading.RLock()
        self.tools = {t.name: t for t in exposed_tools()}
        self.client_info: dict[str, Any] = {}
        self.bus = bus  # a mcp.bus_bridge.BusBridge (``--bus-url``), or None
        self.dispatcher = self._dispatcher()

    def _dispatcher(self) -> Dispatcher:
        d = Dispatcher()
        d.register("initialize", self.initialize)
        d.register("ping", lambda params, ctx: {})
        d.register("notifications/initialized", lambda params, ctx: None)
        d.register("notifications/cancelled", self.cancelled)
        d.register("notifications/roots/list_changed", lambda params, ctx: None)
        d.register("logging/setLevel", lambda params, ctx: {})
        d.register("tools/list", self.tools_list)
        d.register("tools/call", self.tools_call)
        d.register("resources/list", self.resources_list)
        d.register("resources/templates/list", self.resource_templates)
        d.register("resources/read", self.resources_read)
        d.register("prompts/list", self.prompts_list)
        d.register("prompts/get", self.prompts_get)
        d.register("completion/complete", lambda params, ctx: {
            "completion": {"values": [], "hasMore": False}})
        return d

    # -- stdio -------------------------------------------------------------------------------
    def stream(self, reader: Any, writer: Any) -> JsonRpcStream:
        return JsonRpcStream(reader, writer, self.dispatcher, name="mcp serve", max_workers=16,
                             inline=("notifications/cancelled",), drop_cancelled=True)

    # -- lifecycle ---------------------------------------------------------------------------
    def initialize(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        asked = params.get("protocolVersion")
        self.client_info = params.get("clientInfo") or {}
        return {
            "protocolVersion": asked if asked in SUPPORTED_VERSIONS else LATEST_VERSION,
            "capabilities": {"tools": {"listChanged": False},
                             "resources": {"subscribe": False, "listChanged": False},
                             "prompts": {"listChanged": False}, "logging": {}},
            "serverInfo": {"name": "codetether", "title": "CodeTether", "version": __version__},
            "instructions": (f"CodeTether's coding tools for the workspace {self.workspace}. "
                             "Paths are relative to it. Changes follow the access mode "
                             f"'{self.permissions.access_mode}'."),
        }

    def cancelled(self, params: dict[str, Any], ctx: RequestContext) -> None:
        ctx.stream.cancel_incoming(params.get("requestId"))

    # -- tools -------------------------------------------------------------------------------
    def tools_list(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        tools = [tool_json(t) for t in self.tools.values()]
        if self.bus is not None:
            from codetether.mcp import bus_bridge

            tools += bus_bridge.tool_specs()
        return {"tools": tools}

    def tools_call(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        name = params.get("name")
        tool = self.tools.get(name) if isinstance(name, str) else None
        is_bus = self.bus is not None and name in ("bus_events", "bus_status")
        if tool is None and not is_bus:
            raise JsonRpcError(INVALID_PARAMS, f"unknown tool: {name}")
        args = params.get("arguments") or {}
        if not isinstance(args, dict):
            raise JsonRpcError(INVALID_PARAMS, "arguments must be an object")
        if is_bus:
            from codetether.mcp import bus_bridge

            return bus_bridge.call_tool(self.bus, name, args)
        token = ctx.meta.get("progressToken")
        progress = _Progress(ctx, token, self.progress_interval) if token is not None else None
        try:
            result = self.run_tool(tool, args, ctx, progress)
        finally:
            if progress is not None:
                progress.stop()
        output = cap_output(result.output, Limits().output_bytes)
        return {"content": [{"type": "text", "text": output}], "isError": not result.success}

    def run_tool(self, tool: Tool, args: dict[str, Any], ctx: RequestContext,
                 progress: _Progress | None = None) -> ToolResult:
        from codetether.agent.permissions import PermissionDenied

        tool_ctx = ToolContext(workspace=self.workspace, data_dir=self.data_dir,
                               cancel=ctx.cancel, check_external=self.permissions.check_external,
                               state=self.state, config=self.cfg, lock=self.lock)
        tool_ctx.emit = progress.emit if progress else None
        tool_ctx.run_tool = lambda name, inner: self._inner(name, inner, ctx)
        try:
            self.permissions.check(tool, args)
            return tool.run(args, tool_ctx)
        except PermissionDenied as exc:
            return ToolResult.error(exc.message, denied=True)
        except ToolError as exc:
            return ToolResult.error(exc.message)
        except Exception as exc:  # a tool bug is a failed call, not a dead server
            return ToolResult.error(f"tool {tool.name} failed: {type(exc).__name__}: {exc}")

    def _inner(self, name: str, args: dict[str, Any], ctx: RequestContext) -> ToolResult:
        """``batch``'s calls: the same gate as top-level calls."""
        tool = self.tools.get(name)
        if tool is None or tool.name == "batch":
            return ToolResult.error(f"unknown tool '{name}' for batch")
        return self.run_tool(tool, args, ctx)

    # -- resources ---------------------------------------------------------------------------
    def resources_list(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        everything = self._session_resources() + self._file_resources()
        if self.bus is not None:
            from codetether.mcp import bus_bridge

            everything = bus_bridge.resource_list() + everything
        start = _cursor(params.get("cursor"))
        page = everything[start:start + PAGE_SIZE]
        result: dict[str, Any] = {"resources": page}
        if start + PAGE_SIZE < len(everything):
            result["nextCursor"] = str(start + PAGE_SIZE)
        return result

    def resource_templates(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        return {"resourceTemplates": [
            {"uriTemplate": SESSION_PREFIX + "{id}", "name": "session",
             "description": "a CodeTether session transcript (JSON)",
             "mimeType": "application/json"},
            {"uriTemplate": self.workspace.as_uri() + "/{path}", "name": "workspace file",
             "description": "a file of the workspace"}]}

    def _file_resources(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for root, dirs, files in os.walk(self.workspace):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
            for name in sorted(files):
                path = Path(root) / name
                rel = path.relative_to(self.workspace).as_posix()
                item: dict[str, Any] = {"uri": path.as_uri(), "name": rel}
                mime = mimetypes.guess_type(name)[0]
                if mime:
                    item["mimeType"] = mime
                out.append(item)
                if len(out) >= MAX_RESOURCES:
                    return out
        return out

    def _session_resources(self) -> list[dict[str, Any]]:
        try:
            from codetether.agent.store import SessionStore

            with SessionStore() as store:
                sessions = store.list(str(self.workspace), limit=50)
        except Exception:  # no store yet, or a locked one: files are still listed
            return []
        return [{"uri": SESSION_PREFIX + s.id, "name": f"session {s.id}",
                 "title": s.title or s.id, "mimeType": "application/json",
                 "description": f"{s.message_count} messages, {s.model}"} for s in sessions]

    def resources_read(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        uri = params.get("uri")
        if not isinstance(uri, str) or not uri:
            raise JsonRpcError(INVALID_PARAMS, "uri is required")
        if uri.startswith(SESSION_PREFIX):
            return {"contents": [self._read_session(uri)]}
        if self.bus is not None and uri.startswith("codetether://bus/"):
            from codetether.mcp import bus_bridge

            found = bus_bridge.read_resource(self.bus, uri)
            if found is None:
                raise JsonRpcError(RESOURCE_NOT_FOUND, f"resource not found: {uri}", {"uri": uri})
            return {"contents": [found]}
        return {"contents": [self._read_file(uri)]}

    def _read_session(self, uri: str) -> dict[str, Any]:
        import json

        from codetether.agent.store import SessionStore
        from codetether.core.errors import CodetetherError

        try:
            with SessionStore() as store:
                data = store.export(uri[len(SESSION_PREFIX):])
        except CodetetherError:
            raise JsonRpcError(RESOURCE_NOT_FOUND, f"resource not found: {uri}",
                               {"uri": uri}) from None
        return {"uri": uri, "mimeType": "application/json",
                "text": json.dumps(data, indent=1, ensure_ascii=False)}

    def _read_file(self, uri: str) -> dict[str, Any]:
        parts = urllib.parse.urlsplit(uri)
        not_found = JsonRpcError(RESOURCE_NOT_FOUND, f"resource not found: {uri}", {"uri": uri})
        if parts.scheme != "file":
            raise not_found
        path = Path(urllib.parse.unquote(parts.path)).resolve()
        if path != self.workspace and self.workspace not in path.parents or not path.is_file():
            raise not_found
        data = path.read_bytes()[:MAX_READ_BYTES]
        mime = mimetypes.guess_type(path.name)[0]
        try:
            return {"uri": uri, "mimeType": mime or "text/plain", "text": data.decode("utf-8")}
        except UnicodeDecodeError:
            return {"uri": uri, "mimeType": mime or "application/octet-stream",
                    "blob": base64.b64encode(data).decode("ascii")}

    # -- prompts -----------------------------------------------------------------------------
    def prompts_list(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        return {"prompts": [{"name": name, "description": p["description"],
                             "arguments": p["arguments"]} for name, p in PROMPTS.items()]}

    def prompts_get(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        name = params.get("name")
        prompt = PROMPTS.get(name) if isinstance(name, str) else None
        if prompt is None:
            raise JsonRpcError(INVALID_PARAMS, f"unknown prompt: {name}")
        args = params.get("arguments") or {}
        path = args.get("path") if isinstance(args, dict) else None
        if not isinstance(path, str) or not path:
            raise JsonRpcError(INVALID_PARAMS, f"prompt {name} needs the argument 'path'")
        file = (self.workspace / path).resolve()
        if self.workspace not in file.parents or not file.is_file():
            raise JsonRpcError(INVALID_PARAMS, f"no file {path} in the workspace")
        code = cap_output(file.read_text(encoding="utf-8", errors="replace"), 64 * 1024)
        extra = args.get("focus") or args.get("question") or ""
        label = "Focus on: " if "focus" in args else "Question: "
        text = prompt["template"].format(path=path, code=code,
                                         focus=label + extra if extra else "",
                                         question=label + extra if extra else "")
        return {"description": prompt["description"],
                "messages": [{"role": "user", "content": {"type": "text", "text": text}}]}


class _Progress:
    """``notifications/progress`` for one call: a heartbeat every ``interval`` seconds while the
    tool runs, and each piece of live output as a message. Progress only ever increases."""

    def __init__(self, ctx: RequestContext, token: Any, interval: float) -> None:
        self.ctx = ctx
        self.token = token
        self._count = itertools.count(1)
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(interval,), daemon=True)
        self._thread.start()

    def send(self, message: str | None = None) -> None:
        with self._lock:
            if self._done.is_set():
                return
            params: dict[str, Any] = {"progressToken": self.token, "progress": next(self._count)}
            if message:
                params["message"] = message[:1000]
            self.ctx.notify("notifications/progress", params)

    def emit(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "tool.output" and data.get("text"):
            self.send(str(data["text"]).rstrip("\n"))

    def _beat(self, interval: float) -> None:
        while not self._done.wait(interval):
            self.send()

    def stop(self) -> None:
        with self._lock:
            self._done.set()


def _cursor(raw: Any) -> int:
    try:
        return max(0, int(raw)) if raw is not None else 0
    except (TypeError, ValueError):
        raise JsonRpcError(INVALID_PARAMS, f"invalid cursor {raw!r}") from None


def serve_stdio(workspace: Path, cfg: Any = None, access_mode: str | None = None,
                bus: Any = None) -> int:
    """Serve on this process's stdin/stdout until the client closes stdin; ``bus`` (a
    ``BusBridge``, not yet started) reads a server's agent bus meanwhile and stops with us.

    Protocol messages get a private copy of the stdout descriptor, and fd 1 is pointed at
    stderr, so nothing else — a stray print, a child process — can corrupt the stream."""
    import sys

    protocol_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    server = McpServer(workspace, cfg, access_mode, bus=bus)
    if bus is not None:
        bus.start()
    try:
        stream = server.stream(sys.stdin.buffer, protocol_out).start()
        print(f"codetether mcp serve: workspace {server.workspace}, access mode "
              f"{server.permissions.access_mode}, {len(server.tools)} tools"
              + (f", bus {bus.url}" if bus is not None else ""), file=sys.stderr)
        stream.wait_closed()
        stream.drain(5.0)
    finally:
        if bus is not None:
            bus.stop()
    return 0
