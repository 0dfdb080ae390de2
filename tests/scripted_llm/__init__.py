"""A real HTTP server that plays an LLM: it replays scripted turns in each vendor's exact
streaming wire format and records every request, so provider and end-to-end tests can assert
on what was sent as well as on what came back."""

from tests.scripted_llm.script import ToolCall, Turn
from tests.scripted_llm.server import RecordedRequest, ScriptedLLMServer

__all__ = ["ScriptedLLMServer", "RecordedRequest", "Turn", "ToolCall"]
