"""The bash tool with real subprocesses, and the read-only command table."""

from __future__ import annotations

import os
import select
import threading
from pathlib import Path

import pytest

from codetether.tools.base import Limits, ToolContext, ToolError
from codetether.tools.shell import BashTool, HeadTailBuffer, is_read_only_command


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ToolContext(workspace=ws, data_dir=tmp_path / "data")


def bash(ctx: ToolContext, command: str, **args):
    return BashTool().run({"command": command, **args}, ctx)


def process_gone(pid: int, timeout: float = 10.0) -> bool:
    """True once ``pid`` has exited. A killed process closes its files (so our pipe sees EOF)
    a moment before the kernel marks it exited, so wait on a pidfd, which becomes readable
    exactly when the process has terminated (zombie or reaped)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


def test_success_output_and_environment(ctx):
    result = bash(ctx, 'echo hello; echo "$CODETETHER $PAGER $GIT_PAGER $TERM"; pwd')
    assert result.success
    assert result.output.splitlines() == ["hello", "1 cat cat dumb", str(ctx.workspace), "",
                                          "exit code: 0"]
    assert result.metadata["exit_code"] == 0
    assert not result.metadata["timed_out"] and not result.metadata["cancelled"]
    assert result.metadata["duration_ms"] >= 0


def test_nonzero_exit_and_stderr_are_a_normal_result(ctx):
    result = bash(ctx, "echo out; echo err >&2; exit 3")
    assert not result.success
    assert "out" in result.output and "err" in result.output
    assert result.output.endswith("exit code: 3")
    assert result.metadata["exit_code"] == 3


def test_stdin_is_closed(ctx):
    result = bash(ctx, "cat; read -r line || echo got-eof", timeout=20)
    assert result.success and "got-eof" in result.output
    assert not result.metadata["timed_out"]


def test_cwd_inside_workspace_and_refused_outside(ctx, tmp_path):
    (ctx.workspace / "sub").mkdir()
    assert bash(ctx, "pwd", cwd="sub").output.startswith(str(ctx.workspace / "sub"))
    with pytest.raises(ToolError, match="outside the workspace"):
        bash(ctx, "pwd", cwd=str(tmp_path))
    with pytest.raises(ToolError, match="outside the workspace"):
        bash(ctx, "pwd", cwd="../")
    (ctx.workspace / "file").write_text("x")
    with pytest.raises(ToolError, match="not a directory"):
        bash(ctx, "pwd", cwd="file")


def test_bad_arguments(ctx):
    with pytest.raises(ToolError, match="command"):
        BashTool().run({}, ctx)
    with pytest.raises(ToolError, match="empty"):
        bash(ctx, "   ")
    with pytest.raises(ToolError, match="timeout"):
        bash(ctx, "true", timeout=-1)


def test_timeout_kills_the_whole_process_group_including_grandchildren(ctx):
    command = "bash -c 'sleep 30 & echo $!; sleep 30'"
    result = bash(ctx, command, timeout=1)

    assert not result.success
    assert result.metadata["timed_out"] and not result.metadata["cancelled"]
    assert "timed out after 1s; its whole process group was killed" in result.output
    grandchild = int(result.output.splitlines()[0])
    assert process_gone(grandchild)
    assert result.metadata["duration_ms"] < 20_000


def test_grandchild_ignoring_sigterm_is_killed(ctx):
    command = "bash -c 'trap \"\" TERM; sleep 30 & echo $!; wait'"
    result = bash(ctx, command, timeout=1)
    assert result.metadata["timed_out"]
    assert process_gone(int(result.output.splitlines()[0]))


def test_cancel_from_another_thread(ctx):
    seen = threading.Event()
    chunks: list[str] = []

    def emit(kind: str, data: dict) -> None:
        chunks.append(data["text"])
        if "READY" in "".join(chunks):
            seen.set()

    ctx.emit = emit
    results = []
    worker = threading.Thread(target=lambda: results.append(
        bash(ctx, "sleep 30 & echo $!; echo READY; wait", timeout=60)))
    worker.start()
    assert seen.wait(20), "the command never printed its marker"
    ctx.cancel.cancel()
    worker.join(20)
    assert not worker.is_alive()

    result = results[0]
    assert result.metadata["cancelled"] and not result.metadata["timed_out"]
    assert not result.success
    assert "command was cancelled; its whole process group was killed" in result.output
    assert process_gone(int(result.output.splitlines()[0]))
    assert result.metadata["duration_ms"] < 20_000


def test_cancelled_before_start(ctx, tmp_path):
    ctx.cancel.cancel()
    marker = tmp_path / "ran"
    with pytest.raises(ToolError, match="cancelled"):
        bash(ctx, f"touch {marker}")
    assert not marker.exists()


def test_huge_output_keeps_head_and_tail(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    ctx = ToolContext(workspace=ws, data_dir=tmp_path, limits=Limits(output_bytes=4096))
    result = bash(ctx, "echo FIRST; seq 1 200000; echo LAST")
    assert result.success
    out = result.output
    assert out.startswith("FIRST\n1\n2\n")
    assert out.endswith("199999\n200000\nLAST\n\nexit code: 0")
    assert "bytes of output dropped from the middle" in out
    assert len(out.encode()) < 4096 + 400
    assert result.metadata["output_truncated"]


def test_background_process_holding_the_pipe_does_not_hang(ctx):
    result = bash(ctx, "sleep 30 & echo $!", timeout=60)
    assert result.success
    assert "background processes kept the output open" in result.output
    assert process_gone(int(result.output.splitlines()[0]))


def test_detached_background_process_survives(ctx, tmp_path):
    pidfile = tmp_path / "pid"
    result = bash(ctx, f"sleep 30 > /dev/null 2>&1 & echo $! > {pidfile}")
    assert result.success and "background" not in result.output
    pid = int(pidfile.read_text())
    try:
        assert not process_gone(pid, timeout=0)
    finally:
        os.kill(pid, 9)


def test_head_tail_buffer_accounting():
    buf = HeadTailBuffer(10)
    for piece in (b"abc", b"defgh", b"ijklmnop", b"qrstuvwxyz"):
        buf.write(piece)
    text = buf.text()
    assert text.startswith("abcde\n") and text.endswith("\nvwxyz")
    assert "16 bytes of output dropped" in text
    small = HeadTailBuffer(100)
    small.write(b"short")
    assert small.text() == "short"


@pytest.mark.parametrize("command", [
    "ls -la", "cat README.md", "head -n 5 a.txt", "tail -20 log.txt", "wc -l *.py", "pwd",
    "echo hi", "grep -rn foo src", "rg needle", "find . -name '*.py'", "git status",
    "git log --oneline -5", "git diff HEAD~1", "git show HEAD:README.md", "git branch",
    "git branch -a", "git -C sub status", "git --no-pager log", "which python", "env", "date",
    "uname -a", "python --version", "node --version", "cat a.txt | grep x | wc -l",
    "ls 2>/dev/null", "git log 2>&1 | head", "sort a.txt", "uniq a.txt", "git tag",
    "grep 'a;b' file", "git stash list", "git config --get user.name",
])
def test_read_only_commands(command):
    assert is_read_only_command(command)


@pytest.mark.parametrize("command", [
    "", "rm -rf /", "mv a b", "cp a b", "sudo ls", "echo hi > out.txt", "cat a >> b",
    "ls; rm x", "ls && rm x", "ls || rm x", "cat f | sh", "cat f | tee out", "echo `rm x`",
    "echo $(rm x)", "find . -delete", "find . -exec rm {} ;", "git commit -m x", "git push",
    "git checkout main", "git branch new-branch", "git branch -D old", "git reset --hard",
    "git -c core.pager=evil log", "git diff --output=x", "git tag v1", "git stash",
    "date -s 2020-01-01", "sort -o out a.txt", "uniq in out", "env rm x", "./script.sh",
    "FOO=1 ls", "python script.py", "npm install", "ls &", "echo 'unbalanced",
    "cat <(ls)", "ls >&file", "unknowncmd", "sed -i s/a/b/ f", "xargs rm", "ls\nrm x",
    "(ls)", "echo hi &> out",
])
def test_not_read_only_commands(command):
    assert not is_read_only_command(command)


def test_provider_keys_and_tokens_are_hidden_from_the_shell(ctx, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-not-leak-0123456789")
    monkeypatch.setenv("VAULT_TOKEN", "hvs.should-not-leak-0123")
    monkeypatch.setenv("MY_OWN_SETTING", "visible")
    result = bash(ctx, 'echo "k=$OPENAI_API_KEY v=$VAULT_TOKEN m=$MY_OWN_SETTING"')
    assert result.success
    assert "k= v= m=visible" in result.output
    assert "should-not-leak" not in result.output
