"""The wire formats the scripted LLM speaks, tried in order (first match answers)."""

from __future__ import annotations

FORMATS: list = []

# Each format module appends itself; imports are explicit so the order is visible.
try:  # pragma: no cover - modules are added as providers land
    from tests.scripted_llm.bedrock_format import BedrockFormat

    FORMATS.append(BedrockFormat())
except ImportError:
    pass
try:  # pragma: no cover
    from tests.scripted_llm.anthropic_format import AnthropicFormat

    FORMATS.append(AnthropicFormat())
except ImportError:
    pass
try:  # pragma: no cover
    from tests.scripted_llm.openai_format import OpenAIFormat

    FORMATS.append(OpenAIFormat())
except ImportError:
    pass
