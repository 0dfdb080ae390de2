"""Mandatory auth, the audit log and the bus stream of the ``serve`` composition, on a real
loopback server (echo backend, or the agent against the scripted LLM for tool audits)."""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import stat
import threading
import time

import pytest

from codetether.bus import AgentBus
from codetether.core.errors import ConfigError
from codetether.core.sse import parse_sse
from codetether.security import AuditLog, server_token, token_path
from codetether.security.audit import normalize_time
from codetether.server.app import CodetetherServer, ServerOptions
from tests.scripted_llm import ScriptedLLMServer, ToolCall, Turn

TOKEN = "test-token-0123456789abcdef"


@pytest.fixture
def server(tmp_path):
    srv = CodetetherServer(ServerOptions(port=0, backend="echo", workspace=tmp_path),
                           token=TOKEN, bus=AgentBus()).start()
    try:
        yield srv
    finally:
        srv.stop()


def call(srv, method: str, path: str, body=None, token: str | None = TOKEN,
         headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", srv.http.port, timeout=30)
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body
    conn.request(method, path, body=data, headers=all_headers)
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    try:
        return resp.status, json.loads(raw) if raw else None
    except ValueError:
        return resp.status, raw


def concrete(pattern: str) -> str:
    """A path that the route pattern matches (``{id}`` -> a made-up id)."""
    return re.sub(r"\{([^}:]+)(:path)?\}", lambda m: f"x-{m.group(1)}", pattern)


def wait_audit(audit: AuditLog, count: int, **filters) -> list[dict]:
    """The on_request hook runs after the response is written: poll the file, bounded."""
    deadline = time.monotonic() + 10
    while True:
        found = audit.query(limit=10_000, **filters)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def test_every_route_but_health_needs_the_token(server):
    routes = [(r.method, r.pattern) for r in server.http.app.routes]
    # the composition really has the A2A bindings, the card and our own routes
    for needed in [("POST", "/a2a"), ("POST", "/"), ("GET", "/.well-known/agent-card.json"),
                   ("GET", "/.well-known/agent.json"), ("POST", "/message:send"),
                   ("GET", "/v1/audit/events"), ("POST", "/v1/audit/query"),
                   ("GET", "/v1/bus/stream"), ("GET", "/v1/agents"), ("GET", "/health")]:
        assert needed in routes, needed
    checked = 0
    for method, pattern in routes:
        path = concrete(pattern)
        for token in (None, "wrong-token", TOKEN[:-1]):
            status, body = call(server, method, path, body={} if method != "GET" else None,
                                token=token)
            if (method, pattern) == ("GET", "/health"):
                assert status == 200 and body["status"] == "ok"
            else:
                assert status == 401, (method, path, token, status, body)
                assert body == {"error": "missing or invalid bearer token"}
            checked += 1
    assert checked == 3 * len(routes)
    # a Basic header carrying the right token is still not a bearer token
    assert call(server, "GET", "/v1/agents", token=None,
                headers={"Authorization": f"Basic {TOKEN}"})[0] == 401
    assert call(server, "GET", "/v1/agents")[0] == 200


def test_audit_query_finds_the_requests(server):
    before = normalize_time(time.time() - 1)
    assert call(server, "POST", "/a2a", {"jsonrpc": "2.0", "id": 1, "method": "GetTask",
                                         "params": {"id": "nope"}}, token="bad")[0] == 401
    status, reply = call(server, "POST", "/a2a", {
        "jsonrpc": "2.0", "id": 2, "method": "SendMessage",
        "params": {"message": {"messageId": "m-1", "role": "ROLE_USER",
                               "parts": [{"text": "audit me"}]}}})
    assert status == 200 and reply["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
    task_id = reply["result"]["task"]["id"]
    wait_audit(server.audit, 2, action="http.request", resource="POST /a2a")

    status, found = call(server, "POST", "/v1/audit/query",
                         {"actor": "anonymous", "resource": "/a2a", "since": before})
    assert status == 200
    assert [(e["actor"], e["action"], e["resource"], e["outcome"]) for e in found["events"]] == [
        ("anonymous", "http.request", "POST /a2a", 401)]
    assert found["events"][0]["duration_ms"] >= 0

    status, found = call(server, "GET", "/v1/audit/events?actor=bearer&resource=/a2a")
    events = found["events"]
    assert [e["outcome"] for e in events] == [200]
    assert events[0]["task_id"] == task_id  # the binding told the hook which task it was
    assert set(events[0]) >= {"ts", "actor", "action", "resource", "outcome", "duration_ms",
                              "session_id", "task_id"}

    # the task itself is audited too, by the service
    status, found = call(server, "POST", "/v1/audit/query", {"action": "a2a.task.*"})
    assert {(e["action"], e["task_id"]) for e in found["events"]} >= {
        ("a2a.task.create", task_id), ("a2a.task.finish", task_id)}

    # time range: nothing before the test started, nothing in the future
    future = normalize_time(time.time() + 3600)
    assert call(server, "POST", "/v1/audit/query", {"since": future})[1]["events"] == []
    assert call(server, "POST", "/v1/audit/query", {"until": before})[1]["events"] == []
    status, found = call(server, "GET", "/v1/audit/events?limit=1")
    assert status == 200 and found["count"] == 1


@pytest.mark.parametrize("body,why", [
    ({"limit": 0}, "out of range"), ({"limit": "lots"}, "bad limit"),
    ({"since": "yesterday"}, "bad since"), ({"actor": 5}, "actor must be a string"),
    ({"who": "me"}, "unknown filter who"), ([1, 2], "JSON object")])
def test_bad_audit_queries_are_400(server, body, why):
    status, reply = call(server, "POST", "/v1/audit/query", body)
    assert status == 400 and why in reply["error"], reply


def test_bad_audit_query_string_is_400(server):
    status, reply = call(server, "GET", "/v1/audit/events?until=not-a-time")
    assert status == 400 and "bad until" in reply["error"]
    assert call(server, "GET", "/v1/audit/events?color=red")[0] == 400


def test_audit_file_is_private_and_append_only(tmp_path):
    audit = AuditLog(tmp_path / "a" / "audit.jsonl")
    threads = [threading.Thread(target=lambda n=n: [audit.record(f"t{n}", "x", str(i), "ok")
                                                    for i in range(200)]) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stat.S_IMODE(os.stat(audit.path).st_mode) == 0o600
    lines = audit.path.read_text().splitlines()
    assert len(lines) == 1600 and all(json.loads(line)["action"] == "x" for line in lines)
    with open(audit.path, "a") as handle:
        handle.write('{"torn": ')  # a crash mid-line must not break reading
    assert len(audit.query(actor="t3", limit=10_000)) == 200
    assert [e["resource"] for e in audit.query(actor="t3", limit=2)] == ["198", "199"]
    again = AuditLog(audit.path)  # a second writer (another process) appends, never truncates
    again.record("late", "y")
    assert len(again.query(limit=10_000)) == 1601


def test_token_file_is_0600_and_printed_once(monkeypatch):
    first, second = io.StringIO(), io.StringIO()
    token = server_token(announce=first)
    assert len(token) >= 32
    assert stat.S_IMODE(os.stat(token_path()).st_mode) == 0o600
    assert token in first.getvalue() and str(token_path()) in first.getvalue()
    assert server_token(announce=second) == token
    assert second.getvalue() == ""  # never shown again
    monkeypatch.setenv("CODETETHER_AUTH_TOKEN", "from-the-env-0123456789")
    assert server_token(announce=second) == "from-the-env-0123456789"
    monkeypatch.setenv("CODETETHER_AUTH_TOKEN", "short")
    with pytest.raises(ConfigError):
        server_token()


def test_generated_token_works_and_never_reaches_the_audit_log(tmp_path, capsys):
    srv = CodetetherServer(ServerOptions(port=0, backend="echo"), bus=AgentBus()).start()
    try:
        token = token_path().read_text().strip()
        assert capsys.readouterr().err.count(token) == 1
        assert call(srv, "GET", "/v1/agents", token=token)[0] == 200
        assert call(srv, "GET", "/v1/agents", token=token + "x")[0] == 401
        wait_audit(srv.audit, 2, resource="GET /v1/agents")
    finally:
        srv.stop()
    assert token not in srv.audit.path.read_text()
    assert capsys.readouterr().err.count(token) == 0


def test_bus_stream_delivers_published_envelopes(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.http.port, timeout=10)
    conn.request("GET", "/v1/bus/stream?topic=task.%23",
                 headers={"Authorization": f"Bearer {TOKEN}"})
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Content-Type") == "text/event-stream"
    # the subscription exists once the headers are here: publish, then read
    handle = server.bus.handle("tester")
    handle.publish_task_update("t1", "working")
    handle.broadcast({"kind": "heartbeat", "agent_id": "tester", "status": "idle"})
    handle.publish_task_update("t1", "completed")
    events = parse_sse(iter(resp.readline, b""))
    got = [next(events), next(events)]
    assert [e.event for e in got] == ["bus", "bus"]
    bodies = [json.loads(e.data) for e in got]
    assert [(b["topic"], b["message"]["state"]) for b in bodies] == [
        ("task.t1", "working"), ("task.t1", "completed")]
    assert got[0].id == bodies[0]["id"]
    conn.close()


def test_bus_stream_sees_a2a_task_events(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.http.port, timeout=10)
    conn.request("GET", "/v1/bus/stream", headers={"Authorization": f"Bearer {TOKEN}"})
    resp = conn.getresponse()
    status, reply = call(server, "POST", "/a2a", {
        "jsonrpc": "2.0", "id": 1, "method": "SendMessage",
        "params": {"message": {"messageId": "m-bus", "role": "ROLE_USER",
                               "parts": [{"text": "hello bus"}]}}})
    task_id = reply["result"]["task"]["id"]
    states = []
    for event in parse_sse(iter(resp.readline, b"")):
        body = json.loads(event.data)
        if body["topic"] == f"task.{task_id}" and body["message"]["kind"] == "task_update":
            states.append(body["message"]["state"])
            if body["message"]["state"] == "TASK_STATE_COMPLETED":
                break
    assert states[-1] == "TASK_STATE_COMPLETED"
    conn.close()


def test_bad_bus_pattern_is_400(server):
    status, reply = call(server, "GET", "/v1/bus/stream?topic=a.b*")
    assert status == 400 and "pattern" in reply["error"]


def test_agents_lists_this_server(server):
    status, reply = call(server, "GET", "/v1/agents")
    assert status == 200
    assert [a["name"] for a in reply["agents"]] == ["CodeTether"]
    assert reply["agents"][0]["url"].startswith(server.url)


def test_tool_executions_are_audited(tmp_path, monkeypatch):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "notes.txt").write_text("remember the milk\n")
    with ScriptedLLMServer() as llm:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-SERVE-0123456789")
        monkeypatch.setenv("OPENAI_BASE_URL", llm.url + "/v1")
        monkeypatch.setenv("CODETETHER_DEFAULT_MODEL", "openai/gpt-4o")
        llm.enqueue(Turn(tool_calls=[ToolCall("read", {"path": "notes.txt"})]),
                    Turn(text="It says to remember the milk."))
        srv = CodetetherServer(ServerOptions(port=0, backend="agent", workspace=workspace),
                               token=TOKEN, bus=AgentBus()).start()
        try:
            status, reply = call(srv, "POST", "/a2a", {
                "jsonrpc": "2.0", "id": 1, "method": "SendMessage",
                "params": {"message": {"messageId": "m-tool", "role": "ROLE_USER",
                                       "parts": [{"text": "what do my notes say?"}]}}})
            assert status == 200, reply
            task = reply["result"]["task"]
            assert task["status"]["state"] == "TASK_STATE_COMPLETED", task["status"]
            status, found = call(srv, "POST", "/v1/audit/query", {"action": "tool.execute"})
        finally:
            srv.stop()
    [event] = found["events"]
    assert (event["actor"], event["resource"], event["outcome"], event["task_id"]) == (
        "bearer", "tool:read", "success", task["id"])
    assert event["duration_ms"] is not None and event["session_id"]


def test_grpc_needs_the_token_too(tmp_path):
    grpc = pytest.importorskip("grpc")
    from codetether.a2a.grpc_gen import a2a_pb2, a2a_pb2_grpc

    srv = CodetetherServer(ServerOptions(port=0, grpc_port=0, backend="echo"), token=TOKEN,
                           bus=AgentBus()).start()
    try:
        assert srv.grpc_url() and not srv.notes
        status, card = call(srv, "GET", "/.well-known/agent-card.json")
        assert {"url": srv.grpc_url(), "protocolBinding": "GRPC", "protocolVersion": "1.0"} \
            in card["supportedInterfaces"]
        with grpc.insecure_channel(srv.grpc_url()) as channel:
            stub = a2a_pb2_grpc.A2AServiceStub(channel)
            request = a2a_pb2.SendMessageRequest(message=a2a_pb2.Message(
                message_id="g-1", role=a2a_pb2.ROLE_USER, parts=[a2a_pb2.Part(text="hi")]))
            for metadata in ((), (("authorization", "Bearer wrong"),)):
                with pytest.raises(grpc.RpcError) as caught:
                    stub.SendMessage(request, metadata=metadata, timeout=30)
                assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
            reply = stub.SendMessage(request, metadata=(("authorization", f"Bearer {TOKEN}"),),
                                     timeout=30)
            assert reply.task.status.state == a2a_pb2.TaskState.Value("TASK_STATE_COMPLETED")
    finally:
        srv.stop()
