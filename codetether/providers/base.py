"""The provider contract: what goes in (``ChatRequest``), what comes out (``StreamEvent``s).

Every wire format implements ``Provider.stream(request)``, a generator of events in the order
the model produced them. Failures are raised as ``ProviderError`` subclasses (see
``codetether.core.errors``) *after* the events already received have been yielded, so a caller
keeps whatever text arrived before a stream broke.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, Union

from codetether.core.cancel import CancelToken

# ---- message parts -------------------------------------------------------------------------


@dataclass
class TextPart:
    text: str
    type: Literal["text"] = "text"


@dataclass
class ThinkingPart:
    """Model reasoning; ``signature`` must be sent back verbatim to Anthropic/Bedrock."""

    text: str
    signature: str | None = None
    type: Literal["thinking"] = "thinking"


@dataclass
class ToolCallPart:
    id: str
    name: str
    arguments: str  # the JSON text exactly as the model produced it
    type: Literal["tool_call"] = "tool_call"

    def parsed_arguments(self) -> dict[str, Any]:
        """Arguments as a dict; malformed JSON from a model becomes ``{}``, not a crash."""
        try:
            value = json.loads(self.arguments or "{}")
        except json.JSONDecodeError:
            return {}
        return value if isinstance(value, dict) else {}


@dataclass
class ToolResultPart:
    tool_call_id: str
    content: str
    is_error: bool = False
    type: Literal["tool_result"] = "tool_result"


@dataclass
class ImagePart:
    media_type: str  # e.g. "image/png"
    data: str  # base64
    type: Literal["image"] = "image"


Part = Union[TextPart, ThinkingPart, ToolCallPart, ToolResultPart, ImagePart]
Role = Literal["user", "assistant", "tool"]


@dataclass
class Message:
    """One turn of the conversation. Tool results travel in ``role="tool"`` messages."""

    role: Role
    parts: list[Part]

    @classmethod
    def user(cls, text: str) -> Message:
        return cls("user", [TextPart(text)])

    @classmethod
    def assistant(cls, text: str) -> Message:
        return cls("assistant", [TextPart(text)])

    def text(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))


@dataclass
class ToolSpec:
    """A tool as the model sees it: name, description and a JSON-schema for its arguments."""

    name: str
    description: str
    parameters: dict[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )


@dataclass
class ChatRequest:
    model: str  # the provider's own model id (no "provider/" prefix)
    messages: list[Message]
    system: str = ""
    tools: list[ToolSpec] = field(default_factory=list)
    max_tokens: int | None = None
    temperature: float | None = None
    reasoning_effort: str | None = None  # "low" | "medium" | "high" where the model supports it
    thinking_budget: int | None = None  # Anthropic/Bedrock extended thinking, in tokens
    cancel: CancelToken | None = None


# ---- stream events -------------------------------------------------------------------------


@dataclass
class TextDelta:
    text: str
    type: Literal["text_delta"] = "text_delta"


@dataclass
class ThinkingDelta:
    text: str
    signature: str | None = None  # set on the event that closes a signed thinking block
    type: Literal["thinking_delta"] = "thinking_delta"


@dataclass
class ToolCallStart:
    id: str
    name: str
    type: Literal["tool_call_start"] = "tool_call_start"


@dataclass
class ToolCallDelta:
    id: str
    arguments_delta: str
    type: Literal["tool_call_delta"] = "tool_call_delta"


@dataclass
class ToolCallEnd:
    """Emitted once per call with the complete argument text (``"{}"`` when the model sent none)."""

    id: str
    name: str
    arguments: str
    type: Literal["tool_call_end"] = "tool_call_end"


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    type: Literal["usage"] = "usage"

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )


StopReason = Literal["end_turn", "tool_use", "max_tokens", "content_filter", "other"]


@dataclass
class Done:
    stop_reason: StopReason = "end_turn"
    type: Literal["done"] = "done"


StreamEvent = Union[
    TextDelta, ThinkingDelta, ToolCallStart, ToolCallDelta, ToolCallEnd, Usage, Done
]


class Provider(Protocol):
    """One configured endpoint of one wire format. ``id`` is the provider id (e.g. "openai")."""

    id: str

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]: ...

    def list_models(self) -> list[str]: ...


@dataclass
class Completion:
    """Everything one streamed response amounted to, gathered by ``collect``."""

    text: str = ""
    thinking: list[ThinkingPart] = field(default_factory=list)
    tool_calls: list[ToolCallPart] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    stop_reason: StopReason = "end_turn"

    def as_message(self) -> Message:
        parts: list[Part] = list(self.thinking)
        if self.text:
            parts.append(TextPart(self.text))
        parts.extend(self.tool_calls)
        return Message("assistant", parts)


def collect(events: Iterator[StreamEvent]) -> Completion:
    """Fold a stream into a ``Completion`` (tests and non-streaming callers use this)."""
    out = Completion()
    text: list[str] = []
    thinking: list[str] = []
    for event in events:
        if isinstance(event, TextDelta):
            text.append(event.text)
        elif isinstance(event, ThinkingDelta):
            thinking.append(event.text)
            if event.signature is not None:
                out.thinking.append(ThinkingPart("".join(thinking), event.signature))
                thinking = []
        elif isinstance(event, ToolCallEnd):
            out.tool_calls.append(ToolCallPart(event.id, event.name, event.arguments))
        elif isinstance(event, Usage):
            out.usage = out.usage.add(event)
        elif isinstance(event, Done):
            out.stop_reason = event.stop_reason
    if thinking:
        out.thinking.append(ThinkingPart("".join(thinking)))
    out.text = "".join(text)
    return out


@dataclass
class Endpoint:
    """Everything a wire-format module needs to reach one provider, resolved from the provider
    table, config (``[providers.<id>]``) and the credentials. Built by ``providers.resolve``."""

    provider_id: str
    base_url: str
    api_key: str | None = field(default=None, repr=False)
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 300.0
    max_retries: int = 3
    extras: dict[str, str] = field(default_factory=dict, repr=False)  # region, aws keys, org...
