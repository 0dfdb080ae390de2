"""Where a provider's key is found: Vault, then the store, then env; failures of Vault warn once
and fall through; nothing is found -> None and a hint that says how to fix it."""

from __future__ import annotations

import socket

import pytest

from codetether.core.errors import SecretsError
from codetether.providers.registry import BY_ID
from codetether.secrets import lookup as lk
from codetether.secrets.store import CredentialStore
from tests.fake_vault import FakeVault, isolate_env

VAULT_KEY = "sk-from-vault-0123456789"
STORE_KEY = "sk-from-store-0123456789"
ENV_KEY = "sk-from-env-0123456789"
OPENAI = BY_ID["openai"]
BEDROCK = BY_ID["bedrock"]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    isolate_env(monkeypatch, tmp_path)


@pytest.fixture
def fake(monkeypatch):
    with FakeVault() as vault:
        monkeypatch.setenv("VAULT_ADDR", vault.url)
        monkeypatch.setenv("VAULT_TOKEN", vault.token)
        yield vault


def openai(**kwargs):
    return lk.lookup("openai", OPENAI.env_vars, OPENAI.env_extras, **kwargs)


def bedrock(**kwargs):
    return lk.lookup("bedrock", BEDROCK.env_vars, BEDROCK.env_extras, **kwargs)


def all_three(fake, monkeypatch):
    fake.put("codetether/providers/openai", {"api_key": VAULT_KEY})
    CredentialStore().set("openai", {"api_key": STORE_KEY})
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)


# -- order ---------------------------------------------------------------------------------------
def test_vault_beats_store_beats_env(fake, monkeypatch):
    all_three(fake, monkeypatch)
    creds = openai()
    assert (creds.source, creds.api_key, creds.where) == (
        "vault", VAULT_KEY, "secret/codetether/providers/openai")
    monkeypatch.delenv("VAULT_ADDR")
    creds = openai()
    assert (creds.source, creds.api_key) == ("store", STORE_KEY)
    assert creds.where == str(CredentialStore().path)
    CredentialStore().delete("openai")
    creds = openai()
    assert (creds.source, creds.api_key, creds.where) == ("env", ENV_KEY, "OPENAI_API_KEY")


def test_store_is_not_read_when_vault_has_the_key(fake, monkeypatch):
    fake.put("codetether/providers/openai", {"api_key": VAULT_KEY})
    store = CredentialStore()
    store.path.parent.mkdir(parents=True)
    store.path.write_text("{broken")
    store.path.chmod(0o600)
    assert openai().source == "vault"
    monkeypatch.delenv("VAULT_ADDR")
    with pytest.raises(SecretsError, match="not valid JSON"):
        openai()


def test_env_fallback_can_be_disabled(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    assert openai().api_key == ENV_KEY
    monkeypatch.setenv("CODETETHER_DISABLE_ENV_FALLBACK", "1")
    assert openai() is None
    CredentialStore().set("openai", {"api_key": STORE_KEY})
    assert openai().source == "store"


def test_first_set_env_var_wins(monkeypatch):
    google = BY_ID["google"]
    monkeypatch.setenv("GOOGLE_API_KEY", "AIza-second")
    assert lk.lookup("google", google.env_vars).where == "GOOGLE_API_KEY"
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-first")
    creds = lk.lookup("google", google.env_vars)
    assert (creds.api_key, creds.where) == ("AIza-first", "GEMINI_API_KEY")


def test_nothing_anywhere_is_none(fake):
    assert openai() is None
    assert lk.status("openai", OPENAI.env_vars).source == "none"


def test_missing_vault_path_falls_through_quietly(fake, monkeypatch, capsys):
    CredentialStore().set("openai", {"api_key": STORE_KEY})
    assert openai().source == "store"
    assert fake.requests[-1].path == "/v1/secret/data/codetether/providers/openai"
    assert capsys.readouterr().err == ""


def test_one_vault_request_per_provider_per_process(fake, monkeypatch):
    fake.put("codetether/providers/openai", {"api_key": VAULT_KEY})
    for _ in range(3):
        assert openai().api_key == VAULT_KEY
        lk.status("openai", OPENAI.env_vars)
    assert len(fake.requests) == 1


# -- fields --------------------------------------------------------------------------------------
def test_vault_fields_and_headers_json_string(fake):
    fake.put("codetether/providers/openai", {
        "api_key": VAULT_KEY, "base_url": "https://gw.example/v1", "organization": "org-1",
        "headers": '{"X-Team": "ai", "X-Num": 7}', "project": "p1"})
    creds = openai()
    assert creds.base_url == "https://gw.example/v1"
    assert creds.organization == "org-1"
    assert creds.headers == {"X-Team": "ai", "X-Num": "7"}
    assert creds.extras == {"project": "p1"}


def test_vault_headers_as_object(fake):
    fake.put("codetether/providers/openai", {"api_key": VAULT_KEY, "headers": {"X-Team": "ai"}})
    assert openai().headers == {"X-Team": "ai"}


def test_vault_headers_not_an_object_is_an_error(fake):
    fake.put("codetether/providers/openai", {"api_key": VAULT_KEY, "headers": "X-Team: ai"})
    with pytest.raises(SecretsError, match="headers field of vault secret/codetether/"
                                           "providers/openai is not a JSON object"):
        openai()


def test_bedrock_extras_from_vault(fake):
    fake.put("codetether/providers/bedrock", {
        "region": "eu-central-1", "aws_access_key_id": "AKIAVAULTEXAMPLE1234",
        "aws_secret_access_key": "vault-secret-access-key"})
    creds = bedrock()
    assert creds.source == "vault" and creds.api_key is None
    assert creds.extras == {"region": "eu-central-1", "aws_access_key_id": "AKIAVAULTEXAMPLE1234",
                            "aws_secret_access_key": "vault-secret-access-key"}
    assert "vault-secret-access-key" in creds.secret_values()


def test_bedrock_extras_from_env(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    assert bedrock() is None  # a region alone is a setting, not a credential
    assert lk.status("bedrock", BEDROCK.env_vars, BEDROCK.env_extras).source == "none"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAENVEXAMPLE12345")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    creds = bedrock()
    assert creds.source == "env" and creds.api_key is None
    assert creds.extras == {"region": "us-west-2", "aws_access_key_id": "AKIAENVEXAMPLE12345",
                            "aws_secret_access_key": "env-secret"}
    assert creds.where == "AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY"


def test_env_organization_is_a_field_not_an_extra(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    monkeypatch.setenv("OPENAI_ORG_ID", "org-env")
    creds = openai()
    assert creds.organization == "org-env" and creds.extras == {}


def test_settings_only_vault_record_overlays_the_key_source(fake, monkeypatch):
    fake.put("codetether/providers/openai", {"base_url": "https://gw.example/v1"})
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    creds = openai()
    assert (creds.source, creds.api_key, creds.base_url) == (
        "env", ENV_KEY, "https://gw.example/v1")
    monkeypatch.delenv("OPENAI_API_KEY")
    fake.put("codetether/providers/local", {"base_url": "http://127.0.0.1:8080/v1"})
    assert lk.lookup("local", ("LOCAL_API_KEY",)) is None  # settings alone are not a key...
    creds = lk.lookup("local", ("LOCAL_API_KEY",), require_key=False)  # ...unless none is needed
    assert (creds.source, creds.base_url) == ("vault", "http://127.0.0.1:8080/v1")


# -- Vault failing -------------------------------------------------------------------------------
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_vault_down_warns_once_and_falls_back(monkeypatch, capsys):
    addr = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("VAULT_ADDR", addr)
    monkeypatch.setenv("VAULT_TOKEN", "hvs.token-never-printed")
    CredentialStore().set("openai", {"api_key": STORE_KEY})
    monkeypatch.setenv("ANTHROPIC_API_KEY", ENV_KEY)
    assert openai().source == "store"
    assert lk.lookup("anthropic", ("ANTHROPIC_API_KEY",)).source == "env"
    err = capsys.readouterr().err
    assert err == (f"warning: Vault at {addr} is unreachable (connection refused): check "
                   "VAULT_ADDR or unset it to use local credentials; using local credentials\n")
    assert "hvs.token-never-printed" not in err


def test_vault_403_warns_and_falls_back(fake, monkeypatch, capsys):
    fake.put("codetether/providers/openai", {"api_key": VAULT_KEY})
    fake.deny("secret/data/codetether/providers")
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    creds = openai()
    assert (creds.source, creds.api_key) == ("env", ENV_KEY)
    err = capsys.readouterr().err
    assert err.startswith("warning: Vault denied access to secret/data/codetether/providers/"
                          "openai (403 permission denied)")
    assert err.endswith("; using local credentials\n") and err.count("\n") == 1
    assert fake.token not in err and VAULT_KEY not in err


def test_vault_without_token_warns_and_falls_back(fake, monkeypatch, capsys):
    monkeypatch.delenv("VAULT_TOKEN")
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    assert openai().source == "env"
    assert "VAULT_ADDR is set but no token found" in capsys.readouterr().err
    assert fake.requests == []


def test_explicit_vault_none_skips_vault(fake, monkeypatch):
    fake.put("codetether/providers/openai", {"api_key": VAULT_KEY})
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    assert openai(vault=None).source == "env"
    assert fake.requests == []


# -- status, sources, hints ----------------------------------------------------------------------
def test_status_and_all_sources_never_carry_keys(fake, monkeypatch):
    all_three(fake, monkeypatch)
    info = lk.status("openai", OPENAI.env_vars, OPENAI.env_extras)
    assert info.as_dict() == {"provider": "openai", "source": "vault",
                              "where": "secret/codetether/providers/openai",
                              "fields": ["api_key"]}
    sources = lk.all_sources("openai", OPENAI.env_vars, OPENAI.env_extras)
    assert [s.source for s in sources] == ["vault", "store", "env"]
    text = repr(sources) + repr(info)
    for key in (VAULT_KEY, STORE_KEY, ENV_KEY):
        assert key not in text


def test_credentials_repr_hides_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    assert ENV_KEY not in repr(openai())


def test_discover_providers(fake):
    fake.put("codetether/providers/custom-gw", {"api_key": "x"})
    CredentialStore().set("my-llm", {"api_key": "y"})
    assert lk.discover_providers() == ["custom-gw", "my-llm"]


def test_missing_hint(monkeypatch):
    assert lk.missing_hint("openai", ("OPENAI_API_KEY",)) == (
        "run `codetether auth login openai`, put api_key in Vault at "
        "secret/codetether/providers/openai, or set OPENAI_API_KEY")
    monkeypatch.setenv("VAULT_MOUNT", "kv")
    monkeypatch.setenv("VAULT_SECRETS_PATH", "ai")
    monkeypatch.setenv("CODETETHER_DISABLE_ENV_FALLBACK", "1")
    assert lk.missing_hint("openai", ("OPENAI_API_KEY",)) == (
        "run `codetether auth login openai`, or put api_key in Vault at kv/ai/openai")
    err = lk.missing_error("openai", ("OPENAI_API_KEY",))
    assert err.one_line().startswith("no credentials for openai: run `codetether auth login")
