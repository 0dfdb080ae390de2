"""A small HashiCorp Vault KV v2 client: just what finding a provider's key needs.

One secret per provider at ``{VAULT_MOUNT}/data/{VAULT_SECRETS_PATH}/<provider>``. Written with
``urllib.request`` (stdlib, honours ``https_proxy``/``no_proxy``) because the calls are a few
small JSON GETs; hvac would pull in requests for that. Every failure becomes a ``VaultError``
whose one line says what happened and how to fix it; the token never appears in one.

Reads are cached for the life of the process (one request per provider per run), and so is
"Vault is unreachable", so a dead Vault costs one timeout, not one per provider.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codetether.core.errors import VaultError

TIMEOUT_S = 5.0
DEFAULT_MOUNT = "secret"
DEFAULT_SECRETS_PATH = "codetether/providers"
NO_TOKEN_HINT = "set VAULT_TOKEN, VAULT_TOKEN_FILE or ~/.vault-token"


@dataclass(frozen=True)
class VaultSettings:
    """Where Vault is and how to talk to it, read from the ``VAULT_*`` env vars."""

    addr: str
    token: str | None = field(default=None, repr=False)
    token_source: str = ""  # "VAULT_TOKEN", "VAULT_TOKEN_FILE /run/agent/token", "~/.vault-token"
    namespace: str | None = None
    mount: str = DEFAULT_MOUNT
    secrets_path: str = DEFAULT_SECRETS_PATH
    cacert: str | None = None  # VAULT_CACERT: PEM bundle for a private CA
    token_problem: str = ""  # why no token was found, when one was expected

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> VaultSettings | None:
        """Settings from the environment, or None when ``VAULT_ADDR`` is unset (Vault off)."""
        env = os.environ if environ is None else environ
        addr = (env.get("VAULT_ADDR") or "").strip().rstrip("/")
        if not addr:
            return None
        token, source, problem = _find_token(env)
        return cls(
            addr=addr,
            token=token,
            token_source=source,
            namespace=(env.get("VAULT_NAMESPACE") or "").strip().strip("/") or None,
            mount=(env.get("VAULT_MOUNT") or "").strip().strip("/") or DEFAULT_MOUNT,
            secrets_path=(env.get("VAULT_SECRETS_PATH") or "").strip().strip("/")
            or DEFAULT_SECRETS_PATH,
            cacert=(env.get("VAULT_CACERT") or "").strip() or None,
            token_problem=problem,
        )

    def secret_path(self, provider_id: str) -> str:
        """The KV path as the Vault CLI writes it: ``secret/codetether/providers/openai``."""
        return f"{self.mount}/{self.secrets_path}/{provider_id}"

    def describe(self) -> str:
        """Where Vault is, for diagnostics (never the token)."""
        ns = f" namespace {self.namespace}" if self.namespace else ""
        return f"{self.addr}{ns}"


def _find_token(env: Any) -> tuple[str | None, str, str]:
    """``VAULT_TOKEN``, else the Vault Agent sink ``VAULT_TOKEN_FILE``, else ``~/.vault-token``."""
    token = (env.get("VAULT_TOKEN") or "").strip()
    if token:
        return token, "VAULT_TOKEN", ""
    sink = (env.get("VAULT_TOKEN_FILE") or "").strip()
    if sink:
        token, problem = _read_token_file(Path(sink).expanduser())
        return token, f"VAULT_TOKEN_FILE {sink}", problem
    home = env.get("HOME") or os.path.expanduser("~")
    token, problem = _read_token_file(Path(home) / ".vault-token")
    return token, "~/.vault-token", "" if token or problem.endswith("does not exist") else problem


def _read_token_file(path: Path) -> tuple[str | None, str]:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None, f"{path} does not exist"
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"cannot read {path} ({exc.__class__.__name__})"
    return (token or None), ("" if token else f"{path} is empty")


# -- the process-wide cache ------------------------------------------------------------------
_CACHE_LOCK = threading.Lock()
_READ_CACHE: dict[tuple, dict[str, Any] | None | VaultError] = {}
_DOWN: dict[tuple, VaultError] = {}  # Vault servers found unreachable in this process


def clear_cache() -> None:
    """Forget cached reads and unreachable servers (tests; a long-lived server after a fix)."""
    with _CACHE_LOCK:
        _READ_CACHE.clear()
        _DOWN.clear()


class VaultClient:
    """Reads provider secrets from KV v2. Thread-safe; every method raises only ``VaultError``."""

    def __init__(self, settings: VaultSettings, timeout: float = TIMEOUT_S) -> None:
        self.settings = settings
        self.timeout = timeout

    # -- public API ----------------------------------------------------------------------------
    def read_provider(self, provider_id: str) -> dict[str, Any] | None:
        """The secret's fields for ``provider_id``, or None when Vault has no such secret."""
        s = self.settings
        key = (s.addr, s.namespace, s.token, s.mount, s.secrets_path, provider_id)
        with _CACHE_LOCK:
            if key in _READ_CACHE:
                cached = _READ_CACHE[key]
                if isinstance(cached, VaultError):
                    raise cached
                return dict(cached) if cached is not None else None
        try:
            result = self._read_uncached(provider_id)
        except VaultError as exc:
            with _CACHE_LOCK:
                _READ_CACHE[key] = exc
            raise
        with _CACHE_LOCK:
            _READ_CACHE[key] = result
        return dict(result) if result is not None else None

    def list_providers(self) -> list[str]:
        """Provider ids with a secret under the secrets path (folders left out); [] when none."""
        s = self.settings
        path = f"{s.mount}/metadata/{s.secrets_path}"
        status, body = self._call("LIST", path)
        if status == 405:  # something in between refused the LIST verb: Vault also takes GET
            status, body = self._call("GET", path, query={"list": "true"})
        if status == 404:
            return []
        data = self._expect_ok(status, body, path)
        keys = (data.get("data") or {}).get("keys") or []
        if not isinstance(keys, list):
            raise self._malformed(path)
        return sorted(k for k in keys if isinstance(k, str) and k and not k.endswith("/"))

    def lookup_self(self) -> dict[str, Any]:
        """What Vault knows about our token (policies, ttl, display name), minus the token."""
        path = "auth/token/lookup-self"
        status, body = self._call("GET", path)
        data = self._expect_ok(status, body, path).get("data")
        if not isinstance(data, dict):
            raise self._malformed(path)
        return {k: v for k, v in data.items() if k != "id"}

    # -- internals -----------------------------------------------------------------------------
    def _read_uncached(self, provider_id: str) -> dict[str, Any] | None:
        s = self.settings
        path = f"{s.mount}/data/{s.secrets_path}/{urllib.parse.quote(provider_id, safe='')}"
        status, body = self._call("GET", path)
        if status == 404:
            return None  # no secret (or only deleted versions): fall through to the next source
        data = self._expect_ok(status, body, path).get("data")
        if not isinstance(data, dict) or not isinstance(data.get("data", {}), dict):
            raise self._malformed(path)
        return dict(data.get("data") or {})

    def _call(self, method: str, path: str, query: dict[str, str] | None = None
              ) -> tuple[int, bytes]:
        """One HTTP call; returns (status, body) for any HTTP answer, raises when none came."""
        s = self.settings
        if not s.token:
            why = f" ({s.token_problem})" if s.token_problem else ""
            raise VaultError(f"VAULT_ADDR is set but no token found{why}", NO_TOKEN_HINT)
        server_key = (s.addr, s.cacert)
        with _CACHE_LOCK:
            down = _DOWN.get(server_key)
        if down is not None:
            raise down
        url = f"{s.addr}/v1/{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        headers = {"X-Vault-Token": s.token, "X-Vault-Request": "true",
                   "Accept": "application/json"}
        if s.namespace:
            headers["X-Vault-Namespace"] = s.namespace
        parts = urllib.parse.urlsplit(s.addr)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise VaultError(f"VAULT_ADDR={s.addr} is not a URL",
                             "set it like https://vault.example.com:8200")
        request = urllib.request.Request(url, method=method, headers=headers)
        try:
            with self._opener().open(request, timeout=self.timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            error = self._unreachable(exc)
            with _CACHE_LOCK:
                _DOWN[server_key] = error
            raise error from None

    def _opener(self) -> urllib.request.OpenerDirector:
        handlers: list[urllib.request.BaseHandler] = []
        if self.settings.cacert:
            try:
                context = ssl.create_default_context(cafile=self.settings.cacert)
            except (OSError, ssl.SSLError) as exc:
                raise VaultError(f"cannot load VAULT_CACERT {self.settings.cacert} "
                                 f"({exc.__class__.__name__})",
                                 "point VAULT_CACERT at a PEM CA bundle") from None
            handlers.append(urllib.request.HTTPSHandler(context=context))
        return urllib.request.build_opener(*handlers)

    def _unreachable(self, exc: BaseException) -> VaultError:
        reason: Any = getattr(exc, "reason", exc)
        if isinstance(reason, ConnectionRefusedError):
            why = "connection refused"
        elif isinstance(reason, (TimeoutError, socket.timeout)):
            why = f"no answer within {self.timeout:g} s"
        elif isinstance(reason, socket.gaierror):
            why = "unknown host"
        elif isinstance(reason, ssl.SSLCertVerificationError):
            return VaultError(
                f"Vault at {self.settings.addr} has a TLS certificate we cannot verify "
                f"({reason.verify_message})",
                "set VAULT_CACERT to your CA bundle, or check VAULT_ADDR")
        elif isinstance(reason, ConnectionResetError):
            why = "connection reset"
        else:
            why = str(reason) or reason.__class__.__name__
        return VaultError(f"Vault at {self.settings.addr} is unreachable ({why})",
                          "check VAULT_ADDR or unset it to use local credentials")

    def _expect_ok(self, status: int, body: bytes, path: str) -> dict[str, Any]:
        """The JSON of a 2xx answer; any other status becomes its one-line ``VaultError``."""
        if status in (401, 403):
            detail = _errors_text(body) or "permission denied"
            raise VaultError(f"Vault denied access to {path} ({status} {detail})",
                             f"check {self._token_name()} policy, or whether it has expired")
        if status == 503:
            detail = _errors_text(body) or "service unavailable"
            raise VaultError(f"Vault at {self.settings.addr} cannot serve {path} (503 {detail})",
                             "it may be sealed or in standby: check `vault status`")
        if not 200 <= status < 300:
            detail = _errors_text(body) or "no detail"
            raise VaultError(f"Vault answered {status} for {path} ({detail})",
                             "check VAULT_ADDR, VAULT_NAMESPACE and VAULT_MOUNT")
        try:
            data = json.loads(body.decode("utf-8") or "{}")
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise self._malformed(path) from None
        if not isinstance(data, dict):
            raise self._malformed(path)
        return data

    def _malformed(self, path: str) -> VaultError:
        return VaultError(f"Vault at {self.settings.addr} sent a malformed answer for {path} "
                          "(not the JSON of a KV v2 secret)",
                          "check that VAULT_ADDR is a Vault server and VAULT_MOUNT a KV v2 mount")

    def _token_name(self) -> str:
        """``VAULT_TOKEN's`` or ``the token in /path's``: which token to look at."""
        source = self.settings.token_source or "VAULT_TOKEN"
        if source == "VAULT_TOKEN":
            return "VAULT_TOKEN's"
        return f"the {source.removeprefix('VAULT_TOKEN_FILE ')} token's"


def _errors_text(body: bytes) -> str:
    """Vault's ``{"errors": [...]}`` as one short line (Vault never echoes the token).

    Vault wraps policy denials as ``"1 error occurred:\n\t* permission denied\n\n"``; only
    the items are kept.
    """
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return ""
    errs = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errs, list):
        return ""
    items: list[str] = []
    for err in errs:
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        bullets = [ln[2:] for ln in lines if ln.startswith("* ")]
        items.extend(bullets or lines)
    return " ".join("; ".join(items).split())[:200]
