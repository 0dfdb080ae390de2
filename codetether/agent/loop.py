"""The turn loop: prompt → model → tools → model … until the model stops calling tools.

Small on purpose (after mini-swe-agent): limits are checked before each model call, every
message is written to the store as soon as it exists, and whatever happens — a tool failure, a
provider error, a cancel — the session stays loadable and every tool call has a result.

Tool calls of one model step run like this: consecutive calls that are read-only and allowed
run in parallel; every other call runs alone, in order, through the permission gate, after a
snapshot of the workspace (so ``undo`` can bring it back).
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from codetether.agent import compaction
from codetether.agent.events import Event, EventSink, ignore
from codetether.agent.permissions import PermissionDenied, PermissionEngine, _is_read_only_call
from codetether.agent.profiles import Profile, get_profile, load_prompt, system_prompt
from codetether.agent.session import Session, StoredMessage, title_from_prompt
from codetether.core.cancel import CancelToken
from codetether.core.errors import CancelledError, ContextLengthError, ProviderError
from codetether.providers import base
from codetether.providers.catalog import ModelInfo
from codetether.tools import registry
from codetether.tools.base import Limits, ToolContext, ToolError, ToolResult, cap_output

SNAPSHOT_TOOLS = frozenset({"write", "edit", "multiedit", "patch", "bash"})
MAX_PARALLEL = 8


@dataclass
class Runtime:
    """What stays the same for every turn of an agent: model, store, rules, hooks."""

    provider: base.Provider
    model: str  # the provider's own model id
    model_ref: str  # provider/model, for display and sessions
    store: Any  # codetether.agent.store.SessionStore
    workspace: Path
    data_dir: Path
    permissions: PermissionEngine
    profile: Profile
    budget: compaction.Budget
    model_info: ModelInfo | None = None
    limits: Limits = field(default_factory=Limits)
    max_steps: int = 50
    on_event: EventSink = ignore
    cancel: CancelToken = field(default_factory=CancelToken)
    ask_user: Any = None  # (question, options) -> answer, when a person is there
    config: Any = None
    max_tokens: int | None = None


@dataclass
class TurnResult:
    session: Session
    response: str
    usage: base.Usage
    cost: float
    steps: int
    stop_reason: str  # end_turn | max_steps | cancelled


def cost_of(usage: base.Usage, info: ModelInfo | None) -> float:
    """USD for one usage record, from the catalog's per-million prices (0 when unknown)."""
    if info is None or info.input_cost is None or info.output_cost is None:
        return 0.0
    cached = usage.cache_read_tokens
    written = usage.cache_write_tokens
    fresh = max(0, usage.input_tokens - cached - written)
    cache_read_price = info.cache_read_cost if info.cache_read_cost is not None else info.input_cost
    total = (fresh * info.input_cost + cached * cache_read_price
             + written * info.input_cost * 1.25 + usage.output_tokens * info.output_cost)
    return total / 1_000_000


class Agent:
    def __init__(self, runtime: Runtime, session: Session) -> None:
        self.rt = runtime
        self.session = session
        self.system = system_prompt(runtime.profile, runtime.workspace, runtime.model_ref)
        self.ctx = self._tool_context()

    # -- one turn ----------------------------------------------------------------------------
    def run(self, prompt: str, attachments: list[base.Part] | None = None) -> TurnResult:
        if not self.session.title:
            self.session.title = title_from_prompt(prompt)
            self.rt.store.save_header(self.session)
        self._append(StoredMessage("user", [base.TextPart(prompt), *(attachments or [])]))
        self._emit("turn.started", session_id=self.session.id, model=self.rt.model_ref,
                   agent=self.rt.profile.name)
        usage, cost, response, stop, steps = base.Usage(), 0.0, "", "max_steps", 0
        overflow_retried = False
        while steps < self.rt.max_steps:
            if self.rt.cancel.cancelled:
                stop = "cancelled"
                break
            steps += 1
            self._maybe_compact()
            try:
                assistant, step_usage = self._call_model()
            except ContextLengthError:
                if overflow_retried or not self._compact(force=True):
                    raise
                overflow_retried, steps = True, steps - 1
                continue
            usage, cost = usage.add(step_usage), cost + cost_of(step_usage, self.rt.model_info)
            response = assistant.text() or response
            if assistant.meta.get("cancelled"):
                self._answer_unanswered(assistant, "cancelled")
                stop = "cancelled"
                break
            calls = assistant.tool_calls()
            if not calls:
                stop = "end_turn"
                break
            self._execute(calls)
        else:
            stop = "max_steps"
        self._finish(usage, cost)
        self._emit("turn.finished", session_id=self.session.id, response=response,
                   usage=_usage_json(usage), cost=cost, steps=steps, stop_reason=stop)
        return TurnResult(self.session, response, usage, cost, steps, stop)

    def _finish(self, usage: base.Usage, cost: float) -> None:
        self.session.usage = self.session.usage.add(usage)
        self.session.cost += cost
        self.session.metadata["state"] = _jsonable(self.ctx.state)
        self.rt.store.save_header(self.session)

    # -- the model ---------------------------------------------------------------------------
    def _tool_names(self) -> list[str]:
        names = self.rt.profile.tool_names()
        if self.ctx.state.get("plan_mode"):
            names = [n for n in names if registry.get(n).read_only or n in (
                "todo_write", "plan_exit", "question", "bash")]
        return names

    def _request(self) -> base.ChatRequest:
        return base.ChatRequest(
            model=self.rt.model, system=self.system,
            messages=[_wire(m) for m in self.session.context_messages()],
            tools=registry.specs(self._tool_names()), max_tokens=self.rt.max_tokens,
            cancel=self.rt.cancel)

    def _call_model(self) -> tuple[StoredMessage, base.Usage]:
        """Stream one model response, emitting deltas; store what arrived even on failure."""
        text: list[str] = []
        thinking: list[base.ThinkingPart] = []
        pending_thinking: list[str] = []
        calls: list[base.ToolCallPart] = []
        usage = base.Usage()
        try:
            for event in self.rt.provider.stream(self._request()):
                if isinstance(event, base.TextDelta):
                    text.append(event.text)
                    self._emit("text.delta", text=event.text)
                elif isinstance(event, base.ThinkingDelta):
                    pending_thinking.append(event.text)
                    if event.text:
                        self._emit("thinking.delta", text=event.text)
                    if event.signature is not None:
                        thinking.append(base.ThinkingPart("".join(pending_thinking),
                                                          event.signature))
                        pending_thinking = []
                elif isinstance(event, base.ToolCallEnd):
                    calls.append(base.ToolCallPart(event.id, event.name, event.arguments))
                elif isinstance(event, base.Usage):
                    usage = usage.add(event)
        except CancelledError:
            message = self._assistant(text, thinking, pending_thinking, calls, usage)
            message.meta["cancelled"] = True
            self._append(message)
            return message, usage
        except ProviderError as exc:
            if text or thinking:
                partial = self._assistant(text, thinking, pending_thinking, [], usage)
                partial.meta["error"] = exc.one_line()
                self._append(partial)
            self._emit("error", message=exc.one_line(), fatal=True)
            raise
        message = self._assistant(text, thinking, pending_thinking, calls, usage)
        self._append(message)
        self._emit("usage", **_usage_json(usage), cost=cost_of(usage, self.rt.model_info))
        return message, usage

    def _assistant(self, text, thinking, pending_thinking, calls, usage) -> StoredMessage:
        parts: list[base.Part] = list(thinking)
        if pending_thinking and "".join(pending_thinking):
            parts.append(base.ThinkingPart("".join(pending_thinking)))
        if text:
            parts.append(base.TextPart("".join(text)))
        parts.extend(calls)
        return StoredMessage("assistant", parts,
                             meta={"model": self.rt.model_ref, "usage": _usage_json(usage)})

    # -- tools -------------------------------------------------------------------------------
    def _execute(self, calls: list[base.ToolCallPart]) -> None:
        results: dict[str, base.ToolResultPart] = {}
        snapshots: dict[str, str] = {}
        for group, parallel in self._groups(calls):
            if self.rt.cancel.cancelled:
                break
            if parallel and len(group) > 1:
                with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(group))) as pool:
                    for call, part in zip(group, pool.map(self._run_call, group), strict=True):
                        results[call.id] = part
            else:
                for call in group:
                    if self.rt.cancel.cancelled:
                        break
                    results[call.id] = self._run_call(call, snapshots)
        parts = [results.get(c.id) or base.ToolResultPart(c.id, "cancelled", True) for c in calls]
        self._append(StoredMessage("tool", parts, meta={"snapshots": snapshots} if snapshots
                                   else {}))

    def _groups(self, calls: list[base.ToolCallPart]):
        """Split calls into runs: consecutive allowed read-only calls together, others alone."""
        group: list[base.ToolCallPart] = []
        for call in calls:
            if self._parallel_safe(call):
                group.append(call)
                continue
            if group:
                yield group, True
                group = []
            yield [call], False
        if group:
            yield group, True

    def _parallel_safe(self, call: base.ToolCallPart) -> bool:
        if call.name not in registry.TOOLS or call.name not in self._tool_names():
            return False
        tool = registry.get(call.name)
        args = call.parsed_arguments()
        return tool.read_only and not tool.interactive and \
            self.rt.permissions.decide(tool, args)[0] == "allow"

    def _run_call(self, call: base.ToolCallPart,
                  snapshots: dict[str, str] | None = None) -> base.ToolResultPart:
        started = time.monotonic()
        args = _parse_args(call.arguments)
        self._emit("tool.started", call_id=call.id, name=call.name,
                   args=args if isinstance(args, dict) else {})
        result = self._run_tool(call.name, args, call.id, snapshots)
        output = cap_output(result.output, self.rt.limits.output_bytes)
        self._emit("tool.finished", call_id=call.id, name=call.name, success=result.success,
                   output=output[:2000], duration_ms=int((time.monotonic() - started) * 1000),
                   metadata=_jsonable(result.metadata))
        return base.ToolResultPart(call.id, output, not result.success)

    def _run_tool(self, name: str, args: Any, call_id: str = "",
                  snapshots: dict[str, str] | None = None) -> ToolResult:
        if name not in registry.TOOLS or name not in self._tool_names():
            available = ", ".join(self._tool_names())
            return ToolResult.error(f"unknown tool '{name}'; available tools: {available}")
        if not isinstance(args, dict):
            return ToolResult.error(f"arguments for {name} are not a JSON object: {args}")
        tool = registry.get(name)
        try:
            self.rt.permissions.check(tool, args, call_id)
            if snapshots is not None and name in SNAPSHOT_TOOLS and \
                    not _is_read_only_call(tool, args):
                self._snapshot(call_id, snapshots)
            return tool.run(args, self.ctx)
        except PermissionDenied as exc:
            return ToolResult.error(exc.message, denied=True)
        except ToolError as exc:
            return ToolResult.error(exc.message, **exc.metadata)
        except Exception as exc:  # a bug in a tool must not kill the session
            return ToolResult.error(f"tool {name} failed unexpectedly: {type(exc).__name__}: "
                                    f"{exc}")

    def _snapshot(self, call_id: str, snapshots: dict[str, str]) -> None:
        try:
            from codetether.agent.snapshots import Snapshots

            snapshots[call_id] = Snapshots(self.rt.data_dir, self.rt.workspace).take()
        except Exception as exc:  # no git, unreadable files: keep working, undo says why
            self._emit("error", message=f"snapshot before {call_id} failed: {exc}")

    def _answer_unanswered(self, assistant: StoredMessage, reason: str) -> None:
        calls = assistant.tool_calls()
        if calls:
            self._append(StoredMessage("tool", [base.ToolResultPart(c.id, reason, True)
                                                for c in calls]))

    # -- controls for front ends -------------------------------------------------------------
    def reset_cancel(self) -> CancelToken:
        """A fresh cancel token for the next turn: a token stays tripped once cancelled, and a
        front end that keeps one agent across turns (the TUI, ACP) needs a new one."""
        self.rt.cancel = CancelToken()
        self.ctx.cancel = self.rt.cancel
        return self.rt.cancel

    def compact(self) -> bool:
        """Compact now (``/compact``): prune, then summarise; True if the context shrank."""
        return self._compact(force=True)

    # -- compaction --------------------------------------------------------------------------
    def _maybe_compact(self) -> None:
        tokens = compaction.estimate(self.session.context_messages(), self.system)
        if tokens >= self.rt.budget.threshold:
            self._compact()

    def _compact(self, force: bool = False) -> bool:
        """Prune, then summarise if still over; True if the context got smaller."""
        pruned = compaction.prune(self.session, self.rt.budget)
        for message in pruned:
            message.meta["pruned"] = True
            self.rt.store.update_message_meta(self.session.id, message.id, {"pruned": True})
        tokens = compaction.estimate(self.session.context_messages(), self.system)
        summarized = 0
        if force or tokens >= self.rt.budget.threshold:
            split = compaction.split_for_summary(self.session, self.rt.budget)
            if split is not None:
                older, covers_until = split
                text = compaction.summarise(self.rt.provider, self.rt.model, older,
                                            load_prompt("compaction.md"), self.rt.cancel)
                if text:
                    self._append(compaction.summary_message(text, covers_until))
                    summarized = len(older)
        if pruned or summarized:
            self._emit("compaction", pruned_messages=len(pruned), summarized_messages=summarized)
        return bool(pruned or summarized)

    # -- plumbing ----------------------------------------------------------------------------
    def _append(self, message: StoredMessage) -> None:
        self.rt.store.append(self.session, message)

    def _emit(self, kind: str, **data: Any) -> None:
        self.rt.on_event(Event(kind, data))

    def _tool_context(self) -> ToolContext:
        state = self.session.metadata.get("state")
        ctx = ToolContext(
            workspace=self.rt.workspace, data_dir=self.rt.data_dir, cancel=self.rt.cancel,
            session_id=self.session.id, limits=self.rt.limits,
            check_external=self.rt.permissions.check_external,
            state=dict(state) if isinstance(state, dict) else {},
            ask_user=self.rt.ask_user, config=self.rt.config,
            session=self.session, store=self.rt.store)
        ctx.run_subagent = self._run_subagent
        ctx.run_tool = lambda name, args: self._run_tool(name, args)
        ctx.emit = lambda kind, data: self._emit(kind, **data)
        return ctx

    def _run_subagent(self, profile_name: str, prompt: str) -> str:
        """The ``task`` tool: a child session with its own profile; returns its last answer."""
        profile = get_profile(profile_name)
        child = self.rt.store.create(str(self.rt.workspace), self.rt.model_ref, profile.name,
                                     parent_id=self.session.id)
        permissions = PermissionEngine(
            self.rt.permissions.rules, self.rt.permissions.access_mode, self.rt.workspace,
            self.rt.data_dir, self.rt.permissions.approver,
            read_only_agent=profile.read_only, on_request=self.rt.permissions.on_request)
        runtime = Runtime(**{**self.rt.__dict__, "profile": profile, "permissions": permissions,
                             "on_event": ignore,
                             "max_steps": profile.max_steps or self.rt.max_steps})
        result = Agent(runtime, child).run(prompt)
        return result.response or f"(the sub-agent ended with {result.stop_reason} and no answer)"


def _parse_args(arguments: str) -> Any:
    try:
        return json.loads(arguments or "{}")
    except json.JSONDecodeError as exc:
        return f"invalid JSON ({exc.msg} at position {exc.pos})"


def _wire(message: StoredMessage) -> base.Message:
    """The stored message as the provider sees it (pruned tool output replaced)."""
    if message.role == "tool" and message.meta.get("pruned"):
        return base.Message("tool", [
            base.ToolResultPart(p.tool_call_id, compaction.PRUNED_PLACEHOLDER, p.is_error)
            if isinstance(p, base.ToolResultPart) else p for p in message.parts])
    return message.as_message()


def _usage_json(usage: base.Usage) -> dict[str, int]:
    data = asdict(usage)
    data.pop("type", None)
    return data


def _jsonable(value: Any) -> Any:
    try:
        return json.loads(json.dumps(value, default=str))
    except (TypeError, ValueError):
        return {}
