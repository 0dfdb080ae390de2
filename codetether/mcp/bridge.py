"""External MCP servers' tools as our ``Tool`` objects, named ``NAME_TOOL`` in the registry.

Lazy: a server's tool list is cached in the data dir (keyed by the server's config
fingerprint), so a session whose servers were seen before registers their tools without
starting anything; the server starts on the first call of one of its tools. A server never
seen before is started once at attach time to learn its tools. Servers stop when the process
ends (or ``detach`` is called); ``notifications/tools/list_changed`` re-lists them.

A failing server never crashes a turn: its calls become tool errors the model can read.
"""

from __future__ import annotations

import atexit
import json
import re
import sys
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from codetether.core import paths
from codetether.core.errors import CodetetherError
from codetether.core.fsutil import atomic_write_text
from codetether.mcp.client import McpCancelled, ServerHandle, result_text
from codetether.mcp.config import ServerSpec, load_servers
from codetether.tools import registry
from codetether.tools.base import Tool, ToolContext, ToolResult

MAX_NAME = 64
_lock = threading.RLock()
_handles: dict[str, ServerHandle] = {}
_registered: dict[str, list[str]] = {}  # server name -> our tool names


def tool_name(server: str, tool: str) -> str:
    """``NAME_TOOL`` limited to what every provider accepts as a function name."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"{server}_{tool}")[:MAX_NAME]


class McpTool(Tool):
    """One remote tool. Read-only when the server says so (``annotations.readOnlyHint``)."""

    def __init__(self, handle: ServerHandle, remote: dict[str, Any]) -> None:
        self.handle = handle
        self.remote_name = str(remote["name"])
        self.name = tool_name(handle.spec.name, self.remote_name)  # type: ignore[misc]
        description = remote.get("description") or remote.get("title") or self.remote_name
        self.description = (f"[MCP server {handle.spec.name}] {description}")  # type: ignore[misc]
        schema = remote.get("inputSchema")
        self.parameters = schema if isinstance(schema, dict) else {  # type: ignore[misc]
            "type": "object", "properties": {}}
        annotations = remote.get("annotations") or {}
        self.read_only = bool(annotations.get("readOnlyHint"))  # type: ignore[misc]

    def subject(self, args: dict[str, Any]) -> str | None:
        return None

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        def progress(done: float, total: float | None, message: str | None) -> None:
            if ctx.emit is not None and message:
                ctx.emit("tool.output", {"tool": self.name, "text": message + "\n"})

        try:
            result = self.handle.call_tool(self.remote_name, args, cancel=ctx.cancel,
                                           on_progress=progress)
        except McpCancelled:
            return ToolResult.error(f"{self.name} was cancelled")
        except CodetetherError as exc:
            return ToolResult.error(exc.one_line(), server=self.handle.spec.name)
        metadata: dict[str, Any] = {"server": self.handle.spec.name}
        if result.get("structuredContent") is not None:
            metadata["structured"] = result["structuredContent"]
        return ToolResult(result_text(result), not result.get("isError"), metadata)


# ---- the tool cache --------------------------------------------------------------------------

def _cache_path() -> Path:
    return paths.data_dir() / "mcp" / "tools-cache.json"


def _read_cache() -> dict[str, Any]:
    try:
        data = json.loads(_cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _cached_tools(spec: ServerSpec) -> list[dict[str, Any]] | None:
    entry = _read_cache().get(spec.name)
    if isinstance(entry, dict) and entry.get("fingerprint") == spec.fingerprint():
        tools = entry.get("tools")
        return tools if isinstance(tools, list) else None
    return None


def _store_tools(spec: ServerSpec, tools: list[dict[str, Any]]) -> None:
    with _lock:
        data = _read_cache()
        data[spec.name] = {"fingerprint": spec.fingerprint(), "tools": tools}
        try:
            paths.ensure_private_dir(_cache_path().parent)
            atomic_write_text(_cache_path(), json.dumps(data, indent=1) + "\n", mode=0o600)
        except OSError:
            pass  # only a cache


# ---- attaching -------------------------------------------------------------------------------

def _register(handle: ServerHandle, tools: list[dict[str, Any]]) -> list[str]:
    """Replace the server's tools in the registry with ``tools``; our names."""
    server = handle.spec.name
    names: list[str] = []
    with _lock:
        for old in _registered.get(server, []):
            registry.unregister(old)
        for remote in tools:
            if not isinstance(remote, dict) or not remote.get("name"):
                continue
            tool = McpTool(handle, remote)
            try:
                registry.register_dynamic(tool.name, tool)
            except ValueError:
                print(f"warning: mcp tool {tool.name} would hide a built-in tool; skipped",
                      file=sys.stderr)
                continue
            names.append(tool.name)
        _registered[server] = names
    return names


def _refresh(handle: ServerHandle) -> None:
    """``notifications/tools/list_changed``: list again and re-register."""
    try:
        tools = handle.list_tools()
    except CodetetherError as exc:
        print(f"warning: {exc.one_line()}", file=sys.stderr)
        return
    _store_tools(handle.spec, tools)
    _register(handle, tools)


def _attach_one(spec: ServerSpec, roots: list[Path]) -> list[str]:
    with _lock:
        old = _handles.get(spec.name)
        if old is not None and old.spec.fingerprint() == spec.fingerprint():
            return list(_registered.get(spec.name, []))  # already attached (another session)
        _handles.pop(spec.name, None)
    if old is not None:
        old.close()
    handle = ServerHandle(spec, roots=roots)
    handle.on_tools_changed = lambda: threading.Thread(
        target=_refresh, args=(handle,), daemon=True).start()
    with _lock:
        _handles[spec.name] = handle
    tools = _cached_tools(spec)
    if tools is None:
        tools = handle.list_tools()  # starts the server: its tools are not known yet
        _store_tools(spec, tools)
    return _register(handle, tools)


def attach_servers(specs: Iterable[ServerSpec], workspace: Path | None = None,
                   *, warn: bool = True) -> list[str]:
    """Register the tools of these servers (started in parallel when not cached); a server
    that fails is reported on stderr and skipped. Returns the registered tool names."""
    todo = [s for s in specs if s.enabled]
    if not todo:
        return []
    roots = [workspace] if workspace else []
    names: list[str] = []
    with ThreadPoolExecutor(max_workers=min(8, len(todo))) as pool:
        futures = [(spec, pool.submit(_attach_one, spec, roots)) for spec in todo]
        for spec, future in futures:
            try:
                names += future.result()
            except CodetetherError as exc:
                detach([spec.name])
                if warn:
                    print(f"warning: mcp server '{spec.name}' skipped: {exc.one_line()}",
                          file=sys.stderr)
    return names


def attach_configured_servers(cfg: Any, workspace: Path | None = None) -> list[str]:
    """The agent's hook (``agent/setup.py``): every enabled ``[mcp.servers.*]`` entry's tools
    join the registry as ``NAME_TOOL``. Config errors are warnings: the agent still runs."""
    specs, errors = load_servers(cfg)
    for message in errors.values():
        print(f"warning: {message}", file=sys.stderr)
    return attach_servers(specs.values(), workspace)


def detach(server_names: Iterable[str] | None = None) -> None:
    """Stop these servers (all when None) and remove their tools."""
    with _lock:
        chosen = list(_handles) if server_names is None else [
            n for n in server_names if n in _handles or n in _registered]
        handles = [_handles.pop(n) for n in chosen if n in _handles]
        for name in chosen:
            for tool in _registered.pop(name, []):
                registry.unregister(tool)
    for handle in handles:
        handle.close()


def handles() -> dict[str, ServerHandle]:
    with _lock:
        return dict(_handles)


atexit.register(detach)
