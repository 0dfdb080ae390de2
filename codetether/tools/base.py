"""What a tool is, what it gets (``ToolContext``) and what it gives back (``ToolResult``).

A tool never crashes the loop: a failure is ``ToolResult(success=False)`` (raise ``ToolError``
for convenience; the loop converts it), so the model reads what went wrong and can try again.
Paths always go through ``ctx.resolve_path`` so that nothing escapes the workspace unless the
``external_directory`` permission allows it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from codetether.core.cancel import CancelToken

DEFAULT_OUTPUT_LIMIT = 64 * 1024


class ToolError(Exception):
    """Raised by a tool for an expected failure; becomes ``ToolResult(success=False)``."""

    def __init__(self, message: str, **metadata: Any) -> None:
        super().__init__(message)
        self.message = message
        self.metadata = metadata


@dataclass
class ToolResult:
    output: str
    success: bool = True
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def error(cls, message: str, **metadata: Any) -> ToolResult:
        return cls(message, False, metadata)


@dataclass
class Limits:
    output_bytes: int = DEFAULT_OUTPUT_LIMIT
    bash_timeout: float = 120.0
    web_timeout: float = 30.0
    web_max_bytes: int = 5 * 1024 * 1024


# (path) -> None or raise ToolError: asks the permission engine about a path outside the workspace
ExternalCheck = Callable[[Path, bool], None]


@dataclass
class ToolContext:
    """Everything a tool may touch. Built by the agent loop once per turn."""

    workspace: Path
    data_dir: Path
    cancel: CancelToken = field(default_factory=CancelToken)
    session_id: str = ""
    limits: Limits = field(default_factory=Limits)
    check_external: ExternalCheck | None = None
    # per-session tool state (todos, plan mode...) shared by the tools of one session
    state: dict[str, Any] = field(default_factory=dict)
    # hooks the loop provides; None where the front end cannot offer them
    ask_user: Callable[[str, list[str]], str] | None = None  # question tool
    run_subagent: Callable[[str, str], str] | None = None  # task tool: (profile, prompt) -> text
    run_tool: Callable[[str, dict[str, Any]], ToolResult] | None = None  # batch tool
    emit: Callable[[str, dict[str, Any]], None] | None = None  # progress events
    config: Any = None  # codetether.core.config.Config when available
    session: Any = None  # codetether.agent.session.Session of the running turn
    store: Any = None  # codetether.agent.store.SessionStore holding it
    lock: threading.RLock = field(default_factory=threading.RLock)

    def resolve_path(self, raw: str, *, write: bool = False) -> Path:
        """An absolute path for ``raw`` (relative to the workspace); outside the workspace it
        must pass the ``external_directory`` permission or a ``ToolError`` is raised."""
        if not isinstance(raw, str) or not raw.strip():
            raise ToolError("a path is required")
        candidate = Path(raw).expanduser()
        if not candidate.is_absolute():
            candidate = self.workspace / candidate
        resolved = candidate.resolve()
        root = self.workspace.resolve()
        if resolved == root or root in resolved.parents:
            return resolved
        if self.check_external is None:
            raise ToolError(f"{raw} is outside the workspace {root}; work inside the workspace "
                            "or allow it with the external_directory permission")
        self.check_external(resolved, write)
        return resolved

    def relative(self, path: Path) -> str:
        """How a path is shown to the model: relative to the workspace when inside it."""
        try:
            return str(path.resolve().relative_to(self.workspace.resolve())) or "."
        except ValueError:
            return str(path)


class Tool:
    """Base class. Subclasses set the class attributes and implement ``run``."""

    name: ClassVar[str]
    description: ClassVar[str]
    parameters: ClassVar[dict[str, Any]] = {"type": "object", "properties": {}}
    read_only: ClassVar[bool] = False
    # needs a person at the keyboard (question, plan_enter/exit, undo): not offered over MCP
    interactive: ClassVar[bool] = False

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        raise ToolError(f"tool {self.name} has no implementation")

    def subject(self, args: dict[str, Any]) -> str | None:
        """What permission patterns match against: a path, a command... (None: the tool only)."""
        for key in ("path", "file_path", "file", "command", "url"):
            value = args.get(key)
            if isinstance(value, str):
                return value
        return None


def cap_output(text: str, limit: int = DEFAULT_OUTPUT_LIMIT, how_to_see_more: str = "") -> str:
    """Cut ``text`` to ``limit`` bytes (UTF-8) with a note saying how much was cut and how to
    see it, so a huge output never floods the model's context."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    kept = data[:limit].decode("utf-8", "ignore")
    cut = len(data) - len(kept.encode("utf-8"))
    note = how_to_see_more or "narrow the request (offset/limit, a tighter pattern) to see more"
    return f"{kept}\n\n[output truncated: {cut} more bytes not shown; {note}]"


def require(args: dict[str, Any], key: str, kind: type = str) -> Any:
    """A required argument of the given type, or a ToolError the model can act on."""
    value = args.get(key)
    if value is None:
        raise ToolError(f"missing required argument '{key}'")
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise ToolError(f"argument '{key}' must be {kind.__name__}, got {type(value).__name__}")
    return value
