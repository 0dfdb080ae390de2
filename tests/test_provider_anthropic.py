"""The Anthropic Messages provider against the scripted LLM server speaking Anthropic's SSE.

Each test drives ``AnthropicProvider`` over real loopback HTTP and checks both what came back
(events, ``collect()``) and what was sent (the recorded path, headers and JSON body).
"""

from __future__ import annotations

import threading

import pytest

from codetether.core.cancel import CancelToken
from codetether.core.errors import (
    CancelledError,
    ContextLengthError,
    ProviderAuthError,
    ProviderRequestError,
    ProviderStreamError,
    ProviderUnavailableError,
)
from codetether.providers.anthropic import AnthropicProvider
from codetether.providers.base import (
    ChatRequest,
    Endpoint,
    ImagePart,
    Message,
    TextDelta,
    TextPart,
    ThinkingPart,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallPart,
    ToolCallStart,
    ToolResultPart,
    ToolSpec,
    Usage,
    collect,
)
from codetether.providers.http import RetryPolicy
from tests.scripted_llm import ScriptedLLMServer, ToolCall, Turn
from tests.scripted_llm.anthropic_format import AnthropicFormat

KEY = "sk-ant-api03-test-SECRETKEY0123456789"
MODEL = "claude-sonnet-4-20250514"
FAST = RetryPolicy(max_attempts=1, connect_timeout=5, read_timeout=10)


@pytest.fixture
def server():
    llm = ScriptedLLMServer(models=("claude-opus-4-1", "claude-sonnet-4-20250514"))
    llm._formats.insert(0, AnthropicFormat())
    with llm:
        yield llm


def provider(server, provider_id="anthropic", base_url=None, key=KEY, policy=FAST,
             **extras) -> AnthropicProvider:
    endpoint = Endpoint(provider_id, base_url or server.url, api_key=key, max_retries=0,
                        extras=dict(extras))
    return AnthropicProvider(endpoint, policy)


def ask(text="hi", **kwargs) -> ChatRequest:
    return ChatRequest(model=kwargs.pop("model", MODEL), messages=[Message.user(text)], **kwargs)


# -- what comes back ---------------------------------------------------------------------------


def test_text_streams_as_deltas(server):
    server.enqueue(Turn(text="Hello, world!", text_chunk=4))
    events = list(provider(server).stream(ask()))
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert deltas == ["Hell", "o, w", "orld", "!"]
    assert events[-1].type == "done" and events[-1].stop_reason == "end_turn"


def test_thinking_keeps_its_signature(server):
    server.enqueue(Turn(thinking="first I consider the question", text="42",
                        thinking_signature="EqQBCkYIARgCIkD-sig"))
    done = collect(provider(server).stream(ask(thinking_budget=2048)))
    assert done.thinking == [ThinkingPart("first I consider the question", "EqQBCkYIARgCIkD-sig")]
    assert done.text == "42"


def test_two_tool_calls_with_split_input(server):
    calls = [ToolCall("bash", {"command": "ls -la /tmp"}, id="toolu_01A"),
             ToolCall("read", {"path": "README.md", "limit": 20}, id="toolu_01B")]
    server.enqueue(Turn(tool_calls=calls, arg_chunk=5))
    events = list(provider(server).stream(ask()))
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    assert [(s.id, s.name) for s in starts] == [("toolu_01A", "bash"), ("toolu_01B", "read")]
    pieces = [e.arguments_delta for e in events
              if isinstance(e, ToolCallDelta) and e.id == "toolu_01A"]
    assert len(pieces) > 1 and "".join(pieces) == calls[0].arguments_json()
    ends = [e for e in events if isinstance(e, ToolCallEnd)]
    assert [e.arguments for e in ends] == [c.arguments_json() for c in calls]
    done = collect(iter(events))
    assert done.stop_reason == "tool_use"
    assert done.tool_calls[1].parsed_arguments() == {"path": "README.md", "limit": 20}


def test_tool_call_without_input_ends_with_empty_object(server):
    server.enqueue(Turn(tool_calls=[ToolCall("list_sessions", "", id="toolu_empty")]))
    done = collect(provider(server).stream(ask()))
    assert [(c.id, c.arguments) for c in done.tool_calls] == [("toolu_empty", "{}")]


def test_usage_counts_cache_once(server):
    turn = Turn(text="ok", input_tokens=1200, cache_read_tokens=1000, cache_write_tokens=150,
                output_tokens=33)
    server.enqueue(turn)
    events = list(provider(server).stream(ask()))
    usage = collect(iter(events)).usage
    assert (usage.input_tokens, usage.output_tokens) == (1200, 33)
    assert (usage.cache_read_tokens, usage.cache_write_tokens) == (1000, 150)
    # message_start says output_tokens: 1; only message_delta's cumulative count may be used.
    assert sum(1 for e in events if isinstance(e, Usage) and e.output_tokens) == 1


# -- what is sent ------------------------------------------------------------------------------


def test_request_headers_and_body(server):
    server.enqueue(Turn(text="ok"))
    tool = ToolSpec("bash", "Run a shell command",
                    {"type": "object", "properties": {"command": {"type": "string"}},
                     "required": ["command"]})
    request = ask("list files", system="You are terse.", tools=[tool], thinking_budget=4096,
                  max_tokens=2000)
    collect(provider(server).stream(request))
    sent = server.requests[0]
    assert (sent.method, sent.path) == ("POST", "/v1/messages")
    assert sent.header("x-api-key") == KEY
    assert sent.header("anthropic-version") == "2023-06-01"
    assert sent.header("accept") == "text/event-stream"
    assert sent.header("authorization") is None
    body = sent.body
    assert body["model"] == MODEL and body["stream"] is True
    assert body["system"] == "You are terse."
    assert body["tools"] == [{"name": "bash", "description": "Run a shell command",
                              "input_schema": tool.parameters}]
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 4096}
    assert body["max_tokens"] > 4096  # must exceed the thinking budget
    assert body["messages"] == [{"role": "user",
                                 "content": [{"type": "text", "text": "list files"}]}]


def test_plain_request_has_defaults_and_omits_empty_fields(server):
    server.enqueue(Turn(text="ok"))
    collect(provider(server).stream(ask(temperature=0.2)))
    body = server.requests[0].body
    assert body["max_tokens"] == 8192 and body["temperature"] == 0.2
    assert not {"system", "tools", "thinking", "anthropic_version"} & body.keys()


def test_history_conversion(server):
    server.enqueue(Turn(text="done"))
    history = [
        Message.user("what is in here?"),
        Message("assistant", [ThinkingPart("from another model, unsigned")]),
        Message("assistant", [
            TextPart("Let me look."),
            ThinkingPart("I should list the dir", "sig-abc=="),
            ToolCallPart("toolu_1", "bash", '{"command": "ls"}'),
            ToolCallPart("toolu_2", "read", '{"path": "a.txt"}'),
        ]),
        Message("tool", [ToolResultPart("toolu_1", "a.txt\nb.txt")]),
        Message("tool", [ToolResultPart("toolu_2", "no such file", is_error=True)]),
        Message("user", [TextPart("and this image?"), ImagePart("image/png", "iVBORw0KGgo=")]),
    ]
    collect(provider(server).stream(ChatRequest(MODEL, history)))
    messages = server.requests[0].body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[1]["content"] == [
        {"type": "thinking", "thinking": "I should list the dir", "signature": "sig-abc=="},
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "toolu_1", "name": "bash", "input": {"command": "ls"}},
        {"type": "tool_use", "id": "toolu_2", "name": "read", "input": {"path": "a.txt"}},
    ]
    assert messages[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "a.txt\nb.txt",
         "is_error": False},
        {"type": "tool_result", "tool_use_id": "toolu_2", "content": "no such file",
         "is_error": True},
        {"type": "text", "text": "and this image?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                     "data": "iVBORw0KGgo="}},
    ]


def test_completion_round_trips_into_the_next_request(server):
    server.enqueue(Turn(thinking="hmm", thinking_signature="SIG1",
                        tool_calls=[ToolCall("bash", {"command": "pwd"}, id="toolu_9")]),
                   Turn(text="/tmp"))
    p = provider(server)
    first = collect(p.stream(ask("where am I?")))
    history = [Message.user("where am I?"), first.as_message(),
               Message("tool", [ToolResultPart("toolu_9", "/tmp")])]
    collect(p.stream(ChatRequest(MODEL, history, thinking_budget=2048)))
    sent = server.requests[1].body["messages"]
    assert sent[1]["content"][0] == {"type": "thinking", "thinking": "hmm", "signature": "SIG1"}
    assert sent[2]["content"][0]["tool_use_id"] == "toolu_9"


def test_vertex_anthropic(server):
    server.enqueue(Turn(text="from vertex"))
    base = server.url + "/v1/projects/my-proj/locations/us-east5/publishers/anthropic/models"
    p = provider(server, "vertex-anthropic", base, key="ya29.oauth-token")
    done = collect(p.stream(ask(model="claude-sonnet-4@20250514")))
    assert done.text == "from vertex"
    sent = server.requests[0]
    assert sent.path.endswith("/claude-sonnet-4@20250514:streamRawPredict")
    assert sent.header("authorization") == "Bearer ya29.oauth-token"
    assert sent.header("x-api-key") is None
    assert sent.body["anthropic_version"] == "vertex-2023-10-16"
    assert "model" not in sent.body and sent.body["stream"] is True


def test_vertex_url_template_is_filled_from_extras(server):
    server.enqueue(Turn(text="ok"))
    template = (server.url + "/v1/projects/{project_id}/locations/{region}"
                "/publishers/anthropic/models")
    p = provider(server, "vertex-anthropic", template, key="tok", project_id="proj-7")
    collect(p.stream(ask(model="claude-opus-4@20250514")))
    assert server.requests[0].path == (
        "/v1/projects/proj-7/locations/us-east5/publishers/anthropic/models"
        "/claude-opus-4@20250514:streamRawPredict")


def test_vertex_without_project_says_how_to_set_it(server):
    template = server.url + "/v1/projects/{project_id}/locations/{region}/models"
    p = provider(server, "vertex-anthropic", template, key="tok")
    with pytest.raises(ProviderRequestError) as info:
        collect(p.stream(ask()))
    assert "project_id" in info.value.hint and "GOOGLE_CLOUD_PROJECT" in info.value.hint
    assert server.requests == []


def test_minimax_uses_x_api_key(server):
    server.enqueue(Turn(text="minimax here"))
    p = provider(server, "minimax", server.url + "/anthropic", key="mm-key-123456")
    assert collect(p.stream(ask(model="MiniMax-M2"))).text == "minimax here"
    sent = server.requests[0]
    assert sent.path == "/anthropic/v1/messages"
    assert sent.header("x-api-key") == "mm-key-123456"
    assert sent.header("authorization") is None
    assert sent.body["model"] == "MiniMax-M2"


# -- failures ----------------------------------------------------------------------------------


def test_overloaded_error_event_after_text(server):
    server.enqueue(Turn(text="partial answer", error_type="overloaded_error",
                        error_message="Overloaded"))
    seen: list[str] = []
    with pytest.raises(ProviderUnavailableError) as info:
        for event in provider(server).stream(ask()):
            if isinstance(event, TextDelta):
                seen.append(event.text)
    assert "".join(seen) == "partial answer"
    assert info.value.status == 529 and "Overloaded" in info.value.message


def test_retries_a_529_then_streams(server):
    server.enqueue(Turn(status=529, retry_after="0"), Turn(text="second time lucky"))
    p = provider(server, policy=RetryPolicy(max_attempts=2, base_delay=0.01))
    assert collect(p.stream(ask())).text == "second time lucky"
    assert len(server.requests) == 2


def test_rejected_key_hint_and_no_key_in_message(server):
    server.enqueue(Turn(status=401, error_message=f"invalid x-api-key: {KEY}"))
    with pytest.raises(ProviderAuthError) as info:
        collect(provider(server).stream(ask()))
    error = info.value
    assert "codetether auth login anthropic" in error.hint
    assert KEY not in error.one_line() and KEY not in repr(error)
    assert error.provider == "anthropic" and error.status == 401


def test_prompt_too_long_is_context_length(server):
    server.enqueue(Turn(status=400, error_message="prompt is too long: 212000 tokens > 200000"))
    with pytest.raises(ContextLengthError):
        collect(provider(server).stream(ask()))


def test_cut_mid_stream_keeps_partial_text(server):
    server.enqueue(Turn(text="Hello world, how are you", text_chunk=5, cut_after=5))
    seen: list[str] = []
    with pytest.raises(ProviderStreamError):
        for event in provider(server).stream(ask()):
            if isinstance(event, TextDelta):
                seen.append(event.text)
    assert seen == ["Hello", " worl"]  # message_start, ping, block start, two deltas


def test_cancel_while_the_stream_is_held(server):
    server.enqueue(Turn(text="Hello world, and more", hold_after=4))
    token = CancelToken()
    seen: list[str] = []
    outcome: list[BaseException] = []

    def consume() -> None:
        try:
            for event in provider(server).stream(ask(cancel=token)):
                if isinstance(event, TextDelta):
                    seen.append(event.text)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    assert server.holding.wait(10)
    token.cancel()
    server.release()
    thread.join(10)
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], CancelledError)
    assert seen in ([], ["Hello"])  # only what was sent before the hold


def test_list_models(server):
    assert provider(server).list_models() == ["claude-opus-4-1", "claude-sonnet-4-20250514"]
    sent = server.requests[0]
    assert sent.method == "GET" and sent.path.split("?")[0] == "/v1/models"
    assert sent.header("x-api-key") == KEY and sent.header("anthropic-version") == "2023-06-01"
