"""`codetether mcp serve` as a real subprocess, driven by the official mcp SDK client (a peer we
did not write) and by a raw line-level peer for what the SDK would never send."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.cli import ROOT

WAIT = 20.0


def codetether_argv(*args: str) -> list[str]:
    """``python -m codetether ARGS``; until the CLI table has ``mcp``, its module entry point."""
    from codetether.cli.main import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    if args[0] in commands:
        return [sys.executable, "-m", "codetether", *args]
    return [sys.executable, "-m", f"codetether.cli.{args[0]}_cmd", *args[1:]]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture
def workspace(tmp_path) -> Path:
    ws = tmp_path / "ws"
    (ws / "src").mkdir(parents=True)
    (ws / "src" / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (ws / "README.md").write_text("# demo\n")
    (ws / ".git").mkdir()
    (ws / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (tmp_path / "secret.txt").write_text("outside the workspace\n")
    return ws


def sdk(workspace: Path, body, *extra: str):
    """Run ``body(client)`` against a fresh ``mcp serve`` with the SDK's stdio client."""
    from mcp import Client, StdioServerParameters

    argv = codetether_argv("mcp", "serve", str(workspace), *extra)
    params = StdioServerParameters(command=argv[0], args=argv[1:], env=child_env(),
                                   cwd=str(ROOT))

    async def main():
        async with Client(params, read_timeout_seconds=WAIT) as client:
            return await body(client)

    return asyncio.run(main())


def test_sdk_client_lists_and_calls_tools(workspace):
    async def body(client):
        tools = (await client.list_tools()).tools
        ok = await client.call_tool("read", {"path": "src/calc.py"})
        missing = await client.call_tool("read", {"path": "src/nope.py"})
        return client.protocol_version, client.server_info, tools, ok, missing

    version, info, tools, ok, missing = sdk(workspace, body)
    assert version == "2025-11-25" and info.name == "codetether"
    names = {t.name for t in tools}
    assert {"read", "grep", "edit", "bash", "todo_write"} <= names
    assert not names & {"question", "plan_enter", "plan_exit", "undo", "task"}  # interactive
    read = next(t for t in tools if t.name == "read")
    assert read.input_schema["type"] == "object" and "path" in read.input_schema["properties"]
    assert read.annotations.read_only_hint is True
    assert not ok.is_error and "return a - b" in ok.content[0].text
    assert missing.is_error and "does not exist" in missing.content[0].text


def test_writes_follow_the_access_mode(workspace):
    args = {"path": "src/calc.py", "old_string": "a - b", "new_string": "a + b"}

    async def body(client):
        return await client.call_tool("edit", args)

    denied = sdk(workspace, body)  # default access mode "ask" and nobody to ask: a denial
    assert denied.is_error and "permission denied" in denied.content[0].text
    assert "--access-mode" in denied.content[0].text
    assert "a - b" in (workspace / "src" / "calc.py").read_text()
    allowed = sdk(workspace, body, "--access-mode", "approve")
    assert not allowed.is_error, allowed.content[0].text
    assert "a + b" in (workspace / "src" / "calc.py").read_text()


def test_resources_files_and_sessions(workspace):
    from codetether.agent.session import StoredMessage
    from codetether.agent.store import SessionStore
    from codetether.providers.base import TextPart

    with SessionStore() as store:
        session = store.create(str(workspace.resolve()), "openai/gpt-4o", "build", "fix calc")
        store.append(session, StoredMessage("user", [TextPart("please fix calc")]))

    async def body(client):
        listed = (await client.list_resources()).resources
        calc = next(r for r in listed if r.name == "src/calc.py")
        text = (await client.read_resource(calc.uri)).contents[0]
        transcript = (await client.read_resource(f"codetether://session/{session.id}"))
        outside = (workspace.parent / "secret.txt").as_uri()
        try:
            await client.read_resource(outside)
            refused = None
        except Exception as exc:  # the SDK raises MCPError carrying the JSON-RPC error
            refused = exc
        return listed, text, transcript, refused

    listed, text, transcript, refused = sdk(workspace, body)
    uris = [str(r.uri) for r in listed]
    assert (workspace / "README.md").resolve().as_uri() in uris
    assert not any("/.git/" in u for u in uris)
    assert f"codetether://session/{session.id}" in uris
    assert text.text == "def add(a, b):\n    return a - b\n"
    data = json.loads(transcript.contents[0].text)
    assert data["id"] == session.id and "please fix calc" in json.dumps(data)
    assert refused is not None and getattr(refused, "code", None) == -32002


def test_prompts(workspace):
    async def body(client):
        prompts = (await client.list_prompts()).prompts
        review = await client.get_prompt("code_review", {"path": "src/calc.py",
                                                         "focus": "arithmetic"})
        try:
            await client.get_prompt("explain_code", {})
            error = None
        except Exception as exc:
            error = exc
        return prompts, review, error

    prompts, review, error = sdk(workspace, body)
    assert {p.name for p in prompts} == {"code_review", "explain_code"}
    text = review.messages[0].content.text
    assert review.messages[0].role == "user"
    assert "return a - b" in text and "Focus on: arithmetic" in text
    assert getattr(error, "code", None) == -32602


def test_progress_and_cancellation_stop_the_running_tool(workspace, tmp_path):
    import anyio

    pid_file = tmp_path / "pid"

    async def body(client):
        seen: list[str] = []
        started = anyio.Event()

        async def on_progress(progress, total, message):
            if message:
                seen.append(message)
            if message and message.startswith("pid="):
                started.set()

        command = f"echo pid=$$; echo $$ > {pid_file}; sleep 60"
        async with anyio.create_task_group() as tg:
            async def call():
                await client.call_tool("bash", {"command": command}, progress_callback=on_progress)
            tg.start_soon(call)
            with anyio.fail_after(WAIT):
                await started.wait()
            tg.cancel_scope.cancel()  # the SDK sends notifications/cancelled for the call
        fast = await client.call_tool("bash", {"command": "echo still here"})
        return seen, fast

    seen, fast = sdk(workspace, body, "--access-mode", "full")
    assert seen[0].startswith("pid=")
    assert "still here" in fast.content[0].text  # the server kept serving
    pid = int(pid_file.read_text())
    for _ in range(600):  # bounded (30 s): the process group is killed on cancel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        threading.Event().wait(0.05)
    else:
        pytest.fail(f"shell {pid} still running after the call was cancelled")


class RawServer:
    """``mcp serve`` with pipes we read line by line (with timeouts)."""

    def __init__(self, workspace: Path, *extra: str) -> None:
        self.proc = subprocess.Popen(codetether_argv("mcp", "serve", str(workspace), *extra),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=child_env(), cwd=ROOT)
        self.lines: queue.Queue = queue.Queue()
        self.raw: list[bytes] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in iter(self.proc.stdout.readline, b""):
            self.raw.append(line)
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def send(self, message: dict | bytes) -> None:
        data = message if isinstance(message, bytes) else json.dumps(message).encode() + b"\n"
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def recv(self) -> dict:
        return self.lines.get(timeout=WAIT)

    def close(self) -> int:
        self.proc.stdin.close()
        code = self.proc.wait(WAIT)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return code


def init(version: str) -> dict:
    return {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": version, "capabilities": {},
                       "clientInfo": {"name": "raw", "version": "0"}}}


def test_raw_protocol_versions_errors_and_a_clean_stdout(workspace):
    server = RawServer(workspace)
    try:
        server.send(init("2024-11-05"))
        assert server.recv()["result"]["protocolVersion"] == "2024-11-05"  # echoed
        server.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        server.send(b"this is not json\n")
        assert server.recv()["error"]["code"] == -32700
        server.send({"jsonrpc": "2.0", "id": 2, "method": "server/discover", "params": {}})
        assert server.recv()["error"]["code"] == -32601
        server.send({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                     "params": {"name": "no_such_tool", "arguments": {}}})
        assert server.recv()["error"]["code"] == -32602
        server.send({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
                     "params": {"name": "bash", "arguments": {"command": "echo to-stdout"}}})
        reply = server.recv()  # bash in ask mode: `echo` only reads, so it may run
        assert reply["id"] == 4 and "to-stdout" in reply["result"]["content"][0]["text"]
        server.send({"jsonrpc": "2.0", "id": 5, "method": "ping"})
        assert server.recv() == {"jsonrpc": "2.0", "id": 5, "result": {}}
    finally:
        assert server.close() == 0
    for line in server.raw:  # nothing but JSON-RPC on stdout
        assert json.loads(line)["jsonrpc"] == "2.0"


def test_unknown_protocol_version_gets_our_latest(workspace):
    server = RawServer(workspace)
    try:
        server.send(init("1999-01-01"))
        assert server.recv()["result"]["protocolVersion"] == "2025-11-25"
    finally:
        server.close()


def test_list_tools_command(workspace):
    proc = subprocess.run(codetether_argv("mcp", "list-tools", "--json"), capture_output=True,
                          text=True, env=child_env(), cwd=ROOT, timeout=WAIT)
    assert proc.returncode == 0, proc.stderr
    tools = {t["name"]: t for t in json.loads(proc.stdout)}
    assert "read" in tools and "question" not in tools
    assert tools["edit"]["annotations"]["readOnlyHint"] is False
    text = subprocess.run(codetether_argv("mcp", "list-tools"), capture_output=True, text=True,
                          env=child_env(), cwd=ROOT, timeout=WAIT)
    assert text.returncode == 0 and text.stdout.startswith("read")
