"""Turn an HTTP failure from any provider into one ``ProviderError`` that says what to do.

All wire formats share this mapping so that a rejected key, a too-long prompt or an unknown
model read the same whichever vendor answered.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from codetether.core import errors
from codetether.core.redact import redact

# Phrases vendors use for "the prompt does not fit the window" (OpenAI, Anthropic, Bedrock,
# Gemini, vLLM/llama.cpp); matched case-insensitively on the error text.
_CONTEXT_MARKERS = (
    "context_length_exceeded", "maximum context length", "context length", "prompt is too long",
    "input is too long", "too many input tokens", "context window", "exceeds the context",
    "reduce the length", "input length and `max_tokens` exceed",
)


@dataclass
class CallContext:
    """Who we were talking to; everything an error message needs, plus secrets to redact."""

    provider: str
    model: str
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def where(self) -> str:
        return f"{self.provider}/{self.model}" if self.model else self.provider


def error_message_from_body(body: str) -> str:
    """The human part of a vendor error body, whatever its JSON shape."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, ValueError):
        return body.strip()[:300]
    for candidate in (data, data.get("error") if isinstance(data, dict) else None):
        if isinstance(candidate, dict):
            for key in ("message", "Message", "detail", "error"):
                value = candidate.get(key)
                if isinstance(value, str) and value:
                    return value[:300]
                if isinstance(value, dict) and isinstance(value.get("message"), str):
                    return value["message"][:300]
        if isinstance(candidate, str) and candidate:
            return candidate[:300]
    return body.strip()[:300]


def is_context_length_message(text: str) -> bool:
    low = text.lower()
    return any(marker in low for marker in _CONTEXT_MARKERS)


def key_hint(provider: str) -> str:
    return (f"run `codetether auth login {provider}` or set it in Vault at "
            f"secret/codetether/providers/{provider}")


def from_status(ctx: CallContext, status: int, body: str, retry_after: float | None = None
                ) -> errors.ProviderError:
    """Map an HTTP status + body to the most specific ProviderError, with the key redacted."""
    detail = redact(error_message_from_body(body), ctx.secrets) or f"HTTP {status}"
    common = {"provider": ctx.provider, "model": ctx.model, "status": status}
    if status in (401, 403):
        return errors.ProviderAuthError(
            f"key rejected by {ctx.provider} (HTTP {status}: {detail})", key_hint(ctx.provider),
            **common)
    if status == 429:
        wait = f"; the server asked to wait {retry_after:g}s" if retry_after else ""
        return errors.RateLimitError(
            f"{ctx.provider} rate-limited {ctx.where()} (HTTP 429: {detail}){wait}",
            "wait and retry, or pick another model with -m provider/model", **common)
    # the marker may sit only in a machine field (OpenAI's code: context_length_exceeded)
    if is_context_length_message(body) or status == 413:
        return errors.ContextLengthError(
            f"the prompt is larger than {ctx.where()}'s context window ({detail})",
            "start a new session or compact this one, or choose a model with a larger window",
            **common)
    if status == 404:
        return errors.ProviderRequestError(
            f"{ctx.provider} does not know model '{ctx.model}' or the endpoint "
            f"(HTTP 404: {detail})",
            f"list models with `codetether models {ctx.provider}` or check "
            f"[providers.{ctx.provider}] base_url", **common)
    if status >= 500:
        return errors.ProviderUnavailableError(
            f"{ctx.provider} failed serving {ctx.where()} (HTTP {status}: {detail})",
            "the provider is having trouble; retry later or use another provider", **common)
    return errors.ProviderRequestError(
        f"{ctx.provider} refused the request for {ctx.where()} (HTTP {status}: {detail})",
        "check the model id and request options", **common)


def connection_failed(ctx: CallContext, url: str, reason: str) -> errors.ProviderUnavailableError:
    return errors.ProviderUnavailableError(
        f"cannot reach {ctx.provider} at {url} for {ctx.where()} ({redact(reason, ctx.secrets)})",
        f"check your network or [providers.{ctx.provider}] base_url",
        provider=ctx.provider, model=ctx.model)


def stream_broken(ctx: CallContext, reason: str) -> errors.ProviderStreamError:
    return errors.ProviderStreamError(
        f"the response stream from {ctx.where()} broke off ({redact(reason, ctx.secrets)})",
        "what arrived before the break was kept; retry the turn",
        provider=ctx.provider, model=ctx.model)


def cancelled(ctx: CallContext) -> errors.CancelledError:
    return errors.CancelledError(f"request to {ctx.where()} cancelled",
                                 provider=ctx.provider, model=ctx.model)
