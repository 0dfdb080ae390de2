"""A fake HashiCorp Vault speaking the KV v2 and token HTTP API, for tests.

Written from Vault's HTTP API docs (api-docs/secret/kv/kv-v2, api-docs/auth/token):
- every request needs ``X-Vault-Token``; a missing or wrong one gets
  ``403 {"errors": ["permission denied"]}``; with ``namespace=`` set, so does a request without
  the matching ``X-Vault-Namespace`` header (the token is unknown in another namespace);
- ``GET /v1/<mount>/data/<path>[?version=N]`` -> ``{"data": {"data": {...}, "metadata": {...}}}``
  inside Vault's response envelope, ``404 {"errors": []}`` when there is no such secret;
- ``POST``/``PUT /v1/<mount>/data/<path>`` with ``{"data": {...}, "options": {...}}`` writes a
  new version and answers its metadata;
- ``LIST /v1/<mount>/metadata/<path>`` or ``GET ...?list=true`` -> ``{"data": {"keys": [...]}}``
  (sub-folders end in ``/``), ``404 {"errors": []}`` when empty;
- ``GET /v1/<mount>/metadata/<path>`` -> the key's metadata and versions;
- ``GET /v1/auth/token/lookup-self`` -> the token's properties;
- a path under no mount -> ``404`` "no handler for route".
It records every request; ``deny()`` makes paths answer 403 as a policy would, and
``next_reply()`` forces the next answer (a 500, a body that is not JSON...).
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

ROOT_TOKEN = "hvs.fake-root-token-0123456789"


@dataclass
class VaultRequest:
    method: str
    path: str  # without the query
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: Any = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class _Version:
    data: dict[str, Any]
    created_time: str
    deletion_time: str = ""
    destroyed: bool = False


@dataclass
class _Key:
    versions: list[_Version] = field(default_factory=list)

    @property
    def current(self) -> int:
        return len(self.versions)


class FakeVault:
    """``with FakeVault() as vault: vault.put("codetether/providers/openai", {...}); vault.url``"""

    def __init__(self, token: str = ROOT_TOKEN, namespace: str | None = None,
                 mounts: tuple[str, ...] = ("secret",), policies: tuple[str, ...] = ("root",)):
        self.token = token
        self.namespace = namespace
        self.policies = list(policies)
        self.requests: list[VaultRequest] = []
        self._mounts: dict[str, dict[str, _Key]] = {m.strip("/"): {} for m in mounts}
        self._denied: list[str] = []
        self._forced: list[tuple[int, bytes]] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeVault:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeVault:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- seeding and faults ------------------------------------------------------------------
    def put(self, path: str, data: dict[str, Any], mount: str = "secret") -> int:
        """Write a new version of a secret directly (as `vault kv put` would); returns it."""
        with self._lock:
            key = self._mounts[mount].setdefault(path.strip("/"), _Key())
            key.versions.append(_Version(dict(data), _now()))
            return key.current

    def deny(self, path_prefix: str) -> None:
        """Answer 403 for API paths (after /v1/) starting with ``path_prefix``."""
        self._denied.append(path_prefix.strip("/"))

    def next_reply(self, status: int, body: bytes | str) -> None:
        """Answer the next request (after recording it) with exactly this."""
        raw = body.encode() if isinstance(body, str) else body
        with self._lock:
            self._forced.append((status, raw))

    def requests_to(self, path: str) -> list[VaultRequest]:
        return [r for r in self.requests if r.path == path]

    # -- routing ------------------------------------------------------------------------------
    def _route(self, req: VaultRequest) -> tuple[int, Any]:
        if req.header("x-vault-token") != self.token or (
                self.namespace and (req.header("x-vault-namespace") or "").strip("/")
                != self.namespace):
            return 403, {"errors": ["permission denied"]}
        api = req.path.removeprefix("/v1/").strip("/")
        if any(api == d or api.startswith(d + "/") for d in self._denied):
            return 403, {"errors": ["1 error occurred:\n\t* permission denied\n\n"]}
        if api == "auth/token/lookup-self" and req.method == "GET":
            return 200, self._envelope(self._token_info())
        mount, _, rest = api.partition("/")
        if mount not in self._mounts:
            return 404, {"errors": [f'no handler for route "{api}". route entry not found.']}
        kind, _, path = rest.partition("/")
        is_list = req.method == "LIST" or (
            req.method == "GET" and req.query.get("list", [""])[0] == "true")
        if kind == "metadata" and is_list:
            return self._list(mount, path)
        if kind == "metadata" and req.method == "GET":
            return self._metadata(mount, path)
        if kind == "data" and req.method == "GET":
            return self._read(mount, path, req.query.get("version", ["0"])[0])
        if kind == "data" and req.method in ("POST", "PUT"):
            return self._write(mount, path, req.body)
        return 405, {"errors": [f"unsupported operation {req.method} on {api}"]}

    def _read(self, mount: str, path: str, version: str) -> tuple[int, Any]:
        with self._lock:
            key = self._mounts[mount].get(path.strip("/"))
            if key is None or not key.versions:
                return 404, {"errors": []}
            number = int(version) if version.isdigit() and int(version) else key.current
            if number > key.current:
                return 404, {"errors": []}
            v = key.versions[number - 1]
            meta = _version_meta(v, number)
        return 200, self._envelope({"data": dict(v.data), "metadata": meta})

    def _write(self, mount: str, path: str, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            return 400, {"errors": ["no data provided"]}
        number = self.put(path, body["data"], mount=mount)
        with self._lock:
            v = self._mounts[mount][path.strip("/")].versions[number - 1]
        return 200, self._envelope(_version_meta(v, number))

    def _list(self, mount: str, path: str) -> tuple[int, Any]:
        prefix = path.strip("/") + "/" if path.strip("/") else ""
        keys: set[str] = set()
        with self._lock:
            for name in self._mounts[mount]:
                if name.startswith(prefix):
                    head, sep, _ = name[len(prefix):].partition("/")
                    keys.add(head + sep)
        if not keys:
            return 404, {"errors": []}
        return 200, self._envelope({"keys": sorted(keys)})

    def _metadata(self, mount: str, path: str) -> tuple[int, Any]:
        with self._lock:
            key = self._mounts[mount].get(path.strip("/"))
            if key is None:
                return 404, {"errors": []}
            versions = {str(i + 1): {"created_time": v.created_time,
                                     "deletion_time": v.deletion_time,
                                     "destroyed": v.destroyed}
                        for i, v in enumerate(key.versions)}
            first, last = key.versions[0].created_time, key.versions[-1].created_time
            current = key.current
        return 200, self._envelope({
            "cas_required": False, "created_time": first, "current_version": current,
            "custom_metadata": None, "delete_version_after": "0s", "max_versions": 0,
            "oldest_version": 0, "updated_time": last, "versions": versions})

    def _token_info(self) -> dict[str, Any]:
        return {
            "accessor": "fake-accessor", "creation_time": 1700000000, "creation_ttl": 0,
            "display_name": "token", "entity_id": "", "expire_time": None,
            "explicit_max_ttl": 0, "id": self.token, "meta": None, "num_uses": 0,
            "orphan": True, "path": "auth/token/root", "policies": list(self.policies),
            "ttl": 0, "type": "service",
        }

    @staticmethod
    def _envelope(data: Any) -> dict[str, Any]:
        return {"request_id": str(uuid.uuid4()), "lease_id": "", "renewable": False,
                "lease_duration": 0, "data": data, "wrap_info": None, "warnings": None,
                "auth": None, "mount_type": "kv"}

    # -- HTTP ---------------------------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def _handle(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except json.JSONDecodeError:
                    body = raw
                req = VaultRequest(self.command, split.path, parse_qs(split.query),
                                   {k.lower(): v for k, v in self.headers.items()}, body)
                with fake._lock:
                    fake.requests.append(req)
                    forced = fake._forced.pop(0) if fake._forced else None
                if forced is not None:
                    status, payload = forced
                else:
                    status, data = fake._route(req)
                    payload = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_LIST = do_DELETE = _handle

        return Handler


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _version_meta(v: _Version, number: int) -> dict[str, Any]:
    return {"created_time": v.created_time, "custom_metadata": None,
            "deletion_time": v.deletion_time, "destroyed": v.destroyed, "version": number}


# -- a clean environment for secrets tests -------------------------------------------------------
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy",
              "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


def isolate_env(monkeypatch: Any, tmp_path: Any) -> None:
    """No VAULT_*, no provider keys, no proxies; HOME and the data dir in ``tmp_path``.

    Also forgets the per-process Vault cache and the once-per-process warning.
    """
    import os

    from codetether.providers.registry import SPECS
    from codetether.secrets import lookup, vault

    names = set(PROXY_VARS) | {"CODETETHER_DISABLE_ENV_FALLBACK", "CODETETHER_CONFIG"}
    for spec in SPECS:
        names.update(spec.env_vars)
        for extra in spec.env_extras.values():
            names.update(extra)
        if spec.base_url_env:
            names.add(spec.base_url_env)
    names.update(n for n in os.environ if n.startswith("VAULT_") or n.endswith("_API_KEY"))
    for name in names:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("CODETETHER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    vault.clear_cache()
    lookup.reset_warnings()
