"""`codetether auth login|logout|list`: keys read from stdin only, 0600 store, no key ever printed.

Driven both through ``auth_cmd.run`` with an ``argparse.Namespace`` and as a real
``python -m codetether`` subprocess.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from codetether.cli import auth_cmd
from codetether.core.errors import CodetetherError, SecretsError, UsageError
from codetether.providers.registry import SPECS
from codetether.secrets.store import CredentialStore
from tests.fake_vault import FakeVault, isolate_env

KEY = "sk-login-secret-0123456789abcdef"
ENV_KEY = "sk-ant-env-secret-0123456789"
VAULT_KEY = "sk-vault-secret-0123456789"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    isolate_env(monkeypatch, tmp_path)


def ns(action: str, provider: str | None = None, base_url: str | None = None,
       json_out: bool = False) -> argparse.Namespace:
    return argparse.Namespace(command="auth", auth_action=action, provider=provider,
                              base_url=base_url, json=json_out)


class FakeStdin(io.StringIO):
    def __init__(self, text: str, tty: bool = False) -> None:
        super().__init__(text)
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def login(monkeypatch, provider: str, text: str, base_url: str | None = None) -> int:
    monkeypatch.setattr(sys, "stdin", FakeStdin(text))
    return auth_cmd.run(ns("login", provider, base_url))


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# -- login ---------------------------------------------------------------------------------------
def test_login_reads_one_line_from_stdin(monkeypatch, capsys):
    assert login(monkeypatch, "openai", KEY + "\nsecond line ignored\n",
                 base_url="https://gw.example/v1") == 0
    store = CredentialStore()
    assert store.get("openai") == {"api_key": KEY, "base_url": "https://gw.example/v1"}
    assert mode(store.path) == 0o600
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"saved openai key to {store.path} (mode 600)\n"


def test_login_from_a_terminal_uses_getpass(monkeypatch, capsys):
    prompts = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return KEY

    import getpass

    monkeypatch.setattr(getpass, "getpass", fake_getpass)
    monkeypatch.setattr(sys, "stdin", FakeStdin("", tty=True))
    assert auth_cmd.run(ns("login", "anthropic")) == 0
    assert prompts == ["anthropic API key (input hidden): "]
    assert CredentialStore().get("anthropic") == {"api_key": KEY}
    assert KEY not in "".join(capsys.readouterr())


@pytest.mark.parametrize("text", ["", "\n", "   \n"])
def test_empty_key_is_an_error_and_writes_nothing(monkeypatch, text):
    with pytest.raises(SecretsError) as info:
        login(monkeypatch, "openai", text)
    assert info.value.exit_code == 1
    assert "nothing was saved" in info.value.message
    assert not CredentialStore().path.exists()


def test_key_with_spaces_is_refused_without_echo(monkeypatch):
    with pytest.raises(SecretsError) as info:
        login(monkeypatch, "openai", "sk-abc def-0123456789\n")
    assert "sk-abc" not in info.value.one_line()
    assert not CredentialStore().path.exists()


def test_relogin_keeps_other_fields(monkeypatch):
    login(monkeypatch, "openai", KEY, base_url="https://gw.example/v1")
    login(monkeypatch, "openai", "sk-rotated-0123456789")
    assert CredentialStore().get("openai") == {"api_key": "sk-rotated-0123456789",
                                               "base_url": "https://gw.example/v1"}


def test_login_bad_base_url_and_bad_provider(monkeypatch):
    with pytest.raises(UsageError, match="not an http"):
        login(monkeypatch, "openai", KEY, base_url="gw.example")
    with pytest.raises(UsageError, match="not a provider id"):
        login(monkeypatch, "openai/gpt-4o", KEY)
    assert not CredentialStore().path.exists()


def test_login_unknown_provider_suggests_a_known_one(monkeypatch, capsys):
    assert login(monkeypatch, "opnai", KEY) == 0
    err = capsys.readouterr().err
    assert "note: opnai is not a built-in provider (did you mean openai?)" in err


def test_login_notes_vault_precedence(monkeypatch, capsys):
    with FakeVault() as vault:
        vault.put("codetether/providers/openai", {"api_key": VAULT_KEY})
        monkeypatch.setenv("VAULT_ADDR", vault.url)
        monkeypatch.setenv("VAULT_TOKEN", vault.token)
        login(monkeypatch, "openai", KEY)
    err = capsys.readouterr().err
    assert "note: Vault has openai at secret/codetether/providers/openai" in err
    assert VAULT_KEY not in err and KEY not in err


# -- logout --------------------------------------------------------------------------------------
def test_logout_removes_and_keeps_0600(monkeypatch, capsys):
    login(monkeypatch, "openai", KEY)
    login(monkeypatch, "groq", "gsk-0123456789abcdef")
    capsys.readouterr()
    assert auth_cmd.run(ns("logout", "openai")) == 0
    store = CredentialStore()
    assert store.providers() == ["groq"]
    assert mode(store.path) == 0o600
    assert KEY not in store.path.read_text()
    assert capsys.readouterr().err == f"removed openai from {store.path}\n"


def test_logout_says_what_it_cannot_remove(monkeypatch, capsys):
    login(monkeypatch, "anthropic", KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", ENV_KEY)
    capsys.readouterr()
    assert auth_cmd.run(ns("logout", "anthropic")) == 0
    err = capsys.readouterr().err
    assert "note: anthropic still has credentials in env ANTHROPIC_API_KEY" in err
    assert "logout cannot remove" in err
    with pytest.raises(SecretsError) as info:  # nothing left in the store
        auth_cmd.run(ns("logout", "anthropic"))
    assert "it comes from env ANTHROPIC_API_KEY" in info.value.one_line()
    assert ENV_KEY not in info.value.one_line() + err


def test_logout_mentions_vault(monkeypatch, capsys):
    with FakeVault() as vault:
        vault.put("codetether/providers/openai", {"api_key": VAULT_KEY})
        monkeypatch.setenv("VAULT_ADDR", vault.url)
        monkeypatch.setenv("VAULT_TOKEN", vault.token)
        with pytest.raises(SecretsError) as info:
            auth_cmd.run(ns("logout", "openai"))
    assert "Vault at secret/codetether/providers/openai" in info.value.one_line()


def test_logout_of_unknown_is_an_error(capsys):
    with pytest.raises(SecretsError, match="not in the credential store"):
        auth_cmd.run(ns("logout", "openai"))


# -- list ----------------------------------------------------------------------------------------
def test_list_table_shows_sources_never_keys(monkeypatch, capsys):
    login(monkeypatch, "openai", KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", ENV_KEY)
    login(monkeypatch, "my-gateway", "sk-gw-0123456789abcdef")
    capsys.readouterr()
    assert auth_cmd.run(ns("list")) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split() == ["PROVIDER", "SOURCE", "WHERE"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert rows["openai"] == ["store", str(CredentialStore().path)]
    assert rows["anthropic"] == ["env", "ANTHROPIC_API_KEY"]
    assert rows["groq"] == ["none", "-"]
    assert rows["my-gateway"][0] == "store"
    assert {spec.id for spec in SPECS} <= set(rows)
    for key in (KEY, ENV_KEY, "sk-gw-0123456789abcdef"):
        assert key not in out + err


def test_list_json_with_vault(monkeypatch, capsys):
    with FakeVault(policies=("default", "codetether")) as vault:
        vault.put("codetether/providers/openai", {"api_key": VAULT_KEY})
        vault.put("codetether/providers/bedrock", {"aws_access_key_id": "AKIAVAULT0123456789",
                                                   "aws_secret_access_key": "vault-aws-secret",
                                                   "region": "eu-west-1"})
        vault.put("codetether/providers/team-llm", {"api_key": "sk-team-0123456789"})
        monkeypatch.setenv("VAULT_ADDR", vault.url)
        monkeypatch.setenv("VAULT_TOKEN", vault.token)
        assert auth_cmd.run(ns("list", json_out=True)) == 0
    out, err = capsys.readouterr()
    data = json.loads(out)
    rows = {row["provider"]: row for row in data["providers"]}
    assert rows["openai"]["source"] == "vault"
    assert rows["openai"]["where"] == "secret/codetether/providers/openai"
    assert rows["bedrock"]["fields"] == ["aws_access_key_id", "aws_secret_access_key", "region"]
    assert rows["team-llm"]["source"] == "vault"
    assert rows["anthropic"] == {"provider": "anthropic", "source": "none", "where": "",
                                 "fields": []}
    assert data["vault"]["policies"] == ["default", "codetether"]
    assert data["vault"]["token_source"] == "VAULT_TOKEN"
    assert data["store"] == str(CredentialStore().path)
    for secret in (VAULT_KEY, "vault-aws-secret", "sk-team-0123456789", vault.token):
        assert secret not in out + err


def test_list_with_vault_down_warns_once(monkeypatch, capsys):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("VAULT_ADDR", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("VAULT_TOKEN", "hvs.never-shown-0123456789")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    assert auth_cmd.run(ns("list")) == 0
    out, err = capsys.readouterr()
    assert err.count("warning:") == 1 and "is unreachable (connection refused)" in err
    assert "openai" in out and "OPENAI_API_KEY" in out
    assert "hvs.never-shown" not in out + err and KEY not in out + err


def test_list_refuses_a_readable_store(monkeypatch):
    login(monkeypatch, "openai", KEY)
    os.chmod(CredentialStore().path, 0o644)
    with pytest.raises(SecretsError) as info:
        auth_cmd.run(ns("list"))
    assert f"run `chmod 600 {CredentialStore().path}`" in info.value.one_line()


# -- the real command ----------------------------------------------------------------------------
def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "codetether", *args], input=stdin,
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=60)


def test_cli_login_list_logout(monkeypatch):
    monkeypatch.setenv("MOONSHOT_API_KEY", ENV_KEY)
    done = cli("auth", "login", "openai", stdin=KEY + "\n")
    assert done.returncode == 0, done.stderr
    path = CredentialStore().path
    assert done.stderr == f"saved openai key to {path} (mode 600)\n"
    assert mode(path) == 0o600

    listed = cli("auth", "list")
    assert listed.returncode == 0, listed.stderr
    assert "openai" in listed.stdout and str(path) in listed.stdout
    assert "MOONSHOT_API_KEY" in listed.stdout
    listed_json = cli("auth", "list", "--json")
    assert json.loads(listed_json.stdout)["providers"][1]["source"] == "store"
    for run in (done, listed, listed_json):
        assert KEY not in run.stdout + run.stderr
        assert ENV_KEY not in run.stdout + run.stderr

    out = cli("auth", "logout", "openai")
    assert out.returncode == 0 and CredentialStore().get("openai") is None
    assert mode(path) == 0o600
    again = cli("auth", "logout", "openai")
    assert again.returncode == 1
    assert again.stderr.startswith("error: openai is not in the credential store")
    assert "Traceback" not in again.stderr


def test_cli_login_with_empty_stdin_fails_cleanly():
    done = cli("auth", "login", "openai", stdin="")
    assert done.returncode == 1
    assert done.stderr.startswith("error: no key given for openai; nothing was saved")
    assert not CredentialStore().path.exists()


def test_cli_key_is_never_taken_from_argv():
    done = cli("auth", "login", "openai", KEY)
    assert done.returncode == 2  # argparse: unrecognized argument
    assert not CredentialStore().path.exists()


def test_errors_are_codetether_errors():
    assert issubclass(SecretsError, CodetetherError)
