"""v1.0 <-> v0.3 conversions, checked object by object against a2a-sdk's own converters
(``a2a.compat.v0_3.conversions``) and protobuf types: our v1.0 dicts must parse with
``json_format.ParseDict`` into ``a2a_pb2`` messages and equal what the SDK produces, and our v0.3
dicts must validate as the SDK's v0.3 pydantic models and equal the SDK's output."""

from __future__ import annotations

import copy

import pytest
from a2a.compat.v0_3 import conversions as sdk
from a2a.compat.v0_3 import types as t03
from a2a.types import a2a_pb2 as pb
from google.protobuf.json_format import MessageToDict, ParseDict

from codetether.a2a import dialects as d

TS = "2025-01-02T03:04:05Z"

TEXT = {"kind": "text", "text": "hello", "metadata": {"lang": "en"}}
DATA = {"kind": "data", "data": {"key": "value", "count": 42}}
FILE_BYTES = {"kind": "file", "file": {"bytes": "aGVsbG8=", "name": "a.txt",
                                       "mimeType": "text/plain"}}
FILE_URI = {"kind": "file", "file": {"uri": "https://example.com/a.png", "mimeType": "image/png"},
            "metadata": {"n": 1}}
MESSAGE = {"kind": "message", "messageId": "m1", "role": "user", "contextId": "c1",
           "taskId": "t1", "parts": [TEXT, DATA, FILE_BYTES, FILE_URI],
           "metadata": {"codetether.intro": True}, "extensions": ["https://ext/1"],
           "referenceTaskIds": ["t0"]}
AGENT_MESSAGE = {"kind": "message", "messageId": "m2", "role": "agent",
                 "parts": [{"kind": "text", "text": "done"}]}
ARTIFACT = {"artifactId": "a1", "name": "response", "description": "the answer",
            "parts": [TEXT, DATA], "metadata": {"x": "y"}, "extensions": ["https://ext/2"]}
STATUS = {"state": "input-required", "message": AGENT_MESSAGE, "timestamp": TS}
TASK = {"kind": "task", "id": "t1", "contextId": "c1",
        "status": {"state": "completed", "timestamp": TS},
        "history": [MESSAGE, AGENT_MESSAGE], "artifacts": [ARTIFACT], "metadata": {"k": [1, 2]}}
BARE_TASK = {"kind": "task", "id": "t2", "contextId": "c2", "status": {"state": "submitted"}}
STATUS_UPDATE = {"kind": "status-update", "taskId": "t1", "contextId": "c1",
                 "status": {"state": "completed", "timestamp": TS}, "final": True,
                 "metadata": {"m": "n"}}
WORKING_UPDATE = {"kind": "status-update", "taskId": "t1", "contextId": "c1",
                  "status": {"state": "working"}, "final": False}
ARTIFACT_UPDATE = {"kind": "artifact-update", "taskId": "t1", "contextId": "c1",
                   "artifact": {"artifactId": "a1", "parts": [{"kind": "text", "text": "chunk"}]},
                   "append": True, "lastChunk": False, "metadata": {"seq": 2}}
PUSH = {"id": "p1", "url": "https://hooks.example.com/a2a", "token": "tok",
        "authentication": {"schemes": ["Bearer"], "credentials": "secret"}}
TASK_PUSH = {"taskId": "t1", "pushNotificationConfig": PUSH}
SEND_PARAMS = {"message": MESSAGE, "metadata": {"trace": "1"},
               "configuration": {"acceptedOutputModes": ["text/plain"], "historyLength": 5,
                                 "blocking": False, "pushNotificationConfig": PUSH}}
CARD = {
    "protocolVersion": "0.3.0", "name": "Echo", "description": "echoes", "version": "1.2.3",
    "url": "http://127.0.0.1:9999/", "preferredTransport": "JSONRPC",
    "additionalInterfaces": [{"url": "http://127.0.0.1:9999/", "transport": "JSONRPC"},
                             {"url": "127.0.0.1:50051", "transport": "GRPC"}],
    "provider": {"organization": "CodeTether", "url": "https://codetether.run"},
    "documentationUrl": "https://docs.example.com", "iconUrl": "https://example.com/i.png",
    "capabilities": {"streaming": True, "pushNotifications": False,
                     "extensions": [{"uri": "https://ext/1", "description": "e",
                                     "required": False, "params": {"a": 1}}]},
    "supportsAuthenticatedExtendedCard": True,
    "securitySchemes": {
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "opaque",
                   "description": "token"},
        "key": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        "oauth": {"type": "oauth2", "oauth2MetadataUrl": "https://auth/.well-known",
                  "flows": {"clientCredentials": {"tokenUrl": "https://auth/token",
                                                  "scopes": {"read": "read things"}}}},
        "oidc": {"type": "openIdConnect", "openIdConnectUrl": "https://auth/oidc"},
        "mtls": {"type": "mutualTLS", "description": "client certs"},
    },
    "security": [{"bearer": []}, {"oauth": ["read"]}],
    "defaultInputModes": ["text/plain"], "defaultOutputModes": ["text/plain", "application/json"],
    "skills": [{"id": "code", "name": "Code", "description": "writes code", "tags": ["dev"],
                "examples": ["fix the bug"], "inputModes": ["text/plain"],
                "outputModes": ["text/plain"], "security": [{"bearer": []}]}],
    "signatures": [{"protected": "eyJhbGciOiJFUzI1NiJ9", "signature": "c2ln",
                    "header": {"kid": "1"}}],
}

# (name, v0.3 pydantic type, v1.0 protobuf type, sdk to_core, sdk to_compat, ours to v1, to v03)
KINDS = {
    "part": (t03.Part, pb.Part, sdk.to_core_part, sdk.to_compat_part, d.to_v1_part,
             d.to_v03_part),
    "message": (t03.Message, pb.Message, sdk.to_core_message, sdk.to_compat_message,
                d.to_v1_message, d.to_v03_message),
    "status": (t03.TaskStatus, pb.TaskStatus, sdk.to_core_task_status,
               sdk.to_compat_task_status, d.to_v1_status, d.to_v03_status),
    "task": (t03.Task, pb.Task, sdk.to_core_task, sdk.to_compat_task, d.to_v1_task,
             d.to_v03_task),
    "artifact": (t03.Artifact, pb.Artifact, sdk.to_core_artifact, sdk.to_compat_artifact,
                 d.to_v1_artifact, d.to_v03_artifact),
    "status_update": (t03.TaskStatusUpdateEvent, pb.TaskStatusUpdateEvent,
                      sdk.to_core_task_status_update_event,
                      sdk.to_compat_task_status_update_event, d.to_v1_status_update,
                      d.to_v03_status_update),
    "artifact_update": (t03.TaskArtifactUpdateEvent, pb.TaskArtifactUpdateEvent,
                        sdk.to_core_task_artifact_update_event,
                        sdk.to_compat_task_artifact_update_event, d.to_v1_artifact_update,
                        d.to_v03_artifact_update),
    "push": (t03.PushNotificationConfig, pb.TaskPushNotificationConfig,
             sdk.to_core_push_notification_config, sdk.to_compat_push_notification_config,
             d.to_v1_push_config, d.to_v03_push_config),
    "task_push": (t03.TaskPushNotificationConfig, pb.TaskPushNotificationConfig,
                  sdk.to_core_task_push_notification_config,
                  sdk.to_compat_task_push_notification_config, d.to_v1_push_config,
                  d.to_v03_task_push_config),
    "card": (t03.AgentCard, pb.AgentCard, sdk.to_core_agent_card, sdk.to_compat_agent_card,
             d.to_v1_card, d.to_v03_card),
}

SAMPLES = [
    ("part", TEXT), ("part", DATA), ("part", FILE_BYTES), ("part", FILE_URI),
    ("part", {"kind": "text", "text": ""}),
    ("message", MESSAGE), ("message", AGENT_MESSAGE),
    ("status", STATUS), ("status", {"state": "working"}),
    ("task", TASK), ("task", BARE_TASK),
    ("artifact", ARTIFACT),
    ("status_update", STATUS_UPDATE), ("status_update", WORKING_UPDATE),
    ("artifact_update", ARTIFACT_UPDATE),
    ("push", PUSH), ("push", {"url": "https://h/x"}),
    ("task_push", TASK_PUSH),
    ("card", CARD),
]


def _v03(kind: str, obj: dict) -> dict:
    """Normalise a v0.3 dict through the SDK's pydantic model (so defaults compare equal)."""
    model = KINDS[kind][0]
    return model.model_validate(obj).model_dump(by_alias=True, exclude_none=True, mode="json")


def _v1(kind: str, obj: dict) -> dict:
    """Parse with protobuf (fails on any wrong field or enum) and print back canonically."""
    return MessageToDict(ParseDict(obj, KINDS[kind][1]()))


@pytest.mark.parametrize("kind,obj", SAMPLES, ids=[f"{k}-{i}" for i, (k, _) in enumerate(SAMPLES)])
def test_v03_to_v1_agrees_with_the_sdk_and_round_trips(kind, obj):
    model, _pb, to_core, _to_compat, ours_v1, ours_v03 = KINDS[kind]
    original = copy.deepcopy(obj)
    ours = ours_v1(obj)
    assert obj == original  # inputs are not mutated
    expected = MessageToDict(to_core(model.model_validate(obj)))
    assert ours == expected
    assert _v1(kind, ours) == expected
    back = ours_v03(ours)
    assert _v03(kind, back) == _v03(kind, obj)


@pytest.mark.parametrize("kind,obj", SAMPLES, ids=[f"{k}-{i}" for i, (k, _) in enumerate(SAMPLES)])
def test_v1_to_v03_agrees_with_the_sdk(kind, obj):
    model, pb_type, to_core, to_compat, ours_v1, ours_v03 = KINDS[kind]
    v1 = MessageToDict(to_core(model.model_validate(obj)))
    ours = ours_v03(v1)
    expected = to_compat(ParseDict(v1, pb_type())).model_dump(by_alias=True, exclude_none=True,
                                                              mode="json")
    if kind == "card":  # the SDK keeps the legacy "0.3" version string of the interface
        expected["protocolVersion"] = ours["protocolVersion"]
    assert _v03(kind, ours) == expected
    assert ours_v1(ours) == v1 or kind == "card"


def test_card_round_trip_keeps_every_interface_and_field():
    v1 = d.to_v1_card(CARD)
    assert [i["protocolBinding"] for i in v1["supportedInterfaces"]] == ["JSONRPC", "JSONRPC",
                                                                         "GRPC"]
    assert v1["capabilities"]["extendedAgentCard"] is True
    assert v1["securitySchemes"]["bearer"] == {"httpAuthSecurityScheme": {
        "scheme": "bearer", "bearerFormat": "opaque", "description": "token"}}
    assert v1["securityRequirements"][1] == {"schemes": {"oauth": {"list": ["read"]}}}
    back = d.to_v03_card(v1)
    assert _v03("card", back) == _v03("card", CARD)


def test_v1_only_card_still_converts_for_old_clients():
    card = {"name": "ct", "description": "", "version": "1",
            "supportedInterfaces": [{"url": "http://h/", "protocolBinding": "JSONRPC",
                                     "protocolVersion": "1.0"},
                                    {"url": "h:50051", "protocolBinding": "GRPC",
                                     "protocolVersion": "1.0"}],
            "capabilities": {"streaming": True}}
    ParseDict(card, pb.AgentCard())
    old = d.to_v03_card(card)
    assert old["url"] == "http://h/" and old["protocolVersion"] == "0.3.0"
    assert old["additionalInterfaces"] == [{"url": "h:50051", "transport": "GRPC"}]
    t03.AgentCard.model_validate(old)
    assert d.card_protocol_versions(card) == ["1.0", "1.0"]
    assert d.card_protocol_versions(CARD) == ["0.3.0"]


def test_non_object_data_parts_survive_both_ways():
    for value in ([1, 2, 3], "text", 7, True, None):
        v1 = {"data": value}
        old = d.to_v03_part(v1)
        sdk_old = sdk.to_compat_part(ParseDict(v1, pb.Part())).model_dump(
            by_alias=True, exclude_none=True, mode="json")
        assert _v03("part", old) == sdk_old
        assert d.to_v1_part(old) == v1
        assert MessageToDict(sdk.to_core_part(t03.Part.model_validate(old))) == v1


@pytest.mark.parametrize("v03,v1", [(s, "TASK_STATE_" + s.upper().replace("-", "_"))
                                    for s in d.STATES_V03 if s != "unknown"]
                         + [("unknown", "TASK_STATE_UNSPECIFIED")])
def test_states_both_ways(v03, v1):
    assert d.state_to_v1(v03) == v1 and d.state_to_v03(v1) == v03
    assert d.state_to_v1(v1) == v1 and d.state_to_v03(v03) == v03
    assert pb.TaskState.Value(v1) >= 0


def test_state_spellings_and_predicates():
    assert d.state_to_v1("cancelled") == "TASK_STATE_CANCELED"
    assert d.state_to_v03("cancelled") == "canceled"
    assert d.state_to_v1("input_required") == "TASK_STATE_INPUT_REQUIRED"
    assert d.state_to_v1("bogus") == "TASK_STATE_UNSPECIFIED" and d.state_to_v03(None) == "unknown"
    assert d.is_terminal("completed") and d.is_terminal("TASK_STATE_REJECTED")
    assert not d.is_terminal("working") and d.is_interrupted("auth-required")


def test_status_update_final_flag():
    working = {"taskId": "t", "contextId": "c", "status": {"state": "TASK_STATE_WORKING"}}
    assert d.to_v03_status_update(working)["final"] is False
    done = {**working, "status": {"state": "TASK_STATE_FAILED"}}
    assert d.to_v03_status_update(done)["final"] is True
    # Our one deviation from the SDK: the stream ends at input-required, so final is true.
    asking = {**working, "status": {"state": "TASK_STATE_INPUT_REQUIRED"}}
    assert d.to_v03_status_update(asking)["final"] is True
    assert d.to_v03_status_update(asking, final=False)["final"] is False
    assert "final" not in d.to_v1_status_update(d.to_v03_status_update(done))


STREAM_SAMPLES = [TASK, AGENT_MESSAGE, STATUS_UPDATE, ARTIFACT_UPDATE]


@pytest.mark.parametrize("result", STREAM_SAMPLES, ids=lambda r: r["kind"])
def test_stream_responses_both_ways(result):
    wrapped = t03.SendStreamingMessageSuccessResponse(id=1, result=result)
    expected = MessageToDict(sdk.to_core_stream_response(wrapped))
    ours = d.to_v1_stream_response(result)
    assert ours == expected
    assert MessageToDict(ParseDict(ours, pb.StreamResponse())) == expected
    back = d.to_v03_stream_response(ours)
    sdk_back = sdk.to_compat_stream_response(ParseDict(ours, pb.StreamResponse()), 1)
    assert t03.SendStreamingMessageSuccessResponse(id=1, result=back).model_dump(
        by_alias=True, exclude_none=True, mode="json") == sdk_back.model_dump(
        by_alias=True, exclude_none=True, mode="json")
    assert d.to_v1_stream_response(ours) == ours  # already v1: unchanged
    with pytest.raises(ValueError):
        d.to_v03_stream_response({})


def test_send_params_both_ways():
    req = t03.SendMessageRequest(id=1, params=t03.MessageSendParams.model_validate(SEND_PARAMS))
    expected = MessageToDict(sdk.to_core_send_message_request(req))
    ours = d.to_v1_send_params(SEND_PARAMS)
    assert ours == expected
    assert ours["configuration"]["returnImmediately"] is True
    back = d.to_v03_send_params(ours)
    sdk_back = sdk.to_compat_send_message_request(ParseDict(ours, pb.SendMessageRequest()), 1)
    assert t03.MessageSendParams.model_validate(back).model_dump(
        by_alias=True, exclude_none=True, mode="json") == sdk_back.params.model_dump(
        by_alias=True, exclude_none=True, mode="json")


def test_method_tables():
    assert d.METHODS_V1["send"] == "SendMessage" and d.METHODS_V03["send"] == "message/send"
    assert d.method_dialect("SendStreamingMessage") == "1.0"
    assert d.method_dialect("tasks/resubscribe") == "0.3"
    assert d.method_dialect("nope") is None
    assert d.OPERATION_OF_METHOD["tasks/pushNotificationConfig/list"] == "push_list"
    assert "list" not in d.METHODS_V03  # v0.3 JSON-RPC has no ListTasks
    for method in d.METHODS_V1.values():
        assert pb.DESCRIPTOR.services_by_name["A2AService"].methods_by_name[method]


def test_request_conversions_per_operation():
    assert d.request_to_v1("push_get", {"id": "t", "pushNotificationConfigId": "p"}) == \
        {"taskId": "t", "id": "p"}
    assert d.request_to_v03("push_delete", {"taskId": "t", "id": "p"}) == \
        {"id": "t", "pushNotificationConfigId": "p"}
    assert d.request_to_v1("push_list", {"id": "t"}) == {"taskId": "t"}
    assert d.request_to_v03("push_list", {"taskId": "t"}) == {"id": "t"}
    assert d.request_to_v1("push_set", TASK_PUSH) == d.to_v1_push_config(TASK_PUSH)
    flat = d.request_to_v1("push_set", TASK_PUSH)
    assert flat == {"id": "p1", "taskId": "t1", "url": "https://hooks.example.com/a2a",
                    "token": "tok", "authentication": {"scheme": "Bearer",
                                                       "credentials": "secret"}}
    assert d.request_to_v03("push_set", flat) == TASK_PUSH
    assert d.request_to_v1("get", {"id": "t", "historyLength": 0}) == {"id": "t"}
    assert d.request_to_v03("get", {"id": "t", "tenant": "x", "historyLength": 2}) == \
        {"id": "t", "historyLength": 2}
    assert d.request_to_v1("cancel", {"id": "t"}) == {"id": "t"}
    ParseDict(d.request_to_v1("send", SEND_PARAMS), pb.SendMessageRequest())


def test_response_conversions_per_operation():
    v1_task = d.to_v1_task(TASK)
    assert d.response_to_v1("get", TASK) == v1_task
    assert d.response_to_v03("cancel", v1_task) == d.to_v03_task(v1_task)
    assert d.response_to_v1("send", AGENT_MESSAGE) == {"message": d.to_v1_message(AGENT_MESSAGE)}
    assert d.response_to_v03("send", {"task": v1_task})["kind"] == "task"
    listed = d.response_to_v1("push_list", [TASK_PUSH])
    ParseDict(listed, pb.ListTaskPushNotificationConfigsResponse())
    assert d.response_to_v03("push_list", listed) == [TASK_PUSH]
    assert d.response_to_v03("push_delete", {}) is None and d.response_to_v1("push_delete", None) \
        == {}
    assert d.response_to_v1("extended_card", CARD) == d.to_v1_card(CARD)


def test_helpers():
    msg = d.text_message("hi", "m1", context_id="c1")
    assert msg == {"messageId": "m1", "role": "ROLE_USER", "parts": [{"text": "hi"}],
                   "contextId": "c1"}
    ParseDict(msg, pb.Message())
    assert d.message_text(MESSAGE) == "hello" and d.message_text(msg) == "hi"
    assert d.message_text(None) == ""
    assert d.to_v1_part({"text": "x"}) == {"text": "x"}  # already v1
    assert d.to_v03_part(TEXT) == TEXT  # already v0.3
    with pytest.raises(ValueError):
        d.to_v1_part({"kind": "video"})
    with pytest.raises(ValueError):
        d.to_v03_part({"metadata": {}})
