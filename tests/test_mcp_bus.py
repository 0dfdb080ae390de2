"""``codetether mcp serve --bus-url``: a real ``codetether serve`` publishes A2A task events on
its bus; a real ``mcp serve`` subprocess reads them over SSE and offers them as MCP tools and
resources. The reconnect rules (Last-Event-ID, backlog de-duplication, read timeouts, prompt
stop) are checked in-process against a small scripted SSE server."""

from __future__ import annotations

import contextlib
import io
import json
import os
import queue
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from codetether.mcp.bus_bridge import BridgeOptions, BusBridge, call_tool, read_resource
from tests.cli import ROOT
from tests.serve_proc import ServeProcess

WAIT = 20.0
TOKEN = "bus-test-token-0123456789abcdef"


def mcp_argv(*args: str) -> list[str]:
    """``python -m codetether mcp serve ...`` once the CLI table knows ``--bus-url``; until
    then the ``mcp`` module's own entry point (same parser entries, same code)."""
    from codetether.cli.main import build_parser

    try:
        with contextlib.redirect_stderr(io.StringIO()):
            build_parser().parse_args(["mcp", "serve", "--bus-url", "http://x"])
    except SystemExit:
        return [sys.executable, "-m", "codetether.cli.mcp_cmd", "serve", *args]
    return [sys.executable, "-m", "codetether", "mcp", "serve", *args]


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


class RawMcp:
    """``mcp serve`` on pipes, spoken to in raw newline-delimited JSON-RPC."""

    def __init__(self, workspace: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(mcp_argv(str(workspace), *extra), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env or child_env(), cwd=ROOT)
        self.lines: queue.Queue = queue.Queue()
        self.raw: list[bytes] = []
        self.ids = iter(range(1, 1_000_000))
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in iter(self.proc.stdout.readline, b""):
            self.raw.append(line)
            self.lines.put(json.loads(line))  # anything but JSON on stdout fails the test
        self.lines.put(None)

    def request(self, method: str, params: dict | None = None) -> dict:
        request_id = next(self.ids)
        message = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()
        while True:
            reply = self.lines.get(timeout=WAIT)
            assert reply is not None, "mcp serve closed stdout"
            if reply.get("id") == request_id:
                return reply

    def result(self, method: str, params: dict | None = None) -> dict:
        reply = self.request(method, params)
        assert "result" in reply, reply
        return reply["result"]

    def tool(self, name: str, **arguments) -> dict:
        return self.result("tools/call", {"name": name, "arguments": arguments})

    def data(self, name: str, **arguments) -> dict:
        result = self.tool(name, **arguments)
        assert result["isError"] is False, result
        assert json.loads(result["content"][0]["text"]) == result["structuredContent"]
        return result["structuredContent"]

    def initialize(self) -> dict:
        result = self.result("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                            "clientInfo": {"name": "bus-test", "version": "0"}})
        self.proc.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
        return result

    def poll(self, name: str, until, timeout: float = WAIT, **arguments) -> dict:
        """Call the tool until ``until(data)``; bounded, no fixed sleeps."""
        deadline = time.monotonic() + timeout
        while True:
            data = self.data(name, **arguments)
            if until(data):
                return data
            assert time.monotonic() < deadline, f"{name} never satisfied the test: {data}"
            time.sleep(0.05)

    def close(self) -> tuple[int, str]:
        self.proc.stdin.close()
        code = self.proc.wait(WAIT)
        err = self.proc.stderr.read().decode()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return code, err


@pytest.fixture
def workspace(tmp_path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "notes.md").write_text("# notes\n")
    return ws


@pytest.fixture
def server():
    proc = ServeProcess("--grpc-port", "0", env={"CODETETHER_AUTH_TOKEN": TOKEN}, token=TOKEN)
    yield proc
    proc.kill()


@pytest.fixture
def clients():
    started: list[RawMcp] = []

    def start(*args, **kwargs) -> RawMcp:
        client = RawMcp(*args, **kwargs)
        started.append(client)
        return client

    yield start
    for client in started:
        if client.proc.poll() is None:
            client.proc.kill()
            client.proc.wait(WAIT)


def send_message(text: str, message_id: str) -> dict:
    return {"jsonrpc": "2.0", "id": 1, "method": "SendMessage",
            "params": {"message": {"messageId": message_id, "role": "ROLE_USER",
                                   "parts": [{"text": text}]}}}


def test_task_events_of_a_real_server_reach_mcp(server, workspace, clients):
    mcp = clients(workspace, "--bus-url", server.url,
                  env=child_env(CODETETHER_BUS_TOKEN=TOKEN))
    assert mcp.initialize()["serverInfo"]["name"] == "codetether"
    names = {t["name"] for t in mcp.result("tools/list")["tools"]}
    assert {"bus_events", "bus_status", "read"} <= names
    status = mcp.poll("bus_status", lambda s: s["connected"])
    assert status["url"] == server.url + "/v1/bus/stream"
    assert status["token"] == "CODETETHER_BUS_TOKEN" and status["last_error"] is None

    code, reply = server.call("POST", "/a2a", send_message("hello bus", "m-bus-1"))
    assert code == 200, reply
    task_id = reply["result"]["task"]["id"]

    def finished(data: dict) -> bool:
        return any(e["message"].get("kind") == "task_update"
                   and "COMPLETED" in str(e["message"].get("state")).upper()
                   for e in data["events"])

    found = mcp.poll("bus_events", finished, topic=f"task.{task_id}")
    assert all(e["topic"] == f"task.{task_id}" for e in found["events"])
    assert all(e["message"]["task_id"] == task_id for e in found["events"])
    envelope = found["events"][0]
    assert set(envelope) == {"id", "topic", "sender_id", "correlation_id", "timestamp",
                             "message"}
    assert envelope["sender_id"] == "a2a"

    # paging forward with `since`: nothing is repeated, a second task's events follow
    everything = mcp.data("bus_events", topic="task.#", limit=1000)
    last = everything["last_id"]
    assert mcp.data("bus_events", since=last)["events"] == []
    code, reply = server.call("POST", "/a2a", send_message("second", "m-bus-2"))
    second = reply["result"]["task"]["id"]
    later = mcp.poll("bus_events", lambda d: any(e["topic"] == f"task.{second}"
                                                  for e in d["events"]), since=last)
    assert later["since_found"] is True
    assert not {e["id"] for e in later["events"]} & {e["id"] for e in everything["events"]}
    assert mcp.data("bus_events", topic="task.#", limit=1)["count"] == 1

    bad = mcp.tool("bus_events", topic="task.#x")
    assert bad["isError"] is True and "bad bus topic pattern" in bad["content"][0]["text"]
    assert mcp.tool("bus_events", limit=0)["isError"] is True

    uris = {r["uri"] for r in mcp.result("resources/list")["resources"]}
    assert {"codetether://bus/events", "codetether://bus/status"} <= uris
    events_doc = mcp.result("resources/read", {"uri": "codetether://bus/events"})["contents"][0]
    assert events_doc["mimeType"] == "application/json"
    assert any(e["topic"] == f"task.{task_id}" for e in json.loads(events_doc["text"])["events"])
    status_doc = mcp.result("resources/read", {"uri": "codetether://bus/status"})["contents"][0]
    status = json.loads(status_doc["text"])
    assert status["connected"] is True and status["received"] >= len(everything["events"])
    assert f"task.{task_id}" in status["topics"] and f"task.{second}" in status["topics"]
    missing = mcp.request("resources/read", {"uri": "codetether://bus/nothing"})
    assert missing["error"]["code"] == -32002

    code, err = mcp.close()
    assert code == 0 and "Traceback" not in err
    assert "bus connected" in err and TOKEN not in err


def test_wrong_token_is_a_status_not_a_crash(server, workspace, clients):
    mcp = clients(workspace, "--bus-url", server.url + "/", "--bus-token", "not-the-token-0000")
    mcp.initialize()
    status = mcp.poll("bus_status", lambda s: s["failures"] >= 2)  # retried, still refused
    assert status["connected"] is False and status["state"] == "retrying"
    assert "HTTP 401" in status["last_error"] and "--bus-token" in status["last_error"]
    assert status["token"] == "--bus-token"
    assert mcp.data("bus_events") == {"events": [], "count": 0, "more": False,
                                      "last_id": None, "connected": False}
    assert mcp.result("ping") == {}  # the MCP side is unaffected
    code, err = mcp.close()
    assert code == 0 and "Traceback" not in err
    assert err.count("HTTP 401") == 1  # one line for the problem, not one per retry
    assert "not-the-token-0000" not in err


def test_no_token_and_no_server(workspace, clients):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mcp = clients(workspace, "--bus-url", f"http://127.0.0.1:{port}")
    mcp.initialize()
    status = mcp.poll("bus_status", lambda s: s["last_error"] is not None)
    assert "connection refused" in status["last_error"] and status["token"] == "none"
    code, err = mcp.close()
    assert code == 0 and err.count("connection refused") == 1


@pytest.mark.parametrize("argv, message", [
    (["--bus-url", "ftp://example.org"], "is not an http(s) URL"),
    (["--bus-token", "x"], "--bus-token needs --bus-url"),
])
def test_bad_bus_arguments_are_one_line(workspace, argv, message):
    done = subprocess.run(mcp_argv(str(workspace), *argv), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, env=child_env(), cwd=ROOT,
                          timeout=WAIT)
    assert done.returncode == 2 and done.stdout == ""
    assert message in done.stderr and "Traceback" not in done.stderr


# ---- the reader's connection rules, against a scripted SSE server ------------------------------

def envelope(n: int, topic: str = "task.t1") -> dict:
    return {"id": f"env-{n}", "topic": topic, "sender_id": "test", "correlation_id": None,
            "timestamp": "2025-01-01T00:00:00.000Z",
            "message": {"kind": "task_update", "task_id": "t1", "n": n}}


def sse(env: dict) -> bytes:
    return f"id: {env['id']}\nevent: bus\ndata: {json.dumps(env)}\n\n".encode()


class ScriptedSse:
    """Each connection plays the next script: a list of bytes to send, then either close
    (``"close"``) or stay silent until released (``"hold"``). Records each request."""

    def __init__(self, scripts: list[tuple[list[bytes], str]]) -> None:
        self.scripts = scripts
        self.requests: queue.Queue = queue.Queue()
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                outer.requests.put({"path": self.path, "headers": dict(self.headers)})
                chunks, end = outer.scripts.pop(0) if outer.scripts else ([], "hold")
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for chunk in chunks:
                    self.wfile.write(chunk)
                self.wfile.flush()
                if end == "hold":
                    outer.release.wait(WAIT)

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        threading.Thread(target=self.http.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"

    def close(self) -> None:
        self.release.set()
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def scripted():
    made: list[ScriptedSse] = []

    def make(scripts):
        server = ScriptedSse(scripts)
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()


FAST = BridgeOptions(buffer_size=3, backlog=50, read_timeout=WAIT, backoff_min=0.01,
                     backoff_max=0.05)


def test_reconnects_with_last_event_id_and_drops_replayed_envelopes(scripted):
    server = scripted([
        ([b": connected\n\n", sse(envelope(1)), sse(envelope(2)), b"data: {oops\n\n"], "close"),
        ([sse(envelope(2)), sse(envelope(3, "agent.a")), sse(envelope(4))], "hold"),
    ])
    lines: list[str] = []
    bridge = BusBridge(server.url, "tok-123", FAST, log=lines.append).start()
    try:
        assert bridge.wait_for(lambda: bridge.counters["received"] == 4, WAIT), bridge.status()
        first, second = server.requests.get(timeout=WAIT), server.requests.get(timeout=WAIT)
        assert first["path"] == "/v1/bus/stream?recent=50"
        assert first["headers"]["Authorization"] == "Bearer tok-123"
        assert "Last-Event-ID" not in first["headers"]
        assert second["headers"]["Last-Event-ID"] == "env-2"
        status = bridge.status()
        assert status["connected"] and status["connects"] == 2 and status["duplicates"] == 1
        assert status["malformed"] == 1 and status["evicted"] == 1 and status["buffered"] == 3
        assert status["topics"] == {"agent.a": 1, "task.t1": 3}
        assert status["last_error"] == "the server closed the bus stream"

        ids = lambda data: [e["id"] for e in data["events"]]  # noqa: E731
        assert ids(bridge.events()) == ["env-2", "env-3", "env-4"]  # env-1 left the ring
        assert ids(bridge.events(limit=1)) == ["env-4"]
        assert ids(bridge.events(topic="task.*")) == ["env-2", "env-4"]
        page = bridge.events(since="env-2", limit=1)
        assert ids(page) == ["env-3"] and page["more"] and page["last_id"] == "env-3"
        gone = bridge.events(since="env-1")
        assert gone["since_found"] is False and ids(gone) == ["env-2", "env-3", "env-4"]
        bad = call_tool(bridge, "bus_events", {"limit": "many"})
        assert bad["isError"] and "limit must be a whole number" in bad["content"][0]["text"]
        doc = read_resource(bridge, "codetether://bus/status")
        assert json.loads(doc["text"])["received"] == 4
        assert "tok-123" not in json.dumps(bridge.status())
    finally:
        started = time.monotonic()
        bridge.stop()  # the reader is blocked in a read on the held connection
        assert not bridge._thread.is_alive() and time.monotonic() - started < 5
    assert bridge.status()["state"] == "stopped"
    assert sum("bus connected" in line for line in lines) == 2  # first, and after the error
    assert sum("closed the bus stream" in line for line in lines) == 1


def test_a_silent_stream_times_out_and_reconnects(scripted):
    server = scripted([([b": connected\n\n"], "hold"), ([sse(envelope(7))], "hold")])
    options = BridgeOptions(read_timeout=0.3, backoff_min=0.01, backoff_max=0.05)
    bridge = BusBridge(server.url, None, options, log=lambda _line: None).start()
    try:
        assert bridge.wait_for(lambda: bridge.counters["received"] == 1, WAIT), bridge.status()
        assert "no data from" in bridge.status()["last_error"]
        assert "0.3 s" in bridge.status()["last_error"]
        assert "Authorization" not in server.requests.get(timeout=WAIT)["headers"]
    finally:
        bridge.stop()


def test_not_a_bus_stream(scripted):
    class Plain(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            body = b"<html>hi</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    http = ThreadingHTTPServer(("127.0.0.1", 0), Plain)
    threading.Thread(target=http.serve_forever, args=(0.05,), daemon=True).start()
    bridge = BusBridge(f"http://127.0.0.1:{http.server_address[1]}/base", None, FAST,
                       log=lambda _line: None)
    assert urllib.parse.urlsplit(bridge.url).path == "/base/v1/bus/stream"
    bridge.start()
    try:
        assert bridge.wait_for(lambda: bridge.last_error is not None, WAIT)
        assert "is not a bus stream" in bridge.last_error
    finally:
        bridge.stop()
        http.shutdown()
        http.server_close()
