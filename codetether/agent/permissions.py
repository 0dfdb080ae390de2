"""Who may do what: allow / ask / deny for each tool call, decided in a fixed order.

1. A rule in ``[permissions]`` for the tool, e.g. ``edit = "ask"`` or
   ``bash = { "git status*" = "allow", "rm -rf*" = "deny" }`` (the most specific matching pattern
   wins; on a tie the safer action wins).
2. An "always" answer the user gave earlier in this project (stored in the data dir).
3. Read-only tools — and shell commands that only read — are allowed.
4. The access mode: ``ask`` (read-only: every change asks), ``approve`` (workspace writes are
   allowed, the shell asks), ``full`` (everything allowed; ``--yolo``).

An "ask" goes to the front end's approver (once / always / reject); with no approver (no TTY,
a server) it is a denial that says how to allow it. A denial is a tool error the model reads.
"""

from __future__ import annotations

import fnmatch
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from codetether.core.errors import ConfigError
from codetether.core.fsutil import atomic_write_text
from codetether.tools.base import Tool, ToolError

Action = Literal["allow", "ask", "deny"]
Answer = Literal["once", "always", "reject"]
ACCESS_MODES = ("ask", "approve", "full")
FILE_WRITERS = frozenset({"write", "edit", "multiedit", "patch"})
_SAFETY = {"deny": 2, "ask": 1, "allow": 0}


@dataclass
class ApprovalRequest:
    tool: str
    subject: str | None
    args: dict[str, Any]
    call_id: str = ""
    reason: str = ""


Approver = Callable[[ApprovalRequest], Answer]


class PermissionDenied(ToolError):
    """A tool call the rules or the user refused; the model reads the message."""


@dataclass
class PermissionEngine:
    rules: dict[str, Any]
    access_mode: str
    workspace: Path
    data_dir: Path
    approver: Approver | None = None
    read_only_agent: bool = False  # plan/explore: nothing may change, whatever the mode
    on_request: Callable[[ApprovalRequest], None] | None = None  # -> approval.requested event
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.access_mode not in ACCESS_MODES:
            raise ConfigError(f"unknown access mode {self.access_mode!r}",
                              "use ask, approve or full")

    # -- deciding ----------------------------------------------------------------------------
    def decide(self, tool: Tool, args: dict[str, Any]) -> tuple[Action, str]:
        subject = tool.subject(args)
        mutating = not _is_read_only_call(tool, args)
        if self.read_only_agent and mutating:
            return "deny", f"the current agent is read-only; {tool.name} would change things"
        rule = self._rule(tool.name, subject)
        if rule is not None:
            return rule, f"[permissions] rule for {tool.name}"
        remembered = self._remembered(tool.name, subject)
        if remembered is not None:
            return remembered, "your earlier 'always' answer"
        if not mutating:
            return "allow", "read-only"
        if self.access_mode == "full":
            return "allow", "access mode full"
        if self.access_mode == "approve" and tool.name != "bash":
            return "allow", "access mode approve allows workspace changes"
        return "ask", f"access mode {self.access_mode}"

    def check(self, tool: Tool, args: dict[str, Any], call_id: str = "") -> None:
        """Return if the call may run; raise ``PermissionDenied`` otherwise (after asking)."""
        action, reason = self.decide(tool, args)
        if action == "allow":
            return
        subject = tool.subject(args)
        shown = f"{tool.name} {subject!r}" if subject else tool.name
        if action == "deny":
            raise PermissionDenied(f"permission denied: {shown} ({reason})")
        request = ApprovalRequest(tool.name, subject, args, call_id, reason)
        if self.on_request:
            self.on_request(request)
        if self.approver is None:
            raise PermissionDenied(
                f"permission denied: {shown} needs approval and no one can approve here; "
                "rerun with --access-mode approve (writes) or full / --yolo (everything)")
        answer = self.approver(request)
        if answer == "always":
            self.remember(tool.name, subject, "allow")
        elif answer != "once":
            raise PermissionDenied(f"permission denied: the user rejected {shown}")

    def check_external(self, path: Path, write: bool) -> None:
        """The ``external_directory`` guard used by ``ToolContext.resolve_path``."""
        rule = self._rule("external_directory", str(path))
        if rule == "allow" or rule is None and self.access_mode == "full":
            return
        request = ApprovalRequest("external_directory", str(path),
                                  {"path": str(path), "write": write},
                                  reason=f"{path} is outside the workspace {self.workspace}")
        if rule == "deny" or self.approver is None:
            raise PermissionDenied(f"permission denied: {path} is outside the workspace "
                                   f"{self.workspace}; allow it with [permissions] "
                                   "external_directory or work inside the workspace")
        if self.on_request:
            self.on_request(request)
        answer = self.approver(request)
        if answer == "always":
            self.remember("external_directory", str(path.parent) + "/*", "allow")
        elif answer != "once":
            raise PermissionDenied(f"permission denied: the user rejected access to {path}")

    # -- rules -------------------------------------------------------------------------------
    def _rule(self, tool_name: str, subject: str | None) -> Action | None:
        rule = self.rules.get(tool_name)
        if isinstance(rule, str):
            return rule  # type: ignore[return-value]
        if not isinstance(rule, dict) or subject is None:
            return None
        candidates = [subject]
        if tool_name != "bash":
            candidates += self._path_forms(subject)
        matches = [(pattern, action) for pattern, action in rule.items()
                   if any(fnmatch.fnmatchcase(c, pattern) for c in candidates)]
        if not matches:
            return None
        best = max(matches, key=lambda m: (_specificity(m[0]), _SAFETY.get(m[1], 2)))
        return best[1]  # type: ignore[return-value]

    def _path_forms(self, subject: str) -> list[str]:
        """A path rule may be written relative to the workspace or absolute."""
        path = Path(subject)
        absolute = path if path.is_absolute() else self.workspace / path
        forms = [str(absolute)]
        try:
            forms.append(str(absolute.resolve().relative_to(self.workspace.resolve())))
        except (ValueError, OSError):
            pass
        return forms

    # -- remembered answers ------------------------------------------------------------------
    def _store_path(self) -> Path:
        return self.data_dir / "approvals.json"

    def _load_remembered(self) -> dict[str, Any]:
        try:
            data = json.loads(self._store_path().read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        project = data.get(str(self.workspace.resolve()), {})
        return project if isinstance(project, dict) else {}

    def _remembered(self, tool_name: str, subject: str | None) -> Action | None:
        patterns = self._load_remembered().get(tool_name, {})
        if not isinstance(patterns, dict):
            return None
        for pattern, action in patterns.items():
            if pattern == "*" or subject is not None and fnmatch.fnmatchcase(subject, pattern):
                return action
        return None

    def remember(self, tool_name: str, subject: str | None, action: Action) -> None:
        """Store an "always" answer for this project. File writers are remembered for every
        file; a shell command for that exact command."""
        pattern = "*" if subject is None or tool_name in FILE_WRITERS else subject
        with self._lock:
            try:
                data = json.loads(self._store_path().read_text(encoding="utf-8"))
            except (OSError, ValueError):
                data = {}
            project = data.setdefault(str(self.workspace.resolve()), {})
            project.setdefault(tool_name, {})[pattern] = action
            self._store_path().parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            atomic_write_text(self._store_path(), json.dumps(data, indent=2) + "\n", mode=0o600)


def _specificity(pattern: str) -> int:
    return len(pattern.replace("*", "").replace("?", ""))


def _is_read_only_call(tool: Tool, args: dict[str, Any]) -> bool:
    if tool.name == "bash":
        from codetether.tools.shell import is_read_only_command

        command = args.get("command")
        return isinstance(command, str) and is_read_only_command(command)
    return bool(tool.read_only) or tool.name in AGENT_STATE_TOOLS


# Tools that change only the agent's own state (todos, memory, plan mode) or whose inner calls
# pass this gate themselves (task, batch): they never need an approval of their own.
AGENT_STATE_TOOLS = frozenset({"todo_write", "todo_read", "question", "plan_enter", "plan_exit",
                               "memory", "skill", "task", "batch"})
