"""The ``undo`` tool: the model (or a person through it) takes back the session's last file
changes. The work is done by ``codetether.agent.undo``; this is the model-facing wrapper."""

from __future__ import annotations

from typing import Any

from codetether.core.errors import CodetetherError
from codetether.tools.base import Tool, ToolContext, ToolError, ToolResult, cap_output


class UndoTool(Tool):
    name = "undo"
    description = (
        "Undo the file changes of the last `steps` tool-using steps of this session: files are "
        "restored from the snapshot taken before those changes (files created since are "
        "deleted) and those steps are hidden from the conversation. Use preview=true first to "
        "see which files would change and the diff, without changing anything.")
    parameters = {
        "type": "object",
        "properties": {
            "steps": {"type": "integer", "minimum": 1, "default": 1,
                      "description": "how many change steps to take back (default 1)"},
            "preview": {"type": "boolean", "default": False,
                        "description": "only show what would be restored"},
        },
    }
    read_only = False
    interactive = True

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        from codetether.agent.undo import undo

        if ctx.store is None or ctx.session is None:
            raise ToolError("undo needs a stored session and none is attached to this run")
        steps = args.get("steps", 1)
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ToolError(f"'steps' must be an integer of at least 1, got {steps!r}")
        preview = args.get("preview", False)
        if not isinstance(preview, bool):
            raise ToolError(f"'preview' must be true or false, got {preview!r}")
        try:
            result = undo(ctx.store, ctx.session, steps, preview, data_dir=ctx.data_dir,
                          stop_before=_calling_message(ctx.session))
        except CodetetherError as exc:
            raise ToolError(exc.one_line()) from None
        text = result.summary()
        if preview and result.diff:
            limit = max(1024, ctx.limits.output_bytes - len(text.encode("utf-8")) - 256)
            text += "\n\n" + cap_output(result.diff, limit, "undo with preview=false to apply")
        return ToolResult(text, metadata={"files": result.files, "tree": result.tree,
                                          "steps": result.steps, "preview": preview})


def _calling_message(session: Any) -> str | None:
    """The assistant message that is calling ``undo`` right now: it and whatever follows it
    stay visible (hiding the call would orphan its result). The loop stores an assistant
    message before running its calls, so it is the last message."""
    last = session.messages[-1] if session.messages else None
    if last is not None and last.role == "assistant" and any(
            c.name == "undo" for c in last.tool_calls()):
        return last.id
    return None
