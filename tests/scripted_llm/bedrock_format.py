"""Amazon Bedrock's ConverseStream as the scripted LLM speaks it: AWS event-stream frames.

Each event is one binary frame (``codetether.providers.eventstream.encode_message``, checked
against botocore's decoder) with the headers Bedrock sends — ``:event-type``,
``:content-type: application/json``, ``:message-type: event`` — and the JSON payload Bedrock
sends, including the random ``p`` padding field it adds to every event so that a payload's
length does not reveal its content. Order, as Bedrock streams it: ``messageStart``; reasoning
deltas then a ``signature`` delta and ``contentBlockStop``; text deltas and ``contentBlockStop``
(text blocks have no ``contentBlockStart``); per tool call ``contentBlockStart`` (id, name),
``toolUse.input`` deltas, ``contentBlockStop``; ``messageStop``; ``metadata`` (usage, metrics).

A turn with ``error_type`` and status 200 sends an in-stream exception frame after its text
(``:message-type: exception``); a turn with another status answers with Bedrock's HTTP error:
JSON ``{"message": …}`` and the ``x-amzn-ErrorType`` header.
"""

from __future__ import annotations

import json
import random
import string
import uuid
from typing import Any

from codetether.providers.eventstream import encode_message
from tests.scripted_llm.script import Turn
from tests.scripted_llm.server import RecordedRequest, Reply

# Our generic stop reasons (what a script may say) -> Bedrock's stopReason.
_STOP = {"content_filter": "content_filtered"}

_HTTP_ERRORS: dict[int, tuple[str, str]] = {
    400: ("ValidationException", "The provided request is not valid"),
    403: ("UnrecognizedClientException", "The security token included in the request is invalid."),
    404: ("ResourceNotFoundException", "Could not resolve the foundation model from the provided "
                                       "model identifier."),
    424: ("ModelErrorException", "The model returned an error."),
    429: ("ThrottlingException", "Too many requests, please wait before trying again."),
    500: ("InternalServerException", "The server encountered an internal error."),
    503: ("ServiceUnavailableException", "Bedrock is unable to process your request."),
}
_ERROR_NAMESPACE = ":http://internal.amazon.com/coral/com.amazon.bedrock/"


class BedrockFormat:
    """The ``Format`` for ``/model/{id}/converse-stream`` and ``/foundation-models``."""

    name = "bedrock"

    def matches(self, request: RecordedRequest) -> bool:
        path = request.path.split("?", 1)[0].rstrip("/")
        return "/converse-stream" in path or path.endswith("/foundation-models")

    # -- streamed answer -------------------------------------------------------------------
    def reply(self, turn: Turn, request: RecordedRequest) -> Reply:
        events = [_event("messageStart", {"role": "assistant"})]
        index = 0
        if turn.thinking:
            events += [_delta(index, {"reasoningContent": {"text": d}})
                       for d in turn.thinking_deltas()]
            events.append(_delta(index, {"reasoningContent": {
                "signature": turn.thinking_signature}}))
            events.append(_event("contentBlockStop", {"contentBlockIndex": index}))
            index += 1
        if turn.text:
            events += [_delta(index, {"text": d}) for d in turn.text_deltas()]
            if not turn.error_type:
                events.append(_event("contentBlockStop", {"contentBlockIndex": index}))
                index += 1
        if turn.error_type:  # an in-stream exception ends the stream right after the text
            return self._reply(events + [_exception(turn.error_type, turn.error_message)])
        for number in range(len(turn.tool_calls)):
            events += _tool_events(turn, number, index)
            index += 1
        events.append(_event("messageStop", {"stopReason": _stop_reason(turn)}))
        events.append(_event("metadata", _metadata(turn)))
        return self._reply(events)

    @staticmethod
    def _reply(events: list[bytes]) -> Reply:
        return Reply(200, {"Content-Type": "application/vnd.amazon.eventstream",
                           "x-amzn-RequestId": str(uuid.uuid4())}, events)

    # -- errors and model list -------------------------------------------------------------
    def error_reply(self, turn: Turn, request: RecordedRequest) -> Reply:
        error_type, default = _HTTP_ERRORS.get(turn.status, ("InternalServerException",
                                                             "Internal error"))
        error_type = turn.error_type or error_type
        message = default if turn.error_message == Turn.error_message else turn.error_message
        headers = {"Content-Type": "application/json", "x-amzn-RequestId": str(uuid.uuid4()),
                   "x-amzn-ErrorType": error_type + _ERROR_NAMESPACE}
        if turn.retry_after is not None:
            headers["Retry-After"] = turn.retry_after
        return Reply(turn.status, headers, [json.dumps({"message": message}).encode("utf-8")])

    def models_reply(self, models: list[str], request: RecordedRequest) -> Reply:
        summaries = [{"modelArn": f"arn:aws:bedrock:us-east-1::foundation-model/{m}",
                      "modelId": m, "modelName": m, "providerName": m.split(".")[0],
                      "inputModalities": ["TEXT"], "outputModalities": ["TEXT"],
                      "responseStreamingSupported": True,
                      "inferenceTypesSupported": ["ON_DEMAND"],
                      "modelLifecycle": {"status": "ACTIVE"}} for m in models]
        body = json.dumps({"modelSummaries": summaries}).encode("utf-8")
        return Reply(200, {"Content-Type": "application/json"}, [body])


def _padding() -> str:
    """Bedrock's ``p`` field: a random run of letters that hides the payload's true length."""
    return "".join(random.choices(string.ascii_letters + string.digits, k=random.randint(1, 40)))


def _event(event_type: str, payload: dict[str, Any]) -> bytes:
    body = json.dumps({**payload, "p": _padding()}, separators=(",", ":")).encode("utf-8")
    return encode_message({":event-type": event_type, ":content-type": "application/json",
                           ":message-type": "event"}, body)


def _delta(index: int, delta: dict[str, Any]) -> bytes:
    return _event("contentBlockDelta", {"contentBlockIndex": index, "delta": delta})


def _exception(error_type: str, message: str) -> bytes:
    body = json.dumps({"message": message}).encode("utf-8")
    return encode_message({":exception-type": error_type, ":content-type": "application/json",
                           ":message-type": "exception"}, body)


def _tool_events(turn: Turn, number: int, index: int) -> list[bytes]:
    call = turn.tool_calls[number]
    start = {"toolUse": {"toolUseId": turn.call_id(number), "name": call.name}}
    events = [_event("contentBlockStart", {"contentBlockIndex": index, "start": start})]
    events += [_delta(index, {"toolUse": {"input": d}}) for d in turn.arg_deltas(call)]
    events.append(_event("contentBlockStop", {"contentBlockIndex": index}))
    return events


def _stop_reason(turn: Turn) -> str:
    if turn.stop_reason is None:
        return "tool_use" if turn.tool_calls else "end_turn"
    return _STOP.get(turn.stop_reason, turn.stop_reason)


def _metadata(turn: Turn) -> dict[str, Any]:
    """Usage as Bedrock reports it: ``inputTokens`` *excludes* cache reads and writes (a Turn's
    ``input_tokens`` is the whole prompt, OpenAI-style, so the cache part is taken out)."""
    cached = turn.cache_read_tokens + turn.cache_write_tokens
    fresh = max(0, turn.input_tokens - cached)
    usage = {"inputTokens": fresh, "outputTokens": turn.output_tokens,
             "totalTokens": fresh + cached + turn.output_tokens,
             "cacheReadInputTokens": turn.cache_read_tokens,
             "cacheWriteInputTokens": turn.cache_write_tokens}
    return {"usage": usage, "metrics": {"latencyMs": 321}}
