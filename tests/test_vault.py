"""The Vault KV v2 client against the fake Vault (and the fake against hvac, a client we did not
write): settings from env, request shape, caching, and one clear line per failure."""

from __future__ import annotations

import json
import socket
import urllib.request

import pytest

from codetether.core.errors import VaultError
from codetether.secrets.vault import VaultClient, VaultSettings
from tests.fake_vault import ROOT_TOKEN, FakeVault, isolate_env

OPENAI_KEY = "sk-vault-openai-0123456789abcdef"
SECRET_PATH = "/v1/secret/data/codetether/providers/openai"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    isolate_env(monkeypatch, tmp_path)


@pytest.fixture
def fake():
    with FakeVault() as vault:
        vault.put("codetether/providers/openai",
                  {"api_key": OPENAI_KEY, "base_url": "https://proxy.example/v1"})
        yield vault


def client_for(fake: FakeVault, monkeypatch, **env: str) -> VaultClient:
    monkeypatch.setenv("VAULT_ADDR", fake.url)
    monkeypatch.setenv("VAULT_TOKEN", fake.token)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = VaultSettings.from_env()
    assert settings is not None
    return VaultClient(settings)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- settings ------------------------------------------------------------------------------------
def test_settings_none_without_vault_addr(monkeypatch):
    monkeypatch.setenv("VAULT_TOKEN", "t")
    assert VaultSettings.from_env() is None


def test_settings_defaults_and_overrides(monkeypatch):
    monkeypatch.setenv("VAULT_ADDR", "https://vault.example:8200/")
    monkeypatch.setenv("VAULT_TOKEN", "hvs.abc")
    s = VaultSettings.from_env()
    assert (s.addr, s.mount, s.secrets_path, s.namespace) == (
        "https://vault.example:8200", "secret", "codetether/providers", None)
    monkeypatch.setenv("VAULT_MOUNT", "/kv/")
    monkeypatch.setenv("VAULT_SECRETS_PATH", "teams/ai/")
    monkeypatch.setenv("VAULT_NAMESPACE", "admin/")
    s = VaultSettings.from_env()
    assert (s.mount, s.secrets_path, s.namespace) == ("kv", "teams/ai", "admin")
    assert s.secret_path("openai") == "kv/teams/ai/openai"
    assert "hvs.abc" not in repr(s)


def test_token_precedence_env_then_sink_then_home_file(monkeypatch, tmp_path):
    monkeypatch.setenv("VAULT_ADDR", "http://127.0.0.1:8200")
    home_file = tmp_path / "home" / ".vault-token"
    home_file.write_text("hvs.from-home-file\n")
    s = VaultSettings.from_env()
    assert (s.token, s.token_source) == ("hvs.from-home-file", "~/.vault-token")

    sink = tmp_path / "agent-sink"
    sink.write_text("  hvs.from-agent-sink\n")
    monkeypatch.setenv("VAULT_TOKEN_FILE", str(sink))
    s = VaultSettings.from_env()
    assert (s.token, s.token_source) == ("hvs.from-agent-sink", f"VAULT_TOKEN_FILE {sink}")

    monkeypatch.setenv("VAULT_TOKEN", "hvs.from-env")
    s = VaultSettings.from_env()
    assert (s.token, s.token_source) == ("hvs.from-env", "VAULT_TOKEN")


def test_home_is_respected_for_vault_token(monkeypatch, tmp_path):
    other_home = tmp_path / "other-home"
    other_home.mkdir()
    (other_home / ".vault-token").write_text("hvs.other")
    monkeypatch.setenv("HOME", str(other_home))
    monkeypatch.setenv("VAULT_ADDR", "http://127.0.0.1:8200")
    assert VaultSettings.from_env().token == "hvs.other"


def test_token_file_is_used_for_requests(fake, monkeypatch, tmp_path):
    sink = tmp_path / "sink"
    sink.write_text(fake.token + "\n")
    monkeypatch.setenv("VAULT_ADDR", fake.url)
    monkeypatch.setenv("VAULT_TOKEN_FILE", str(sink))
    assert VaultClient(VaultSettings.from_env()).read_provider("openai")["api_key"] == OPENAI_KEY
    assert fake.requests[-1].header("X-Vault-Token") == fake.token


def test_no_token_anywhere_is_one_clear_error(fake, monkeypatch):
    monkeypatch.setenv("VAULT_ADDR", fake.url)
    with pytest.raises(VaultError) as info:
        VaultClient(VaultSettings.from_env()).read_provider("openai")
    assert info.value.one_line() == ("VAULT_ADDR is set but no token found: set VAULT_TOKEN, "
                                     "VAULT_TOKEN_FILE or ~/.vault-token")
    assert fake.requests == []


def test_missing_sink_file_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("VAULT_ADDR", "http://127.0.0.1:1")
    monkeypatch.setenv("VAULT_TOKEN_FILE", str(tmp_path / "nope"))
    with pytest.raises(VaultError, match="no token found .*nope does not exist"):
        VaultClient(VaultSettings.from_env()).read_provider("openai")


# -- reads ---------------------------------------------------------------------------------------
def test_read_provider_sends_token_and_returns_fields(fake, monkeypatch):
    client = client_for(fake, monkeypatch)
    assert client.read_provider("openai") == {"api_key": OPENAI_KEY,
                                              "base_url": "https://proxy.example/v1"}
    req = fake.requests[-1]
    assert (req.method, req.path) == ("GET", SECRET_PATH)
    assert req.header("X-Vault-Token") == ROOT_TOKEN
    assert req.header("X-Vault-Namespace") is None


def test_namespace_header_is_sent(monkeypatch):
    with FakeVault(namespace="team-a") as vault:
        vault.put("codetether/providers/openai", {"api_key": OPENAI_KEY})
        client = client_for(vault, monkeypatch, VAULT_NAMESPACE="team-a")
        assert client.read_provider("openai")["api_key"] == OPENAI_KEY
        assert vault.requests[-1].header("X-Vault-Namespace") == "team-a"


def test_mount_and_path_overrides(monkeypatch):
    with FakeVault(mounts=("kv",)) as vault:
        vault.put("ai/keys/anthropic", {"api_key": "sk-ant-xyz-0123456789"}, mount="kv")
        client = client_for(vault, monkeypatch, VAULT_MOUNT="kv", VAULT_SECRETS_PATH="ai/keys")
        assert client.read_provider("anthropic") == {"api_key": "sk-ant-xyz-0123456789"}
        assert vault.requests[-1].path == "/v1/kv/data/ai/keys/anthropic"


def test_missing_secret_is_none(fake, monkeypatch):
    assert client_for(fake, monkeypatch).read_provider("groq") is None


def test_reads_are_cached_per_process(fake, monkeypatch):
    client = client_for(fake, monkeypatch)
    client.read_provider("openai")
    client.read_provider("groq")
    again = VaultClient(VaultSettings.from_env())  # a new client in the same process
    assert again.read_provider("openai")["api_key"] == OPENAI_KEY
    assert again.read_provider("groq") is None
    assert len(fake.requests) == 2


def test_denied_is_one_line_without_token(fake, monkeypatch):
    fake.deny("secret/data/codetether/providers/openai")
    client = client_for(fake, monkeypatch)
    with pytest.raises(VaultError) as info:
        client.read_provider("openai")
    assert info.value.one_line() == (
        "Vault denied access to secret/data/codetether/providers/openai (403 permission "
        "denied): check VAULT_TOKEN's policy, or whether it has expired")
    assert ROOT_TOKEN not in str(info.value) + info.value.one_line()


def test_wrong_token_is_denied(fake, monkeypatch):
    client = client_for(fake, monkeypatch, VAULT_TOKEN="hvs.wrong-token-123456")
    with pytest.raises(VaultError, match="403 permission denied") as info:
        client.read_provider("openai")
    assert "hvs.wrong-token-123456" not in info.value.one_line()


def test_unreachable_is_one_line(monkeypatch):
    addr = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("VAULT_ADDR", addr)
    monkeypatch.setenv("VAULT_TOKEN", "hvs.secret-token-abcdef")
    client = VaultClient(VaultSettings.from_env())
    with pytest.raises(VaultError) as info:
        client.read_provider("openai")
    assert info.value.one_line() == (
        f"Vault at {addr} is unreachable (connection refused): check VAULT_ADDR or unset it "
        "to use local credentials")
    # a dead server is remembered: no second connection attempt for another provider
    with pytest.raises(VaultError, match="unreachable"):
        client.read_provider("anthropic")


def test_silent_server_times_out(monkeypatch):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts at the kernel level, never answers
    try:
        monkeypatch.setenv("VAULT_ADDR", f"http://127.0.0.1:{listener.getsockname()[1]}")
        monkeypatch.setenv("VAULT_TOKEN", "t")
        client = VaultClient(VaultSettings.from_env(), timeout=0.3)
        with pytest.raises(VaultError, match=r"unreachable \(no answer within 0.3 s\)"):
            client.read_provider("openai")
    finally:
        listener.close()


def test_malformed_json(fake, monkeypatch):
    fake.next_reply(200, "<html>not vault</html>")
    with pytest.raises(VaultError, match="malformed answer for secret/data/codetether/"
                                         "providers/openai"):
        client_for(fake, monkeypatch).read_provider("openai")


def test_kv_v1_shape_is_malformed(fake, monkeypatch):
    fake.next_reply(200, json.dumps({"data": ["not", "a", "dict"]}))
    with pytest.raises(VaultError, match="malformed"):
        client_for(fake, monkeypatch).read_provider("openai")


def test_other_status_names_path_and_errors(fake, monkeypatch):
    fake.next_reply(500, json.dumps({"errors": ["internal error", "storage down"]}))
    with pytest.raises(VaultError) as info:
        client_for(fake, monkeypatch).read_provider("openai")
    assert info.value.message == ("Vault answered 500 for secret/data/codetether/providers/"
                                  "openai (internal error; storage down)")


def test_sealed_vault(fake, monkeypatch):
    fake.next_reply(503, json.dumps({"errors": ["Vault is sealed"]}))
    with pytest.raises(VaultError) as info:
        client_for(fake, monkeypatch).read_provider("openai")
    assert "(503 Vault is sealed): it may be sealed" in info.value.one_line()


def test_bad_addr(monkeypatch):
    monkeypatch.setenv("VAULT_ADDR", "vault.internal:8200")
    monkeypatch.setenv("VAULT_TOKEN", "t")
    with pytest.raises(VaultError, match="VAULT_ADDR=vault.internal:8200 is not a URL"):
        VaultClient(VaultSettings.from_env()).read_provider("openai")


# -- list and lookup-self ------------------------------------------------------------------------
def test_list_providers_uses_list_and_skips_folders(fake, monkeypatch):
    fake.put("codetether/providers/anthropic", {"api_key": "a"})
    fake.put("codetether/providers/archive/old", {"api_key": "b"})
    assert client_for(fake, monkeypatch).list_providers() == ["anthropic", "openai"]
    req = fake.requests[-1]
    assert (req.method, req.path) == ("LIST", "/v1/secret/metadata/codetether/providers")


def test_list_empty_is_empty(monkeypatch):
    with FakeVault() as vault:
        assert client_for(vault, monkeypatch).list_providers() == []


def test_list_falls_back_to_get_when_list_verb_refused(fake, monkeypatch):
    fake.next_reply(405, json.dumps({"errors": ["method not allowed"]}))
    assert client_for(fake, monkeypatch).list_providers() == ["openai"]
    last = fake.requests[-1]
    assert (last.method, last.query) == ("GET", {"list": ["true"]})


def test_lookup_self_hides_the_token(fake, monkeypatch):
    info = client_for(fake, monkeypatch).lookup_self()
    assert info["policies"] == ["root"]
    assert ROOT_TOKEN not in json.dumps(info)
    assert fake.requests[-1].path == "/v1/auth/token/lookup-self"


# -- the fake itself, checked with raw HTTP and with hvac ----------------------------------------
def _raw(fake: FakeVault, method: str, path: str, token: str | None = ROOT_TOKEN,
         body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(fake.url + path, method=method, data=data,
                                 headers={"X-Vault-Token": token} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_fake_vault_shapes(fake):
    assert _raw(fake, "GET", SECRET_PATH, token=None) == (403, {"errors": ["permission denied"]})
    status, body = _raw(fake, "POST", SECRET_PATH, body={"data": {"api_key": "v2"},
                                                         "options": {}})
    assert status == 200 and body["data"]["version"] == 2
    status, body = _raw(fake, "GET", SECRET_PATH)
    assert body["data"]["data"] == {"api_key": "v2"}
    assert body["data"]["metadata"]["version"] == 2
    status, body = _raw(fake, "GET", SECRET_PATH + "?version=1")
    assert body["data"]["data"]["api_key"] == OPENAI_KEY
    assert _raw(fake, "GET", "/v1/secret/data/nope") == (404, {"errors": []})
    status, body = _raw(fake, "GET", "/v1/secret/metadata/codetether?list=true")
    assert body["data"]["keys"] == ["providers/"]
    assert _raw(fake, "LIST", "/v1/secret/metadata/empty") == (404, {"errors": []})
    assert _raw(fake, "GET", "/v1/nomount/data/x")[0] == 404


def test_hvac_reads_lists_and_writes_the_fake(fake, monkeypatch):
    hvac = pytest.importorskip("hvac")
    hv = hvac.Client(url=fake.url, token=fake.token)
    read = hv.secrets.kv.v2.read_secret_version(
        path="codetether/providers/openai", mount_point="secret", raise_on_deleted_version=True)
    assert read["data"]["data"]["api_key"] == OPENAI_KEY
    assert read["data"]["metadata"]["version"] == 1
    hv.secrets.kv.v2.create_or_update_secret(
        path="codetether/providers/anthropic", secret={"api_key": "sk-ant-from-hvac-123456"},
        mount_point="secret")
    listed = hv.secrets.kv.v2.list_secrets(path="codetether/providers", mount_point="secret")
    assert listed["data"]["keys"] == ["anthropic", "openai"]
    assert hv.auth.token.lookup_self()["data"]["policies"] == ["root"]
    with pytest.raises(hvac.exceptions.InvalidPath):
        hv.secrets.kv.v2.read_secret_version(path="codetether/providers/none",
                                             mount_point="secret", raise_on_deleted_version=True)
    with pytest.raises(hvac.exceptions.Forbidden):
        hvac.Client(url=fake.url, token="hvs.bad").secrets.kv.v2.read_secret_version(
            path="codetether/providers/openai", mount_point="secret",
            raise_on_deleted_version=True)
    # what hvac wrote, our client reads
    assert client_for(fake, monkeypatch).read_provider("anthropic") == {
        "api_key": "sk-ant-from-hvac-123456"}


def test_hvac_with_namespace(monkeypatch):
    hvac = pytest.importorskip("hvac")
    with FakeVault(namespace="team-a") as vault:
        vault.put("codetether/providers/openai", {"api_key": OPENAI_KEY})
        hv = hvac.Client(url=vault.url, token=vault.token, namespace="team-a")
        read = hv.secrets.kv.v2.read_secret_version(
            path="codetether/providers/openai", raise_on_deleted_version=True)
        assert read["data"]["data"]["api_key"] == OPENAI_KEY
        assert vault.requests[-1].header("X-Vault-Namespace") == "team-a"
