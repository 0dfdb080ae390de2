"""The A2A v1.0 HTTP+JSON binding over real HTTP: routes, tenant prefix, SSE, error bodies."""

from __future__ import annotations

import json

import httpx
import pytest

from codetether.core.sse import parse_sse
from tests.test_a2a_jsonrpc import AUTH, A2AServer, message

V1 = {**AUTH, "A2A-Version": "1.0"}


@pytest.fixture
def a2a(tmp_path):
    server = A2AServer(tmp_path / "tasks.db")
    yield server
    server.stop()


def post(a2a, path, body=None, **kw):
    return httpx.post(a2a.url + path, json=body, headers=V1, timeout=30, **kw)


def get(a2a, path, **kw):
    return httpx.get(a2a.url + path, headers=V1, timeout=30, **kw)


def sse(a2a, method, path, body=None):
    with httpx.stream(method, a2a.url + path, json=body, headers=V1, timeout=30) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        return [json.loads(e.data) for e in parse_sse(resp.iter_lines())]


def assert_error(response, status, reason):
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == status and error["message"] and error["status"]
    assert error["details"][0]["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
    assert error["details"][0]["reason"] == reason


def test_send_get_list(a2a):
    response = post(a2a, "/message:send", message("tck-artifact-text-1"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    task = response.json()["task"]
    assert task["artifacts"][0]["parts"] == [{"text": "Generated text content"}]
    got = get(a2a, f"/tasks/{task['id']}", params={"historyLength": 1}).json()
    assert got["id"] == task["id"] and len(got["history"]) == 1
    post(a2a, "/message:send", message("tck-reject-task-1", contextId="ctx-r"))
    listed = get(a2a, "/tasks", params={"contextId": "ctx-r", "pageSize": 5}).json()
    assert listed["totalSize"] == 1
    assert listed["tasks"][0]["status"]["state"] == "TASK_STATE_REJECTED"
    by_state = get(a2a, "/tasks", params={"status": "TASK_STATE_COMPLETED",
                                          "includeArtifacts": "true"}).json()
    assert [t["id"] for t in by_state["tasks"]] == [task["id"]]
    assert by_state["tasks"][0]["artifacts"]
    direct = post(a2a, "/message:send", message("tck-message-response-1")).json()
    assert direct["message"]["parts"] == [{"text": "Direct message response"}]


def test_tenant_prefix(a2a):
    task = post(a2a, "/acme/message:send", message("m-1")).json()["task"]
    assert get(a2a, f"/acme/tasks/{task['id']}").json()["id"] == task["id"]
    assert get(a2a, "/acme/tasks").json()["totalSize"] == 1


def test_stream_and_subscribe(a2a):
    events = sse(a2a, "POST", "/message:stream", message("tck-stream-ordering-001-a"))
    assert [next(iter(e)) for e in events] == ["task", "statusUpdate", "artifactUpdate",
                                               "statusUpdate"]
    assert events[2]["artifactUpdate"]["artifact"]["parts"] == [{"text": "Ordered output"}]
    held = post(a2a, "/message:send", {**message("echo-hold-1"),
                                       "configuration": {"returnImmediately": True}}).json()
    task_id = held["task"]["id"]
    with httpx.stream("GET", a2a.url + f"/tasks/{task_id}:subscribe", headers=V1,
                      timeout=30) as resp:
        lines = resp.iter_lines()
        events = parse_sse(lines)
        first = json.loads(next(events).data)
        assert first["task"]["id"] == task_id
        a2a.hold.set()
        rest = [json.loads(e.data) for e in events]
    assert rest[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"
    assert_error(post(a2a, f"/tasks/{task_id}:subscribe"), 400, "UNSUPPORTED_OPERATION")


def test_cancel(a2a):
    held = post(a2a, "/message:send", {**message("echo-hold-2"),
                                       "configuration": {"returnImmediately": True}}).json()
    task_id = held["task"]["id"]
    canceled = post(a2a, f"/tasks/{task_id}:cancel", {})
    assert canceled.json()["status"]["state"] == "TASK_STATE_CANCELED"
    assert_error(post(a2a, f"/tasks/{task_id}:cancel", {}), 409, "TASK_NOT_CANCELABLE")  # spec §5.4
    assert_error(post(a2a, "/tasks/nope:cancel", {}), 404, "TASK_NOT_FOUND")


def test_push_config_routes(a2a):
    task = post(a2a, "/message:send", message("m-1")).json()["task"]
    base = f"/tasks/{task['id']}/pushNotificationConfigs"
    made = post(a2a, base, {"taskId": task["id"], "url": "http://127.0.0.1:9/hook",
                            "token": "t"}).json()
    assert made["taskId"] == task["id"] and made["id"]
    assert get(a2a, f"{base}/{made['id']}").json() == made
    assert get(a2a, base).json()["configs"] == [made]
    deleted = httpx.delete(a2a.url + f"{base}/{made['id']}", headers=V1)
    assert deleted.status_code == 200 and deleted.json() == {}
    assert_error(get(a2a, f"{base}/{made['id']}"), 404, "TASK_NOT_FOUND")
    assert_error(post(a2a, base, {"url": "http://127.0.0.1:9/x", "taskId": "other"}), 400,
                 "INVALID_PARAMS")


@pytest.mark.parametrize("call,status,reason", [
    (lambda a: get(a, "/tasks/missing"), 404, "TASK_NOT_FOUND"),
    (lambda a: httpx.post(a.url + "/message:send", content=b"{nope", headers=V1), 400,
     "PARSE_ERROR"),
    (lambda a: httpx.post(a.url + "/message:send", content=b"[1]", headers=V1), 400,
     "INVALID_PARAMS"),
    (lambda a: post(a, "/message:send", {"message": {"messageId": "x"}}), 400,
     "INVALID_PARAMS"),
    (lambda a: get(a, "/tasks", params={"pageSize": "lots"}), 400, "INVALID_PARAMS"),
    (lambda a: get(a, "/tasks/x", params={"historyLength": "-1"}), 400, "INVALID_PARAMS"),
    (lambda a: httpx.get(a.url + "/tasks", headers={**AUTH, "A2A-Version": "0.3"}), 400,
     "VERSION_NOT_SUPPORTED"),
])
def test_errors(a2a, call, status, reason):
    assert_error(call(a2a), status, reason)
    assert get(a2a, "/tasks").status_code == 200  # still serving


def test_extended_card_and_auth(a2a):
    card = get(a2a, "/extendedAgentCard").json()
    assert "shell" in {s["id"] for s in card["skills"]}
    assert httpx.get(a2a.url + "/extendedAgentCard").status_code == 401
    assert httpx.post(a2a.url + "/message:send", json=message("m")).status_code == 401
