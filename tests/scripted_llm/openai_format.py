"""OpenAI Chat Completions as the scripted LLM speaks it: byte for byte what api.openai.com sends.

A streamed answer is a run of ``data: {chat.completion.chunk}`` events: a first chunk carrying
``role: assistant``, reasoning as ``reasoning_content`` deltas (DeepSeek/Moonshot style, OpenAI
itself sends none), text deltas, tool calls (``index``/``id``/``type``/``function.name`` on the
first piece, then ``function.arguments`` pieces), a chunk with the ``finish_reason``, a usage
chunk with ``choices: []`` when the request asked for ``stream_options.include_usage`` (as OpenAI
does: no ask, no usage), and ``data: [DONE]``.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from tests.scripted_llm.script import ToolCall, Turn
from tests.scripted_llm.server import RecordedRequest, Reply

# Our generic stop reasons (what a script may say) -> OpenAI's finish_reason.
_FINISH = {"end_turn": "stop", "tool_use": "tool_calls", "max_tokens": "length",
           "content_filter": "content_filter"}

# OpenAI's error ``type`` and ``code`` by status when the turn does not name them.
_ERRORS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}

_DEFAULT_MESSAGES = {
    "context_length_exceeded": (
        "This model's maximum context length is 128000 tokens. However, your messages resulted "
        "in 131072 tokens. Please reduce the length of the messages."),
    401: "Incorrect API key provided. You can find your API key at "
         "https://platform.openai.com/account/api-keys.",
    404: "The model `{model}` does not exist or you do not have access to it.",
    429: "Rate limit reached for requests. Please try again in 1s.",
    500: "The server had an error while processing your request. Sorry about that!",
}


class OpenAIFormat:
    """The ``Format`` for ``/chat/completions`` and ``/models``.

    ``interleave_tool_calls=True`` sends the argument pieces of parallel tool calls in turn
    (0, 1, 0, 1, ...) instead of one call after the other as OpenAI does; some compatible
    servers interleave, and a client must cope with both.
    """

    name = "openai"

    def __init__(self, interleave_tool_calls: bool = False) -> None:
        self.interleave_tool_calls = interleave_tool_calls

    def matches(self, request: RecordedRequest) -> bool:
        path = request.path.split("?", 1)[0].rstrip("/")
        if request.header("anthropic-version") is not None:
            return False
        if "/converse" in path or "/foundation-models" in path or "/model/" in path:
            return False  # Bedrock
        return path.endswith(("/chat/completions", "/models"))

    # -- streamed answer -------------------------------------------------------------------
    def reply(self, turn: Turn, request: RecordedRequest) -> Reply:
        body = request.body if isinstance(request.body, dict) else {}
        stream = _Chunks(str(body.get("model") or "gpt-4o"),
                         bool((body.get("stream_options") or {}).get("include_usage")))
        events = [stream.chunk({"role": "assistant", "content": "", "refusal": None})]
        events += [stream.chunk({"reasoning_content": d}) for d in turn.thinking_deltas()]
        events += [stream.chunk({"content": d}) for d in turn.text_deltas()]
        events += [stream.chunk({"tool_calls": [p]}) for p in self._tool_pieces(turn)]
        events.append(stream.chunk({}, finish_reason=_finish_reason(turn)))
        if stream.include_usage:
            events.append(stream.usage_chunk(turn))
        events.append(b"data: [DONE]\n\n")
        return Reply(200, {"Content-Type": "text/event-stream; charset=utf-8",
                           "Cache-Control": "no-cache", "x-request-id": _request_id()}, events)

    def _tool_pieces(self, turn: Turn) -> list[dict[str, Any]]:
        per_call = [_call_pieces(turn, i, call) for i, call in enumerate(turn.tool_calls)]
        if not self.interleave_tool_calls:
            return [piece for pieces in per_call for piece in pieces]
        out = []
        for step in range(max((len(p) for p in per_call), default=0)):
            out += [pieces[step] for pieces in per_call if step < len(pieces)]
        return out

    # -- errors and model list -------------------------------------------------------------
    def error_reply(self, turn: Turn, request: RecordedRequest) -> Reply:
        body = request.body if isinstance(request.body, dict) else {}
        error_type, code = _ERRORS.get(turn.status, ("server_error", None))
        message = turn.error_message
        if turn.error_type == "context_length_exceeded":
            error_type, code = "invalid_request_error", "context_length_exceeded"
            default = _DEFAULT_MESSAGES["context_length_exceeded"]
        else:
            error_type = turn.error_type or error_type
            default = _DEFAULT_MESSAGES.get(turn.status, "")
        if message == Turn.error_message and default:  # the script left the placeholder
            message = default.format(model=body.get("model", ""))
        payload = {"error": {"message": message, "type": error_type, "param": None, "code": code}}
        headers = {"Content-Type": "application/json", "x-request-id": _request_id()}
        if turn.retry_after is not None:
            headers["Retry-After"] = turn.retry_after
        return Reply(turn.status, headers, [json.dumps(payload).encode("utf-8")])

    def models_reply(self, models: list[str], request: RecordedRequest) -> Reply:
        data = [{"id": m, "object": "model", "created": 1715367049, "owned_by": "system"}
                for m in models]
        body = json.dumps({"object": "list", "data": data}).encode("utf-8")
        return Reply(200, {"Content-Type": "application/json"}, [body])


class _Chunks:
    """Builds the ``data:`` events of one response (shared id, created, model)."""

    def __init__(self, model: str, include_usage: bool) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex[:29]}"
        self.created = int(time.time())
        self.model = model
        self.include_usage = include_usage

    def _event(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        obj: dict[str, Any] = {"id": self.id, "object": "chat.completion.chunk",
                               "created": self.created, "model": self.model,
                               "system_fingerprint": "fp_scripted", "choices": choices}
        obj.update(extra)
        return b"data: " + json.dumps(obj, separators=(",", ":")).encode("utf-8") + b"\n\n"

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        extra = {"usage": None} if self.include_usage else {}
        return self._event([choice], **extra)

    def usage_chunk(self, turn: Turn) -> bytes:
        usage = {
            "prompt_tokens": turn.input_tokens,
            "completion_tokens": turn.output_tokens,
            "total_tokens": turn.input_tokens + turn.output_tokens,
            "prompt_tokens_details": {"cached_tokens": turn.cache_read_tokens, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": turn.reasoning_tokens,
                                          "audio_tokens": 0, "accepted_prediction_tokens": 0,
                                          "rejected_prediction_tokens": 0},
        }
        return self._event([], usage=usage)


def _call_pieces(turn: Turn, index: int, call: ToolCall) -> list[dict[str, Any]]:
    """The first piece names the call (with empty arguments), the rest carry argument text."""
    first = {"index": index, "id": turn.call_id(index), "type": "function",
             "function": {"name": call.name, "arguments": ""}}
    return [first] + [{"index": index, "function": {"arguments": d}}
                      for d in turn.arg_deltas(call)]


def _finish_reason(turn: Turn) -> str:
    if turn.stop_reason is None:
        return "tool_calls" if turn.tool_calls else "stop"
    return _FINISH.get(turn.stop_reason, turn.stop_reason)


def _request_id() -> str:
    return f"req_{uuid.uuid4().hex}"
