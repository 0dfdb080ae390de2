"""The tool table: name -> "module:Class". A family module is imported the first time one of
its tools is used, so listing tools is cheap and an unused family costs nothing."""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from codetether.providers.base import ToolSpec
from codetether.tools.base import Tool

TOOLS: dict[str, str] = {
    # file ops
    "read": "files_read:ReadTool",
    "list": "files_read:ListTool",
    "glob": "files_read:GlobTool",
    "tree": "files_read:TreeTool",
    "file_info": "files_read:FileInfoTool",
    "head_tail": "files_read:HeadTailTool",
    "diff": "files_read:DiffTool",
    "write": "files_write:WriteTool",
    "edit": "files_write:EditTool",
    "multiedit": "files_write:MultiEditTool",
    "patch": "patch:PatchTool",
    # search
    "grep": "search:GrepTool",
    "codesearch": "search:CodeSearchTool",
    # execution
    "bash": "shell:BashTool",
    "batch": "batch:BatchTool",
    "task": "task:TaskTool",
    # web
    "webfetch": "web:WebFetchTool",
    "websearch": "web:WebSearchTool",
    # planning
    "todo_read": "planning:TodoReadTool",
    "todo_write": "planning:TodoWriteTool",
    "plan_enter": "planning:PlanEnterTool",
    "plan_exit": "planning:PlanExitTool",
    "question": "planning:QuestionTool",
    # knowledge
    "memory": "knowledge:MemoryTool",
    "skill": "knowledge:SkillTool",
    # safety
    "undo": "undo:UndoTool",
}

_cache: dict[str, Tool] = {}

# Tools that exist only at run time (an MCP server's tools as ``NAME_TOOL``). Each is also
# entered in ``TOOLS`` under DYNAMIC, so every ``name in TOOLS`` check (profiles, the loop)
# sees it without knowing where it came from.
DYNAMIC = "<dynamic>"
_dynamic: dict[str, Tool] = {}


def register_dynamic(name: str, tool: Tool) -> None:
    """Add (or replace) a run-time tool; a static tool of the same name is never shadowed."""
    if TOOLS.get(name, DYNAMIC) != DYNAMIC:
        raise ValueError(f"{name} is a built-in tool")
    _dynamic[name] = tool
    TOOLS[name] = DYNAMIC


def unregister(name: str) -> None:
    """Remove a run-time tool (no-op for unknown or built-in names)."""
    if _dynamic.pop(name, None) is not None:
        TOOLS.pop(name, None)


def dynamic_names() -> list[str]:
    return list(_dynamic)


def get(name: str) -> Tool:
    """The tool instance for ``name``; KeyError if there is no such tool."""
    if name in _dynamic:
        return _dynamic[name]
    if name not in _cache:
        module_name, class_name = TOOLS[name].split(":")
        module = importlib.import_module(f"codetether.tools.{module_name}")
        _cache[name] = getattr(module, class_name)()
    return _cache[name]


def names() -> list[str]:
    return list(TOOLS)


def specs(allowed: Iterable[str]) -> list[ToolSpec]:
    """What the model is told about the allowed tools."""
    out = []
    for name in allowed:
        tool = get(name)
        out.append(ToolSpec(tool.name, tool.description, tool.parameters))
    return out
