"""OpenAI Chat Completions: the wire format that most vendors and every local server speak.

One module serves OpenAI, OpenRouter, Moonshot, Z.AI, StepFun, DeepSeek, xAI, Groq, Mistral,
Google's OpenAI-compatible endpoint, GitHub Copilot and Ollama / llama.cpp / vLLM / LM Studio.
They agree on the shape but not on every detail, so the parser is lenient where vendors differ:
reasoning arrives as ``reasoning_content`` (DeepSeek, Moonshot) or ``reasoning`` (OpenRouter),
usage may come in a ``choices: []`` chunk, inside the last choice or repeated cumulatively (only
the last one seen is reported, so ``collect()`` never double counts), tool-call pieces may lack an
``index`` or reuse one for a new call, and a server that ignores ``stream`` answers with plain JSON.
"""

from __future__ import annotations

import http.client
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from codetether import __version__
from codetether.core import errors
from codetether.core.cancel import CancelToken
from codetether.core.sse import parse_sse
from codetether.providers.base import (
    ChatRequest,
    Done,
    Endpoint,
    ImagePart,
    Message,
    StopReason,
    StreamEvent,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallPart,
    ToolCallStart,
    ToolResultPart,
    Usage,
)
from codetether.providers.errors import CallContext, cancelled, from_status, stream_broken
from codetether.providers.http import HttpClient, Response, RetryPolicy

_FINISH: dict[str, StopReason] = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "length": "max_tokens",
    "content_filter": "content_filter",
}


class OpenAIChatProvider:
    """``stream()`` and ``list_models()`` for one OpenAI-compatible endpoint."""

    def __init__(self, endpoint: Endpoint, policy: RetryPolicy | None = None) -> None:
        self.endpoint = endpoint
        self.id = endpoint.provider_id
        self.policy = policy or RetryPolicy(max_attempts=endpoint.max_retries + 1,
                                            read_timeout=endpoint.timeout)
        self._base = endpoint.base_url.rstrip("/")

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        ctx = self._context(request.model)
        body = json.dumps(build_body(self.id, request)).encode("utf-8")
        response = HttpClient(ctx, self.policy).send(
            "POST", f"{self._base}/chat/completions", self._headers("text/event-stream"), body,
            request.cancel)
        try:  # the finally also runs when a caller abandons or closes this generator
            if response.headers.get("content-type", "").startswith("application/json"):
                yield from _read_json(response, ctx)
            else:
                yield from _read_stream(response, ctx, request.cancel)
        finally:
            response.close()

    def list_models(self) -> list[str]:
        ctx = self._context("")
        with HttpClient(ctx, self.policy).send(
                "GET", f"{self._base}/models", self._headers("application/json")) as response:
            text = response.text()
        try:
            data = json.loads(text).get("data")
            return sorted(str(item["id"]) for item in data)
        except (ValueError, AttributeError, TypeError, KeyError):
            raise errors.ProviderRequestError(
                f"{self.id} answered GET {self._base}/models with something that is not a model "
                "list", f"check [providers.{self.id}] base_url", provider=self.id) from None

    def _context(self, model: str) -> CallContext:
        secrets = [self.endpoint.api_key or ""]
        secrets += [value for name, value in self.endpoint.headers.items()
                    if "auth" in name.lower() or "key" in name.lower()]
        return CallContext(self.id, model, tuple(s for s in secrets if s))

    def _headers(self, accept: str) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": accept,
                   "User-Agent": f"codetether/{__version__}"}
        if self.endpoint.api_key:
            headers["Authorization"] = f"Bearer {self.endpoint.api_key}"
        organization = self.endpoint.extras.get("organization")
        if organization:
            headers["OpenAI-Organization"] = organization
        headers.update(self.endpoint.headers)
        return headers


# ---- request -------------------------------------------------------------------------------


def build_body(provider_id: str, request: ChatRequest) -> dict[str, Any]:
    """The JSON body of one streaming request."""
    body: dict[str, Any] = {
        "model": request.model,
        "messages": wire_messages(request, echo_reasoning=provider_id != "openai"),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if request.tools:
        body["tools"] = [{"type": "function", "function": {
            "name": t.name, "description": t.description, "parameters": t.parameters}}
            for t in request.tools]
    if request.max_tokens is not None:
        # OpenAI's reasoning models refuse ``max_tokens``; most compatible servers only know it.
        key = "max_completion_tokens" if provider_id == "openai" else "max_tokens"
        body[key] = request.max_tokens
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.reasoning_effort:
        body["reasoning_effort"] = request.reasoning_effort
    return body


def wire_messages(request: ChatRequest, echo_reasoning: bool) -> list[dict[str, Any]]:
    """Our messages as OpenAI ``messages``; tool results become one ``role: tool`` each.

    ``echo_reasoning`` sends thinking back as ``reasoning_content``: Moonshot and DeepSeek want
    it on assistant turns with tool calls, OpenAI rejects the unknown field.
    """
    out: list[dict[str, Any]] = []
    if request.system:
        out.append({"role": "system", "content": request.system})
    for message in request.messages:
        out.extend(_wire_message(message, echo_reasoning))
    return out


def _wire_message(message: Message, echo_reasoning: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"role": "tool", "tool_call_id": p.tool_call_id, "content": p.content}
        for p in message.parts if isinstance(p, ToolResultPart)]
    if message.role == "assistant":
        out.append(_wire_assistant(message, echo_reasoning))
        return out
    content = _wire_content([p for p in message.parts if isinstance(p, (TextPart, ImagePart))])
    if content:
        out.append({"role": "user", "content": content})
    return out


def _wire_assistant(message: Message, echo_reasoning: bool) -> dict[str, Any]:
    text = "".join(p.text for p in message.parts if isinstance(p, TextPart))
    calls = [p for p in message.parts if isinstance(p, ToolCallPart)]
    wire: dict[str, Any] = {"role": "assistant", "content": text or (None if calls else "")}
    if calls:
        wire["tool_calls"] = [{"id": c.id, "type": "function", "function": {
            "name": c.name, "arguments": c.arguments or "{}"}} for c in calls]
    thinking = "".join(p.text for p in message.parts if isinstance(p, ThinkingPart))
    if echo_reasoning and thinking:
        wire["reasoning_content"] = thinking
    return wire


def _wire_content(parts: list[TextPart | ImagePart]) -> str | list[dict[str, Any]]:
    """A plain string when there are only texts (every server takes it), else a parts array."""
    if not any(isinstance(p, ImagePart) for p in parts):
        return "".join(p.text for p in parts if isinstance(p, TextPart))
    return [{"type": "text", "text": p.text} if isinstance(p, TextPart) else
            {"type": "image_url", "image_url": {"url": f"data:{p.media_type};base64,{p.data}"}}
            for p in parts]


# ---- response ------------------------------------------------------------------------------


def _read_stream(response: Response, ctx: CallContext, cancel: CancelToken | None
                 ) -> Iterator[StreamEvent]:
    """Events of an SSE body; errors are raised after what arrived has been yielded."""
    state = _StreamState(ctx)
    saw_done = False
    try:
        for sse in parse_sse(response.iter_lines()):
            if cancel is not None and cancel.cancelled:
                raise cancelled(ctx)
            data = sse.data.strip()
            if data == "[DONE]":
                saw_done = True
                break
            if data:
                yield from state.on_chunk(_parse_chunk(ctx, data))
    except (OSError, http.client.HTTPException) as exc:
        if cancel is not None and cancel.cancelled:
            raise cancelled(ctx) from None
        raise stream_broken(ctx, _describe(exc)) from None
    if cancel is not None and cancel.cancelled:
        raise cancelled(ctx)
    if not saw_done and state.finish is None:
        raise stream_broken(ctx, "the connection closed before the response was complete")
    yield from state.finish_events()


def _read_json(response: Response, ctx: CallContext) -> Iterator[StreamEvent]:
    """A whole ``chat.completion`` from a server that ignored ``stream: true``."""
    try:
        data = _parse_chunk(ctx, response.text())
    except (OSError, http.client.HTTPException) as exc:
        raise stream_broken(ctx, _describe(exc)) from None
    choices = []
    for choice in data.get("choices") or []:
        delta = dict(choice.get("message") or {})
        delta["tool_calls"] = [dict(call, index=i)
                               for i, call in enumerate(delta.get("tool_calls") or [])]
        choices.append({"delta": delta, "finish_reason": choice.get("finish_reason")})
    state = _StreamState(ctx)
    yield from state.on_chunk({"choices": choices, "usage": data.get("usage"),
                               "error": data.get("error")})
    yield from state.finish_events()


def _parse_chunk(ctx: CallContext, data: str) -> dict[str, Any]:
    try:
        chunk = json.loads(data)
    except ValueError:
        raise stream_broken(ctx, f"not JSON: {data[:80]!r}") from None
    if not isinstance(chunk, dict):
        raise stream_broken(ctx, f"not a JSON object: {data[:80]!r}")
    return chunk


@dataclass
class _Call:
    """One tool call being assembled from its pieces."""

    id: str
    name: str = ""
    arguments: list[str] = field(default_factory=list)
    started: bool = False
    ended: bool = False


class _StreamState:
    """Turns ``chat.completion.chunk`` objects into events, remembering calls and usage."""

    def __init__(self, ctx: CallContext) -> None:
        self.ctx = ctx
        self.calls: dict[int, _Call] = {}
        self.order: list[_Call] = []
        self.finish: str | None = None
        self.usage: dict[str, Any] | None = None
        self._last_index = 0

    def on_chunk(self, chunk: dict[str, Any]) -> Iterator[StreamEvent]:
        if chunk.get("error"):
            raise _stream_error(self.ctx, chunk["error"])
        for choice in chunk.get("choices") or []:
            yield from self._on_delta(choice.get("delta") or {})
            if isinstance(choice.get("usage"), dict):  # Moonshot puts it in the choice
                self.usage = choice["usage"]
            if choice.get("finish_reason"):
                self.finish = str(choice["finish_reason"])
                yield from self._end_calls()
        usage = chunk.get("usage") or (chunk.get("x_groq") or {}).get("usage")
        if isinstance(usage, dict):
            self.usage = usage  # cumulative where repeated: keep the last, report it once

    def finish_events(self) -> Iterator[StreamEvent]:
        yield from self._end_calls()
        if self.usage is not None:
            yield _usage(self.usage)
        yield Done(self._stop_reason())

    def _on_delta(self, delta: dict[str, Any]) -> Iterator[StreamEvent]:
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            yield ThinkingDelta(reasoning)
        content = delta.get("content")
        if isinstance(content, str) and content:
            yield TextDelta(content)
        for piece in delta.get("tool_calls") or []:
            if isinstance(piece, dict):
                yield from self._on_tool_piece(piece)

    def _on_tool_piece(self, piece: dict[str, Any]) -> Iterator[StreamEvent]:
        given_id = piece.get("id") or ""
        index = piece.get("index")
        if not isinstance(index, int):  # no index: a new id starts a call, else continue the last
            index = len(self.calls) if given_id else self._last_index
        self._last_index = index
        call = self.calls.get(index)
        if call is None or (given_id and call.started and given_id != call.id):
            if call is not None:  # a server reusing an index for the next call
                yield from self._end(call)
            call = _Call(given_id or f"call_{uuid.uuid4().hex[:24]}")
            self.calls[index] = call
            self.order.append(call)
        function = piece.get("function") or {}
        if function.get("name") and not call.started:
            call.name = str(function["name"])
        if call.name and not call.started:
            call.started = True
            yield ToolCallStart(call.id, call.name)
            if call.arguments:
                yield ToolCallDelta(call.id, "".join(call.arguments))
        arguments = function.get("arguments")
        if arguments is not None and not isinstance(arguments, str):
            arguments = json.dumps(arguments)  # some local servers send an object
        if arguments:
            call.arguments.append(arguments)
            if call.started:
                yield ToolCallDelta(call.id, arguments)

    def _end_calls(self) -> Iterator[StreamEvent]:
        for call in self.order:
            yield from self._end(call)

    def _end(self, call: _Call) -> Iterator[StreamEvent]:
        if call.ended:
            return
        call.ended = True
        if not call.started:
            call.started = True
            yield ToolCallStart(call.id, call.name)
        yield ToolCallEnd(call.id, call.name, "".join(call.arguments) or "{}")

    def _stop_reason(self) -> StopReason:
        if self.finish is None:
            reason: StopReason = "end_turn"
        else:
            reason = _FINISH.get(self.finish, "other")
        if reason == "end_turn" and self.order:
            return "tool_use"  # Gemini's endpoint says "stop" after tool calls
        return reason


def _usage(raw: dict[str, Any]) -> Usage:
    prompt_details = raw.get("prompt_tokens_details") or {}
    completion_details = raw.get("completion_tokens_details") or {}
    cached = (_int(prompt_details.get("cached_tokens")) or _int(raw.get("cached_tokens"))
              or _int(raw.get("prompt_cache_hit_tokens")))  # OpenAI | Moonshot | DeepSeek
    return Usage(
        input_tokens=_int(raw.get("prompt_tokens")),
        output_tokens=_int(raw.get("completion_tokens")),
        cache_read_tokens=cached,
        cache_write_tokens=_int(prompt_details.get("cache_write_tokens")),
        reasoning_tokens=_int(completion_details.get("reasoning_tokens")),
    )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _stream_error(ctx: CallContext, error: Any) -> errors.ProviderError:
    """An ``{"error": {...}}`` inside a 200 stream (OpenRouter sends these) as a ProviderError."""
    if not isinstance(error, dict):
        error = {"message": str(error)}
    code = error.get("code")
    if isinstance(code, str) and code.isdigit():
        code = int(code)
    status = code if isinstance(code, int) and 400 <= code <= 599 else 500
    message = str(error.get("message") or "error reported inside the stream")
    if isinstance(code, str) and code not in message:
        message = f"{message} ({code})"  # e.g. "context_length_exceeded" is in the code only
    return from_status(ctx, status, json.dumps({"error": {"message": message}}))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no data arrived before the read timeout"
    if isinstance(exc, http.client.IncompleteRead):
        return "the connection closed in the middle of the response"
    return str(exc) or type(exc).__name__
