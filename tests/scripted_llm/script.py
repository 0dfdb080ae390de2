"""What the scripted LLM says next: one ``Turn`` per request, in order."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ToolCall:
    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None

    def arguments_json(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments)


@dataclass
class Turn:
    """One scripted response.

    A normal turn streams ``thinking`` (if any), then ``text`` in ``text_chunk``-sized deltas,
    then each tool call with its arguments split into ``arg_chunk``-sized deltas, then usage.
    ``status`` other than 200 answers with that HTTP error instead (``error_message``,
    ``error_type`` and ``retry_after`` shape it). ``cut_after`` closes the connection after that
    many stream events, without the terminal event: a stream cut mid-way. ``hold_after`` pauses
    the stream after that many events until the test calls ``ScriptedLLMServer.release()``.
    """

    text: str = ""
    thinking: str = ""
    thinking_signature: str = "c2lnbmF0dXJlLW9mLXRoaW5raW5n"
    tool_calls: list[ToolCall] = field(default_factory=list)
    input_tokens: int = 11
    output_tokens: int = 7
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    stop_reason: str | None = None  # None: derived (tool use when there are tool calls)
    text_chunk: int = 5
    arg_chunk: int = 7
    status: int = 200
    error_message: str = "scripted error"
    error_type: str | None = None
    retry_after: str | None = None
    cut_after: int | None = None
    hold_after: int | None = None  # stop after N events until ``server.release()`` (cancel tests)

    def text_deltas(self) -> list[str]:
        return _split(self.text, self.text_chunk)

    def thinking_deltas(self) -> list[str]:
        return _split(self.thinking, self.text_chunk)

    def arg_deltas(self, call: ToolCall) -> list[str]:
        return _split(call.arguments_json(), self.arg_chunk)

    def call_id(self, index: int) -> str:
        call = self.tool_calls[index]
        return call.id or f"call_{index}_{call.name}"


def _split(text: str, size: int) -> list[str]:
    if not text:
        return []
    size = max(1, size)
    return [text[i:i + size] for i in range(0, len(text), size)]
