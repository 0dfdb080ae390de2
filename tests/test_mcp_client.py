"""Our MCP client against servers we did not write (mcp-server-time from PyPI; the reference
"everything" server from npm over stdio and streamable HTTP), plus deliberately broken servers:
one that dies mid-call, one that never answers, one that writes garbage. Also the `mcp` CLI
commands and the bridge that puts a server's tools into the agent's registry."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from codetether.mcp.client import (
    McpClient,
    McpConnectionError,
    McpRemoteError,
    ServerHandle,
    result_text,
)
from codetether.mcp.config import McpConfigError, ServerSpec
from tests.cli import ROOT
from tests.test_mcp_server import child_env, codetether_argv

TIME_SERVER = str(Path(sys.executable).with_name("mcp-server-time"))
NPM_PREFIX = ROOT / ".cache" / "npm"
EVERYTHING = NPM_PREFIX / "node_modules" / ".bin" / "mcp-server-everything"
NPM_INSTALL = ["npm", "install", "--prefix", str(NPM_PREFIX), "--no-audit", "--no-fund",
               "@modelcontextprotocol/server-everything"]
WAIT = 30.0


def time_spec(name: str = "time", **kw) -> ServerSpec:
    return ServerSpec(name, "stdio", command=TIME_SERVER, args=["--local-timezone", "UTC"], **kw)


# ---- mcp-server-time (PyPI) over stdio ---------------------------------------------------------

def test_time_server_handshake_first_then_tools(tmp_path):
    log = tmp_path / "sent.jsonl"
    # a tee in front of the server records exactly what our client sends, in order
    spec = ServerSpec("time", "stdio", command="sh",
                      args=["-c", f'tee "{log}" | "{TIME_SERVER}" --local-timezone UTC'])
    client = McpClient(spec).connect()
    try:
        assert client.protocol_version == "2025-11-25"
        assert client.server_info["name"] == "mcp-time"
        tools = {t["name"]: t for t in client.list_tools()}
        assert set(tools) == {"get_current_time", "convert_time"}
        result = client.call_tool("get_current_time", {"timezone": "UTC"})
        assert not result.get("isError")
        assert json.loads(result_text(result))["timezone"] == "UTC"
        bad = client.call_tool("get_current_time", {"timezone": "Nowhere/Atlantis"})
        assert bad["isError"] is True and "Invalid timezone" in result_text(bad)
        with pytest.raises(McpRemoteError) as unknown:
            client.call_tool("no_such_tool", {})
        assert unknown.value.code == -32602
    finally:
        client.close()
    sent = [json.loads(line) for line in log.read_text().splitlines()]
    assert [m.get("method") for m in sent[:3]] == ["initialize", "notifications/initialized",
                                                   "tools/list"]
    assert not any(m.get("method") == "server/discover" for m in sent)


# ---- broken servers ----------------------------------------------------------------------------

FAKE = textwrap.dedent('''
    import json, sys, time
    mode, starts = sys.argv[1], sys.argv[2]
    with open(starts, "a") as f:
        f.write("start\\n")
    def send(message):
        sys.stdout.write(json.dumps(message) + "\\n"); sys.stdout.flush()
    for line in sys.stdin:
        msg = json.loads(line)
        method, mid = msg.get("method"), msg.get("id")
        if method == "initialize":
            if mode == "garbage":
                sys.stdout.write("Starting up... this is not JSON\\n"); sys.stdout.flush()
            send({"jsonrpc": "2.0", "id": mid, "result": {"protocolVersion": "2025-06-18",
                  "capabilities": {"tools": {}}, "serverInfo": {"name": "fake", "version": "1"}}})
        elif method == "tools/list":
            names = ["work", "extra"] if mode == "grown" else ["work"]
            send({"jsonrpc": "2.0", "id": mid, "result": {"tools": [
                {"name": n, "inputSchema": {"type": "object"}} for n in names]}})
        elif method == "tools/call":
            if mode == "changing":
                mode = "grown"
                send({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
            if mode == "exit":
                print("fatal: crashed while working", file=sys.stderr); sys.stderr.flush()
                sys.exit(3)
            if mode == "hang":
                continue
            send({"jsonrpc": "2.0", "id": mid, "result": {"content": [{"type": "text",
                  "text": "worked"}]}})
''')


@pytest.fixture
def fake(tmp_path):
    script = tmp_path / "fake_server.py"
    script.write_text(FAKE)
    starts = tmp_path / "starts"

    def make(mode: str, timeout: float = 60.0) -> ServerSpec:
        return ServerSpec("fake", "stdio", command=sys.executable,
                          args=[str(script), mode, str(starts)], timeout=timeout)

    make.starts = lambda: len(starts.read_text().splitlines()) if starts.exists() else 0
    return make


def test_a_server_that_exits_mid_call_fails_the_call_and_is_restarted_once(fake):
    handle = ServerHandle(fake("exit"))
    try:
        assert [t["name"] for t in handle.list_tools()] == ["work"]
        with pytest.raises(McpConnectionError) as first:
            handle.call_tool("work", {})
        assert "exited with code 3" in first.value.message
        assert "crashed while working" in first.value.message  # its last stderr line
        with pytest.raises(McpConnectionError):
            handle.call_tool("work", {})  # restarted once, dies again
        assert fake.starts() == 2
        with pytest.raises(McpConnectionError) as final:
            handle.call_tool("work", {})
        assert "already restarted once" in final.value.message
        assert fake.starts() == 2  # not restarted a second time
    finally:
        handle.close()


def test_a_server_that_never_answers_times_out(fake):
    client = McpClient(fake("hang", timeout=0.5)).connect()
    try:
        with pytest.raises(McpConnectionError) as err:
            client.call_tool("work", {})
        assert "did not answer tools/call within 0.5 s" in err.value.message
    finally:
        client.close()


def test_garbage_on_stdout_does_not_break_the_connection(fake):
    client = McpClient(fake("garbage")).connect()
    try:
        assert client.protocol_version == "2025-06-18"
        assert result_text(client.call_tool("work", {})) == "worked"
    finally:
        client.close()


def test_config_errors_and_connection_errors_are_told_apart(tmp_path):
    with pytest.raises(McpConfigError) as missing:
        McpClient(ServerSpec("gone", "stdio", command=str(tmp_path / "no-such-binary"))).connect()
    assert "not found" in missing.value.message and "[mcp.servers.gone]" in missing.value.hint
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(McpConnectionError) as refused:
        McpClient(ServerSpec("web", "http", url=f"http://127.0.0.1:{port}/mcp")).connect()
    assert "connection refused" in refused.value.message
    exits = ServerSpec("quits", "stdio", command=sys.executable, args=["-c", "print('bye')"],
                       timeout=5)
    with pytest.raises(McpConnectionError) as quits:
        McpClient(exits).connect()
    assert "quits" in quits.value.message


def test_our_client_against_our_server(tmp_path):
    """Both halves of issue 5 together: our client drives `codetether mcp serve`."""
    (tmp_path / "hello.txt").write_text("hello from the workspace\n")
    argv = codetether_argv("mcp", "serve", str(tmp_path))
    env = {k: v for k, v in child_env().items() if k in ("PYTHONPATH",)}
    client = McpClient(ServerSpec("ct", "stdio", command=argv[0], args=argv[1:],
                                  env=env, cwd=str(ROOT))).connect()
    try:
        assert client.server_info["name"] == "codetether"
        assert "hello from the workspace" in result_text(client.call_tool(
            "read", {"path": "hello.txt"}))
        assert [p["name"] for p in client.list_prompts()] == ["code_review", "explain_code"]
        uri = (tmp_path / "hello.txt").resolve().as_uri()
        assert client.read_resource(uri)["contents"][0]["text"] == "hello from the workspace\n"
    finally:
        client.close()


# ---- the everything server (npm) over stdio and streamable HTTP ---------------------------------

@pytest.fixture(scope="session")
def everything() -> Path:
    if not EVERYTHING.exists():
        if shutil.which("npm") is None or shutil.which("node") is None:
            pytest.skip("node/npm not installed: cannot run "
                        "@modelcontextprotocol/server-everything")
        proc = subprocess.run(NPM_INSTALL, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0 or not EVERYTHING.exists():
            pytest.skip("could not install @modelcontextprotocol/server-everything "
                        f"(offline?): {' '.join(NPM_INSTALL)}")
    return EVERYTHING


def exercise_everything(client: McpClient) -> None:
    assert client.protocol_version == "2025-11-25"
    names = {t["name"] for t in client.list_tools()}
    assert {"echo", "get-sum", "trigger-long-running-operation"} <= names
    assert result_text(client.call_tool("echo", {"message": "hi there"})) == "Echo: hi there"
    assert "42" in result_text(client.call_tool("get-sum", {"a": 40, "b": 2}))
    progress: list[tuple] = []
    done = client.call_tool("trigger-long-running-operation", {"duration": 0.3, "steps": 3},
                            on_progress=lambda *p: progress.append(p))
    assert "completed" in result_text(done)
    assert [p[0] for p in progress] == [1, 2, 3]
    assert "image/png" in result_text(client.call_tool("get-tiny-image", {}))
    assert client.list_resources() and client.list_prompts()


def test_everything_server_over_stdio(everything):
    client = McpClient(ServerSpec("everything", "stdio", command=str(everything))).connect()
    try:
        exercise_everything(client)
    finally:
        client.close()


def test_everything_server_over_streamable_http(everything):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([str(everything), "streamableHttp"], stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, env={**os.environ, "PORT": str(port)})
    listening = threading.Event()

    def watch():
        for line in iter(proc.stderr.readline, b""):
            if b"listening on port" in line:
                listening.set()

    threading.Thread(target=watch, daemon=True).start()
    try:
        assert listening.wait(WAIT), "the everything server did not start"
        client = McpClient(ServerSpec("everything", "http",
                                      url=f"http://127.0.0.1:{port}/mcp")).connect()
        try:
            assert client._conn.session_id  # Mcp-Session-Id from the initialize reply
            exercise_everything(client)
        finally:
            client.close()
    finally:
        proc.terminate()
        proc.wait(WAIT)
        proc.stderr.close()


# ---- the `mcp` commands ------------------------------------------------------------------------

def mcp(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(codetether_argv("mcp", *args), capture_output=True, text=True,
                          env=child_env(), cwd=ROOT, timeout=WAIT * 2)


def test_cli_add_list_tools_call_remove(tmp_path):
    added = mcp("add", "time", "--", TIME_SERVER, "--local-timezone", "UTC")
    assert added.returncode == 0, added.stderr
    assert mcp("add", "broken", "--", str(tmp_path / "missing-binary")).returncode == 0
    assert mcp("add", "web", "--url", "http://127.0.0.1:9/mcp", "--header",
               "Authorization=Bearer sk-secret").returncode == 0
    again = mcp("add", "time", "--", "x")
    assert again.returncode == 2 and "already exists" in again.stderr

    listed = mcp("list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert rows["time"]["status"] == "connected" and rows["time"]["tools"] == 2
    assert rows["broken"]["status"] == "failed"
    assert rows["broken"]["error"].startswith("config error:")
    assert rows["web"]["status"] == "failed"
    assert rows["web"]["error"].startswith("connection error:")
    assert "sk-secret" not in listed.stdout

    tools = mcp("tools", "time")
    assert tools.returncode == 0 and "time_get_current_time" in tools.stdout
    called = mcp("call", "time", "get_current_time", "--arguments", '{"timezone": "UTC"}')
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout)["timezone"] == "UTC"
    failed = mcp("call", "time", "get_current_time", "--arguments", '{"timezone": "X/Y"}')
    assert failed.returncode == 1 and "Invalid timezone" in failed.stdout
    bad_json = mcp("call", "time", "get_current_time", "--arguments", "{nope")
    assert bad_json.returncode == 2 and "not valid JSON" in bad_json.stderr
    assert "Traceback" not in bad_json.stderr

    assert mcp("remove", "web").returncode == 0
    assert mcp("remove", "broken").returncode == 0
    config = Path(os.environ["CODETETHER_CONFIG"]).read_text()
    assert "[mcp.servers.time]" in config and "web" not in config and "broken" not in config
    gone = mcp("tools", "web")
    assert gone.returncode == 2 and "no MCP server named 'web'" in gone.stderr


# ---- the bridge: a server's tools in the agent's registry --------------------------------------

def test_bridge_registers_tools_lazily_and_runs_them(tmp_path):
    from codetether.core.config import Config
    from codetether.mcp import bridge
    from codetether.tools import registry
    from codetether.tools.base import ToolContext

    cfg = Config({"mcp": {"servers": {"time": time_spec().to_table(),
                                      "typo": {"comand": "x"}}}})
    try:
        names = bridge.attach_configured_servers(cfg, tmp_path)
        assert sorted(names) == ["time_convert_time", "time_get_current_time"]
        assert "time_get_current_time" in registry.names()
        tool = registry.get("time_get_current_time")
        assert tool.read_only and tool.parameters["properties"]["timezone"]
        ctx = ToolContext(workspace=tmp_path, data_dir=tmp_path / "data")
        result = tool.run({"timezone": "UTC"}, ctx)
        assert result.success and json.loads(result.output)["timezone"] == "UTC"
        failed = tool.run({"timezone": "X/Y"}, ctx)
        assert not failed.success and "Invalid timezone" in failed.output
        bridge.detach()
        assert "time_get_current_time" not in registry.names()

        # second time: the tool list comes from the cache, the server starts on first use
        names = bridge.attach_configured_servers(cfg, tmp_path)
        assert "time_get_current_time" in names
        handle = bridge.handles()["time"]
        assert not handle.started
        assert registry.get("time_get_current_time").run({"timezone": "UTC"}, ctx).success
        assert handle.started
    finally:
        bridge.detach()
    assert not registry.dynamic_names()


def test_bridge_follows_tools_list_changed(fake, tmp_path):
    from codetether.mcp import bridge
    from codetether.tools import registry
    from codetether.tools.base import ToolContext

    try:
        assert bridge.attach_servers([fake("changing")], tmp_path) == ["fake_work"]
        ctx = ToolContext(workspace=tmp_path, data_dir=tmp_path / "data")
        assert registry.get("fake_work").run({}, ctx).output == "worked"
        for _ in range(200):  # bounded: the re-list runs on its own thread
            if "fake_extra" in registry.names():
                break
            threading.Event().wait(0.05)
        assert "fake_extra" in registry.names()
    finally:
        bridge.detach()
    assert "fake_work" not in registry.names()


def test_bridge_skips_a_server_that_fails(tmp_path, capsys):
    from codetether.mcp import bridge

    spec = ServerSpec("nothere", "stdio", command=str(tmp_path / "missing"))
    assert bridge.attach_servers([spec], tmp_path) == []
    assert "mcp server 'nothere' skipped" in capsys.readouterr().err
    assert "nothere" not in bridge.handles()


# ---- the agent uses an MCP tool ----------------------------------------------------------------

def _scripted_time_call(llm) -> None:
    from tests.scripted_llm import ToolCall, Turn

    llm.enqueue(Turn(tool_calls=[ToolCall("time_get_current_time", {"timezone": "UTC"})]),
                Turn(text="It is time."))


def _tool_result_sent(llm) -> str:
    return [m for m in llm.requests[1].body["messages"] if m["role"] == "tool"][-1]["content"]


def test_agent_turn_calls_an_mcp_tool(tmp_path, monkeypatch):
    """In process: the hook the agent set-up calls, then a real turn against a scripted LLM."""
    from codetether.agent.setup import build_runtime, open_session
    from codetether.mcp import bridge
    from codetether.mcp.config import add_server
    from tests.scripted_llm import ScriptedLLMServer

    add_server(time_spec())
    with ScriptedLLMServer() as llm:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-MCP-0123456789")
        monkeypatch.setenv("OPENAI_BASE_URL", llm.url + "/v1")
        monkeypatch.setenv("CODETETHER_DEFAULT_MODEL", "openai/gpt-4o")
        _scripted_time_call(llm)
        try:
            session, store, cfg = open_session(tmp_path)
            assert "time_get_current_time" in bridge.attach_configured_servers(cfg, tmp_path)
            agent = build_runtime(session=session, store=store, cfg=cfg, workspace=tmp_path)
            result = agent.run("what time is it in UTC?")
        finally:
            bridge.detach()
        assert result.stop_reason == "end_turn" and result.response == "It is time."
        offered = {t["function"]["name"] for t in llm.requests[0].body["tools"]}
        assert {"time_get_current_time", "time_convert_time", "read"} <= offered
        assert json.loads(_tool_result_sent(llm))["timezone"] == "UTC"


def test_codetether_run_calls_an_mcp_tool(tmp_path):
    """The real `codetether run` process: needs the hook wired into agent/setup.py."""
    import inspect

    from codetether.agent import setup
    from tests.cli import run_cli
    from tests.scripted_llm import ScriptedLLMServer

    if "attach_configured_servers" not in inspect.getsource(setup):
        pytest.skip("agent/setup.py does not call codetether.mcp.bridge.attach_configured_servers "
                    "yet")
    assert mcp("add", "time", "--", TIME_SERVER, "--local-timezone", "UTC").returncode == 0
    with ScriptedLLMServer() as llm:
        _scripted_time_call(llm)
        proc = run_cli("run", "--format", "jsonl", "what time is it?", cwd=tmp_path,
                       env={"OPENAI_API_KEY": "sk-test-MCP-0123456789",
                            "OPENAI_BASE_URL": llm.url + "/v1",
                            "CODETETHER_DEFAULT_MODEL": "openai/gpt-4o"})
        assert proc.returncode == 0, proc.stderr
        events = [json.loads(line) for line in proc.stdout.splitlines()]
        finished = [e for e in events if e["type"] == "tool.finished"]
        assert [(e["name"], e["success"]) for e in finished] == [("time_get_current_time", True)]
        assert json.loads(_tool_result_sent(llm))["timezone"] == "UTC"
