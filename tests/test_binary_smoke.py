"""Smoke test of the built single-file binary: every command the source tree has, run on it.

Runs only when ``CODETETHER_BINARY`` names a built binary (``make binary`` writes
``dist/codetether-<version>-<os>-<arch>``; the onedir executable works too), e.g.

    CODETETHER_BINARY=dist/codetether-0.1.0-linux-x86_64 pytest -q tests/test_binary_smoke.py

A command is checked only if its module (``codetether/cli/<module>.py``) exists; otherwise the
test is skipped naming the missing module, so the smoke test grows as commands land. The
launcher's unpack cache is shared by the whole session (one unpack, not one per test).
"""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from codetether import __version__
from codetether.cli.main import build_parser
from tests.scripted_llm import ScriptedLLMServer, ToolCall, Turn

ROOT = Path(__file__).resolve().parent.parent
# read now: the autouse isolated_env fixture clears CODETETHER_* before each test
BINARY = os.environ.get("CODETETHER_BINARY", "")
WAIT = 60.0
TOKEN = "smoke-test-token-0123456789"

pytestmark = pytest.mark.skipif(
    not (BINARY and Path(BINARY).is_file() and os.access(BINARY, os.X_OK)),
    reason="CODETETHER_BINARY does not point at a built binary (run `make binary`, then "
           "CODETETHER_BINARY=dist/codetether-<version>-<os>-<arch>)")


def needs(module: str) -> None:
    if not (ROOT / "codetether" / "cli" / f"{module}.py").exists():
        pytest.skip(f"codetether/cli/{module}.py does not exist yet")


@pytest.fixture(scope="session")
def unpack_cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("unpack-cache"))


@pytest.fixture
def env(unpack_cache) -> dict[str, str]:
    return dict(os.environ, XDG_CACHE_HOME=unpack_cache, LANG="C.UTF-8")


@pytest.fixture
def llm():
    with ScriptedLLMServer() as server:
        yield server


@pytest.fixture
def workspace(tmp_path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "hello.py").write_text("print('hi')\n")
    subprocess.run(["git", "init", "-q"], cwd=ws, check=True)
    return ws


def llm_env(env: dict[str, str], llm) -> dict[str, str]:
    return env | {"OPENAI_API_KEY": "sk-test-SMOKE-0123456789",
                  "OPENAI_BASE_URL": llm.url + "/v1",
                  "CODETETHER_DEFAULT_MODEL": "openai/gpt-4o"}


def binary(*args: str, env: dict[str, str], cwd: Path | None = None, input: str | None = None,
           ) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(Path(BINARY).absolute()), *args], capture_output=True, text=True,
                          env=env, cwd=cwd, input=input, timeout=WAIT,
                          stdin=None if input is not None else subprocess.DEVNULL)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


class Running:
    """The binary as a long-running process; stderr lines are read on a thread."""

    def __init__(self, *args: str, env: dict[str, str], stdin: bool = False) -> None:
        self.proc = subprocess.Popen(
            [str(Path(BINARY).absolute()), *args], env=env, text=True,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stderr:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, pattern: str) -> re.Match:
        while True:
            try:
                line = self.lines.get(timeout=WAIT)
            except queue.Empty:
                raise AssertionError(f"no {pattern!r} on stderr; saw {self.seen}") from None
            if line is None:
                raise AssertionError(f"exited {self.proc.wait()}; stderr {self.seen}")
            self.seen.append(line)
            if found := re.search(pattern, line):
                return found

    def rpc(self, message: dict) -> dict:
        """One newline-delimited JSON-RPC request on stdin; the response line from stdout."""
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()
        answer: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: answer.put(self.proc.stdout.readline()),
                         daemon=True).start()
        line = answer.get(timeout=WAIT)
        assert line, f"no answer; stderr {self.seen}"
        return json.loads(line)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(WAIT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def test_version(env):
    proc = binary("--version", env=env)
    assert proc.returncode == 0
    assert proc.stdout == f"codetether {__version__}\n"


def test_help_lists_every_command_of_the_source_tree(env):
    proc = binary("--help", env=env)
    assert proc.returncode == 0
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    missing = [name for name in commands if name not in proc.stdout]
    assert not missing, f"the binary is older than the source tree: no {missing}"


def test_config_show(env):
    needs("config_cmd")
    proc = binary("config", "--show", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()


def test_models_json(env):
    needs("models_cmd")
    proc = binary("models", "--json", env=env | {"OPENAI_API_KEY": "sk-test-x-0123456789"})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)


def test_auth_list(env):
    needs("auth_cmd")
    proc = binary("auth", "list", "--json", env=env | {"OPENAI_API_KEY": "sk-test-x-0123456789"})
    assert proc.returncode == 0, proc.stderr
    assert "openai" in proc.stdout


def test_run_with_a_tool_then_sessions_and_undo(env, llm, workspace):
    """A tool call proves tools (imported by name) are in the binary; the session commands
    then read what the run stored."""
    needs("run_cmd")
    llm.enqueue(Turn(tool_calls=[ToolCall("read", {"path": "hello.py"})]))
    llm.enqueue(Turn(text="It prints hi."))
    proc = binary("run", "--format", "json", "what does hello.py do?", env=llm_env(env, llm),
                  cwd=workspace)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["ok"] is True and result["response"] == "It prints hi."
    tool_result = json.dumps(llm.requests[-1].body["messages"])
    assert "print('hi')" in tool_result  # the read tool ran inside the binary
    if (ROOT / "codetether" / "cli" / "session_cmd.py").exists():
        listed = binary("session", "list", "--json", env=env, cwd=workspace)
        assert listed.returncode == 0, listed.stderr
        assert json.loads(listed.stdout), "the run's session is listed"
        exported = binary("export", env=env, cwd=workspace)
        assert exported.returncode == 0, exported.stderr
        assert "It prints hi." in exported.stdout
    if (ROOT / "codetether" / "cli" / "undo_cmd.py").exists():
        undo = binary("undo", "--preview", env=env, cwd=workspace)
        assert undo.returncode in (0, 1), undo.stderr  # nothing to undo is a clear error


def test_serve_answers_a2a_and_the_a2a_client(env):
    needs("serve_cmd")
    server = Running("serve", "--port", "0", "--backend", "echo", "--grpc-port", "0",
                     env=env | {"CODETETHER_AUTH_TOKEN": TOKEN})
    try:
        url = server.wait_for(r"listening on (http://\S+)").group(1)
        server.wait_for(r"A2A gRPC")  # grpc is in the binary and its server started
        with urllib.request.urlopen(url + "/health", timeout=WAIT) as resp:
            assert resp.status == 200
        request = urllib.request.Request(url + "/.well-known/agent-card.json",
                                         headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(request, timeout=WAIT) as resp:
            assert json.loads(resp.read())["name"]
        if (ROOT / "codetether" / "cli" / "a2a_cmd.py").exists():
            sent = binary("a2a", "send", url, "hello smoke", "--token", TOKEN, env=env)
            assert sent.returncode == 0, sent.stderr
            assert "hello smoke" in sent.stdout  # the echo backend answers with the text
    finally:
        assert server.stop() == 0, server.seen


def test_spawn_starts_a_peer(env):
    needs("spawn_cmd")
    peer = Running("spawn", "--name", "smoke", "--port", "0", env=env)
    try:
        peer.wait_for(r"listening on (http://\S+)")
    finally:
        assert peer.stop() == 0, peer.seen


def test_mcp_serve_initialize(env, workspace):
    needs("mcp_cmd")
    server = Running("mcp", "serve", str(workspace), env=env, stdin=True)
    try:
        init = server.rpc({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2024-11-05", "capabilities": {},
            "clientInfo": {"name": "smoke", "version": "0"}}})
        assert init["result"]["serverInfo"]["name"], init
        server.proc.stdin.write(json.dumps({"jsonrpc": "2.0",
                                            "method": "notifications/initialized"}) + "\n")
        tools = server.rpc({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        assert "read" in {tool["name"] for tool in tools["result"]["tools"]}
        server.proc.stdin.close()  # end of input ends the server
        assert server.proc.wait(WAIT) == 0
    finally:
        server.stop()


def test_acp_initialize(env, workspace):
    needs("acp_cmd")
    agent = Running("acp", env=env, stdin=True)
    try:
        init = agent.rpc({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                          "params": {"protocolVersion": 1, "clientCapabilities": {}}})
        assert init["result"]["protocolVersion"] == 1, init
        agent.proc.stdin.close()
        assert agent.proc.wait(WAIT) == 0
    finally:
        agent.stop()


def test_tui_under_tmux(env, llm, workspace, tmp_path):
    needs("tui_cmd")
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    llm.enqueue(Turn(text="The answer is **forty-two**."))
    socket, status = f"ct-smoke-{uuid.uuid4().hex[:8]}", tmp_path / "status"
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in llm_env(env, llm).items()
                       if k.isidentifier())
    script = (f"export {exports} TERM=xterm-256color; "
              f"{shlex.quote(str(Path(BINARY).absolute()))} tui {shlex.quote(str(workspace))}; "
              f"echo $? > {shlex.quote(str(status))}")

    def tmux(*args: str) -> str:
        return subprocess.run(["tmux", "-L", socket, "-f", "/dev/null", *args], check=True,
                              capture_output=True, text=True, timeout=10).stdout

    def wait_until(check, what: str) -> None:
        pause, deadline = threading.Event(), time.monotonic() + WAIT
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} within {WAIT}s; screen:\n{screen()}")
            pause.wait(0.1)

    def screen() -> str:
        try:
            return tmux("capture-pane", "-p", "-t", "tui")
        except subprocess.CalledProcessError:
            return "(session gone)"

    tmux("new-session", "-d", "-s", "tui", "-x", "100", "-y", "30", "sh", "-c", script)
    try:
        wait_until(lambda: "openai/gpt-4o" in screen(), "no first frame")
        tmux("send-keys", "-t", "tui", "-l", "what is the answer?")
        tmux("send-keys", "-t", "tui", "Enter")
        wait_until(lambda: "forty-two" in screen(), "no streamed answer")
        tmux("send-keys", "-t", "tui", "C-c")
        tmux("send-keys", "-t", "tui", "C-c")
        wait_until(lambda: status.exists() and status.read_text().strip(), "no exit")
        assert status.read_text().strip() == "0"
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)
