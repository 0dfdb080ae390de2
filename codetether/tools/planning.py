"""Planning tools: a todo list the model keeps for itself, plan mode, and asking the user.

``todo_write`` replaces the whole list each time (as TodoWrite does in Claude Code and
opencode): the model always sends the list as it should be, so there are no ids to get out of
step and no partial updates to merge. The list lives in ``ctx.state["todos"]`` and, per session,
in ``<data_dir>/todos/<session_id>.json`` so a resumed session finds it again.

Plan mode is a flag in ``ctx.state``; the loop offers only read-only tools while it is on.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from codetether.core.fsutil import atomic_write_text
from codetether.tools.base import Tool, ToolContext, ToolError, ToolResult, require

STATUSES = ("pending", "in_progress", "completed", "cancelled")
PRIORITIES = ("high", "medium", "low")
MARKS = {"completed": "[x]", "in_progress": "[>]", "pending": "[ ]", "cancelled": "[-]"}
MAX_TODOS = 200
MAX_CONTENT = 2000
_SAFE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")

_TODO_ITEM = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": "stable id, unique in the list"},
        "content": {"type": "string", "description": "what to do, imperative and specific"},
        "status": {"type": "string", "enum": list(STATUSES)},
        "priority": {"type": "string", "enum": list(PRIORITIES)},
    },
    "required": ["id", "content", "status"],
}


# ---- todos -----------------------------------------------------------------------------------


def todos_path(ctx: ToolContext) -> Path | None:
    """Where this session's list is kept; None without a session (the list is then in memory)."""
    if not ctx.session_id:
        return None
    name = ctx.session_id if _SAFE_ID.match(ctx.session_id) else \
        hashlib.sha256(ctx.session_id.encode("utf-8")).hexdigest()[:32]
    return Path(ctx.data_dir) / "todos" / f"{name}.json"


def load_todos(ctx: ToolContext) -> list[dict[str, str]]:
    """The current list: from ``ctx.state``, else from disk (a resumed session)."""
    with ctx.lock:
        if "todos" in ctx.state:
            return list(ctx.state["todos"])
        path = todos_path(ctx)
        todos: list[dict[str, str]] = []
        if path is not None and path.exists():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                todos = validate_todos(data.get("todos", []) if isinstance(data, dict) else data)
            except (OSError, ValueError, ToolError):
                todos = []  # a damaged file: start afresh rather than block the model
        ctx.state["todos"] = todos
        return list(todos)


def validate_todos(raw: Any) -> list[dict[str, str]]:
    """Check and normalise a full list; every problem names the item and how to fix it."""
    if not isinstance(raw, list):
        raise ToolError("'todos' must be a list of {id, content, status, priority} objects")
    if len(raw) > MAX_TODOS:
        raise ToolError(f"too many todos ({len(raw)}); keep at most {MAX_TODOS}")
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for number, item in enumerate(raw, 1):
        if not isinstance(item, dict):
            raise ToolError(f"todo {number} must be an object with id, content and status")
        todo_id = item.get("id", str(number))
        if isinstance(todo_id, int) and not isinstance(todo_id, bool):
            todo_id = str(todo_id)
        if not isinstance(todo_id, str) or not todo_id.strip():
            raise ToolError(f"todo {number}: 'id' must be a non-empty string")
        todo_id = todo_id.strip()
        if todo_id in seen:
            raise ToolError(f"todo id {todo_id!r} is used twice; ids must be unique")
        seen.add(todo_id)
        content = item.get("content")
        if not isinstance(content, str) or not content.strip():
            raise ToolError(f"todo {todo_id!r}: 'content' must be a non-empty string")
        status = item.get("status", "pending")
        if status not in STATUSES:
            raise ToolError(f"todo {todo_id!r}: unknown status {status!r}; "
                            f"use one of {', '.join(STATUSES)}")
        priority = item.get("priority", "medium")
        if priority not in PRIORITIES:
            raise ToolError(f"todo {todo_id!r}: unknown priority {priority!r}; "
                            f"use one of {', '.join(PRIORITIES)}")
        out.append({"id": todo_id, "content": content.strip()[:MAX_CONTENT],
                    "status": status, "priority": priority})
    active = [t["id"] for t in out if t["status"] == "in_progress"]
    if len(active) > 1:
        raise ToolError(f"{len(active)} todos are in_progress ({', '.join(active)}); "
                        "work on one at a time: mark the others pending or completed")
    return out


def render_todos(todos: list[dict[str, str]]) -> str:
    """``[x]`` done, ``[>]`` in progress, ``[ ]`` pending, ``[-]`` cancelled, then counts."""
    if not todos:
        return "no todos"
    lines = []
    for todo in todos:
        priority = "" if todo["priority"] == "medium" else f" ({todo['priority']})"
        lines.append(f"{MARKS[todo['status']]} {todo['id']}. {todo['content']}{priority}")
    counts = {status: sum(1 for t in todos if t["status"] == status) for status in STATUSES}
    summary = ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in counts.items() if n)
    lines.append(f"{len(todos)} todos: {summary}")
    return "\n".join(lines)


class TodoWriteTool(Tool):
    name = "todo_write"
    description = (
        "Replace your todo list for this session with `todos` (send the WHOLE list every time). "
        "Use it for work with 3 or more steps: add the steps, mark exactly one in_progress "
        "while you work on it, mark it completed as soon as it is done, cancel what no longer "
        "applies. Statuses: pending, in_progress, completed, cancelled; priority: high, medium, "
        "low.")
    parameters = {
        "type": "object",
        "properties": {"todos": {"type": "array", "items": _TODO_ITEM,
                                 "description": "the complete list, in order"}},
        "required": ["todos"],
    }
    read_only = False  # changes session state, never a user file

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        todos = validate_todos(require(args, "todos", list))
        with ctx.lock:
            ctx.state["todos"] = todos
            path = todos_path(ctx)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                atomic_write_text(path, json.dumps({"session_id": ctx.session_id,
                                                    "todos": todos}, indent=2) + "\n",
                                  mode=0o600)
        return ToolResult(render_todos(todos), metadata={"todos": todos})


class TodoReadTool(Tool):
    name = "todo_read"
    description = "Show your todo list for this session (optionally only one status)."
    parameters = {
        "type": "object",
        "properties": {"status": {"type": "string", "enum": list(STATUSES),
                                  "description": "only todos with this status"}},
    }
    read_only = True

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        todos = load_todos(ctx)
        status = args.get("status")
        if status is not None:
            if status not in STATUSES:
                raise ToolError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
            todos = [t for t in todos if t["status"] == status]
        return ToolResult(render_todos(todos), metadata={"todos": todos})


# ---- plan mode ---------------------------------------------------------------------------------


class PlanEnterTool(Tool):
    name = "plan_enter"
    description = (
        "Enter plan mode: only read-only tools stay available, so you can investigate and "
        "design before changing anything. Finish with plan_exit and your plan.")
    parameters = {
        "type": "object",
        "properties": {"reason": {"type": "string", "description": "why planning first helps"}},
    }
    read_only = True  # touches no file; must also work while plan mode is on
    interactive = True

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        with ctx.lock:
            already = bool(ctx.state.get("plan_mode"))
            ctx.state["plan_mode"] = True
        if already:
            return ToolResult("already in plan mode; call plan_exit with your plan when ready",
                              metadata={"plan_mode": True})
        return ToolResult("plan mode on: only read-only tools are available. Read the code, "
                          "then call plan_exit with a step-by-step plan in markdown.",
                          metadata={"plan_mode": True})


class PlanExitTool(Tool):
    name = "plan_exit"
    description = (
        "Leave plan mode with your plan (markdown). When a user is present they approve it or "
        "ask you to keep planning; once approved, carry it out.")
    parameters = {
        "type": "object",
        "properties": {"plan": {"type": "string",
                                "description": "the plan: steps, files to change, how to test"}},
        "required": ["plan"],
    }
    read_only = True
    interactive = True
    APPROVE = "approve"
    KEEP = "keep planning"

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        plan = require(args, "plan", str).strip()
        if not plan:
            raise ToolError("'plan' is empty; write the plan in markdown")
        if ctx.ask_user is None:
            self._leave(ctx, plan)
            return ToolResult(f"plan mode off (no user is present to approve the plan; it is "
                              f"shown to the caller).\n\n{plan}",
                              metadata={"plan": plan, "approved": None, "plan_mode": False})
        answer = (ctx.ask_user(f"Approve this plan?\n\n{plan}", [self.APPROVE, self.KEEP])
                  or "").strip()
        if answer.lower() == self.APPROVE:
            self._leave(ctx, plan)
            return ToolResult("the user approved the plan; plan mode is off. Carry it out now.",
                              metadata={"plan": plan, "approved": True, "plan_mode": False})
        feedback = "" if answer.lower() in ("", self.KEEP) else f" They said: {answer}"
        return ToolResult("the user did not approve the plan yet; you are still in plan mode. "
                          f"Revise it and call plan_exit again.{feedback}",
                          metadata={"plan": plan, "approved": False, "plan_mode": True,
                                    "feedback": answer})

    @staticmethod
    def _leave(ctx: ToolContext, plan: str) -> None:
        with ctx.lock:
            ctx.state["plan_mode"] = False
            ctx.state["plan"] = plan


# ---- asking the user ---------------------------------------------------------------------------


class QuestionTool(Tool):
    name = "question"
    description = (
        "Ask the user a question when you cannot go on without their decision (a choice "
        "between designs, a missing requirement). Offer `options` when the answers are known. "
        "Do not ask what you can find out yourself by reading the code.")
    parameters = {
        "type": "object",
        "properties": {
            "question": {"type": "string", "description": "one clear question"},
            "options": {"type": "array", "items": {"type": "string"},
                        "description": "suggested answers (the user may answer otherwise)"},
        },
        "required": ["question"],
    }
    read_only = True
    interactive = True

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        question = require(args, "question", str).strip()
        if not question:
            raise ToolError("'question' is empty")
        options = args.get("options") or []
        if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
            raise ToolError("'options' must be a list of strings")
        options = [o.strip() for o in options if o.strip()]
        if ctx.ask_user is None:
            raise ToolError("no user is available to answer; decide yourself and say what you "
                            "assumed")
        answer = (ctx.ask_user(question, options) or "").strip()
        if not answer:
            return ToolResult("the user gave no answer; decide yourself and say what you "
                              "assumed", metadata={"answer": ""})
        return ToolResult(f"the user answered: {answer}", metadata={"answer": answer})
