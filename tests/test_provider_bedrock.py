"""BedrockProvider against the scripted LLM speaking ConverseStream (binary event stream).

The scripted server's Bedrock format is itself checked against botocore's real client, and
every SigV4 header our provider sends is recomputed with botocore from what the server received.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import datetime

import botocore.auth
import botocore.session
import pytest
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from codetether.core import errors
from codetether.core.cancel import CancelToken
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
from codetether.providers.bedrock import BedrockProvider
from codetether.providers.http import RetryPolicy
from tests.scripted_llm.bedrock_format import BedrockFormat
from tests.scripted_llm.script import ToolCall, Turn
from tests.scripted_llm.server import RecordedRequest, ScriptedLLMServer

MODEL = "amazon.nova-lite-v1:0"
ACCESS = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLEsessionTOKENvalue=="
BEARER = "ABSKQmVkcm9ja0FQSUtleS1leGFtcGxlLWtleQ=="
REGION = "eu-west-3"
NO_RETRY = RetryPolicy(max_attempts=1, connect_timeout=5, read_timeout=10)


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def llm():
    server = ScriptedLLMServer(models=[MODEL, "anthropic.claude-sonnet-4-20250514-v1:0"])
    server._formats.insert(0, BedrockFormat())
    with server:
        yield server


def _provider(url: str, *, sigv4: bool = True, token: str | None = TOKEN,
              bearer: str | None = None) -> BedrockProvider:
    extras = {"region": REGION}
    if sigv4:
        extras.update(aws_access_key_id=ACCESS, aws_secret_access_key=SECRET)
        if token:
            extras["aws_session_token"] = token
    return BedrockProvider(Endpoint("bedrock", url, api_key=bearer, extras=extras), NO_RETRY)


def _ask(text: str = "hi", **kw) -> ChatRequest:
    return ChatRequest(model=MODEL, messages=[Message.user(text)], **kw)


def _events(provider: BedrockProvider, request: ChatRequest) -> list:
    return list(provider.stream(request))


# -- responses ---------------------------------------------------------------------------


def test_text_streams_as_deltas_then_usage_and_done(llm):
    llm.enqueue(Turn(text="Hello from Bedrock!", text_chunk=4))
    events = _events(_provider(llm.url), _ask())
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert deltas == ["Hell", "o fr", "om B", "edro", "ck!"]
    assert isinstance(events[-2], Usage) and events[-1] == Done("end_turn")
    done = collect(iter(events))
    assert done.text == "Hello from Bedrock!" and done.usage.output_tokens == 7


def test_reasoning_keeps_its_signature_and_comes_first(llm):
    llm.enqueue(Turn(thinking="Two plus two is four.", thinking_signature="c2lnLTEyMw==",
                     text="4"))
    events = _events(_provider(llm.url), _ask("2+2?", thinking_budget=2048))
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("ThinkingDelta") < kinds.index("TextDelta")
    closing = [e for e in events if isinstance(e, ThinkingDelta) and e.signature]
    assert closing == [ThinkingDelta("", signature="c2lnLTEyMw==")]
    done = collect(iter(events))
    assert done.thinking == [ThinkingPart("Two plus two is four.", "c2lnLTEyMw==")]
    assert done.text == "4"


def test_tool_calls_with_input_split_across_deltas(llm):
    calls = [ToolCall("read_file", {"path": "src/main.py", "limit": 40}, id="tooluse_A1"),
             ToolCall("bash", {"command": "ls -la"}, id="tooluse_B2")]
    llm.enqueue(Turn(text="Let me look.", tool_calls=calls, arg_chunk=5))
    events = _events(_provider(llm.url), _ask("look"))
    assert [e for e in events if isinstance(e, ToolCallStart)] == [
        ToolCallStart("tooluse_A1", "read_file"), ToolCallStart("tooluse_B2", "bash")]
    pieces = [e for e in events if isinstance(e, ToolCallDelta) and e.id == "tooluse_A1"]
    assert len(pieces) > 3 and all(len(p.arguments_delta) <= 5 for p in pieces)
    ends = [e for e in events if isinstance(e, ToolCallEnd)]
    assert [json.loads(e.arguments) for e in ends] == [c.arguments for c in calls]
    assert "".join(p.arguments_delta for p in pieces) == ends[0].arguments
    assert events[-1] == Done("tool_use")


def test_usage_counts_cache_reads_and_writes_as_input(llm):
    llm.enqueue(Turn(text="ok", input_tokens=1000, output_tokens=25, cache_read_tokens=600,
                     cache_write_tokens=300))
    usage = [e for e in _events(_provider(llm.url), _ask()) if isinstance(e, Usage)]
    assert usage == [Usage(input_tokens=1000, output_tokens=25, cache_read_tokens=600,
                           cache_write_tokens=300)]


@pytest.mark.parametrize("script, ours", [("max_tokens", "max_tokens"),
                                          ("content_filter", "content_filter"),
                                          ("stop_sequence", "end_turn"),
                                          ("guardrail_intervened", "content_filter")])
def test_stop_reasons(llm, script, ours):
    llm.enqueue(Turn(text="x", stop_reason=script))
    assert _events(_provider(llm.url), _ask())[-1] == Done(ours)


# -- the request on the wire -------------------------------------------------------------


def _botocore_authorization(monkeypatch, recorded: RecordedRequest, token: str | None) -> str:
    """Recompute the Authorization header with botocore from what the server received."""
    auth = recorded.header("authorization") or ""
    names = re.search(r"SignedHeaders=([^,]+)", auth).group(1).split(";")
    amz_date = recorded.header("x-amz-date")
    frozen = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: frozen)
    headers = {n: recorded.headers[n] for n in names
               if n not in ("x-amz-date", "x-amz-security-token")}
    url = f"http://{recorded.header('host')}{recorded.path}"
    request = AWSRequest(method=recorded.method, url=url, headers=headers,
                         data=recorded.raw_body)
    botocore.auth.SigV4Auth(Credentials(ACCESS, SECRET, token), "bedrock",
                            REGION).add_auth(request)
    return request.headers["Authorization"]


@pytest.mark.parametrize("token", [TOKEN, None])
def test_request_is_sigv4_signed_as_botocore_would(llm, monkeypatch, token):
    llm.enqueue(Turn(text="ok"))
    _events(_provider(llm.url, token=token), _ask())
    [recorded] = llm.requests
    assert recorded.method == "POST"
    assert recorded.path == "/model/amazon.nova-lite-v1%3A0/converse-stream"
    auth = recorded.header("authorization")
    assert auth.startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS}/")
    assert f"/{REGION}/bedrock/aws4_request" in auth
    assert re.fullmatch(r"\d{8}T\d{6}Z", recorded.header("x-amz-date"))
    signed = re.search(r"SignedHeaders=([^,]+)", auth).group(1).split(";")
    assert {"host", "x-amz-date", "content-type"} <= set(signed)
    assert recorded.header("x-amz-security-token") == token
    assert ("x-amz-security-token" in signed) == (token is not None)
    assert auth == _botocore_authorization(monkeypatch, recorded, token)
    assert SECRET not in json.dumps(recorded.headers)


def test_bearer_mode_sends_the_bedrock_api_key(llm):
    llm.enqueue(Turn(text="ok"))
    done = collect(_provider(llm.url, sigv4=False, bearer=BEARER).stream(_ask()))
    assert done.text == "ok"
    [recorded] = llm.requests
    assert recorded.header("authorization") == f"Bearer {BEARER}"
    assert recorded.header("x-amz-date") is None


def test_sigv4_keys_win_over_an_api_key(llm):
    llm.enqueue(Turn(text="ok"))
    _events(_provider(llm.url, bearer=BEARER), _ask())
    assert llm.requests[0].header("authorization").startswith("AWS4-HMAC-SHA256 ")


def test_missing_credentials_say_what_to_set(llm):
    provider = _provider(llm.url, sigv4=False)
    with pytest.raises(errors.ProviderAuthError) as caught:
        _events(provider, _ask())
    line = caught.value.one_line()
    for needed in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_BEARER_TOKEN_BEDROCK",
                   "aws_access_key_id", "secret/codetether/providers/bedrock"):
        assert needed in line
    with pytest.raises(errors.ProviderAuthError):
        provider.list_models()
    assert llm.requests == []


def test_body_carries_system_inference_tools_and_thinking(llm):
    llm.enqueue(Turn(text="ok"))
    tool = ToolSpec("read_file", "Read a file", {"type": "object",
                                                 "properties": {"path": {"type": "string"}},
                                                 "required": ["path"]})
    _events(_provider(llm.url), _ask("go", system="Be brief.", tools=[tool], max_tokens=4000,
                                     temperature=0.2))
    body = llm.requests[0].body
    assert body == {
        "messages": [{"role": "user", "content": [{"text": "go"}]}],
        "system": [{"text": "Be brief."}],
        "inferenceConfig": {"maxTokens": 4000, "temperature": 0.2},
        "toolConfig": {"tools": [{"toolSpec": {
            "name": "read_file", "description": "Read a file",
            "inputSchema": {"json": tool.parameters}}}]},
    }


def test_thinking_budget_goes_to_additional_model_request_fields(llm):
    llm.enqueue(Turn(text="ok"))
    _events(_provider(llm.url), _ask(thinking_budget=4096, max_tokens=16000, temperature=0.5))
    body = llm.requests[0].body
    assert body["additionalModelRequestFields"] == {
        "thinking": {"type": "enabled", "budget_tokens": 4096}}
    assert body["inferenceConfig"] == {"maxTokens": 16000}  # no temperature with thinking
    assert "system" not in body and "toolConfig" not in body


def test_history_becomes_converse_messages():
    history = [
        Message.user("read a.py"),
        Message("assistant", [ThinkingPart("need the file", "sig-1"), TextPart("Reading."),
                              ToolCallPart("tu_1", "read_file", '{"path": "a.py"}'),
                              ToolCallPart("tu_2", "bash", "not json")]),
        Message("tool", [ToolResultPart("tu_1", "print(1)"),
                         ToolResultPart("tu_2", "boom", is_error=True)]),
        Message("user", [TextPart("and the image?"), ImagePart("image/jpeg", "aGVsbG8=")]),
        Message("assistant", [ThinkingPart("unsigned thoughts"), TextPart("")]),
        Message.assistant("It is a cat."),
    ]
    body = _provider("http://127.0.0.1:9").request_body(ChatRequest(MODEL, history))
    assert body["messages"] == [
        {"role": "user", "content": [{"text": "read a.py"}]},
        {"role": "assistant", "content": [
            {"reasoningContent": {"reasoningText": {"text": "need the file",
                                                    "signature": "sig-1"}}},
            {"text": "Reading."},
            {"toolUse": {"toolUseId": "tu_1", "name": "read_file", "input": {"path": "a.py"}}},
            {"toolUse": {"toolUseId": "tu_2", "name": "bash", "input": {}}},
        ]},
        {"role": "user", "content": [  # tool results and the next user turn, merged
            {"toolResult": {"toolUseId": "tu_1", "content": [{"text": "print(1)"}],
                            "status": "success"}},
            {"toolResult": {"toolUseId": "tu_2", "content": [{"text": "boom"}],
                            "status": "error"}},
            {"text": "and the image?"},
            {"image": {"format": "jpeg", "source": {"bytes": "aGVsbG8="}}},
        ]},
        {"role": "assistant", "content": [
            {"reasoningContent": {"reasoningText": {"text": "unsigned thoughts"}}},
            {"text": "It is a cat."},
        ]},
    ]


def test_region_fills_the_url_template():
    endpoint = Endpoint("bedrock", "https://bedrock-runtime.{region}.amazonaws.com",
                        extras={"region": "ap-southeast-2"})
    provider = BedrockProvider(endpoint)
    assert provider.request_url("anthropic.claude-3-haiku-20240307-v1:0") == (
        "https://bedrock-runtime.ap-southeast-2.amazonaws.com/model/"
        "anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream")
    assert provider.models_url() == (
        "https://bedrock.ap-southeast-2.amazonaws.com/foundation-models")
    default = BedrockProvider(Endpoint("bedrock", "https://bedrock-runtime.{region}.amazonaws.com"))
    assert default.request_url("a/b:1").startswith("https://bedrock-runtime.us-east-1.amazonaws"
                                                   ".com/model/a%2Fb%3A1/")


# -- errors ------------------------------------------------------------------------------


def _until_error(provider: BedrockProvider, request: ChatRequest):
    got: list = []
    with pytest.raises(errors.ProviderError) as caught:
        for event in provider.stream(request):
            got.append(event)
    return got, caught.value


def test_in_stream_throttling_is_a_rate_limit_after_the_text(llm):
    llm.enqueue(Turn(text="partial answer", error_type="throttlingException",
                     error_message="Too many tokens, please wait before trying again."))
    got, error = _until_error(_provider(llm.url), _ask())
    assert "".join(e.text for e in got if isinstance(e, TextDelta)) == "partial answer"
    assert isinstance(error, errors.RateLimitError)
    assert "Too many tokens" in error.message and error.status == 429


@pytest.mark.parametrize("message", ["Input is too long for requested model.",
                                     "The model returned the following errors: prompt has too "
                                     "many input tokens"])
def test_in_stream_validation_about_length_is_a_context_length_error(llm, message):
    llm.enqueue(Turn(error_type="validationException", error_message=message))
    _, error = _until_error(_provider(llm.url), _ask())
    assert isinstance(error, errors.ContextLengthError)


@pytest.mark.parametrize("kind, expected", [
    ("serviceUnavailableException", errors.ProviderUnavailableError),
    ("modelStreamErrorException", errors.ProviderUnavailableError),
    ("validationException", errors.ProviderRequestError),
])
def test_other_in_stream_exceptions(llm, kind, expected):
    llm.enqueue(Turn(text="a", error_type=kind, error_message="something else went wrong"))
    _, error = _until_error(_provider(llm.url), _ask())
    assert type(error) is expected and "something else went wrong" in error.message


def test_http_403_is_an_auth_error_without_the_secret(llm):
    llm.enqueue(Turn(status=403, error_message=f"The request signature we calculated does not "
                                               f"match; key {SECRET} token {TOKEN}"))
    with pytest.raises(errors.ProviderAuthError) as caught:
        _events(_provider(llm.url), _ask())
    text = caught.value.one_line() + repr(caught.value)
    assert "signature we calculated" in text
    assert SECRET not in text and TOKEN not in text
    assert llm.requests[0].header("authorization") is not None


def test_http_400_too_long_is_a_context_length_error(llm):
    llm.enqueue(Turn(status=400, error_message="Input is too long for requested model."))
    with pytest.raises(errors.ContextLengthError):
        _events(_provider(llm.url), _ask())


def test_cut_mid_stream_is_a_stream_error_after_what_arrived(llm):
    llm.enqueue(Turn(text="0123456789abcdef", text_chunk=4, cut_after=3))
    got, error = _until_error(_provider(llm.url), _ask())
    assert [e.text for e in got if isinstance(e, TextDelta)] == ["0123", "4567"]
    assert isinstance(error, errors.ProviderStreamError)


def test_stream_ending_after_message_stop_without_metadata_is_broken(llm):
    turn = Turn(text="hello", text_chunk=5)  # messageStart, 1 delta, stop, messageStop, metadata
    llm.enqueue(Turn(**{**turn.__dict__, "cut_after": 4}))
    got, error = _until_error(_provider(llm.url), _ask())
    assert isinstance(error, errors.ProviderStreamError)
    assert not any(isinstance(e, Done) for e in got)


def test_cancel_while_the_stream_is_held(llm):
    llm.enqueue(Turn(text="first second third", text_chunk=6, hold_after=2))
    token = CancelToken()
    stream = _provider(llm.url).stream(_ask(cancel=token))
    first = next(stream)
    assert first == TextDelta("first ")
    assert llm.holding.wait(5)
    canceller = threading.Thread(target=token.cancel)
    canceller.start()  # cancels while the main thread is (or is about to be) blocked reading
    with pytest.raises(errors.CancelledError):
        next(stream)
    canceller.join(5)
    llm.release()


# -- model list --------------------------------------------------------------------------


def test_list_models_is_signed_and_returns_model_ids(llm, monkeypatch):
    ids = _provider(llm.url).list_models()
    assert ids == [MODEL, "anthropic.claude-sonnet-4-20250514-v1:0"]
    [recorded] = llm.requests
    assert (recorded.method, recorded.path) == ("GET", "/foundation-models")
    assert recorded.header("authorization") == _botocore_authorization(
        monkeypatch, recorded, TOKEN)


def test_list_models_with_a_bearer_key(llm):
    assert _provider(llm.url, sigv4=False, bearer=BEARER).list_models()[0] == MODEL
    assert llm.requests[0].header("authorization") == f"Bearer {BEARER}"


# -- the scripted format against the real SDK --------------------------------------------


def _boto_client(url: str):
    session = botocore.session.get_session()
    return session.create_client(
        "bedrock-runtime", region_name=REGION, endpoint_url=url, aws_access_key_id=ACCESS,
        aws_secret_access_key=SECRET,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}))


def test_botocore_reads_the_scripted_stream_and_sends_our_path(llm):
    calls = [ToolCall("bash", {"command": "ls"}, id="tooluse_X")]
    llm.enqueue(Turn(thinking="hmm", text="Hi!", tool_calls=calls, cache_read_tokens=4))
    response = _boto_client(llm.url).converse_stream(
        modelId=MODEL, messages=[{"role": "user", "content": [{"text": "hi"}]}])
    events = list(response["stream"])
    names = [next(iter(e)) for e in events]
    assert names[0] == "messageStart" and names[-2:] == ["messageStop", "metadata"]
    text = "".join(e["contentBlockDelta"]["delta"].get("text", "") for e in events
                   if "contentBlockDelta" in e)
    assert text == "Hi!"
    start = next(e["contentBlockStart"] for e in events if "contentBlockStart" in e)
    assert start["start"]["toolUse"] == {"toolUseId": "tooluse_X", "name": "bash"}
    assert events[-1]["metadata"]["usage"]["cacheReadInputTokens"] == 4
    assert events[-2]["messageStop"]["stopReason"] == "tool_use"
    # botocore addresses the model exactly as our provider does
    assert llm.requests[0].path == _provider(llm.url).request_url(MODEL)[len(llm.url):]


def test_botocore_sees_the_scripted_exception_frame(llm):
    from botocore.exceptions import EventStreamError

    llm.enqueue(Turn(text="a", error_type="throttlingException", error_message="slow down"))
    response = _boto_client(llm.url).converse_stream(
        modelId=MODEL, messages=[{"role": "user", "content": [{"text": "hi"}]}])
    with pytest.raises(EventStreamError, match="throttlingException.*slow down"):
        list(response["stream"])
    # botocore stops at the exception frame; drain the chunked terminator it left unread so
    # closing the socket is a clean FIN, not a reset the server would log
    response["stream"]._raw_stream.read()
