"""OpenAIChatProvider against the scripted LLM server speaking OpenAI's exact streaming format."""

from __future__ import annotations

import json
import socket
import threading
import time

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
from codetether.providers.base import (
    ChatRequest,
    Done,
    Endpoint,
    ImagePart,
    Message,
    TextDelta,
    TextPart,
    ThinkingDelta,
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
from codetether.providers.openai_chat import OpenAIChatProvider, wire_messages
from tests.scripted_llm import ScriptedLLMServer, ToolCall, Turn
from tests.scripted_llm.openai_format import OpenAIFormat
from tests.scripted_llm.server import Reply

KEY = "sk-test-SECRETKEY123456"
FAST = RetryPolicy(max_attempts=3, base_delay=0.01, connect_timeout=5, read_timeout=10)


@pytest.fixture
def server():
    llm = ScriptedLLMServer(models=["gpt-4o", "gpt-4.1-mini", "o3"])
    llm._formats.insert(0, OpenAIFormat())
    with llm:
        yield llm


def make_provider(server, provider_id="openai", policy=None, **endpoint) -> OpenAIChatProvider:
    endpoint.setdefault("api_key", KEY)
    return OpenAIChatProvider(
        Endpoint(provider_id, base_url=server.url + "/v1", timeout=10.0, **endpoint), policy)


@pytest.fixture
def provider(server):
    return make_provider(server)


def drain(stream, expected: type[Exception]) -> tuple[list, Exception]:
    """The events a stream yielded before it raised ``expected`` (which it must raise)."""
    received = []
    with pytest.raises(expected) as info:
        for event in stream:
            received.append(event)  # keep what came before the raise
    return received, info.value


def ask(text="hi", **kw) -> ChatRequest:
    return ChatRequest(model=kw.pop("model", "gpt-4o"), messages=[Message.user(text)], **kw)


def test_streams_text_in_several_deltas_and_sends_a_streaming_request(server, provider):
    server.enqueue(Turn(text="Hello, world! How are you today?", text_chunk=6))
    events = list(provider.stream(ask("greet me")))

    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) == 6
    assert "".join(deltas) == "Hello, world! How are you today?"
    assert events[-1] == Done("end_turn")

    (req,) = server.requests
    assert (req.method, req.path) == ("POST", "/v1/chat/completions")
    assert req.header("Authorization") == f"Bearer {KEY}"
    assert req.header("Content-Type") == "application/json"
    assert req.header("Accept") == "text/event-stream"
    assert req.body["model"] == "gpt-4o"
    assert req.body["stream"] is True
    assert req.body["stream_options"] == {"include_usage": True}
    assert req.body["messages"] == [{"role": "user", "content": "greet me"}]
    assert "tools" not in req.body and "max_tokens" not in req.body


def test_request_options_tools_and_system_prompt(server, provider):
    server.enqueue(Turn(text="ok"))
    schema = {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}
    collect(provider.stream(ask(
        system="You are terse.", tools=[ToolSpec("read_file", "Read a file", schema)],
        max_tokens=512, temperature=0.2, reasoning_effort="high")))

    body = server.requests[0].body
    assert body["messages"][0] == {"role": "system", "content": "You are terse."}
    assert body["tools"] == [{"type": "function", "function": {
        "name": "read_file", "description": "Read a file", "parameters": schema}}]
    assert body["max_completion_tokens"] == 512 and "max_tokens" not in body
    assert body["temperature"] == 0.2
    assert body["reasoning_effort"] == "high"


def test_other_providers_get_max_tokens(server):
    server.enqueue(Turn(text="ok"))
    collect(make_provider(server, "deepseek").stream(ask(max_tokens=100)))
    body = server.requests[0].body
    assert body["max_tokens"] == 100 and "max_completion_tokens" not in body


def test_two_interleaved_tool_calls_with_split_arguments(server, provider):
    server._formats.insert(0, OpenAIFormat(interleave_tool_calls=True))
    read = ToolCall("read_file", {"path": "src/main.py", "limit": 200}, id="call_read")
    grep = ToolCall("grep", {"pattern": "def main", "path": "."}, id="call_grep")
    server.enqueue(Turn(text="Looking.", tool_calls=[read, grep], arg_chunk=4))

    events = list(provider.stream(ask("find main")))

    starts = [e for e in events if isinstance(e, ToolCallStart)]
    assert [(s.id, s.name) for s in starts] == [("call_read", "read_file"), ("call_grep", "grep")]
    delta_ids = [e.id for e in events if isinstance(e, ToolCallDelta)]
    assert delta_ids[:4] == ["call_read", "call_grep", "call_read", "call_grep"]  # interleaved
    for call in (read, grep):
        pieces = [e.arguments_delta for e in events
                  if isinstance(e, ToolCallDelta) and e.id == call.id]
        assert len(pieces) > 3 and "".join(pieces) == call.arguments_json()
    ends = [e for e in events if isinstance(e, ToolCallEnd)]
    assert len(ends) == 2
    assert events.index(ends[0]) > max(i for i, e in enumerate(events)
                                       if isinstance(e, ToolCallDelta))

    done = collect(iter(events))
    assert done.text == "Looking."
    assert [(c.id, c.name, c.arguments) for c in done.tool_calls] == [
        ("call_read", "read_file", '{"path": "src/main.py", "limit": 200}'),
        ("call_grep", "grep", '{"pattern": "def main", "path": "."}')]
    assert done.stop_reason == "tool_use"


def test_sequential_tool_calls_and_a_call_without_arguments(server, provider):
    server.enqueue(Turn(tool_calls=[ToolCall("list_dir", "", id="c1"),
                                    ToolCall("bash", {"command": "ls -la"}, id="c2")]))
    done = collect(provider.stream(ask()))
    assert [(c.id, c.arguments) for c in done.tool_calls] == [
        ("c1", "{}"), ("c2", '{"command": "ls -la"}')]


def test_reasoning_content_becomes_thinking(server, provider):
    server.enqueue(Turn(thinking="The user wants the answer to everything.", text="42"))
    events = list(provider.stream(ask("?")))
    thinking = [e for e in events if isinstance(e, ThinkingDelta)]
    assert len(thinking) > 1
    assert events.index(thinking[-1]) < next(i for i, e in enumerate(events)
                                              if isinstance(e, TextDelta))
    done = collect(iter(events))
    assert [t.text for t in done.thinking] == ["The user wants the answer to everything."]
    assert done.text == "42"


def test_usage_with_cached_and_reasoning_tokens_reported_once(server, provider):
    server.enqueue(Turn(text="ok", input_tokens=1200, output_tokens=300,
                        cache_read_tokens=1024, reasoning_tokens=256))
    events = list(provider.stream(ask()))
    usages = [e for e in events if isinstance(e, Usage)]
    assert usages == [Usage(input_tokens=1200, output_tokens=300, cache_read_tokens=1024,
                            reasoning_tokens=256)]
    assert isinstance(events[-1], Done)


@pytest.mark.parametrize("provider_id, echoes_reasoning", [("openai", False),
                                                           ("moonshotai", True)])
def test_history_with_tool_calls_results_and_images_is_converted(server, provider_id,
                                                                 echoes_reasoning):
    provider = make_provider(server, provider_id)
    server.enqueue(
        Turn(thinking="Need the file.", text="Reading it.",
             tool_calls=[ToolCall("read_file", {"path": "a.py"}, id="call_1"),
                         ToolCall("read_file", {"path": "b.py"}, id="call_2")]),
        Turn(text="Both files are fine."),
    )
    first = ChatRequest(model="m1", system="sys", messages=[Message("user", [
        TextPart("look at this"), ImagePart("image/png", "iVBORw0KGgo=")])])
    completion = collect(provider.stream(first))

    history = [*first.messages, completion.as_message(), Message("tool", [
        ToolResultPart("call_1", "print('a')"),
        ToolResultPart("call_2", "no such file", is_error=True)])]
    second = collect(provider.stream(ChatRequest(model="m1", system="sys", messages=history)))
    assert second.text == "Both files are fine."

    messages = server.requests[1].body["messages"]
    assert messages[0] == {"role": "system", "content": "sys"}
    assert messages[1] == {"role": "user", "content": [
        {"type": "text", "text": "look at this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}
    assistant = {"role": "assistant", "content": "Reading it.", "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "read_file", "arguments": '{"path": "a.py"}'}},
        {"id": "call_2", "type": "function",
         "function": {"name": "read_file", "arguments": '{"path": "b.py"}'}}]}
    if echoes_reasoning:
        assistant["reasoning_content"] = "Need the file."
    assert messages[2] == assistant
    assert messages[3:] == [
        {"role": "tool", "tool_call_id": "call_1", "content": "print('a')"},
        {"role": "tool", "tool_call_id": "call_2", "content": "no such file"}]


def test_assistant_with_only_tool_calls_sends_null_content(server, provider):
    server.enqueue(Turn(text="done"))
    history = [Message.user("go"), Message("assistant", [ToolCallPart("c9", "bash", "")]),
               Message("tool", [ToolResultPart("c9", "ok")])]
    collect(provider.stream(ChatRequest(model="gpt-4o", messages=history)))
    assistant = server.requests[0].body["messages"][1]
    assert assistant == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c9", "type": "function", "function": {"name": "bash", "arguments": "{}"}}]}


def test_openrouter_headers_and_organization(server):
    server.enqueue(Turn(text="a"), Turn(text="b"))
    openrouter = make_provider(server, "openrouter", headers={
        "HTTP-Referer": "https://codetether.run", "X-Title": "CodeTether"})
    collect(openrouter.stream(ask(model="stepfun/step-3.5-flash:free")))
    openai = make_provider(server, "openai", extras={"organization": "org-42"})
    collect(openai.stream(ask()))

    routed, direct = server.requests
    assert routed.header("HTTP-Referer") == "https://codetether.run"
    assert routed.header("X-Title") == "CodeTether"
    assert routed.header("OpenAI-Organization") is None
    assert routed.body["model"] == "stepfun/step-3.5-flash:free"
    assert direct.header("OpenAI-Organization") == "org-42"
    assert direct.header("X-Title") is None


def test_no_authorization_header_without_a_key(server):
    server.enqueue(Turn(text="local"))
    assert collect(make_provider(server, "local", api_key=None).stream(ask())).text == "local"
    assert server.requests[0].header("Authorization") is None


@pytest.mark.parametrize("message", [Turn.error_message,
                                     f"Incorrect API key provided: {KEY}. Check it."])
def test_401_is_an_auth_error_with_a_hint_and_without_the_key(server, provider, message):
    server.enqueue(Turn(status=401, error_message=message))
    with pytest.raises(ProviderAuthError) as info:
        list(provider.stream(ask()))
    err = info.value
    assert "codetether auth login openai" in err.one_line()
    for text in (str(err), err.one_line(), repr(err), repr(provider.endpoint)):
        assert KEY not in text and "SECRETKEY" not in text
    assert len(server.requests) == 1  # an auth failure is not retried


def test_429_waits_for_retry_after_then_succeeds(server, provider):
    server.enqueue(Turn(status=429, retry_after="1"), Turn(text="after the wait"))
    start = time.monotonic()
    done = collect(provider.stream(ask()))
    elapsed = time.monotonic() - start
    assert done.text == "after the wait"
    assert len(server.requests) == 2
    assert elapsed >= 0.9


def test_500_twice_then_success(server):
    server.enqueue(Turn(status=500), Turn(status=502), Turn(text="third time lucky"))
    done = collect(make_provider(server, policy=FAST).stream(ask()))
    assert done.text == "third time lucky"
    assert len(server.requests) == 3


def test_500_forever_gives_up_after_max_attempts(server):
    server.enqueue(*[Turn(status=500) for _ in range(5)])
    with pytest.raises(ProviderUnavailableError) as info:
        list(make_provider(server, policy=FAST).stream(ask()))
    assert len(server.requests) == FAST.max_attempts
    assert server.remaining == 5 - FAST.max_attempts
    assert info.value.status == 500


def test_400_context_length_exceeded(server, provider):
    server.enqueue(Turn(status=400, error_type="context_length_exceeded"))
    with pytest.raises(ContextLengthError) as info:
        list(provider.stream(ask()))
    assert "context window" in info.value.one_line()


def test_404_unknown_model_points_at_codetether_models(server, provider):
    server.enqueue(Turn(status=404))
    with pytest.raises(ProviderRequestError) as info:
        list(provider.stream(ask(model="gpt-nope")))
    assert "codetether models" in info.value.one_line()
    assert "gpt-nope" in info.value.one_line()


def test_stream_cut_mid_way_yields_what_came_then_raises(server, provider):
    server.enqueue(Turn(text="Hello there, general Kenobi", text_chunk=5, cut_after=4))
    received, _ = drain(provider.stream(ask()), ProviderStreamError)
    assert "".join(e.text for e in received if isinstance(e, TextDelta)) == "Hello there, ge"
    assert not any(isinstance(e, Done) for e in received)


def test_error_inside_a_200_stream_is_mapped(server, provider):
    class ErrorMidStream(OpenAIFormat):
        def reply(self, turn, request):
            events = list(super().reply(turn, request).events)[:2]  # role chunk + first text
            events.append(b'data: {"error":{"code":502,"message":"Upstream provider failed"}}'
                          b"\n\n")
            return Reply(200, {"Content-Type": "text/event-stream"}, events)

    server._formats.insert(0, ErrorMidStream())
    server.enqueue(Turn(text="partial answer"))
    received, err = drain(provider.stream(ask()), ProviderUnavailableError)
    assert received == [TextDelta("parti")]
    assert err.status == 502 and "Upstream provider failed" in err.message


def test_plain_json_answer_from_a_server_ignoring_stream(server, provider):
    class NonStreaming(OpenAIFormat):
        def reply(self, turn, request):
            body = {"id": "x", "object": "chat.completion", "choices": [{
                "index": 0, "finish_reason": "tool_calls", "message": {
                    "role": "assistant", "content": "Sure.", "tool_calls": [{
                        "id": "t1", "type": "function",
                        "function": {"name": "bash", "arguments": '{"command":"pwd"}'}}]}}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}
            return Reply(200, {"Content-Type": "application/json"}, [json.dumps(body).encode()])

    server._formats.insert(0, NonStreaming())
    server.enqueue(Turn())
    done = collect(provider.stream(ask()))
    assert done.text == "Sure."
    assert [(c.id, c.name, c.arguments) for c in done.tool_calls] == [
        ("t1", "bash", '{"command":"pwd"}')]
    assert done.usage == Usage(input_tokens=5, output_tokens=2)
    assert done.stop_reason == "tool_use"


def test_connection_refused_is_unavailable():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = OpenAIChatProvider(
        Endpoint("openai", base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY), FAST)
    with pytest.raises(ProviderUnavailableError) as info:
        list(provider.stream(ask()))
    assert "cannot reach openai" in info.value.message
    assert KEY not in info.value.one_line()


class ConnectionClose(OpenAIFormat):
    """Answers with ``Connection: close``: http.client then hands the socket to the response."""

    def reply(self, turn, request):
        reply = super().reply(turn, request)
        reply.headers["Connection"] = "close"
        return reply


@pytest.mark.parametrize("connection_close", [False, True])
def test_cancel_from_another_thread_while_the_stream_is_held(server, provider, connection_close):
    if connection_close:
        server._formats.insert(0, ConnectionClose())
    server.enqueue(Turn(text="a long answer that never finishes", hold_after=2))
    token = CancelToken()
    stream = provider.stream(ask(cancel=token))
    assert next(stream) == TextDelta("a lon")  # the 2nd event arrived; the 3rd is held

    def cancel_when_held() -> None:
        if server.holding.wait(10):
            token.cancel()

    canceller = threading.Thread(target=cancel_when_held)
    start = time.monotonic()
    canceller.start()
    try:
        received, _ = drain(stream, CancelledError)  # blocked in a read until the cancel
        elapsed = time.monotonic() - start
    finally:
        server.release()
        canceller.join()
    assert received == []
    assert elapsed < 5


def test_abandoned_stream_releases_its_connection(server, provider):
    server.enqueue(Turn(text="one two three four", hold_after=3))
    token = CancelToken()
    stream = provider.stream(ask(cancel=token))
    assert next(stream) == TextDelta("one t")
    stream.close()  # the consumer walks away: the finally must close the response
    assert token._callbacks == {}  # its cancel hook was unregistered by Response.close()
    server.release()


def test_list_models(server, provider):
    assert provider.list_models() == ["gpt-4.1-mini", "gpt-4o", "o3"]
    (req,) = server.requests
    assert (req.method, req.path) == ("GET", "/v1/models")
    assert req.header("Authorization") == f"Bearer {KEY}"


def test_thinking_is_echoed_as_reasoning_content_only_when_asked():
    msg = Message("assistant", [ThinkingPart("hmm"), TextPart("answer")])
    request = ChatRequest(model="m", messages=[msg])
    assert wire_messages(request, echo_reasoning=False) == [
        {"role": "assistant", "content": "answer"}]
    assert wire_messages(request, echo_reasoning=True) == [
        {"role": "assistant", "content": "answer", "reasoning_content": "hmm"}]
