"""The provider table: id → wire format, endpoint, auth style, key env vars, default model.

This is data, not code: adding an OpenAI-compatible vendor is one ``ProviderSpec`` line. A user
can also declare any ``[providers.<id>]`` with a ``base_url`` in config; unknown ids are then
served by the OpenAI Chat Completions wire format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Wire = Literal["openai_chat", "anthropic", "bedrock"]
AuthStyle = Literal["bearer", "x-api-key", "sigv4", "none"]


@dataclass(frozen=True)
class ProviderSpec:
    id: str
    wire: Wire
    base_url: str
    default_model: str
    env_vars: tuple[str, ...] = ()  # where a key may come from, first match wins
    auth: AuthStyle = "bearer"
    headers: dict[str, str] = field(default_factory=dict)
    base_url_env: str | None = None  # e.g. OPENAI_BASE_URL, honoured like the vendor SDKs do
    key_required: bool = True
    # env vars for extra secret fields (bedrock region, aws keys, vertex project...)
    env_extras: dict[str, tuple[str, ...]] = field(default_factory=dict)
    description: str = ""


SPECS: tuple[ProviderSpec, ...] = (
    ProviderSpec(
        "anthropic", "anthropic", "https://api.anthropic.com", "claude-sonnet-4-20250514",
        ("ANTHROPIC_API_KEY",), auth="x-api-key", base_url_env="ANTHROPIC_BASE_URL",
        description="Anthropic Messages API",
    ),
    ProviderSpec(
        "openai", "openai_chat", "https://api.openai.com/v1", "gpt-4o",
        ("OPENAI_API_KEY",), base_url_env="OPENAI_BASE_URL",
        env_extras={"organization": ("OPENAI_ORG_ID", "OPENAI_ORGANIZATION")},
        description="OpenAI Chat Completions",
    ),
    ProviderSpec(
        "openrouter", "openai_chat", "https://openrouter.ai/api/v1", "stepfun/step-3.5-flash:free",
        ("OPENROUTER_API_KEY",),
        headers={"HTTP-Referer": "https://codetether.run", "X-Title": "CodeTether"},
        description="OpenRouter: many vendors behind one key",
    ),
    ProviderSpec(
        "moonshotai", "openai_chat", "https://api.moonshot.ai/v1", "kimi-k2.5",
        ("MOONSHOT_API_KEY",), description="Moonshot AI (Kimi)",
    ),
    ProviderSpec(
        "zai", "openai_chat", "https://api.z.ai/api/paas/v4", "glm-5",
        ("ZAI_API_KEY",), description="Z.AI (GLM)",
    ),
    ProviderSpec(
        "stepfun", "openai_chat", "https://api.stepfun.com/v1", "step-3.5-flash",
        ("STEPFUN_API_KEY",), description="StepFun",
    ),
    ProviderSpec(
        "deepseek", "openai_chat", "https://api.deepseek.com/v1", "deepseek-chat",
        ("DEEPSEEK_API_KEY",), description="DeepSeek",
    ),
    ProviderSpec(
        "xai", "openai_chat", "https://api.x.ai/v1", "grok-4",
        ("XAI_API_KEY",), description="xAI (Grok)",
    ),
    ProviderSpec(
        "groq", "openai_chat", "https://api.groq.com/openai/v1", "llama-3.3-70b-versatile",
        ("GROQ_API_KEY",), description="Groq",
    ),
    ProviderSpec(
        "mistral", "openai_chat", "https://api.mistral.ai/v1", "devstral-medium-latest",
        ("MISTRAL_API_KEY",), description="Mistral",
    ),
    ProviderSpec(
        "google", "openai_chat", "https://generativelanguage.googleapis.com/v1beta/openai",
        "gemini-2.5-pro", ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
        description="Google Gemini (OpenAI-compatible endpoint)",
    ),
    ProviderSpec(
        "github-copilot", "openai_chat", "https://api.githubcopilot.com", "claude-opus-4",
        ("GITHUB_COPILOT_TOKEN", "COPILOT_API_KEY"),
        headers={"Openai-Intent": "conversation-edits", "X-Initiator": "user",
                 "Editor-Version": "codetether/0.1", "Copilot-Integration-Id": "vscode-chat"},
        description="GitHub Copilot",
    ),
    ProviderSpec(
        "local", "openai_chat", "http://127.0.0.1:11434/v1", "llama3.2",
        ("LOCAL_API_KEY",), key_required=False,
        description="Any OpenAI-compatible server: Ollama, llama.cpp, vLLM, LM Studio",
    ),
    ProviderSpec(
        "vertex-anthropic", "anthropic",
        "https://{region}-aiplatform.googleapis.com/v1/projects/{project_id}/locations/{region}"
        "/publishers/anthropic/models", "claude-sonnet-4@20250514",
        ("VERTEX_ACCESS_TOKEN", "GOOGLE_OAUTH_ACCESS_TOKEN"),
        env_extras={"project_id": ("GOOGLE_CLOUD_PROJECT", "ANTHROPIC_VERTEX_PROJECT_ID"),
                    "region": ("CLOUD_ML_REGION", "GOOGLE_CLOUD_REGION")},
        description="Claude on Google Cloud Vertex AI (OAuth access token)",
    ),
    ProviderSpec(
        "minimax", "anthropic", "https://api.minimax.io/anthropic", "MiniMax-M2",
        ("MINIMAX_API_KEY",), auth="x-api-key", description="MiniMax (Anthropic-compatible)",
    ),
    ProviderSpec(
        "bedrock", "bedrock", "https://bedrock-runtime.{region}.amazonaws.com",
        "amazon.nova-lite-v1:0", ("AWS_BEARER_TOKEN_BEDROCK",), auth="sigv4",
        base_url_env="BEDROCK_BASE_URL",
        env_extras={
            "region": ("AWS_REGION", "AWS_DEFAULT_REGION"),
            "aws_access_key_id": ("AWS_ACCESS_KEY_ID",),
            "aws_secret_access_key": ("AWS_SECRET_ACCESS_KEY",),
            "aws_session_token": ("AWS_SESSION_TOKEN",),
        },
        description="Amazon Bedrock Converse (SigV4 or Bedrock API key)",
    ),
)

BY_ID: dict[str, ProviderSpec] = {spec.id: spec for spec in SPECS}

# When no model is configured, the first of these with credentials is used.
AUTO_ORDER = ("anthropic", "openai", "github-copilot", "zai", "deepseek", "minimax",
              "openrouter", "moonshotai", "google", "xai", "groq", "mistral", "stepfun",
              "bedrock", "vertex-anthropic")


def custom_spec(provider_id: str, base_url: str, wire: Wire = "openai_chat") -> ProviderSpec:
    """A provider declared only in config (``[providers.<id>] base_url = …``)."""
    env = provider_id.upper().replace("-", "_") + "_API_KEY"
    return ProviderSpec(provider_id, wire, base_url, "", (env,), key_required=False,
                        auth="x-api-key" if wire == "anthropic" else "bearer",
                        description="custom provider from config")
