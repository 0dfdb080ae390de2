"""The wire formats the scripted LLM speaks, tried in order (first match answers).

Bedrock and Anthropic come first because their paths are the most specific; OpenAI matches any
``/chat/completions`` or ``/models`` request left over.
"""

from __future__ import annotations

from tests.scripted_llm.anthropic_format import AnthropicFormat
from tests.scripted_llm.bedrock_format import BedrockFormat
from tests.scripted_llm.openai_format import OpenAIFormat

FORMATS: list = [BedrockFormat(), AnthropicFormat(), OpenAIFormat()]
