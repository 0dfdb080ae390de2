"""Every test runs in its own world: temp config, data and home dirs, no provider keys, no Vault,
no proxies. Nothing a developer has configured on this machine can leak in, and tests can run in
parallel."""

from __future__ import annotations

import os
import re

import pytest

_CLEARED = re.compile(
    r"^(VAULT_.*|CODETETHER_.*|.*_API_KEY|.*_BASE_URL|AWS_.*|GITHUB_COPILOT_TOKEN|COPILOT_API_KEY"
    r"|GOOGLE_.*|VERTEX_.*|ANTHROPIC_.*|OPENAI_.*|CLOUD_ML_REGION|XDG_.*|(?i:https?_proxy|all_proxy))$"
)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    for name in list(os.environ):
        if _CLEARED.match(name):
            monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("CODETETHER_CONFIG", str(tmp_path / "config" / "config.toml"))
    monkeypatch.setenv("CODETETHER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return tmp_path
