"""`codetether models`: catalog + live provider lists + credential sources, never keys."""

from __future__ import annotations

import json

import pytest

from tests.cli import run_cli
from tests.scripted_llm import ScriptedLLMServer


@pytest.fixture
def llm():
    with ScriptedLLMServer(models=["gpt-4o", "gpt-9-preview"]) as server:
        yield server


def _env(llm) -> dict[str, str]:
    return {"OPENAI_API_KEY": "sk-test-MODELSKEY-0123456789", "OPENAI_BASE_URL": llm.url + "/v1"}


def test_models_json_merges_catalog_and_provider_list(llm):
    proc = run_cli("models", "openai", "--json", env=_env(llm))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    [provider] = data["providers"]
    assert provider["id"] == "openai" and provider["credentials"] == "env"
    assert provider["where"] == "OPENAI_API_KEY"
    by_id = {m["id"]: m for m in data["models"]}
    assert by_id["gpt-4o"]["source"] == "both" and by_id["gpt-4o"]["context_window"] == 128000
    assert by_id["gpt-9-preview"]["source"] == "provider"
    assert by_id["gpt-4o-mini"]["source"] == "catalog"
    assert "MODELSKEY" not in proc.stdout + proc.stderr
    assert llm.requests[-1].path == "/v1/models"


def test_models_list_is_cached_until_refresh(llm):
    assert run_cli("models", "openai", "--json", env=_env(llm)).returncode == 0
    assert run_cli("models", "openai", "--json", env=_env(llm)).returncode == 0
    assert len(llm.requests) == 1  # second run read the cache
    assert run_cli("models", "openai", "--refresh", "--json", env=_env(llm)).returncode == 0
    assert len(llm.requests) == 2


def test_models_unreachable_provider_warns_and_shows_catalog():
    env = {"OPENAI_API_KEY": "sk-test-x-0123456789", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    proc = run_cli("models", "openai", "--json", env=env)
    assert proc.returncode == 0
    assert "warning: could not list models from openai" in proc.stderr
    ids = {m["id"] for m in json.loads(proc.stdout)["models"]}
    assert "gpt-4o" in ids


def test_models_table_lists_every_provider_without_credentials():
    proc = run_cli("models")
    assert proc.returncode == 0, proc.stderr
    for provider in ("anthropic", "openai", "openrouter", "bedrock", "local", "zai"):
        assert provider in proc.stdout
    assert "anthropic/claude-sonnet-4-20250514" in proc.stdout


def test_models_verbose_and_unknown_provider():
    proc = run_cli("models", "anthropic", "--verbose")
    assert "REASONING" in proc.stdout and "anthropic/claude-opus-4-1" in proc.stdout
    bad = run_cli("models", "nosuch")
    assert bad.returncode == 2 and "unknown provider 'nosuch'" in bad.stderr
