"""From a model reference (``provider/model``, a bare model, or nothing) to a ready Provider.

Order of precedence for the endpoint: ``[providers.<id>] base_url`` in config, then a
``base_url`` stored with the key (Vault or the credential store), then the vendor SDK's env var
(``OPENAI_BASE_URL``, ``ANTHROPIC_BASE_URL``), then the built-in URL.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass

from codetether.core.config import Config
from codetether.core.errors import MissingCredentialsError
from codetether.providers.base import Endpoint, Provider
from codetether.providers.http import RetryPolicy
from codetether.providers.registry import AUTO_ORDER, BY_ID, ProviderSpec, custom_spec
from codetether.secrets.credentials import Credentials

# wire format -> (module, class); the module is imported only when that format is used
WIRE_CLASSES = {
    "openai_chat": ("codetether.providers.openai_chat", "OpenAIChatProvider"),
    "anthropic": ("codetether.providers.anthropic", "AnthropicProvider"),
    "bedrock": ("codetether.providers.bedrock", "BedrockProvider"),
}

NO_PROVIDER_HINT = (
    "add one with `codetether auth login <provider>` (e.g. anthropic, openai, openrouter), "
    "put api_key in Vault at secret/codetether/providers/<provider>, or set an env var such as "
    "ANTHROPIC_API_KEY or OPENAI_API_KEY; for a local server: "
    "`codetether config --set providers.local.base_url=http://127.0.0.1:11434/v1`"
)


@dataclass
class Resolved:
    spec: ProviderSpec
    model: str
    credentials: Credentials | None
    endpoint: Endpoint

    @property
    def ref(self) -> str:
        return f"{self.spec.id}/{self.model}"


def spec_for(provider_id: str, cfg: Config) -> ProviderSpec | None:
    settings = cfg.provider_settings(provider_id)
    spec = BY_ID.get(provider_id)
    if spec is None and settings.get("base_url"):
        spec = custom_spec(provider_id, settings["base_url"], settings.get("wire", "openai_chat"))
    return spec


def known_provider_ids(cfg: Config) -> list[str]:
    extra = [pid for pid in cfg.get("providers", {}) if pid not in BY_ID]
    return [spec.id for spec in BY_ID.values()] + sorted(extra)


def find_credentials(spec: ProviderSpec) -> Credentials | None:
    from codetether.secrets.lookup import lookup

    return lookup(spec.id, spec.env_vars, spec.env_extras, require_key=spec.key_required)


def usable(spec: ProviderSpec, creds: Credentials | None, cfg: Config) -> bool:
    """A provider can be called when it has credentials or needs none and is configured."""
    if creds is not None:
        return True
    return not spec.key_required and bool(cfg.provider_settings(spec.id))


def split_model_ref(ref: str, cfg: Config) -> tuple[str | None, str]:
    """``provider/model`` splits on the first ``/`` when the head is a known provider; any other
    reference (``gpt-4o``, ``meta-llama/Llama-3``) is a model of the default provider."""
    head, sep, tail = ref.partition("/")
    if sep and tail and head in known_provider_ids(cfg):
        return head, tail
    return None, ref


def resolve(model_ref: str | None, cfg: Config) -> Resolved:
    ref = model_ref or cfg.get("default.model")
    provider_id, model = split_model_ref(ref, cfg) if ref else (None, "")
    provider_id = provider_id or cfg.get("default.provider")
    if provider_id is None:
        provider_id, creds = _auto_provider(cfg)
    else:
        spec = spec_for(provider_id, cfg)
        if spec is None:
            raise MissingCredentialsError(
                f"unknown provider '{provider_id}'",
                "see `codetether models` for provider ids, or declare it with "
                f"`codetether config --set providers.{provider_id}.base_url=URL`")
        creds = find_credentials(spec)
        if not usable(spec, creds, cfg) and spec.key_required:
            from codetether.secrets.lookup import missing_hint

            env_vars = spec.env_vars
            if spec.auth == "sigv4":  # Bedrock: AWS keys first, its API key second
                env_vars = ("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", *env_vars)
            raise MissingCredentialsError(f"no key for {provider_id}",
                                          missing_hint(provider_id, env_vars))
    spec = spec_for(provider_id, cfg)
    assert spec is not None
    model = model or cfg.provider_settings(spec.id).get("default_model") or spec.default_model
    if not model:
        raise MissingCredentialsError(
            f"no model given for provider {spec.id}",
            f"pass -m {spec.id}/<model> or set providers.{spec.id}.default_model")
    return Resolved(spec, model, creds, build_endpoint(spec, creds, cfg))


def _auto_provider(cfg: Config) -> tuple[str, Credentials | None]:
    """The first provider, in a fixed order, that has credentials or is configured locally."""
    others = [p for p in known_provider_ids(cfg) if p not in AUTO_ORDER]
    for provider_id in list(AUTO_ORDER) + others:
        spec = spec_for(provider_id, cfg)
        if spec is None:
            continue
        creds = find_credentials(spec)
        if usable(spec, creds, cfg):
            return provider_id, creds
    raise MissingCredentialsError("no provider configured", NO_PROVIDER_HINT)


def build_endpoint(spec: ProviderSpec, creds: Credentials | None, cfg: Config) -> Endpoint:
    settings = cfg.provider_settings(spec.id)
    base_url = (settings.get("base_url") or (creds.base_url if creds else None)
                or (os.environ.get(spec.base_url_env) if spec.base_url_env else None)
                or spec.base_url)
    headers = {**spec.headers, **(creds.headers if creds else {}), **settings.get("headers", {})}
    extras = dict(creds.extras) if creds else {}
    if creds and creds.organization:
        extras["organization"] = creds.organization
    return Endpoint(
        provider_id=spec.id,
        base_url=base_url.rstrip("/"),
        api_key=creds.api_key if creds else None,
        headers={str(k): str(v) for k, v in headers.items()},
        timeout=float(settings.get("timeout", 300.0)),
        max_retries=int(settings.get("max_retries", 3)),
        extras=extras,
    )


def make_provider(resolved: Resolved, policy: RetryPolicy | None = None) -> Provider:
    module_name, class_name = WIRE_CLASSES[resolved.spec.wire]
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(resolved.endpoint, policy)


def get_provider(model_ref: str | None, cfg: Config) -> tuple[Provider, Resolved]:
    """The front door: a provider instance and what it resolved to."""
    resolved = resolve(model_ref, cfg)
    return make_provider(resolved), resolved
