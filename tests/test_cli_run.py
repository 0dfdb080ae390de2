"""`codetether run` end to end: the real CLI process against the scripted LLM server."""

from __future__ import annotations

import json

import pytest

from tests.cli import run_cli
from tests.scripted_llm import ScriptedLLMServer, Turn


@pytest.fixture
def llm():
    with ScriptedLLMServer() as server:
        yield server


def _openai_env(llm) -> dict[str, str]:
    return {"OPENAI_API_KEY": "sk-test-RUNKEY-0123456789", "OPENAI_BASE_URL": llm.url + "/v1"}


def test_run_streams_answer_to_stdout(llm):
    llm.enqueue(Turn(text="Hello from the scripted model."))
    proc = run_cli("run", "-m", "openai/gpt-4o", "say hello", env=_openai_env(llm))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Hello from the scripted model.\n"
    request = llm.requests[-1]
    assert request.path == "/v1/chat/completions"
    assert request.header("authorization") == "Bearer sk-test-RUNKEY-0123456789"
    assert request.body["model"] == "gpt-4o"
    assert request.body["messages"][-1] == {"role": "user", "content": "say hello"}


def test_run_picks_provider_from_credentials_and_default_model(llm):
    llm.enqueue(Turn(text="ok"))
    proc = run_cli("run", "hi", env=_openai_env(llm))
    assert proc.returncode == 0, proc.stderr
    assert llm.requests[-1].body["model"] == "gpt-4o"  # openai's default model


def test_bare_model_uses_default_provider(llm):
    llm.enqueue(Turn(text="ok"))
    env = _openai_env(llm) | {"CODETETHER_DEFAULT_PROVIDER": "openai"}
    proc = run_cli("run", "-m", "my-finetune", "hi", env=env)
    assert proc.returncode == 0, proc.stderr
    assert llm.requests[-1].body["model"] == "my-finetune"


def test_run_jsonl_events(llm):
    llm.enqueue(Turn(text="abc def", input_tokens=20, output_tokens=3, cache_read_tokens=5))
    proc = run_cli("run", "--format", "jsonl", "-m", "openai/gpt-4o", "x", env=_openai_env(llm))
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "run.started" and kinds[-1] == "run.completed"
    assert "".join(e["text"] for e in events if e["type"] == "text.delta") == "abc def"
    done = events[-1]
    assert done["response"] == "abc def"
    assert done["usage"]["input_tokens"] == 20 and done["usage"]["cache_read_tokens"] == 5


def test_run_json_single_object(llm):
    llm.enqueue(Turn(text="answer"))
    proc = run_cli("run", "--format", "json", "-m", "openai/gpt-4o", "x", env=_openai_env(llm))
    out = json.loads(proc.stdout)
    assert out["ok"] is True and out["response"] == "answer" and out["model"] == "openai/gpt-4o"


def test_prompt_from_stdin(llm):
    llm.enqueue(Turn(text="ok"))
    proc = run_cli("run", "-m", "openai/gpt-4o", "-", input="from stdin\n", env=_openai_env(llm))
    assert proc.returncode == 0, proc.stderr
    assert llm.requests[-1].body["messages"][-1]["content"] == "from stdin\n"


def test_local_provider_needs_no_key(llm):
    llm.enqueue(Turn(text="local answer"))
    env = {"CODETETHER_DEFAULT_MODEL": "local/qwen2.5-coder"}
    proc = run_cli("config", "--set", f"providers.local.base_url={llm.url}/v1")
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("run", "hi", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "local answer\n"
    assert "authorization" not in llm.requests[-1].headers


def test_rejected_key_is_one_line_without_the_key(llm):
    echoed = "Incorrect API key provided: sk-test-RUNKEY-0123456789"
    llm.enqueue(Turn(status=401, error_message=echoed))
    proc = run_cli("run", "-m", "openai/gpt-4o", "x", env=_openai_env(llm))
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1
    assert "key rejected by openai" in proc.stderr
    assert "codetether auth login openai" in proc.stderr
    assert "RUNKEY" not in proc.stderr + proc.stdout


def test_stream_cut_keeps_partial_answer_and_fails(llm):
    llm.enqueue(Turn(text="partial answer that never ends", text_chunk=4, cut_after=4))
    proc = run_cli("run", "-m", "openai/gpt-4o", "x", env=_openai_env(llm))
    assert proc.returncode == 1
    assert proc.stdout.startswith("part")
    assert "broke off" in proc.stderr and "Traceback" not in proc.stderr


def test_unknown_provider_in_default_provider(llm):
    proc = run_cli("run", "x", env={"CODETETHER_DEFAULT_PROVIDER": "nope"})
    assert proc.returncode == 1
    assert "unknown provider 'nope'" in proc.stderr


def test_named_provider_without_key_says_how_to_add_it():
    proc = run_cli("run", "-m", "anthropic/claude-sonnet-4-20250514", "x")
    assert proc.returncode == 1
    assert "no key for anthropic" in proc.stderr
    assert "ANTHROPIC_API_KEY" in proc.stderr and "codetether auth login anthropic" in proc.stderr


def test_anthropic_via_env_base_url(llm):
    llm.enqueue(Turn(text="claude says hi"))
    env = {"ANTHROPIC_API_KEY": "sk-ant-test-000000000000", "ANTHROPIC_BASE_URL": llm.url}
    proc = run_cli("run", "-m", "anthropic/claude-sonnet-4-20250514", "hi", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "claude says hi\n"
    assert llm.requests[-1].path == "/v1/messages"
    assert llm.requests[-1].header("x-api-key") == "sk-ant-test-000000000000"


def test_config_base_url_overrides_env(llm):
    llm.enqueue(Turn(text="via config"))
    run_cli("config", "--set", f"providers.openai.base_url={llm.url}/v1")
    env = {"OPENAI_API_KEY": "sk-test-x-0123456789", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    proc = run_cli("run", "-m", "openai/gpt-4o", "hi", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "via config\n"


def test_run_takes_key_and_base_url_from_vault_over_env(llm):
    from tests.fake_vault import ROOT_TOKEN, FakeVault

    llm.enqueue(Turn(text="from vault"))
    with FakeVault() as vault:
        vault.put("codetether/providers/openai",
                  {"api_key": "sk-vault-KEY-0123456789", "base_url": llm.url + "/v1"})
        env = {"VAULT_ADDR": vault.url, "VAULT_TOKEN": ROOT_TOKEN,
               "OPENAI_API_KEY": "sk-env-IGNORED-0123456789"}
        proc = run_cli("run", "-m", "openai/gpt-4o", "hi", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "from vault\n"
    assert llm.requests[-1].header("authorization") == "Bearer sk-vault-KEY-0123456789"


def test_run_with_vault_down_warns_once_and_uses_env(llm):
    llm.enqueue(Turn(text="env answer"))
    env = _openai_env(llm) | {"VAULT_ADDR": "http://127.0.0.1:9", "VAULT_TOKEN": "hvs.x-00000000"}
    proc = run_cli("run", "-m", "openai/gpt-4o", "hi", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "env answer\n"
    warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and "unreachable" in warnings[0]
    assert "hvs.x-00000000" not in proc.stderr


def test_run_bedrock_with_sigv4_from_env(llm):
    llm.enqueue(Turn(text="nova says hi"))
    env = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE0000000",
           "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI-secret",
           "AWS_REGION": "eu-west-1", "BEDROCK_BASE_URL": llm.url}
    proc = run_cli("run", "-m", "bedrock/amazon.nova-lite-v1:0", "hi", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "nova says hi\n"
    request = llm.requests[-1]
    assert request.path == "/model/amazon.nova-lite-v1%3A0/converse-stream"
    auth = request.header("authorization")
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE0000000/")
    assert "/eu-west-1/bedrock/aws4_request" in auth


def test_run_bedrock_without_credentials_names_what_to_set():
    proc = run_cli("run", "-m", "bedrock/amazon.nova-lite-v1:0", "hi", env={"AWS_REGION": "x"})
    assert proc.returncode == 1
    assert "no key for bedrock" in proc.stderr and "Traceback" not in proc.stderr
    assert "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in proc.stderr
