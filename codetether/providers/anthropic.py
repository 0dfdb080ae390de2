"""The Anthropic Messages wire format: Anthropic itself, Claude on Vertex AI, and MiniMax.

One module per wire format, not per vendor: Vertex and MiniMax speak the same Messages API and
differ only in URL, auth header and two body fields, so they are handled here by ``_Target``.

Request side: our neutral ``Message`` list becomes Anthropic's strictly alternating user /
assistant turns (tool results travel inside *user* messages, thinking blocks go first in an
assistant message and keep their signature). Response side: the SSE stream of
``message_start`` … ``message_stop`` becomes ``StreamEvent``s as it arrives.
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from codetether.core import errors
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

API_VERSION = "2023-06-01"
VERTEX_API_VERSION = "vertex-2023-10-16"
VERTEX_ID = "vertex-anthropic"
DEFAULT_MAX_TOKENS = 8192
MIN_THINKING_BUDGET = 1024  # the API rejects smaller budgets
# A redacted_thinking block has no text, only opaque ``data``; it round-trips as a
# ThinkingPart whose signature carries this prefix (real signatures are base64: no colon).
REDACTED_PREFIX = "redacted_thinking:"

_STOP_REASONS: dict[str, StopReason] = {
    "end_turn": "end_turn", "stop_sequence": "end_turn", "tool_use": "tool_use",
    "max_tokens": "max_tokens", "refusal": "content_filter",
}
# In-stream ``error`` events carry a type, not a status; map them to the status the same
# error would have had as an HTTP response so ``from_status`` picks the right class and hint.
_ERROR_STATUSES = {
    "overloaded_error": 529, "rate_limit_error": 429, "invalid_request_error": 400,
    "authentication_error": 401, "permission_error": 403, "not_found_error": 404,
    "request_too_large": 413,
}


class AnthropicProvider:
    """``Provider`` for every endpoint that speaks the Anthropic Messages API."""

    def __init__(self, endpoint: Endpoint, policy: RetryPolicy | None = None) -> None:
        self.endpoint = endpoint
        self.id = endpoint.provider_id
        self.policy = policy or RetryPolicy(max_attempts=endpoint.max_retries + 1,
                                            read_timeout=endpoint.timeout)

    @property
    def is_vertex(self) -> bool:
        return self.id == VERTEX_ID

    def _ctx(self, model: str) -> CallContext:
        return CallContext(self.id, model, secrets=(self.endpoint.api_key or "",))

    # -- request --------------------------------------------------------------------------
    def request_url(self, model: str) -> str:
        base = self._base_url(model)
        if self.is_vertex:
            return f"{base}/{urllib.parse.quote(model, safe='@.-_')}:streamRawPredict"
        return base + ("/messages" if base.endswith("/v1") else "/v1/messages")

    def _base_url(self, model: str) -> str:
        """The endpoint's base URL; Vertex's is a template filled from the endpoint extras."""
        base = self.endpoint.base_url.rstrip("/")
        if "{" not in base:
            return base
        region = self.endpoint.extras.get("region") or "us-east5"
        project = self.endpoint.extras.get("project_id")
        if not project:
            raise errors.ProviderRequestError(
                f"{self.id} needs a Google Cloud project id to build its URL",
                f"set `project_id` in Vault at secret/codetether/providers/{self.id} "
                "or export GOOGLE_CLOUD_PROJECT", provider=self.id, model=model)
        if region == "global":  # the global endpoint has no region prefix in its host
            base = base.replace("{region}-aiplatform", "aiplatform")
        return base.replace("{region}", region).replace("{project_id}", project)

    def request_headers(self, streaming: bool = True) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if streaming:
            headers["accept"] = "text/event-stream"
        key = self.endpoint.api_key
        if self.is_vertex:
            if key:
                headers["authorization"] = f"Bearer {key}"
        else:
            headers["anthropic-version"] = API_VERSION
            if key:
                headers["x-api-key"] = key
        headers.update(self.endpoint.headers)
        return headers

    def request_body(self, request: ChatRequest) -> dict[str, Any]:
        """The JSON body for ``request`` (public so tests and debugging can inspect it)."""
        body: dict[str, Any] = {}
        if self.is_vertex:
            body["anthropic_version"] = VERTEX_API_VERSION
        else:
            body["model"] = request.model
        max_tokens = request.max_tokens or DEFAULT_MAX_TOKENS
        thinking = None
        if request.thinking_budget:
            budget = max(MIN_THINKING_BUDGET, request.thinking_budget)
            thinking = {"type": "enabled", "budget_tokens": budget}
            if max_tokens <= budget:  # max_tokens counts thinking too and must exceed the budget
                max_tokens = budget + (request.max_tokens or DEFAULT_MAX_TOKENS)
        body["max_tokens"] = max_tokens
        if request.system:
            body["system"] = request.system
        body["messages"] = convert_messages(request.messages,
                                            keep_unsigned_thinking=self.id == "minimax")
        if request.tools:
            body["tools"] = [{"name": t.name, "description": t.description,
                              "input_schema": t.parameters} for t in request.tools]
        body["stream"] = True
        # With thinking on, the API accepts no temperature but 1; leave it out rather than fail.
        if request.temperature is not None and (thinking is None or request.temperature == 1):
            body["temperature"] = request.temperature
        if thinking:
            body["thinking"] = thinking
        return body

    # -- streaming ------------------------------------------------------------------------
    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        ctx = self._ctx(request.model)
        url = self.request_url(request.model)
        payload = json.dumps(self.request_body(request)).encode("utf-8")
        client = HttpClient(ctx, self.policy)
        response = client.send("POST", url, self.request_headers(), payload, request.cancel)
        try:
            yield from _read_stream(response, ctx, request)
        finally:
            response.close()

    def list_models(self) -> list[str]:
        """Model ids from ``GET /v1/models`` (all pages); Vertex has no such listing: ``[]``."""
        if self.is_vertex:
            return []
        base = self._base_url("")
        url = base + ("/models" if base.endswith("/v1") else "/v1/models")
        client = HttpClient(self._ctx(""), self.policy)
        ids: list[str] = []
        after: str | None = None
        for _ in range(50):  # bounded: a misbehaving server cannot page us forever
            query = {"limit": "1000", **({"after_id": after} if after else {})}
            response = client.send("GET", f"{url}?{urllib.parse.urlencode(query)}",
                                   self.request_headers(streaming=False))
            with response:
                data = _json_or_error(response.text(), self._ctx(""), "model list")
            page = [m["id"] for m in data.get("data", []) if isinstance(m, dict) and "id" in m]
            ids.extend(page)
            after = data.get("last_id") or (page[-1] if page else None)
            if not data.get("has_more") or not after:
                break
        return ids


def _json_or_error(text: str, ctx: CallContext, what: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        raise stream_broken(ctx, f"{what} was not JSON") from None
    if not isinstance(data, dict):
        raise stream_broken(ctx, f"{what} was not a JSON object")
    return data


# -- message conversion -----------------------------------------------------------------------


def convert_messages(messages: list[Message], keep_unsigned_thinking: bool = False
                     ) -> list[dict[str, Any]]:
    """Our messages as Anthropic's: alternating roles, tool results inside user turns.

    Consecutive messages that land on the same role (a ``tool`` message followed by a ``user``
    one, say) are merged, and in a merged user turn the ``tool_result`` blocks come first, as
    the API requires. Messages left with no content (an empty text) are dropped.
    """
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "assistant":
            role, blocks = "assistant", _assistant_blocks(message, keep_unsigned_thinking)
        else:
            role, blocks = "user", _user_blocks(message)
        if not blocks:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    for turn in out:
        if turn["role"] == "user":  # stable: tool results first, then the rest in order
            turn["content"].sort(key=lambda b: b["type"] != "tool_result")
    return out


def _user_blocks(message: Message) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, ToolResultPart):
            blocks.append({"type": "tool_result", "tool_use_id": part.tool_call_id,
                           "content": part.content, "is_error": part.is_error})
        elif isinstance(part, TextPart) and part.text:
            blocks.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            blocks.append({"type": "image", "source": {
                "type": "base64", "media_type": part.media_type, "data": part.data}})
    return blocks


def _assistant_blocks(message: Message, keep_unsigned_thinking: bool) -> list[dict[str, Any]]:
    thinking: list[dict[str, Any]] = []
    rest: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, ThinkingPart):
            block = _thinking_block(part, keep_unsigned_thinking)
            if block:
                thinking.append(block)
        elif isinstance(part, TextPart) and part.text:
            rest.append({"type": "text", "text": part.text})
        elif isinstance(part, ToolCallPart):
            rest.append({"type": "tool_use", "id": part.id, "name": part.name,
                         "input": part.parsed_arguments()})
    return thinking + rest  # the API wants thinking blocks before anything else


def _thinking_block(part: ThinkingPart, keep_unsigned: bool) -> dict[str, Any] | None:
    """A thinking block to echo back; unsigned thinking (from another vendor) is dropped where
    Anthropic would reject it."""
    signature = part.signature or ""
    if signature.startswith(REDACTED_PREFIX):
        return {"type": "redacted_thinking", "data": signature[len(REDACTED_PREFIX):]}
    if signature:
        return {"type": "thinking", "thinking": part.text, "signature": signature}
    if keep_unsigned and part.text:
        return {"type": "thinking", "thinking": part.text}
    return None


# -- stream parsing ---------------------------------------------------------------------------


@dataclass
class _Block:
    kind: str
    id: str = ""
    name: str = ""
    signature: str = ""
    args: list[str] = field(default_factory=list)


@dataclass
class _StreamState:
    blocks: dict[int, _Block] = field(default_factory=dict)
    stop_reason: StopReason = "end_turn"
    finished: bool = False


def _read_stream(response: Response, ctx: CallContext, request: ChatRequest
                 ) -> Iterator[StreamEvent]:
    """Events from the SSE body; a break, a cut or an ``error`` event raises after what came."""
    state = _StreamState()
    try:
        for sse in parse_sse(response.iter_lines()):
            if sse.event == "ping" or not sse.data:
                continue
            try:
                data = json.loads(sse.data)
            except ValueError:
                raise stream_broken(ctx, f"malformed {sse.event} event") from None
            if not isinstance(data, dict):
                raise stream_broken(ctx, f"malformed {sse.event} event")
            yield from _handle_event(data.get("type") or sse.event, data, state, ctx)
            if state.finished:
                return
    except (OSError, http.client.HTTPException) as exc:
        if request.cancel is not None and request.cancel.cancelled:
            raise cancelled(ctx) from None
        raise stream_broken(ctx, str(exc) or type(exc).__name__) from None
    if request.cancel is not None and request.cancel.cancelled:
        raise cancelled(ctx)
    raise stream_broken(ctx, "the stream ended before message_stop")


def _handle_event(kind: str, data: dict[str, Any], state: _StreamState, ctx: CallContext
                  ) -> Iterator[StreamEvent]:
    if kind == "message_start":
        yield _start_usage(data.get("message") or {})
    elif kind == "content_block_start":
        yield from _block_start(data, state)
    elif kind == "content_block_delta":
        yield from _block_delta(data, state)
    elif kind == "content_block_stop":
        yield from _block_stop(data, state)
    elif kind == "message_delta":
        reason = (data.get("delta") or {}).get("stop_reason")
        if reason:
            state.stop_reason = _STOP_REASONS.get(reason, "other")
        output = (data.get("usage") or {}).get("output_tokens")
        if output:
            yield Usage(output_tokens=int(output))
    elif kind == "message_stop":
        state.finished = True
        yield Done(state.stop_reason)
    elif kind == "error":
        raise _stream_error(data, ctx)


def _start_usage(message: dict[str, Any]) -> Usage:
    """Input-side usage; Anthropic's ``input_tokens`` excludes cache tokens, ours includes them.
    Output is counted once, from ``message_delta`` (it is cumulative there)."""
    usage = message.get("usage") or {}
    fresh = int(usage.get("input_tokens") or 0)
    read = int(usage.get("cache_read_input_tokens") or 0)
    write = int(usage.get("cache_creation_input_tokens") or 0)
    return Usage(input_tokens=fresh + read + write, cache_read_tokens=read,
                 cache_write_tokens=write)


def _block_start(data: dict[str, Any], state: _StreamState) -> Iterator[StreamEvent]:
    block = data.get("content_block") or {}
    kind = block.get("type", "")
    index = int(data.get("index") or 0)
    state.blocks[index] = _Block(kind, id=block.get("id", ""), name=block.get("name", ""))
    if kind == "text" and block.get("text"):
        yield TextDelta(block["text"])
    elif kind == "thinking" and block.get("thinking"):
        yield ThinkingDelta(block["thinking"])
    elif kind == "redacted_thinking":
        yield ThinkingDelta("", signature=REDACTED_PREFIX + str(block.get("data", "")))
    elif kind == "tool_use":
        yield ToolCallStart(state.blocks[index].id, state.blocks[index].name)


def _block_delta(data: dict[str, Any], state: _StreamState) -> Iterator[StreamEvent]:
    delta = data.get("delta") or {}
    kind = delta.get("type")
    block = state.blocks.get(int(data.get("index") or 0))
    if kind == "text_delta" and delta.get("text"):
        yield TextDelta(delta["text"])
    elif kind == "thinking_delta" and delta.get("thinking"):
        yield ThinkingDelta(delta["thinking"])
    elif kind == "signature_delta" and block is not None:
        block.signature += delta.get("signature", "")
    elif kind == "input_json_delta" and block is not None and delta.get("partial_json"):
        block.args.append(delta["partial_json"])
        yield ToolCallDelta(block.id, delta["partial_json"])


def _block_stop(data: dict[str, Any], state: _StreamState) -> Iterator[StreamEvent]:
    block = state.blocks.pop(int(data.get("index") or 0), None)
    if block is None:
        return
    if block.kind == "thinking":
        # Close the block even when unsigned (signature ""), so blocks don't run together.
        yield ThinkingDelta("", signature=block.signature)
    elif block.kind == "tool_use":
        yield ToolCallEnd(block.id, block.name, "".join(block.args) or "{}")


def _stream_error(data: dict[str, Any], ctx: CallContext) -> errors.ProviderError:
    error = data.get("error") or {}
    status = _ERROR_STATUSES.get(str(error.get("type", "")), 500)
    return from_status(ctx, status, json.dumps(data))
