"""Find a provider's credentials: Vault KV v2, then the local store, then env vars.

Callers (providers, `auth list`, `models`) pass the env var names in, so this package does not
import ``codetether.providers``. A Vault that is configured but failing (down, 403, no token)
costs one warning line on stderr per process and the lookup goes on with local credentials;
a broken local store is an error, because only the user can fix it.

A source "has" a provider when it holds a key: ``api_key``, auth ``headers``, or a secret extra
such as Bedrock's ``aws_access_key_id``. A record with only settings (``base_url``, ``region``)
does not stop the search, but its settings win over those of the source that has the key;
alone it is "not found" unless the caller says the provider needs no key.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, Literal

from codetether.core.errors import MissingCredentialsError, SecretsError, VaultError
from codetether.secrets import vault as _vault
from codetether.secrets.credentials import Credentials, Source
from codetether.secrets.store import CredentialStore
from codetether.secrets.vault import VaultClient, VaultSettings

ENV_FALLBACK_SWITCH = "CODETETHER_DISABLE_ENV_FALLBACK"
KNOWN_FIELDS = ("api_key", "base_url", "organization", "headers")
# extras that say where or how, not who: alone they are not credentials
SETTING_EXTRAS = frozenset({"region", "project_id", "project", "location", "endpoint"})

VaultArg = VaultClient | None | Literal["auto"]
EnvExtras = dict[str, tuple[str, ...]] | None

_warn_lock = threading.Lock()
_warned = False


@dataclass(frozen=True)
class SourceInfo:
    """Where a provider's credentials come from, for `auth list` / `models` (never the key)."""

    provider: str
    source: Source | Literal["none"]
    where: str  # vault path, store file, env var names; "" for none
    fields: tuple[str, ...] = ()  # names of the fields present, e.g. ("api_key", "base_url")

    def as_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "source": self.source, "where": self.where,
                "fields": list(self.fields)}


# -- the lookup ----------------------------------------------------------------------------------
def lookup(provider_id: str, env_vars: tuple[str, ...] = (), env_extras: EnvExtras = None, *,
           vault: VaultArg = "auto", store: CredentialStore | None = None,
           require_key: bool = True) -> Credentials | None:
    """The credentials of the first source with a key, else None.

    ``require_key=False`` (providers that need no key, such as ``local``) also accepts a record
    holding only settings, e.g. a ``base_url`` kept in Vault.
    """
    partial: Credentials | None = None
    for creds in _candidates(provider_id, env_vars, env_extras, vault, store):
        if has_key(creds):
            return _overlay(creds, partial)
        partial = partial or creds
    return None if require_key else partial


def status(provider_id: str, env_vars: tuple[str, ...] = (), env_extras: EnvExtras = None, *,
           vault: VaultArg = "auto", store: CredentialStore | None = None) -> SourceInfo:
    """Which source ``lookup`` would use for this provider, and where that is."""
    creds = lookup(provider_id, env_vars, env_extras, vault=vault, store=store)
    if creds is None:
        return SourceInfo(provider_id, "none", "")
    return _info(creds)


def all_sources(provider_id: str, env_vars: tuple[str, ...] = (), env_extras: EnvExtras = None,
                *, vault: VaultArg = "auto", store: CredentialStore | None = None
                ) -> list[SourceInfo]:
    """Every source holding something for the provider, in lookup order (for `auth logout`)."""
    return [_info(c) for c in _candidates(provider_id, env_vars, env_extras, vault, store)]


def discover_providers(*, vault: VaultArg = "auto", store: CredentialStore | None = None
                       ) -> list[str]:
    """Provider ids found in the store and under Vault's secrets path (for `auth list`)."""
    found = set((store or CredentialStore()).providers())
    client = _client(vault)
    if client is not None:
        try:
            found.update(client.list_providers())
        except VaultError as exc:
            warn_vault_once(exc)
    return sorted(found)


def has_key(creds: Credentials) -> bool:
    """True when the credentials can authenticate (a key, auth headers or secret extras)."""
    return bool(creds.api_key or creds.headers
                or any(v for k, v in creds.extras.items() if k not in SETTING_EXTRAS))


# -- hints ---------------------------------------------------------------------------------------
def vault_path(provider_id: str) -> str:
    """Where the provider's secret lives in Vault, as `vault kv get` spells it."""
    settings = VaultSettings.from_env()
    if settings is not None:
        return settings.secret_path(provider_id)
    mount = (os.environ.get("VAULT_MOUNT") or "").strip("/ ") or _vault.DEFAULT_MOUNT
    path = (os.environ.get("VAULT_SECRETS_PATH") or "").strip("/ ") or _vault.DEFAULT_SECRETS_PATH
    return f"{mount}/{path}/{provider_id}"


def missing_hint(provider_id: str, env_vars: tuple[str, ...] = ()) -> str:
    """The one-line fix for "no key for <provider>"."""
    ways = [f"run `codetether auth login {provider_id}`",
            f"put api_key in Vault at {vault_path(provider_id)}"]
    if env_vars and env_fallback_enabled():
        ways.append("set " + " or ".join(env_vars[:2]))
    return ", ".join(ways[:-1]) + ", or " + ways[-1]


def missing_error(provider_id: str, env_vars: tuple[str, ...] = ()) -> MissingCredentialsError:
    return MissingCredentialsError(f"no credentials for {provider_id}",
                                   missing_hint(provider_id, env_vars))


def env_fallback_enabled() -> bool:
    value = os.environ.get(ENV_FALLBACK_SWITCH, "").strip().lower()
    return value not in ("1", "true", "yes", "on")


def warn_vault_once(exc: VaultError) -> None:
    """Say once per process that Vault failed and local credentials are used instead."""
    global _warned
    with _warn_lock:
        if _warned:
            return
        _warned = True
    print(f"warning: {exc.one_line()}; using local credentials", file=sys.stderr)


def reset_warnings() -> None:
    """Let the next Vault failure warn again (tests)."""
    global _warned
    with _warn_lock:
        _warned = False


# -- sources -------------------------------------------------------------------------------------
def _candidates(provider_id: str, env_vars: tuple[str, ...], env_extras: EnvExtras,
                vault: VaultArg, store: CredentialStore | None) -> Iterator[Credentials]:
    """Each source's record for the provider, in order, read lazily (Vault first)."""
    client = _client(vault)
    if client is not None:
        try:
            data = client.read_provider(provider_id)
        except VaultError as exc:
            warn_vault_once(exc)
            data = None
        if data:
            where = client.settings.secret_path(provider_id)
            yield from _nonempty(from_fields(provider_id, "vault", where, data))
    store = store or CredentialStore()
    data = store.get(provider_id)
    if data:
        yield from _nonempty(from_fields(provider_id, "store", str(store.path), data))
    if env_fallback_enabled():
        creds = _from_env(provider_id, env_vars, env_extras or {})
        if creds is not None:
            yield creds


def _client(vault: VaultArg) -> VaultClient | None:
    if vault == "auto":
        settings = VaultSettings.from_env()
        return VaultClient(settings) if settings is not None else None
    return vault


def _nonempty(creds: Credentials) -> Iterator[Credentials]:
    if creds.api_key or creds.base_url or creds.organization or creds.headers or creds.extras:
        yield creds


def from_fields(provider_id: str, source: Source, where: str, data: dict[str, Any]
                ) -> Credentials:
    """Credentials from a Vault secret's or store record's fields; unknown fields -> extras."""
    creds = Credentials(provider=provider_id, source=source, where=where)
    for name, value in data.items():
        if value is None or value == "":
            continue
        if name == "headers":
            creds.headers = _headers(value, source, where)
        elif name in KNOWN_FIELDS:
            setattr(creds, name, _text(value).strip())
        else:
            creds.extras[name] = _text(value).strip()
    return creds


def _headers(value: Any, source: str, where: str) -> dict[str, str]:
    """``headers`` may be a JSON object or its text (Vault's UI stores strings)."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except json.JSONDecodeError:
            value = None
    if not isinstance(value, dict):
        raise SecretsError(f"the headers field of {source} {where} is not a JSON object",
                           'store it like {"X-Org": "acme"}')
    return {str(k): _text(v) for k, v in value.items()}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _from_env(provider_id: str, env_vars: tuple[str, ...],
              env_extras: dict[str, tuple[str, ...]]) -> Credentials | None:
    """The first set var of ``env_vars`` is the key; ``env_extras`` maps field -> var names."""
    used: list[str] = []
    creds = Credentials(provider=provider_id, source="env", where="")
    api_key = _first_env(env_vars)
    if api_key:
        creds.api_key, var = api_key
        used.append(var)
    for name, names in env_extras.items():
        found = _first_env(names)
        if not found:
            continue
        value, var = found
        used.append(var)
        if name in ("base_url", "organization"):
            setattr(creds, name, value)
        else:
            creds.extras[name] = value
    if not used:
        return None
    return replace(creds, where=", ".join(used))


def _first_env(names: tuple[str, ...]) -> tuple[str, str] | None:
    for var in names:
        value = (os.environ.get(var) or "").strip()
        if value:
            return value, var
    return None


def _overlay(creds: Credentials, partial: Credentials | None) -> Credentials:
    """Settings from a higher-priority record without a key win over those of ``creds``."""
    if partial is None:
        return creds
    return replace(creds, base_url=partial.base_url or creds.base_url,
                   organization=partial.organization or creds.organization,
                   extras={**creds.extras, **partial.extras})


def _info(creds: Credentials) -> SourceInfo:
    fields = [name for name in KNOWN_FIELDS if getattr(creds, name)]
    fields += sorted(creds.extras)
    return SourceInfo(creds.provider, creds.source, creds.where, tuple(fields))
