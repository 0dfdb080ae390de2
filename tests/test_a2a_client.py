"""Our A2A client against a real a2a-sdk server (uvicorn on 127.0.0.1:0, both dialects on one
JSON-RPC endpoint): card, send, stream, get, list, cancel, subscribe, push config CRUD, typed
errors, auth, card fallbacks; and ``codetether a2a`` via ``cli.a2a_cmd.run``."""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from codetether.a2a.client import A2AClient, A2AClientError, task_text
from codetether.cli import a2a_cmd
from codetether.core.errors import CodetetherError
from tests.a2a_sdk_peer import start_peer

pytest.importorskip("uvicorn")


@pytest.fixture(scope="module")
def peer():
    p = start_peer()
    yield p
    p.stop()


@pytest.fixture(params=["1.0", "0.3"])
def client(request, peer):
    return A2AClient(peer.url, dialect=request.param, timeout=20)


def _methods_since(peer, mark):
    return peer.calls[mark:]


def test_card_and_auto_dialect(peer):
    c = A2AClient(peer.url, timeout=20)
    card = c.card()
    assert card["name"] == "sdk-echo" and card["skills"][0]["id"] == "echo"
    assert [i["protocolVersion"] for i in card["supportedInterfaces"]] == ["1.0", "0.3"]
    assert card["capabilities"]["streaming"] is True
    assert c.dialect == "1.0" and c.endpoint == peer.url
    assert c.raw_card["name"] == "sdk-echo"


def test_each_dialect_uses_its_own_method_names_and_headers(peer):
    mark = len(peer.calls)
    A2AClient(peer.url, dialect="1.0", timeout=20).send("hello")
    A2AClient(peer.url, dialect="0.3", timeout=20).send("hello")
    assert _methods_since(peer, mark) == [("SendMessage", "1.0"), ("message/send", None)]


def test_send_returns_a_v1_task(client):
    result = client.send("hello", metadata={"trace": "t1"})
    task = result["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    assert task["artifacts"][0]["parts"] == [{"text": "echo: hello"}]
    assert task["history"][0]["role"] == "ROLE_USER"
    assert task_text(result) == "echo: hello"


def test_send_can_get_a_message_back(client):
    result = client.send("reply please")
    assert set(result) == {"message"}
    assert result["message"]["role"] == "ROLE_AGENT"
    assert task_text(result) == "echo: reply please"


def test_send_continues_a_context_and_accepts_message_objects(client):
    first = client.send("hello")["task"]
    legacy_message = {"kind": "message", "messageId": "m-obj", "role": "user",
                      "parts": [{"kind": "text", "text": "again"}]}
    second = client.send(legacy_message, context_id=first["contextId"])["task"]
    assert second["contextId"] == first["contextId"]
    assert second["history"][0]["messageId"] == "m-obj"


def test_stream_yields_v1_stream_responses_in_order(client):
    events = list(client.stream("chunks"))
    kinds = [next(iter(e)) for e in events]
    assert kinds == ["task", "statusUpdate", "artifactUpdate", "artifactUpdate", "statusUpdate"]
    assert events[1]["statusUpdate"]["status"]["state"] == "TASK_STATE_WORKING"
    first, second = events[2]["artifactUpdate"], events[3]["artifactUpdate"]
    assert first["artifact"]["parts"] == [{"text": "chunk-1 "}] and not first.get("append")
    assert second["append"] is True and second["lastChunk"] is True
    assert events[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"
    assert "final" not in events[-1]["statusUpdate"]
    assert len({e[next(iter(e))].get("taskId") or e[next(iter(e))].get("id")
                for e in events}) == 1


def test_stream_ends_at_input_required(client):
    events = list(client.stream("ask me"))
    status = events[-1]["statusUpdate"]["status"]
    assert status["state"] == "TASK_STATE_INPUT_REQUIRED"
    assert status["message"]["parts"] == [{"text": "which?"}]


def test_get_and_get_unknown_task(client):
    task = client.send("hello")["task"]
    got = client.get(task["id"], history_length=1)
    assert got["id"] == task["id"] and got["status"]["state"] == "TASK_STATE_COMPLETED"
    with pytest.raises(A2AClientError) as err:
        client.get("no-such-task")
    assert err.value.code == -32001 and "task id" in err.value.hint
    assert isinstance(err.value, CodetetherError)


def test_cancel_of_a_completed_task_is_a_typed_error(client):
    task = client.send("hello")["task"]
    with pytest.raises(A2AClientError) as err:
        client.cancel(task["id"])
    assert err.value.code == -32002
    if client.dialect == "1.0":
        assert err.value.reason == "TASK_NOT_CANCELABLE"


def test_cancel_a_running_task_while_subscribed(client):
    started = client.send("wait for it", blocking=False)["task"]
    assert started["status"]["state"] in ("TASK_STATE_SUBMITTED", "TASK_STATE_WORKING")
    events = client.subscribe(started["id"])
    first = next(events)  # the subscription is live once the first event arrived
    assert first["task"]["id"] == started["id"]
    done: list[dict] = []
    reader = threading.Thread(target=lambda: done.extend(events))
    reader.start()
    canceled = client.cancel(started["id"])
    assert canceled["status"]["state"] == "TASK_STATE_CANCELED"
    reader.join(timeout=20)
    assert not reader.is_alive()
    assert done[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_CANCELED"
    assert client.get(started["id"])["status"]["state"] == "TASK_STATE_CANCELED"


def test_push_config_crud(client):
    task = client.send("hello")["task"]
    made = client.set_push_config(task["id"], "https://hooks.example.com/a2a", token="tok",
                                  config_id="cfg1")
    assert made == {"id": "cfg1", "taskId": task["id"], "url": "https://hooks.example.com/a2a",
                    "token": "tok"}
    assert client.get_push_config(task["id"], "cfg1") == made
    client.set_push_config(task["id"], "https://hooks.example.com/other", config_id="cfg2")
    assert sorted(c["id"] for c in client.list_push_configs(task["id"])) == ["cfg1", "cfg2"]
    client.delete_push_config(task["id"], "cfg1")
    assert [c["id"] for c in client.list_push_configs(task["id"])] == ["cfg2"]


def test_list_tasks_is_v1_only(peer):
    v1 = A2AClient(peer.url, dialect="1.0", timeout=20)
    task = v1.send("hello")["task"]
    listed = v1.list_tasks(context_id=task["contextId"])
    assert [t["id"] for t in listed["tasks"]] == [task["id"]]
    assert v1.list_tasks(status="completed", page_size=1)["tasks"]
    with pytest.raises(A2AClientError) as err:
        A2AClient(peer.url, dialect="0.3", timeout=20).list_tasks()
    assert err.value.code == -32004


def test_legacy_card_at_agent_json_means_v03():
    legacy = start_peer(versions=("0.3",), card_mode="legacy")
    try:
        c = A2AClient(legacy.url, timeout=20)
        assert c.card()["supportedInterfaces"][0]["protocolVersion"].startswith("0.3")
        assert "protocolVersion" in c.raw_card and "supportedInterfaces" not in c.raw_card
        assert c.dialect == "0.3"
        assert c.send("hello")["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
        assert legacy.calls[-1] == ("message/send", None)
    finally:
        legacy.stop()


def test_no_card_falls_back_to_the_url_in_v1():
    bare = start_peer(card_mode="none")
    try:
        c = A2AClient(bare.url, timeout=20)
        with pytest.raises(A2AClientError) as err:
            c.card()
        assert err.value.code == 404
        assert c.dialect == "1.0" and c.endpoint == bare.url
        assert c.send("hello")["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
    finally:
        bare.stop()


def test_bearer_token():
    secured = start_peer(token="s3cret")
    try:
        with pytest.raises(A2AClientError) as err:
            A2AClient(secured.url, timeout=20).send("hello")
        assert err.value.code == 401 and "CODETETHER_A2A_TOKEN" in err.value.hint
        ok = A2AClient(secured.url, token="s3cret", timeout=20).send("hello")
        assert ok["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
    finally:
        secured.stop()


def test_unreachable_and_bad_urls():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    with pytest.raises(A2AClientError) as err:
        A2AClient(f"http://127.0.0.1:{port}/", timeout=5).card()
    assert "cannot reach" in err.value.message and err.value.code is None
    for bad in ("ftp://x", "not a url", ""):
        with pytest.raises(A2AClientError):
            A2AClient(bad)
    with pytest.raises(A2AClientError):
        A2AClient("http://127.0.0.1:1/", dialect="2.0")


class _HtmlEverywhere(BaseHTTPRequestHandler):
    """A web server that is not an A2A agent: HTML for every GET and POST."""

    def do_GET(self):  # noqa: N802
        self._reply(200, "text/html", b"<html>hello</html>")

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.do_GET()

    def _reply(self, status, content_type, body):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _OldRpcServer(_HtmlEverywhere):
    """No card; every call is an HTTP 400 carrying a JSON-RPC "method not found"."""

    def do_GET(self):  # noqa: N802
        self._reply(404, "text/plain", b"not found")

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"jsonrpc": "2.0", "id": 1,
                           "error": {"code": -32601, "message": "Method not found"}})
        self._reply(400, "application/json", body.encode())


@pytest.fixture
def http_server():
    servers = []

    def start(handler):
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_web_page_is_not_an_agent(http_server):
    url = http_server(_HtmlEverywhere)
    with pytest.raises(A2AClientError) as err:
        A2AClient(url, timeout=5).card()
    assert "did not answer JSON" in err.value.message
    with pytest.raises(A2AClientError) as err:
        A2AClient(url, dialect="1.0", timeout=5).send("hi")
    assert "did not answer JSON" in err.value.message


def test_a_jsonrpc_error_inside_an_http_error_is_kept(http_server):
    url = http_server(_OldRpcServer)
    c = A2AClient(url, timeout=5)
    with pytest.raises(A2AClientError) as err:
        c.get("t")
    assert c.endpoint == url and c.dialect == "1.0"
    assert err.value.code == -32601 and "another A2A version" in err.value.hint
    with pytest.raises(A2AClientError) as err:
        list(c.stream("hi"))
    assert err.value.code == -32601


# -- CLI -------------------------------------------------------------------------------------

def _args(**kw):
    base = {"a2a_action": "card", "url": "", "message": None, "task_id": None, "stream": False,
            "json": False, "token": None, "context_id": None}
    base.update(kw)
    return argparse.Namespace(**base)


def test_cli_card(peer, capsys):
    assert a2a_cmd.run(_args(url=peer.url)) == 0
    out = capsys.readouterr().out
    assert out.startswith("sdk-echo 1.0.0") and "JSONRPC" in out and "skill  echo" in out
    assert a2a_cmd.run(_args(url=peer.url, json=True)) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "sdk-echo"


def test_cli_send_plain_json_and_stream(peer, capsys):
    assert a2a_cmd.run(_args(a2a_action="send", url=peer.url, message="hi")) == 0
    captured = capsys.readouterr()
    assert captured.out == "echo: hi\n" and "completed" in captured.err
    assert a2a_cmd.run(_args(a2a_action="send", url=peer.url, message="hi", json=True)) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
    assert a2a_cmd.run(_args(a2a_action="send", url=peer.url, message="chunks",
                             stream=True)) == 0
    captured = capsys.readouterr()
    assert captured.out == "chunk-1 chunk-2\n"
    assert "working" in captured.err and "completed" in captured.err
    assert a2a_cmd.run(_args(a2a_action="send", url=peer.url, message="chunks", stream=True,
                             json=True)) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [next(iter(e)) for e in lines][0] == "task" and len(lines) == 5


def test_cli_get_and_cancel(peer, capsys, monkeypatch):
    task = A2AClient(peer.url, timeout=20).send("hello")["task"]
    assert a2a_cmd.run(_args(a2a_action="get", url=peer.url, task_id=task["id"])) == 0
    assert capsys.readouterr().out == "echo: hello\n"
    with pytest.raises(A2AClientError) as err:
        a2a_cmd.run(_args(a2a_action="cancel", url=peer.url, task_id=task["id"]))
    assert err.value.code == -32002
    running = A2AClient(peer.url, timeout=20).send("wait", blocking=False)["task"]
    assert a2a_cmd.run(_args(a2a_action="cancel", url=peer.url, task_id=running["id"])) == 0
    assert capsys.readouterr().out == f"{running['id']} canceled\n"


def test_cli_token_from_env_and_usage_errors(monkeypatch, capsys):
    secured = start_peer(token="envtok")
    try:
        monkeypatch.setenv("CODETETHER_A2A_TOKEN", "envtok")
        assert a2a_cmd.run(_args(a2a_action="send", url=secured.url, message="hi")) == 0
        assert capsys.readouterr().out == "echo: hi\n"
    finally:
        secured.stop()
    with pytest.raises(CodetetherError):
        a2a_cmd.run(_args(a2a_action="send", url="http://127.0.0.1:1/", message=""))
    with pytest.raises(CodetetherError):
        a2a_cmd.run(_args(a2a_action="get", url="http://127.0.0.1:1/"))
    with pytest.raises(CodetetherError):
        a2a_cmd.run(_args(a2a_action="bogus", url="http://127.0.0.1:1/"))
