"""``task``: hand a self-contained job to a sub-agent in a child session.

The sub-agent (``explore``: read-only and fast; ``general``: full tools, no further
sub-agents) works in its own session, so its steps do not fill this one's context; only its
final message comes back.
"""

from __future__ import annotations

from typing import Any

from codetether.tools.base import Tool, ToolContext, ToolError, ToolResult, require

PROFILES = ("explore", "general")


class TaskTool(Tool):
    name = "task"
    description = ("Run a sub-agent on a self-contained task and get its final report. "
                   "subagent_type 'explore' only reads (use it to search a large codebase); "
                   "'general' can also change files. Give it everything it needs in the prompt: "
                   "it does not see this conversation.")
    parameters = {
        "type": "object",
        "properties": {
            "description": {"type": "string", "description": "3-5 word summary of the task"},
            "prompt": {"type": "string", "description": "the full task for the sub-agent"},
            "subagent_type": {"type": "string", "enum": list(PROFILES)},
        },
        "required": ["prompt"],
    }
    read_only = False

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        prompt = require(args, "prompt")
        profile = args.get("subagent_type") or "explore"
        if profile not in PROFILES:
            raise ToolError(f"subagent_type must be one of {', '.join(PROFILES)}")
        if ctx.run_subagent is None:
            raise ToolError("sub-agents are not available here")
        answer = ctx.run_subagent(profile, prompt)
        return ToolResult(answer, True, {"subagent_type": profile})

    def subject(self, args: dict[str, Any]) -> str | None:
        return None
