"""`codetether auth login|logout|list`: the local credential store, and where keys come from.

A key is read from stdin (hidden when it is a terminal), never from argv, where `ps` and the
shell history would see it. Messages go to stderr; `list` prints its table or JSON to stdout
and never a key.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from typing import Any

from codetether.core.errors import SecretsError, UsageError, VaultError
from codetether.providers.registry import BY_ID, SPECS, custom_spec
from codetether.secrets import lookup
from codetether.secrets.store import CredentialStore
from codetether.secrets.vault import VaultClient, VaultSettings

EnvNames = tuple[tuple[str, ...], dict[str, tuple[str, ...]]]


def run(args: argparse.Namespace) -> int:
    action = getattr(args, "auth_action", None)
    if action == "login":
        return _login(args)
    if action == "logout":
        return _logout(args)
    if action == "list":
        return _list(args)
    raise UsageError(f"unknown auth action {action!r}", "use login, logout or list")


# -- login ---------------------------------------------------------------------------------------
def _login(args: argparse.Namespace) -> int:
    provider = _provider_arg(args)
    base_url = (getattr(args, "base_url", None) or "").strip() or None
    if base_url and not base_url.startswith(("http://", "https://")):
        raise UsageError(f"--base-url {base_url} is not an http(s) URL",
                         "give it like https://api.example.com/v1")
    _note_unknown(provider)
    key = _read_key(provider)
    if not key:
        raise SecretsError(f"no key given for {provider}; nothing was saved",
                           f"type it at the prompt, or pipe it in: "
                           f"`codetether auth login {provider} < keyfile`")
    if any(ch.isspace() or ord(ch) < 32 for ch in key):
        raise SecretsError(f"the key given for {provider} contains spaces or control "
                           "characters; nothing was saved", "paste the key alone, on one line")
    store = CredentialStore()
    record = store.get(provider) or {}  # keeps base_url / extras saved before
    record["api_key"] = key
    if base_url:
        record["base_url"] = base_url
    store.set(provider, record)
    print(f"saved {provider} key to {store.path} (mode 600)", file=sys.stderr)
    _note_vault_precedence(provider)
    return 0


def _read_key(provider: str) -> str:
    """One line from stdin; through getpass (no echo) when stdin is a terminal."""
    stdin = sys.stdin
    if stdin is None:
        return ""
    if stdin.isatty():
        import getpass

        try:
            return getpass.getpass(f"{provider} API key (input hidden): ").strip()
        except EOFError:
            return ""
    return stdin.readline().strip()


def _note_unknown(provider: str) -> None:
    if provider in BY_ID:
        return
    close = difflib.get_close_matches(provider, list(BY_ID), n=1)
    guess = f" (did you mean {close[0]}?)" if close else ""
    print(f"note: {provider} is not a built-in provider{guess}; its key is used once "
          f"config declares [providers.{provider}] base_url", file=sys.stderr)


def _note_vault_precedence(provider: str) -> None:
    settings = VaultSettings.from_env()
    if settings is None:
        return
    env_vars, env_extras = _env_names(provider)
    info = lookup.status(provider, env_vars, env_extras, vault=VaultClient(settings))
    if info.source == "vault":
        print(f"note: Vault has {provider} at {info.where}; it is used before this store",
              file=sys.stderr)


# -- logout --------------------------------------------------------------------------------------
def _logout(args: argparse.Namespace) -> int:
    provider = _provider_arg(args)
    store = CredentialStore()
    removed = store.delete(provider)
    env_vars, env_extras = _env_names(provider)
    others = [s for s in lookup.all_sources(provider, env_vars, env_extras, store=store)
              if s.source != "store"]
    elsewhere = "; ".join(_describe(s) for s in others)
    if not removed:
        hint = (f"it comes from {elsewhere}, which logout cannot remove" if others
                else "see `codetether auth list`")
        raise SecretsError(f"{provider} is not in the credential store {store.path}", hint)
    print(f"removed {provider} from {store.path}", file=sys.stderr)
    if others:
        print(f"note: {provider} still has credentials in {elsewhere}, which logout cannot "
              "remove", file=sys.stderr)
    return 0


def _describe(info: lookup.SourceInfo) -> str:
    if info.source == "vault":
        return f"Vault at {info.where}"
    if info.source == "env":
        return f"env {info.where} (unset to stop using it)"
    return f"{info.source} {info.where}"


# -- list ----------------------------------------------------------------------------------------
def _list(args: argparse.Namespace) -> int:
    store = CredentialStore()
    settings = VaultSettings.from_env()
    client = VaultClient(settings) if settings is not None else None
    vault_info = _vault_info(client) if client is not None else None
    ids = [spec.id for spec in SPECS]
    ids += [p for p in lookup.discover_providers(vault=client, store=store) if p not in ids]
    rows = []
    for provider in ids:
        env_vars, env_extras = _env_names(provider)
        rows.append(lookup.status(provider, env_vars, env_extras, vault=client, store=store))
    if getattr(args, "json", False):
        out = {"providers": [r.as_dict() for r in rows], "store": str(store.path),
               "vault": vault_info, "env_fallback": lookup.env_fallback_enabled()}
        print(json.dumps(out, indent=2))
        return 0
    if vault_info is not None:
        print(_vault_line(vault_info), file=sys.stderr)
    _print_table(rows)
    return 0


def _vault_info(client: VaultClient) -> dict[str, Any]:
    s = client.settings
    info: dict[str, Any] = {"addr": s.addr, "namespace": s.namespace, "mount": s.mount,
                            "secrets_path": s.secrets_path, "token_source": s.token_source,
                            "policies": None, "error": None}
    try:
        token = client.lookup_self()
        policies = token.get("policies")
        info["policies"] = list(policies) if isinstance(policies, list) else None
    except VaultError as exc:
        info["error"] = exc.one_line()
        lookup.warn_vault_once(exc)  # the same one warning a failing read would give
    return info


def _vault_line(info: dict[str, Any]) -> str:
    where = info["addr"] + (f" namespace {info['namespace']}" if info["namespace"] else "")
    line = f"vault: {where}, secrets at {info['mount']}/{info['secrets_path']}/<provider>"
    if info["token_source"]:
        line += f", token from {info['token_source']}"
    if info["policies"]:
        line += f", policies {', '.join(map(str, info['policies']))}"
    return line


def _print_table(rows: list[lookup.SourceInfo]) -> None:
    table = [("PROVIDER", "SOURCE", "WHERE")]
    table += [(r.provider, r.source, r.where or "-") for r in rows]
    w0 = max(len(r[0]) for r in table)
    w1 = max(len(r[1]) for r in table)
    for provider, source, where in table:
        print(f"{provider:<{w0}}  {source:<{w1}}  {where}".rstrip())


# -- shared --------------------------------------------------------------------------------------
def _provider_arg(args: argparse.Namespace) -> str:
    provider = (getattr(args, "provider", None) or "").strip()
    if not provider:
        raise UsageError("which provider?", "e.g. `codetether auth login openai`")
    if "/" in provider or any(ch.isspace() for ch in provider):
        raise UsageError(f"'{provider}' is not a provider id",
                         "use an id such as openai or anthropic (see `codetether auth list`)")
    return provider


def _env_names(provider: str) -> EnvNames:
    spec = BY_ID.get(provider) or custom_spec(provider, "")
    return spec.env_vars, dict(spec.env_extras)
