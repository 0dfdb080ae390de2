"""The real ``codetether serve`` process (echo backend, port 0): it says where it listens, needs
the token, answers A2A, and stops gracefully on SIGTERM."""

from __future__ import annotations

import http.client
import json
import signal
import time
from pathlib import Path

import pytest

from codetether.core.sse import parse_sse
from tests.cli import run_cli
from tests.serve_proc import ServeProcess

TOKEN = "cli-test-token-0123456789"


@pytest.fixture
def serve():
    started: list[ServeProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> ServeProcess:
        proc = ServeProcess(*args, env=env, token=TOKEN)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()


def send(text: str, message_id: str = "m-1", **configuration) -> dict:
    params: dict = {"message": {"messageId": message_id, "role": "ROLE_USER",
                                "parts": [{"text": text}]}}
    if configuration:
        params["configuration"] = configuration
    return {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": params}


def test_serve_answers_a2a_with_auth_and_stops_on_sigterm(serve):
    server = serve("--grpc-port", "0", env={"CODETETHER_AUTH_TOKEN": TOKEN})
    assert server.url.startswith("http://127.0.0.1:")
    assert server.call("GET", "/health", token=None)[0] == 200
    assert server.call("GET", "/.well-known/agent-card.json", token=None)[0] == 401
    status, card = server.call("GET", "/.well-known/agent-card.json")
    assert status == 200
    bindings = {i["protocolBinding"]: i["url"] for i in card["supportedInterfaces"]}
    assert bindings["JSONRPC"] == server.url + "/a2a"
    grpc_line = server.wait_for(r"A2A gRPC\s+(\S+)")
    assert bindings["GRPC"] == grpc_line.group(1)
    assert card["securitySchemes"]

    assert server.call("POST", "/a2a", send("hi"), token="wrong")[0] == 401
    status, reply = server.call("POST", "/a2a", send("hello over json-rpc"))
    assert status == 200, reply
    task = reply["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    assert task["artifacts"][0]["parts"] == [{"text": "hello over json-rpc"}]

    # the audit hook runs just after a response is written: allow it a moment, bounded
    deadline = time.monotonic() + 10
    while True:
        status, found = server.call("POST", "/v1/audit/query", {"resource": "POST /a2a"})
        if len(found["events"]) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert [e["outcome"] for e in found["events"]] == [401, 200]

    assert server.terminate() == 0
    err = server.stderr()
    assert "SIGTERM: stopping" in err and "codetether: stopped" in err
    assert "Traceback" not in err
    assert server.proc.stdout.read() == ""  # a server prints no results


def test_sigterm_fails_running_tasks_and_closes_their_streams(serve):
    # TCK_STREAMING_TIMEOUT=30: the echo backend keeps this task working for 60 s unless it is
    # stopped first, so a slow machine cannot finish it before the SIGTERM lands
    server = serve("--grpc-port", "-1", env={"CODETETHER_AUTH_TOKEN": TOKEN,
                                             "TCK_STREAMING_TIMEOUT": "30"})
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    body = send("wait for me", "test-resubscribe-message-id-1")
    body["method"] = "SendStreamingMessage"
    conn.request("POST", "/a2a", json.dumps(body), {"Authorization": f"Bearer {TOKEN}",
                                                    "Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200
    events = parse_sse(iter(resp.readline, b""))
    first = json.loads(next(events).data)["result"]
    assert "task" in first
    # wait until the held task is visibly running, then stop the server under it
    for event in events:
        result = json.loads(event.data)["result"]
        if result.get("statusUpdate", {}).get("status", {}).get("state") == \
                "TASK_STATE_WORKING":
            break
    server.proc.send_signal(signal.SIGTERM)
    last = None
    for event in events:
        last = json.loads(event.data)["result"]
    assert last is not None and "statusUpdate" in last, last
    status = last["statusUpdate"]["status"]
    assert status["state"] == "TASK_STATE_FAILED"
    assert "shutting down" in status["message"]["parts"][0]["text"]
    conn.close()
    assert server.proc.wait(30) == 0


def test_generated_token_is_printed_once_and_required(serve, isolated_env):
    first = serve("--grpc-port", "-1")
    first.wait_for(r"generated an API token")
    token = first.wait_for(r"^\s+(\S{32,})\s*$").group(1)
    token_file = Path(isolated_env / "data" / "server-token")
    assert token_file.read_text().strip() == token
    assert oct(token_file.stat().st_mode & 0o777) == "0o600"
    assert first.call("GET", "/v1/agents", token=token)[0] == 200
    assert first.call("GET", "/v1/agents", token=None)[0] == 401
    assert first.terminate() == 0
    second = serve("--grpc-port", "-1")
    assert second.call("GET", "/v1/agents", token=token)[0] == 200
    assert second.terminate() == 0
    assert token not in second.stderr()
    assert str(token_file) in "".join(second.seen)  # it says where the token is instead


def test_port_in_use_is_one_clear_line(serve):
    server = serve("--grpc-port", "-1", env={"CODETETHER_AUTH_TOKEN": TOKEN})
    result = run_cli("serve", "--port", str(server.port), "--grpc-port", "-1", "--backend",
                     "echo", env={"CODETETHER_AUTH_TOKEN": TOKEN}, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot listen on 127.0.0.1:")
    assert "Traceback" not in result.stderr
    assert server.terminate() == 0


def test_short_env_token_is_refused(tmp_path):
    result = run_cli("serve", "--port", "0", "--backend", "echo",
                     env={"CODETETHER_AUTH_TOKEN": "abc"}, timeout=60)
    assert result.returncode == 1
    assert "CODETETHER_AUTH_TOKEN is too short" in result.stderr
