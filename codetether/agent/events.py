"""The one event vocabulary every front end consumes (run printer, TUI, A2A, ACP, bus).

An event is a type string plus plain JSON-able data, so any consumer can forward it as is.

    turn.started      {session_id, model, agent}
    text.delta        {text}
    thinking.delta    {text}
    tool.started      {call_id, name, args}
    tool.output       {tool, text}            (live output of a running tool, e.g. bash)
    tool.finished     {call_id, name, success, output, duration_ms, metadata}
    approval.requested{call_id, tool, subject, args, reason}
    usage             {input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                       reasoning_tokens, cost}
    compaction        {pruned_messages, summarized_messages}
    turn.finished     {session_id, response, usage, cost, steps, stop_reason}
    error             {message, fatal?}   (fatal: the turn ends with this error raised)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Event:
    type: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, **self.data}


EventSink = Callable[[Event], None]


def ignore(_event: Event) -> None:
    """A sink for callers that do not care (sub-agents, tests)."""
