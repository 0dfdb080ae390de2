"""The scripted LLM speaking the Anthropic Messages API (direct, Vertex ``streamRawPredict``,
and any Anthropic-compatible endpoint such as MiniMax's).

Events are framed exactly as Anthropic sends them (``event: <type>`` + ``data: <json>`` + blank
line), one event per chunk so ``Turn.cut_after`` / ``hold_after`` count events. A 200 turn with
an ``error_type`` streams its thinking and text, then an in-stream ``error`` event (how
Anthropic reports ``overloaded_error`` mid-stream) instead of ``message_delta``/``message_stop``.
"""

from __future__ import annotations

import json
from typing import Any

from tests.scripted_llm.script import Turn
from tests.scripted_llm.server import RecordedRequest, Reply

_ERROR_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
    500: "api_error", 529: "overloaded_error",
}
# Scripts may use another vendor's stop words; speak Anthropic's.
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                 "content_filter": "refusal"}


def _event(kind: str, payload: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(payload)}\n\n".encode()


def _path(request: RecordedRequest) -> str:
    return request.path.split("?", 1)[0]


class AnthropicFormat:
    name = "anthropic"

    def matches(self, request: RecordedRequest) -> bool:
        path = _path(request)
        if request.method == "POST":
            return path.endswith("/v1/messages") or path.endswith(":streamRawPredict")
        return path.endswith("/v1/models") and request.header("anthropic-version") is not None

    # -- success -----------------------------------------------------------------------------
    def reply(self, turn: Turn, request: RecordedRequest) -> Reply:
        return Reply(200, {"content-type": "text/event-stream", "cache-control": "no-cache",
                           "request-id": "req_scripted"}, self._events(turn, request))

    def _events(self, turn: Turn, request: RecordedRequest) -> list[bytes]:
        events = [self._message_start(turn, request), _event("ping", {"type": "ping"})]
        index = 0
        if turn.thinking:
            events += self._thinking_block(turn, index)
            index += 1
        if turn.text:
            events += self._text_block(turn, index)
            index += 1
        if turn.error_type:  # in-stream error: the message never finishes
            events.append(_event("error", {"type": "error", "error": {
                "type": turn.error_type, "message": turn.error_message}}))
            return events
        for i in range(len(turn.tool_calls)):
            events += self._tool_block(turn, i, index)
            index += 1
        events.append(_event("message_delta", {
            "type": "message_delta",
            "delta": {"stop_reason": self._stop_reason(turn), "stop_sequence": None},
            "usage": {"output_tokens": turn.output_tokens}}))
        events.append(_event("message_stop", {"type": "message_stop"}))
        return events

    @staticmethod
    def _message_start(turn: Turn, request: RecordedRequest) -> bytes:
        body = request.body if isinstance(request.body, dict) else {}
        model = body.get("model") or _path(request).rsplit("/", 1)[-1].split(":", 1)[0]
        fresh = turn.input_tokens - turn.cache_read_tokens - turn.cache_write_tokens
        return _event("message_start", {"type": "message_start", "message": {
            "id": "msg_scripted01", "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": fresh,
                      "cache_creation_input_tokens": turn.cache_write_tokens,
                      "cache_read_input_tokens": turn.cache_read_tokens,
                      "output_tokens": 1}}})

    @staticmethod
    def _thinking_block(turn: Turn, index: int) -> list[bytes]:
        out = [_event("content_block_start", {"type": "content_block_start", "index": index,
                                              "content_block": {"type": "thinking",
                                                                "thinking": ""}})]
        out += [_event("content_block_delta", {"type": "content_block_delta", "index": index,
                                               "delta": {"type": "thinking_delta",
                                                         "thinking": piece}})
                for piece in turn.thinking_deltas()]
        out.append(_event("content_block_delta", {
            "type": "content_block_delta", "index": index,
            "delta": {"type": "signature_delta", "signature": turn.thinking_signature}}))
        out.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
        return out

    @staticmethod
    def _text_block(turn: Turn, index: int) -> list[bytes]:
        out = [_event("content_block_start", {"type": "content_block_start", "index": index,
                                              "content_block": {"type": "text", "text": ""}})]
        out += [_event("content_block_delta", {"type": "content_block_delta", "index": index,
                                               "delta": {"type": "text_delta", "text": piece}})
                for piece in turn.text_deltas()]
        out.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
        return out

    @staticmethod
    def _tool_block(turn: Turn, call_index: int, index: int) -> list[bytes]:
        call = turn.tool_calls[call_index]
        out = [_event("content_block_start", {
            "type": "content_block_start", "index": index,
            "content_block": {"type": "tool_use", "id": turn.call_id(call_index),
                              "name": call.name, "input": {}}})]
        # Anthropic opens every tool input with an empty partial_json.
        for piece in ["", *turn.arg_deltas(call)]:
            out.append(_event("content_block_delta", {
                "type": "content_block_delta", "index": index,
                "delta": {"type": "input_json_delta", "partial_json": piece}}))
        out.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
        return out

    @staticmethod
    def _stop_reason(turn: Turn) -> str:
        if turn.stop_reason:
            return _STOP_REASONS.get(turn.stop_reason, turn.stop_reason)
        return "tool_use" if turn.tool_calls else "end_turn"

    # -- errors and models -------------------------------------------------------------------
    def error_reply(self, turn: Turn, request: RecordedRequest) -> Reply:
        kind = turn.error_type or _ERROR_TYPES.get(turn.status, "api_error")
        body = json.dumps({"type": "error", "error": {"type": kind,
                                                      "message": turn.error_message}})
        headers = {"content-type": "application/json", "request-id": "req_scripted"}
        if turn.retry_after is not None:
            headers["retry-after"] = turn.retry_after
        return Reply(turn.status, headers, [body.encode()])

    def models_reply(self, models: list[str], request: RecordedRequest) -> Reply | None:
        data = [{"type": "model", "id": m, "display_name": m,
                 "created_at": "2025-05-14T00:00:00Z"} for m in models]
        body = {"data": data, "has_more": False,
                "first_id": models[0] if models else None,
                "last_id": models[-1] if models else None}
        return Reply(200, {"content-type": "application/json"}, [json.dumps(body).encode()])
