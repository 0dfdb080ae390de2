"""Config layering, validation and the `config` command, through the real CLI where it matters."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

import pytest

from codetether.core import config as cfgmod
from codetether.core.errors import ConfigError
from tests.cli import run_cli


def _config_path() -> Path:
    return Path(os.environ["CODETETHER_CONFIG"])


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_defaults_when_no_file():
    cfg = cfgmod.load_config(warn=False)
    assert cfg.get("session.auto_save") is True
    assert cfg.get("ui.theme") == "marketing"
    assert cfg.sources == ["defaults"]


def test_user_file_then_env_override(monkeypatch):
    _write(_config_path(), '[default]\nmodel = "openai/gpt-4o"\n[session]\nauto_save = true\n')
    monkeypatch.setenv("CODETETHER_SESSION_AUTO_SAVE", "0")
    monkeypatch.setenv("CODETETHER_DEFAULT_MODEL", "anthropic/claude-sonnet-4-20250514")
    cfg = cfgmod.load_config(warn=False)
    assert cfg.get("session.auto_save") is False
    assert cfg.get("default.model") == "anthropic/claude-sonnet-4-20250514"
    assert cfg.sources == ["defaults", str(_config_path()), "environment"]


def test_bad_env_value_is_an_error(monkeypatch):
    monkeypatch.setenv("CODETETHER_SESSION_AUTO_SAVE", "sometimes")
    with pytest.raises(ConfigError, match="CODETETHER_SESSION_AUTO_SAVE"):
        cfgmod.load_config(warn=False)


def test_project_file_applies_only_when_trusted(tmp_path):
    project = tmp_path / "proj"
    _write(project / ".codetether" / "config.toml", '[ui]\ntheme = "light"\n')
    cfg = cfgmod.load_config(project, warn=False)
    assert cfg.get("ui.theme") == "marketing"
    assert cfg.ignored_project_file == project / ".codetether" / "config.toml"
    cfgmod.set_trusted(project, True)
    assert cfgmod.load_config(project, warn=False).get("ui.theme") == "light"
    cfgmod.set_trusted(project, False)
    assert cfgmod.load_config(project, warn=False).get("ui.theme") == "marketing"


def test_unknown_key_warns_wrong_type_errors():
    _write(_config_path(), "[ui]\nthemez = 1\n[session]\nauto_save = true\n")
    cfg = cfgmod.load_config(warn=False)
    assert any("unknown key ui.themez" in w for w in cfg.warnings)
    _write(_config_path(), '[session]\nauto_save = "yes"\n')
    with pytest.raises(ConfigError, match="session.auto_save must be true/false"):
        cfgmod.load_config(warn=False)


def test_provider_tables_validated():
    _write(_config_path(), '[providers.local]\nbase_url = "http://x"\ntimeout = "long"\n')
    with pytest.raises(ConfigError, match="providers.local.timeout"):
        cfgmod.load_config(warn=False)


def test_permission_actions_validated():
    _write(_config_path(), '[permissions]\nbash = { "rm -rf*" = "nope" }\n')
    with pytest.raises(ConfigError, match="allow, ask, deny"):
        cfgmod.load_config(warn=False)


# ---- through the CLI -----------------------------------------------------------------------

def test_cli_toml_error_names_file_line_and_column():
    _write(_config_path(), '[ui]\ntheme = "dark"\nauto = yes\n')
    proc = run_cli("config", "--show")
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1
    assert str(_config_path()) in proc.stderr
    assert "line 3, column 8" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_init_then_set_keeps_file_and_show_reflects():
    assert run_cli("config", "--init").returncode == 0
    before = _config_path().read_text()
    assert run_cli("config", "--init").returncode == 1  # never overwrites silently
    proc = run_cli("config", "--set", "default.model=openai/gpt-4o",
                   "--set", "providers.local.base_url=http://127.0.0.1:9/v1",
                   "--set", "session.auto_save=false")
    assert proc.returncode == 0, proc.stderr
    after = _config_path().read_text()
    for line in before.splitlines():
        if not line.startswith(("auto_save", "model")):
            assert line in after  # every other line kept, comments included
    data = tomllib.loads(after)
    assert data["default"]["model"] == "openai/gpt-4o"
    assert data["session"]["auto_save"] is False
    shown = json.loads(run_cli("config", "--show", "--json").stdout)
    assert shown["config"]["providers"]["local"]["base_url"] == "http://127.0.0.1:9/v1"
    assert shown["config"]["session"]["auto_save"] is False


def test_cli_set_rejects_wrong_type_and_leaves_file_untouched():
    _write(_config_path(), "# keep me\n[session]\nauto_save = true\n")
    before = _config_path().read_text()
    proc = run_cli("config", "--set", "session.auto_save=maybe")
    assert proc.returncode == 1
    assert "session.auto_save must be true/false" in proc.stderr
    assert _config_path().read_text() == before


def test_cli_set_unknown_key_warns_but_writes():
    proc = run_cli("config", "--set", "ui.sparkles=true")
    assert proc.returncode == 0
    assert "warning: unknown key ui.sparkles" in proc.stderr
    assert tomllib.loads(_config_path().read_text())["ui"]["sparkles"] is True


def test_cli_set_bad_syntax_is_usage_error():
    proc = run_cli("config", "--set", "novalue")
    assert proc.returncode == 2
    assert "SECTION.KEY=VALUE" in proc.stderr


def test_cli_show_masks_secret_headers():
    _write(_config_path(), '[providers.local]\nbase_url = "http://x"\n'
                           'headers = { Authorization = "Bearer hunter2-secret", X-Team = "a" }\n')
    proc = run_cli("config", "--show")
    assert proc.returncode == 0
    assert "hunter2-secret" not in proc.stdout
    assert "X-Team" in proc.stdout


def test_cli_project_trust_cycle(tmp_path):
    project = tmp_path / "proj"
    _write(project / ".codetether" / "config.toml", '[ui]\ntheme = "light"\n')
    status = json.loads(run_cli("config", "project", "status", "--json", cwd=project).stdout)
    assert status["trusted"] is False
    assert json.loads(run_cli("config", "--show", "--json", cwd=project).stdout)[
        "config"]["ui"]["theme"] == "marketing"
    assert run_cli("config", "project", "trust", cwd=project).returncode == 0
    shown = json.loads(run_cli("config", "--show", "--json", cwd=project).stdout)
    assert shown["config"]["ui"]["theme"] == "light"
    assert run_cli("config", "project", "untrust", str(project)).returncode == 0
    assert json.loads(run_cli("config", "project", "status", str(project), "--json").stdout)[
        "trusted"] is False
