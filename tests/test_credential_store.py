"""The local credential store: round trips, 0600 always, refusal of a readable or broken file."""

from __future__ import annotations

import json
import os
import stat

import pytest

from codetether.core.errors import SecretsError
from codetether.secrets.store import CredentialStore
from tests.fake_vault import isolate_env

KEY = "sk-store-test-0123456789abcdef"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    isolate_env(monkeypatch, tmp_path)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_default_path_is_in_the_data_dir(tmp_path):
    assert CredentialStore().path == tmp_path / "data" / "credentials.json"


def test_round_trip_and_modes(tmp_path):
    store = CredentialStore()
    assert store.get("openai") is None and store.providers() == []
    assert not store.path.exists()  # reading creates nothing
    store.set("openai", {"api_key": KEY, "base_url": "https://x.example/v1", "organization": "",
                         "headers": {"X-Org": "acme"}})
    store.set("bedrock", {"aws_access_key_id": "AKIAEXAMPLE", "region": "eu-west-1"})
    assert mode(store.path) == 0o600
    assert mode(store.path.parent) == 0o700
    assert CredentialStore().get("openai") == {"api_key": KEY, "base_url": "https://x.example/v1",
                                               "headers": {"X-Org": "acme"}}
    assert store.providers() == ["bedrock", "openai"]
    on_disk = json.loads(store.path.read_text())
    assert on_disk["version"] == 1 and set(on_disk["providers"]) == {"bedrock", "openai"}


def test_set_replaces_the_record():
    store = CredentialStore()
    store.set("openai", {"api_key": KEY, "base_url": "https://old/v1"})
    store.set("openai", {"api_key": "sk-new-0123456789"})
    assert store.get("openai") == {"api_key": "sk-new-0123456789"}


def test_delete_keeps_0600_and_reports_absence():
    store = CredentialStore()
    store.set("openai", {"api_key": KEY})
    store.set("groq", {"api_key": "gsk-0123456789"})
    assert store.delete("openai") is True
    assert mode(store.path) == 0o600
    assert store.providers() == ["groq"]
    assert store.delete("openai") is False
    assert KEY not in store.path.read_text()


def test_delete_on_missing_file_creates_nothing():
    store = CredentialStore()
    assert store.delete("openai") is False
    assert not store.path.exists()


def test_rewrite_keeps_0600():
    store = CredentialStore()
    store.set("openai", {"api_key": KEY})
    os.chmod(store.path, 0o600)
    store.set("groq", {"api_key": "gsk-0123456789"})
    assert mode(store.path) == 0o600


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
@pytest.mark.parametrize("loose", [0o644, 0o640, 0o604, 0o660])
def test_refuses_store_readable_by_others(loose):
    store = CredentialStore()
    store.set("openai", {"api_key": KEY})
    os.chmod(store.path, loose)
    with pytest.raises(SecretsError) as info:
        store.get("openai")
    line = info.value.one_line()
    assert f"chmod 600 {store.path}" in line
    assert f"mode {loose:04o}" in line
    assert KEY not in line
    with pytest.raises(SecretsError):
        store.set("groq", {"api_key": "gsk-0123456789"})  # no write over it either
    assert mode(store.path) == loose


def test_corrupt_json_is_named_and_never_overwritten():
    store = CredentialStore()
    store.path.parent.mkdir(parents=True)
    store.path.write_text('{"version": 1, "providers": {"openai": {"api_key": "sk-')
    os.chmod(store.path, 0o600)
    before = store.path.read_text()
    with pytest.raises(SecretsError) as info:
        store.get("openai")
    assert str(store.path) in info.value.message
    assert "not valid JSON (line 1, column" in info.value.message
    with pytest.raises(SecretsError):
        store.set("openai", {"api_key": KEY})
    with pytest.raises(SecretsError):
        store.delete("openai")
    assert store.path.read_text() == before


def test_wrong_shape_is_refused():
    store = CredentialStore()
    store.path.parent.mkdir(parents=True)
    store.path.write_text(json.dumps({"openai": {"api_key": KEY}}))  # no "providers" level
    os.chmod(store.path, 0o600)
    with pytest.raises(SecretsError, match="expected shape"):
        store.set("groq", {"api_key": "gsk"})
    assert json.loads(store.path.read_text()) == {"openai": {"api_key": KEY}}


def test_bad_fields_are_refused():
    store = CredentialStore()
    with pytest.raises(SecretsError, match="headers for openai"):
        store.set("openai", {"api_key": KEY, "headers": "X-Org: acme"})
    with pytest.raises(SecretsError, match="must be a string"):
        store.set("openai", {"api_key": 123})
    with pytest.raises(SecretsError, match="not a provider id"):
        store.set("openai/gpt-4o", {"api_key": KEY})
    with pytest.raises(SecretsError, match="nothing to save"):
        store.set("openai", {"api_key": ""})
    assert not store.path.exists()


def test_explicit_path(tmp_path):
    store = CredentialStore(tmp_path / "elsewhere" / "creds.json")
    store.set("openai", {"api_key": KEY})
    assert mode(tmp_path / "elsewhere" / "creds.json") == 0o600


def test_concurrent_logins_from_threads_lose_nothing(tmp_path):
    import threading

    from codetether.secrets.store import CredentialStore

    path = tmp_path / "store" / "credentials.json"
    names = [f"prov{i}" for i in range(12)]
    threads = [threading.Thread(target=lambda n=n: CredentialStore(path).set(
        n, {"api_key": f"key-{n}-0123456789"})) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert CredentialStore(path).providers() == sorted(names)
