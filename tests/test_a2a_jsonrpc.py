"""The A2A JSON-RPC endpoint over real HTTP: both dialects, SSE, version checks, the bad-input
table, push delivery to a real webhook (with a retry after a 500) and restart survival."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from codetether.a2a.card import mount_card
from codetether.a2a.executors import EchoExecutor
from codetether.a2a.jsonrpc_binding import mount_jsonrpc
from codetether.a2a.push import PushSender
from codetether.a2a.rest_binding import mount_rest
from codetether.a2a.service import A2AService, CardInfo
from codetether.a2a.store import TaskStore
from codetether.core.httpserver import App, TokenAuth
from codetether.core.sse import parse_sse

TOKEN = "tok"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
V1 = {**AUTH, "A2A-Version": "1.0"}
MAX_BODY = 256 * 1024


class A2AServer:
    """Our A2A server on 127.0.0.1:0 with the echo backend, as the tests build it."""

    def __init__(self, db_path, hold: threading.Event | None = None, push: bool = True) -> None:
        self.hold = hold or threading.Event()
        self.push = PushSender(allow_private=True, backoff=0.02) if push else None
        self.service = A2AService(TaskStore(db_path), EchoExecutor(hold=self.hold), CardInfo(),
                                  self.push)
        self.app = App(auth=TokenAuth({TOKEN: "tester"}), max_body=MAX_BODY)
        mount_jsonrpc(self.app, self.service)
        mount_rest(self.app, self.service)
        mount_card(self.app, self.service)
        self.server = self.app.serve("127.0.0.1", 0).start()
        self.url = self.server.url

    def stop(self) -> None:
        self.hold.set()
        self.service.shutdown()
        self.server.stop()
        self.service.store.close()


@pytest.fixture
def a2a(tmp_path):
    server = A2AServer(tmp_path / "tasks.db")
    yield server
    server.stop()


def rpc(a2a, method, params=None, headers=V1, id=1, path="/a2a"):
    body = {"jsonrpc": "2.0", "id": id, "method": method}
    if params is not None:
        body["params"] = params
    response = httpx.post(a2a.url + path, json=body, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def rpc_stream(a2a, method, params, headers=V1, id=7):
    body = {"jsonrpc": "2.0", "id": id, "method": method, "params": params}
    with httpx.stream("POST", a2a.url + "/a2a", json=body, headers=headers, timeout=30) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        return [json.loads(e.data) for e in parse_sse(resp.iter_lines())]


def message(message_id, text="hello", **extra):
    return {"message": {"messageId": message_id, "role": "ROLE_USER",
                        "parts": [{"text": text}], **extra}}


def message_v03(message_id, text="hello", **extra):
    return {"message": {"kind": "message", "messageId": message_id, "role": "user",
                        "parts": [{"kind": "text", "text": text}], **extra}}


def test_every_route_needs_the_token(a2a):
    assert httpx.post(a2a.url + "/a2a", json={}).status_code == 401
    assert httpx.post(a2a.url + "/", json={}, headers={"Authorization": "Bearer no"}
                      ).status_code == 401
    assert httpx.get(a2a.url + "/tasks").status_code == 401


def test_cards_are_public_in_both_dialects(a2a):
    card = httpx.get(a2a.url + "/.well-known/agent-card.json").json()
    bindings = {i["protocolBinding"]: i for i in card["supportedInterfaces"]}
    assert bindings["JSONRPC"]["url"] == a2a.url + "/a2a"
    assert bindings["HTTP+JSON"]["protocolVersion"] == "1.0"
    assert card["capabilities"] == {"streaming": True, "pushNotifications": True,
                                    "extendedAgentCard": True}
    assert "httpAuthSecurityScheme" in card["securitySchemes"]["bearer"]
    assert card["skills"]
    old = httpx.get(a2a.url + "/.well-known/agent.json").json()
    assert old["url"] == a2a.url + "/a2a" and old["protocolVersion"].startswith("0.3")
    assert old["securitySchemes"]["bearer"]["type"] == "http"
    asked = httpx.get(a2a.url + "/.well-known/agent-card.json",
                      headers={"A2A-Version": "0.3"}).json()
    assert asked["url"] == old["url"]


def test_v1_send_get_list_cancel(a2a):
    sent = rpc(a2a, "SendMessage", message("tck-artifact-text-1"))
    task = sent["result"]["task"]
    assert sent["id"] == 1 and task["status"]["state"] == "TASK_STATE_COMPLETED"
    got = rpc(a2a, "GetTask", {"id": task["id"], "historyLength": 1}, id="s-1")
    assert got["id"] == "s-1" and len(got["result"]["history"]) == 1
    listed = rpc(a2a, "ListTasks", {"pageSize": 10})["result"]
    assert listed["totalSize"] == 1 and listed["tasks"][0]["id"] == task["id"]
    error = rpc(a2a, "CancelTask", {"id": task["id"]})["error"]
    assert error["code"] == -32002 and error["data"][0]["reason"] == "TASK_NOT_CANCELABLE"
    # a missing version header is accepted for v1.0 method names; POST / works like /a2a
    assert "result" in rpc(a2a, "GetTask", {"id": task["id"]}, headers=AUTH, path="/")


def test_v1_errors_carry_error_info(a2a):
    error = rpc(a2a, "GetTask", {"id": "missing"})["error"]
    assert error["code"] == -32001
    assert error["data"] == [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                              "reason": "TASK_NOT_FOUND", "domain": "a2a-protocol.org",
                              "metadata": {"taskId": "missing"}}]
    done = rpc(a2a, "SendMessage", message("m-1"))["result"]["task"]
    sub = rpc(a2a, "SubscribeToTask", {"id": done["id"]})["error"]
    assert sub["code"] == -32004 and sub["data"][0]["reason"] == "UNSUPPORTED_OPERATION"
    card = rpc(a2a, "GetExtendedAgentCard", {})["result"]
    assert {s["id"] for s in card["skills"]} >= {"code", "shell"}


def test_v1_stream_is_sse_of_jsonrpc_responses(a2a):
    events = rpc_stream(a2a, "SendStreamingMessage", message("tck-stream-001-x"))
    assert {e["id"] for e in events} == {7}
    results = [e["result"] for e in events]
    assert [next(iter(r)) for r in results] == ["task", "statusUpdate", "artifactUpdate",
                                                "statusUpdate"]
    assert results[2]["artifactUpdate"]["artifact"]["parts"] == [{"text":
                                                                   "Stream hello from TCK"}]
    assert results[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"
    assert "final" not in results[-1]["statusUpdate"]


def test_v03_methods(a2a):
    headers = {**AUTH, "A2A-Version": "0.3"}
    task = rpc(a2a, "message/send", message_v03("tck-artifact-file-1"), headers)["result"]
    assert task["kind"] == "task" and task["status"]["state"] == "completed"
    part = task["artifacts"][0]["parts"][0]
    assert part["kind"] == "file" and part["file"]["name"] == "output.txt"
    got = rpc(a2a, "tasks/get", {"id": task["id"]}, headers=AUTH)["result"]
    assert got["id"] == task["id"] and got["kind"] == "task"
    reply = rpc(a2a, "message/send", message_v03("tck-message-response-1"), headers)["result"]
    assert reply["kind"] == "message" and reply["role"] == "agent"
    error = rpc(a2a, "tasks/get", {"id": "missing"}, headers)["error"]
    assert error["code"] == -32001 and not isinstance(error.get("data"), list)
    events = rpc_stream(a2a, "message/stream", message_v03("tck-stream-artifact-chunked-1"),
                        headers)
    kinds = [e["result"]["kind"] for e in events]
    assert kinds == ["task", "status-update", "artifact-update", "artifact-update",
                     "status-update"]
    assert events[-1]["result"]["final"] is True
    assert events[-1]["result"]["status"]["state"] == "completed"


def test_v03_push_config_methods(a2a):
    task = rpc(a2a, "message/send", message_v03("m-1"), AUTH)["result"]
    config = {"taskId": task["id"], "pushNotificationConfig": {
        "id": "c1", "url": "http://127.0.0.1:9/hook", "token": "t",
        "authentication": {"schemes": ["Bearer"], "credentials": "secret"}}}
    made = rpc(a2a, "tasks/pushNotificationConfig/set", config, AUTH)["result"]
    assert made["taskId"] == task["id"]
    assert made["pushNotificationConfig"]["authentication"]["schemes"] == ["Bearer"]
    got = rpc(a2a, "tasks/pushNotificationConfig/get",
              {"id": task["id"], "pushNotificationConfigId": "c1"}, AUTH)["result"]
    assert got["pushNotificationConfig"]["url"] == "http://127.0.0.1:9/hook"
    listed = rpc(a2a, "tasks/pushNotificationConfig/list", {"id": task["id"]}, AUTH)["result"]
    assert [c["pushNotificationConfig"]["id"] for c in listed] == ["c1"]
    deleted = rpc(a2a, "tasks/pushNotificationConfig/delete",
                  {"id": task["id"], "pushNotificationConfigId": "c1"}, AUTH)
    assert deleted["result"] is None
    assert rpc(a2a, "tasks/pushNotificationConfig/list", {"id": task["id"]}, AUTH
               )["result"] == []


@pytest.mark.parametrize("method,version", [
    ("SendMessage", "0.3"), ("GetTask", "2.0"), ("tasks/get", "1.0"), ("GetTask", "banana"),
    ("message/send", "0.9"),
])
def test_version_mismatch_is_32009(a2a, method, version):
    params = {"id": "x"} if "et" in method.lower() else message("m")
    error = rpc(a2a, method, params, headers={**AUTH, "A2A-Version": version})["error"]
    assert error["code"] == -32009


BAD_INPUTS = [
    (b"{not json", -32700),
    (b"", -32600),
    (b"42", -32600),
    (b"[]", -32600),
    (b'[{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":"x"}}]', -32600),
    (b'{"id":1,"method":"GetTask"}', -32600),
    (b'{"jsonrpc":"1.0","id":1,"method":"GetTask"}', -32600),
    (b'{"jsonrpc":"2.0","id":1,"method":5}', -32600),
    (b'{"jsonrpc":"2.0","id":{"a":1},"method":"GetTask","params":{"id":"x"}}', -32600),
    (b'{"jsonrpc":"2.0","id":true,"method":"GetTask","params":{"id":"x"}}', -32600),
    (b'{"jsonrpc":"2.0","id":1,"method":"NoSuchMethod","params":{}}', -32601),
    (b'{"jsonrpc":"2.0","id":1,"method":"tasks/list","params":{}}', -32601),
    (b'{"jsonrpc":"2.0","id":1,"method":"GetTask","params":[1,2]}', -32602),
    (b'{"jsonrpc":"2.0","id":1,"method":"GetTask","params":"x"}', -32602),
    (b'{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":5}}', -32602),
    (b'{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":"x","historyLength":-2}}',
     -32602),
    (b'{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{}}', -32602),
    (b'{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":{"messageId":"a",'
     b'"role":"ROLE_USER","parts":"text"}}}', -32602),
    (b'{"jsonrpc":"2.0","id":1,"method":"SendStreamingMessage","params":{"message":7}}', -32602),
    (b'{"jsonrpc":"2.0","id":1,"method":"ListTasks","params":{"pageSize":"many"}}', -32602),
    (b'{"jsonrpc":"2.0","id":1,"method":"message/send","params":{"message":[]}}', -32602),
    (b'{"jsonrpc":"2.0","id":1,"method":"CreateTaskPushNotificationConfig",'
     b'"params":{"taskId":"nope","url":"http://127.0.0.1/x"}}', -32001),
    ("\udcff".encode("utf-8", "surrogatepass"), -32700),
]


@pytest.mark.parametrize("body,code", BAD_INPUTS)
def test_bad_input_table(a2a, body, code):
    response = httpx.post(a2a.url + "/a2a", content=body,
                          headers={**AUTH, "Content-Type": "application/json"}, timeout=10)
    assert response.status_code == 200
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    assert "Traceback" not in response.text
    # the server keeps serving
    assert rpc(a2a, "ListTasks", {})["result"]["totalSize"] >= 0


def test_huge_body_is_refused_and_the_server_keeps_serving(a2a):
    huge = b'{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"x":"' + \
        b"a" * (MAX_BODY + 10) + b'"}}'
    response = httpx.post(a2a.url + "/a2a", content=huge, headers=V1, timeout=10)
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == -32600 and "limit" in error["message"]
    assert rpc(a2a, "ListTasks", {})["result"]["totalSize"] == 0


class Webhook:
    """A receiver on 127.0.0.1 that fails its first ``fail_first`` requests with a 500."""

    def __init__(self, fail_first: int = 1) -> None:
        self.requests: list[tuple[dict, dict]] = []
        self.fail_first = fail_first
        self.cond = threading.Condition()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with hook.cond:
                    hook.requests.append((dict(self.headers), body))
                    failing = len(hook.requests) <= hook.fail_first
                    hook.cond.notify_all()
                self.send_response(500 if failing else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: predicate(self.requests), timeout)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook():
    hook = Webhook(fail_first=1)
    yield hook
    hook.stop()


def _completed(requests) -> bool:
    return any(b.get("statusUpdate", {}).get("status", {}).get("state") ==
               "TASK_STATE_COMPLETED" for _, b in requests)


def test_push_delivery_with_retry_after_500(a2a, webhook):
    params = {**message("echo-hold-push"), "configuration": {"returnImmediately": True}}
    task = rpc(a2a, "SendMessage", params)["result"]["task"]
    config = {"taskId": task["id"], "url": webhook.url, "token": "note-token",
              "authentication": {"scheme": "Bearer", "credentials": "hook-secret"}}
    made = rpc(a2a, "CreateTaskPushNotificationConfig", config)["result"]
    assert made["url"] == webhook.url and made["id"]
    a2a.hold.set()
    assert webhook.wait_for(_completed)
    headers, first = webhook.requests[0]
    assert headers["Authorization"] == "Bearer hook-secret"
    assert headers["X-A2A-Notification-Token"] == "note-token"
    assert headers["Content-Type"] == "application/a2a+json"
    # the first POST got a 500 and was delivered again: at least once, in order
    bodies = [b for _, b in webhook.requests]
    assert bodies[0] == bodies[1]
    states = [b["statusUpdate"]["status"]["state"] for b in bodies[1:] if "statusUpdate" in b]
    assert states[-1] == "TASK_STATE_COMPLETED"
    assert a2a.push.wait_idle() and a2a.push.stats.retried >= 1
    listed = rpc(a2a, "ListTaskPushNotificationConfigs", {"taskId": task["id"]})["result"]
    assert [c["id"] for c in listed["configs"]] == [made["id"]]
    got = rpc(a2a, "GetTaskPushNotificationConfig", {"taskId": task["id"], "id": made["id"]})
    assert got["result"]["token"] == "note-token"
    assert rpc(a2a, "DeleteTaskPushNotificationConfig",
               {"taskId": task["id"], "id": made["id"]})["result"] == {}


def test_push_config_inline_with_send_and_v03_body(a2a, webhook):
    webhook.fail_first = 0
    params = {**message("tck-complete-task-push"), "configuration": {
        "taskPushNotificationConfig": {"url": webhook.url, "token": "inline"}}}
    task = rpc(a2a, "SendMessage", params)["result"]["task"]
    assert webhook.wait_for(_completed)
    assert webhook.requests[-1][1]["statusUpdate"]["taskId"] == task["id"]
    # a config registered over v0.3 receives the Task itself, as v0.3 senders do
    hold_task = rpc(a2a, "message/send", {**message_v03("echo-hold-v03"),
                                          "configuration": {"blocking": False}}, AUTH)["result"]
    rpc(a2a, "tasks/pushNotificationConfig/set", {"taskId": hold_task["id"],
        "pushNotificationConfig": {"url": webhook.url}}, AUTH)
    a2a.hold.set()
    assert webhook.wait_for(lambda reqs: any(b.get("kind") == "task" and b["status"]["state"] ==
                                             "completed" for _, b in reqs))


def test_push_refused_for_loopback_unless_allowed(tmp_path):
    server = A2AServer(tmp_path / "strict.db")
    server.service.push = PushSender()  # the default: no private or loopback webhooks
    try:
        task = rpc(server, "SendMessage", message("m-1"))["result"]["task"]
        error = rpc(server, "CreateTaskPushNotificationConfig",
                    {"taskId": task["id"], "url": "http://127.0.0.1:9/hook"})["error"]
        assert error["code"] == -32602 and "allow-private-webhooks" in error["message"]
    finally:
        server.service.push.close()
        server.stop()


def test_no_push_capability_is_32003(tmp_path):
    server = A2AServer(tmp_path / "nopush.db", push=False)
    try:
        task = rpc(server, "SendMessage", message("m-1"))["result"]["task"]
        error = rpc(server, "ListTaskPushNotificationConfigs", {"taskId": task["id"]})["error"]
        assert error["code"] == -32003
    finally:
        server.stop()


def test_tasks_survive_a_restart(tmp_path):
    db = tmp_path / "tasks.db"
    first = A2AServer(db)
    done = rpc(first, "SendMessage", message("tck-artifact-data-1"))["result"]["task"]
    held = rpc(first, "SendMessage", {**message("echo-hold-1"),
                                      "configuration": {"returnImmediately": True}})
    held_id = held["result"]["task"]["id"]
    first.server.stop()  # the HTTP side goes away; the task is still "running" in the store
    second = A2AServer(db)  # a new service over the same file, as after a crash
    try:
        again = rpc(second, "GetTask", {"id": done["id"]})["result"]
        assert again == done
        failed = rpc(second, "GetTask", {"id": held_id})["result"]
        assert failed["status"]["state"] == "TASK_STATE_FAILED"
        assert failed["status"]["message"]["parts"][0]["text"] == "server restarted"
    finally:
        second.stop()
        first.hold.set()
        first.service.shutdown()
        first.service.store.close()
