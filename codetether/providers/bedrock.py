"""Amazon Bedrock's Converse API, streamed: ``POST /model/{id}/converse-stream``.

Why a wire format of its own: Bedrock answers in AWS event-stream framing (binary, CRC-checked
messages; see ``eventstream``) rather than SSE, and authenticates with SigV4 (``sigv4``) or a
Bedrock API key sent as a bearer token. Both are done with the stdlib, no boto.

Request side: our messages become Converse ``messages`` (tool results ride in *user* messages,
consecutive same-role messages are merged, thinking keeps its signature as
``reasoningContent``). Response side: each event-stream message is one Converse event
(``messageStart`` … ``metadata``) turned into ``StreamEvent``s as it arrives; an in-stream
``exception`` message becomes the same ``ProviderError`` its HTTP status would have.
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from codetether.core import errors
from codetether.core.cancel import CancelToken
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
from codetether.providers.eventstream import EventMessage, EventStreamDecoder, EventStreamError
from codetether.providers.http import HttpClient, Response, RetryPolicy
from codetether.providers.sigv4 import host_from_url, sign_request

DEFAULT_REGION = "us-east-1"
DEFAULT_MAX_TOKENS = 8192
SIGNING_SERVICE = "bedrock"  # bedrock-runtime signs as "bedrock" too
CONTROL_PLANE_URL = "https://bedrock.{region}.amazonaws.com"
_READ_SIZE = 65536

_STOP_REASONS: dict[str, StopReason] = {
    "end_turn": "end_turn", "stop_sequence": "end_turn", "tool_use": "tool_use",
    "max_tokens": "max_tokens", "model_context_window_exceeded": "max_tokens",
    "guardrail_intervened": "content_filter", "content_filtered": "content_filter",
}
# In-stream exceptions carry a type, not a status: the status the same error has over HTTP.
_EXCEPTION_STATUSES = {
    "throttlingException": 429, "serviceUnavailableException": 503,
    "validationException": 400, "modelStreamErrorException": 500,
    "internalServerException": 500, "accessDeniedException": 403,
    "resourceNotFoundException": 404, "modelTimeoutException": 504,
}
_IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg",
                  "image/gif": "gif", "image/webp": "webp"}


@dataclass
class _Auth:
    """How requests are authenticated: SigV4 keys, or a Bedrock API key as a bearer token."""

    access_key: str = field(default="", repr=False)
    secret_key: str = field(default="", repr=False)
    session_token: str | None = field(default=None, repr=False)
    bearer: str | None = field(default=None, repr=False)


class BedrockProvider:
    """``Provider`` for Amazon Bedrock through the Converse stream API."""

    def __init__(self, endpoint: Endpoint, policy: RetryPolicy | None = None) -> None:
        self.endpoint = endpoint
        self.id = endpoint.provider_id
        self.policy = policy or RetryPolicy(max_attempts=endpoint.max_retries + 1,
                                            read_timeout=endpoint.timeout)

    @property
    def region(self) -> str:
        return self.endpoint.extras.get("region") or DEFAULT_REGION

    def _ctx(self, model: str) -> CallContext:
        extras = self.endpoint.extras
        secrets = (self.endpoint.api_key, extras.get("aws_secret_access_key"),
                   extras.get("aws_session_token"), extras.get("aws_access_key_id"))
        return CallContext(self.id, model, secrets=tuple(s for s in secrets if s))

    def _auth(self, model: str) -> _Auth:
        extras = self.endpoint.extras
        access, secret = extras.get("aws_access_key_id"), extras.get("aws_secret_access_key")
        if access and secret:
            return _Auth(access, secret, extras.get("aws_session_token") or None)
        if self.endpoint.api_key:
            return _Auth(bearer=self.endpoint.api_key)
        raise errors.ProviderAuthError(
            f"no AWS credentials for {self.id}",
            "export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for "
            "temporary credentials) or a Bedrock API key in AWS_BEARER_TOKEN_BEDROCK, or set "
            "aws_access_key_id / aws_secret_access_key or api_key in Vault at "
            f"secret/codetether/providers/{self.id}", provider=self.id, model=model)

    # -- request --------------------------------------------------------------------------
    def request_url(self, model: str) -> str:
        return f"{self._base_url()}/model/{urllib.parse.quote(model, safe='')}/converse-stream"

    def models_url(self) -> str:
        """The control plane lists models, not the runtime: ``bedrock.{region}``, unless the
        base URL was overridden (a proxy or a test server), which then answers both."""
        base = self.endpoint.base_url.rstrip("/")
        if "{" in base:
            base = CONTROL_PLANE_URL.replace("{region}", self.region)
        return base + "/foundation-models"

    def _base_url(self) -> str:
        return self.endpoint.base_url.rstrip("/").replace("{region}", self.region)

    def _headers(self, method: str, url: str, body: bytes, auth: _Auth, accept: str
                 ) -> dict[str, str]:
        headers = {"Host": host_from_url(url), "Accept": accept}
        if body:
            headers["Content-Type"] = "application/json"
        headers.update(self.endpoint.headers)
        if auth.bearer:
            headers["Authorization"] = f"Bearer {auth.bearer}"
        else:
            headers.update(sign_request(
                method, url, headers, body, access_key=auth.access_key,
                secret_key=auth.secret_key, session_token=auth.session_token,
                region=self.region, service=SIGNING_SERVICE))
        return headers

    def request_body(self, request: ChatRequest) -> dict[str, Any]:
        """The Converse JSON body for ``request`` (public so tests can inspect it)."""
        body: dict[str, Any] = {"messages": convert_messages(request.messages)}
        if request.system:
            body["system"] = [{"text": request.system}]
        config = _inference_config(request)
        if config:
            body["inferenceConfig"] = config
        if request.tools:
            body["toolConfig"] = {"tools": [
                {"toolSpec": {"name": t.name, "description": t.description,
                              "inputSchema": {"json": t.parameters}}} for t in request.tools]}
        if request.thinking_budget:
            body["additionalModelRequestFields"] = {
                "thinking": {"type": "enabled", "budget_tokens": request.thinking_budget}}
        return body

    # -- calls ----------------------------------------------------------------------------
    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        ctx = self._ctx(request.model)
        auth = self._auth(request.model)
        url = self.request_url(request.model)
        payload = json.dumps(self.request_body(request)).encode("utf-8")
        headers = self._headers("POST", url, payload, auth, "application/vnd.amazon.eventstream")
        cancel = request.cancel or CancelToken()
        response = HttpClient(ctx, self.policy).send("POST", url, headers, payload, cancel)
        try:
            yield from _read_stream(response, ctx, cancel)
        finally:
            response.close()

    def list_models(self) -> list[str]:
        """Foundation model ids from the Bedrock control plane (``GET /foundation-models``)."""
        ctx = self._ctx("")
        auth = self._auth("")
        url = self.models_url()
        headers = self._headers("GET", url, b"", auth, "application/json")
        with HttpClient(ctx, self.policy).send("GET", url, headers) as response:
            text = response.text()
        try:
            data = json.loads(text)
        except ValueError:
            raise stream_broken(ctx, "the model list was not JSON") from None
        summaries = data.get("modelSummaries") if isinstance(data, dict) else None
        return [m["modelId"] for m in summaries or []
                if isinstance(m, dict) and isinstance(m.get("modelId"), str)]


def _inference_config(request: ChatRequest) -> dict[str, Any]:
    config: dict[str, Any] = {}
    max_tokens = request.max_tokens
    if request.thinking_budget and (max_tokens or 0) <= request.thinking_budget:
        # maxTokens counts thinking too and must exceed the budget
        max_tokens = request.thinking_budget + (max_tokens or DEFAULT_MAX_TOKENS)
    if max_tokens:
        config["maxTokens"] = max_tokens
    # With thinking on, Claude accepts no temperature but 1; leave it out rather than fail.
    if request.temperature is not None and (
            not request.thinking_budget or request.temperature == 1):
        config["temperature"] = request.temperature
    return config


# -- message conversion -----------------------------------------------------------------------


def convert_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Our messages as Converse's: ``user``/``assistant`` only, tool results in user messages,
    consecutive same-role messages merged, empty ones dropped."""
    out: list[dict[str, Any]] = []
    for message in messages:
        role = "assistant" if message.role == "assistant" else "user"
        blocks = [b for b in (_content_block(p) for p in message.parts) if b is not None]
        if not blocks:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    return out


def _content_block(part: Any) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        return {"text": part.text} if part.text else None  # Bedrock rejects blank text
    if isinstance(part, ImagePart):
        fmt = _IMAGE_FORMATS.get(part.media_type.lower(), part.media_type.split("/")[-1])
        return {"image": {"format": fmt, "source": {"bytes": part.data}}}
    if isinstance(part, ToolCallPart):
        return {"toolUse": {"toolUseId": part.id, "name": part.name,
                            "input": part.parsed_arguments()}}
    if isinstance(part, ToolResultPart):
        return {"toolResult": {"toolUseId": part.tool_call_id,
                               "content": [{"text": part.content or "(no output)"}],
                               "status": "error" if part.is_error else "success"}}
    if isinstance(part, ThinkingPart) and (part.text or part.signature):
        reasoning: dict[str, Any] = {"text": part.text}
        if part.signature:
            reasoning["signature"] = part.signature
        return {"reasoningContent": {"reasoningText": reasoning}}
    return None


# -- stream parsing ---------------------------------------------------------------------------


@dataclass
class _Block:
    kind: str  # "tool" | "reasoning"
    id: str = ""
    name: str = ""
    signature: str = ""
    args: list[str] = field(default_factory=list)


@dataclass
class _StreamState:
    blocks: dict[int, _Block] = field(default_factory=dict)
    stop_reason: StopReason | None = None
    usage_seen: bool = False

    @property
    def finished(self) -> bool:
        return self.stop_reason is not None and self.usage_seen


def _read_stream(response: Response, ctx: CallContext, cancel: CancelToken
                 ) -> Iterator[StreamEvent]:
    """Events from the event-stream body; a break, a cut or an exception raises after what came."""
    decoder = EventStreamDecoder()
    state = _StreamState()
    while True:
        if cancel.cancelled:
            raise cancelled(ctx)
        try:
            chunk = response.read1(_READ_SIZE)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if cancel.cancelled:
                raise cancelled(ctx) from None
            raise stream_broken(ctx, str(exc) or type(exc).__name__) from None
        if not chunk:
            if cancel.cancelled:
                raise cancelled(ctx)
            raise stream_broken(ctx, "the stream ended before messageStop and metadata")
        try:
            messages = decoder.feed(chunk)
        except EventStreamError as exc:
            raise stream_broken(ctx, str(exc)) from None
        for message in messages:
            yield from _handle_message(message, state, ctx)
            if state.finished:
                yield Done(state.stop_reason or "end_turn")
                return


def _handle_message(message: EventMessage, state: _StreamState, ctx: CallContext
                    ) -> Iterator[StreamEvent]:
    kind = message.headers.get(":message-type")
    if kind == "exception":
        raise _exception(str(message.headers.get(":exception-type", "")), message.payload, ctx)
    if kind == "error":
        detail = message.headers.get(":error-message") or message.headers.get(":error-code")
        raise from_status(ctx, 500, json.dumps({"message": str(detail or "stream error")}))
    if kind != "event":
        return
    try:
        data = json.loads(message.payload or b"{}")
    except ValueError:
        raise stream_broken(ctx, "a malformed event arrived") from None
    if isinstance(data, dict):
        yield from _handle_event(str(message.headers.get(":event-type", "")), data, state)


def _exception(kind: str, payload: bytes, ctx: CallContext) -> errors.ProviderError:
    text = payload.decode("utf-8", "replace")
    return from_status(ctx, _EXCEPTION_STATUSES.get(kind, 500),
                       text or json.dumps({"message": kind}))


def _handle_event(kind: str, data: dict[str, Any], state: _StreamState
                  ) -> Iterator[StreamEvent]:
    if kind == "contentBlockStart":
        tool = (data.get("start") or {}).get("toolUse")
        if isinstance(tool, dict):
            block = _Block("tool", str(tool.get("toolUseId", "")), str(tool.get("name", "")))
            state.blocks[_index(data)] = block
            yield ToolCallStart(block.id, block.name)
    elif kind == "contentBlockDelta":
        yield from _block_delta(data, state)
    elif kind == "contentBlockStop":
        yield from _block_stop(data, state)
    elif kind == "messageStop":
        state.stop_reason = _STOP_REASONS.get(str(data.get("stopReason")), "other")
    elif kind == "metadata":
        state.usage_seen = True
        yield _usage(data.get("usage") or {})


def _index(data: dict[str, Any]) -> int:
    try:
        return int(data.get("contentBlockIndex") or 0)
    except (TypeError, ValueError):
        return 0


def _block_delta(data: dict[str, Any], state: _StreamState) -> Iterator[StreamEvent]:
    delta = data.get("delta") or {}
    index = _index(data)
    if delta.get("text"):
        yield TextDelta(str(delta["text"]))
    elif isinstance(delta.get("toolUse"), dict):
        block = state.blocks.get(index)
        piece = delta["toolUse"].get("input")
        if block is not None and block.kind == "tool" and piece:
            block.args.append(str(piece))
            yield ToolCallDelta(block.id, str(piece))
    elif isinstance(delta.get("reasoningContent"), dict):
        reasoning = delta["reasoningContent"]
        block = state.blocks.setdefault(index, _Block("reasoning"))
        if reasoning.get("text"):
            yield ThinkingDelta(str(reasoning["text"]))
        if reasoning.get("signature"):
            block.signature += str(reasoning["signature"])


def _block_stop(data: dict[str, Any], state: _StreamState) -> Iterator[StreamEvent]:
    block = state.blocks.pop(_index(data), None)
    if block is None:
        return
    if block.kind == "reasoning":
        # Close the block even when unsigned (signature ""), so blocks don't run together.
        yield ThinkingDelta("", signature=block.signature)
    elif block.kind == "tool":
        yield ToolCallEnd(block.id, block.name, "".join(block.args) or "{}")


def _usage(usage: dict[str, Any]) -> Usage:
    """Bedrock's ``inputTokens`` excludes cache reads and writes; ours includes them."""
    def count(key: str) -> int:
        try:
            return int(usage.get(key) or 0)
        except (TypeError, ValueError):
            return 0

    read, write = count("cacheReadInputTokens"), count("cacheWriteInputTokens")
    return Usage(input_tokens=count("inputTokens") + read + write,
                 output_tokens=count("outputTokens"), cache_read_tokens=read,
                 cache_write_tokens=write)
