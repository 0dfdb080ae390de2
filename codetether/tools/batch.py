"""``batch``: several read-only tool calls in one step, run in parallel.

Only read-only tools may be batched, so no ordering between the calls can matter. Each call
goes through the same path (permissions, errors) as a call made directly by the model.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from codetether.tools import registry
from codetether.tools.base import Tool, ToolContext, ToolError, ToolResult

MAX_CALLS = 10
MAX_PARALLEL = 4


class BatchTool(Tool):
    name = "batch"
    description = ("Run several read-only tool calls (read, grep, glob, list, ...) in parallel "
                   "and get all their results at once. Use it to read many files or run many "
                   "searches in one step.")
    parameters = {
        "type": "object",
        "properties": {
            "calls": {
                "type": "array", "maxItems": MAX_CALLS,
                "items": {"type": "object", "properties": {
                    "tool": {"type": "string"}, "args": {"type": "object"}},
                    "required": ["tool"]},
            },
        },
        "required": ["calls"],
    }
    read_only = True

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        calls = args.get("calls")
        if not isinstance(calls, list) or not calls:
            raise ToolError("calls must be a non-empty list of {tool, args}")
        if len(calls) > MAX_CALLS:
            raise ToolError(f"at most {MAX_CALLS} calls per batch, got {len(calls)}")
        for index, call in enumerate(calls):
            self._validate(index, call)
        if ctx.run_tool is None:
            raise ToolError("batch is not available here")
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(calls))) as pool:
            results = list(pool.map(lambda c: ctx.run_tool(c["tool"], c.get("args") or {}), calls))
        sections = []
        for index, (call, result) in enumerate(zip(calls, results, strict=True), 1):
            status = "ok" if result.success else "error"
            sections.append(f"=== [{index}] {call['tool']} ({status}) ===\n{result.output}")
        failed = sum(1 for r in results if not r.success)
        return ToolResult("\n\n".join(sections), failed < len(results),
                          {"calls": len(calls), "failed": failed})

    @staticmethod
    def _validate(index: int, call: Any) -> None:
        if not isinstance(call, dict) or not isinstance(call.get("tool"), str):
            raise ToolError(f"call {index} must be an object with a 'tool' name")
        name = call["tool"]
        if name not in registry.TOOLS:
            raise ToolError(f"call {index}: unknown tool '{name}'")
        tool = registry.get(name)
        if not tool.read_only or name == "batch":
            raise ToolError(f"call {index}: {name} cannot be batched (only read-only tools)")
        if not isinstance(call.get("args", {}), dict):
            raise ToolError(f"call {index}: args must be an object")
