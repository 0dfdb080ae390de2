"""The agent end to end: the real `codetether run` process, a scripted model, a real git repo."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.cli import ROOT, run_cli
from tests.scripted_llm import ScriptedLLMServer, ToolCall, Turn

BUGGY = "def add(a, b):\n    return a - b\n"
TESTS = "from calc import add\nassert add(2, 3) == 5, 'add is broken'\nprint('all tests passed')\n"


@pytest.fixture
def llm():
    with ScriptedLLMServer() as server:
        yield server


@pytest.fixture
def repo(tmp_path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "calc.py").write_text(BUGGY)
    (repo / "test_calc.py").write_text(TESTS)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "."], cwd=repo, check=True)
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init"],
                   cwd=repo, check=True)
    return repo


def env_for(llm) -> dict[str, str]:
    return {"OPENAI_API_KEY": "sk-test-AGENT-0123456789", "OPENAI_BASE_URL": llm.url + "/v1",
            "CODETETHER_DEFAULT_MODEL": "openai/gpt-4o"}


def jsonl(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def tool_results(request) -> list[dict]:
    return [m for m in request.body["messages"] if m["role"] == "tool"]


def test_fix_a_bug_end_to_end(llm, repo):
    test_cmd = f"{sys.executable} test_calc.py"
    llm.enqueue(
        Turn(text="Let me look.", tool_calls=[ToolCall("read", {"path": "calc.py"})]),
        Turn(tool_calls=[ToolCall("bash", {"command": test_cmd})]),
        Turn(tool_calls=[ToolCall("edit", {"path": "calc.py", "old_string": "return a - b",
                                           "new_string": "return a + b"})]),
        Turn(tool_calls=[ToolCall("bash", {"command": test_cmd})]),
        Turn(text="Fixed add(); the tests pass."),
    )
    proc = run_cli("run", "--yolo", "--format", "jsonl", "fix the failing test", cwd=repo,
                   env=env_for(llm))
    assert proc.returncode == 0, proc.stderr
    assert (repo / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"
    events = jsonl(proc.stdout)
    finished = [e for e in events if e["type"] == "tool.finished"]
    assert [(e["name"], e["success"]) for e in finished] == [
        ("read", True), ("bash", False), ("edit", True), ("bash", True)]
    done = events[-1]
    assert done["type"] == "run.completed" and done["stop_reason"] == "end_turn"
    assert done["response"] == "Fixed add(); the tests pass."
    assert done["usage"]["input_tokens"] == 5 * 11  # five scripted steps of 11 tokens each
    # what the model was shown
    assert "return a - b" in tool_results(llm.requests[1])[-1]["content"]
    assert "add is broken" in tool_results(llm.requests[2])[-1]["content"]
    assert "all tests passed" in tool_results(llm.requests[4])[-1]["content"]
    tools_offered = {t["function"]["name"] for t in llm.requests[0].body["tools"]}
    assert {"read", "edit", "bash", "grep", "todo_write"} <= tools_offered
    # the stored session
    shown = json.loads(run_cli("session", "show", done["session_id"], "--json", cwd=repo).stdout)
    roles = [m["role"] for m in shown["messages"]]
    assert roles == ["user", "assistant", "tool", "assistant", "tool", "assistant", "tool",
                     "assistant", "tool", "assistant"]
    assert shown["title"] == "fix the failing test"
    assert shown["usage"]["input_tokens"] == 55


def test_default_format_streams_text_and_reports_session(llm, repo):
    llm.enqueue(Turn(tool_calls=[ToolCall("list", {"path": "."})]), Turn(text="Two files."))
    proc = run_cli("run", "what is here?", cwd=repo, env=env_for(llm))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Two files.\n"
    assert "→ list ." in proc.stderr and "✓ list" in proc.stderr
    assert "[session: ses_" in proc.stderr and 'codetether run -c' in proc.stderr


def test_without_tty_a_write_is_denied_and_the_model_is_told(llm, repo):
    llm.enqueue(Turn(tool_calls=[ToolCall("write", {"path": "new.txt", "content": "x"})]),
                Turn(text="I could not write."))
    proc = run_cli("run", "--format", "jsonl", "make a file", cwd=repo, env=env_for(llm))
    assert proc.returncode == 0, proc.stderr
    assert not (repo / "new.txt").exists()
    result = tool_results(llm.requests[1])[-1]["content"]
    assert "permission denied" in result and "--access-mode" in result
    assert any(e["type"] == "approval.requested" for e in jsonl(proc.stdout))


def test_approve_mode_allows_writes_but_not_shell(llm, repo):
    llm.enqueue(Turn(tool_calls=[ToolCall("write", {"path": "new.txt", "content": "hello"}),
                                 ToolCall("bash", {"command": "touch made-by-bash"})]),
                Turn(text="done"))
    proc = run_cli("run", "--access-mode", "approve", "go", cwd=repo, env=env_for(llm))
    assert proc.returncode == 0, proc.stderr
    assert (repo / "new.txt").read_text() == "hello"
    assert not (repo / "made-by-bash").exists()


def test_config_rules_allow_and_deny_bash_patterns(llm, repo):
    run_cli("config", "--set", 'permissions.bash={"touch ok*" = "allow", "rm *" = "deny"}')
    llm.enqueue(Turn(tool_calls=[ToolCall("bash", {"command": "touch ok-file"})]),
                Turn(tool_calls=[ToolCall("bash", {"command": "rm calc.py"})]),
                Turn(text="done"))
    proc = run_cli("run", "--yolo", "go", cwd=repo, env=env_for(llm))
    assert proc.returncode == 0, proc.stderr
    assert (repo / "ok-file").exists()
    assert (repo / "calc.py").exists()  # deny beats --yolo
    assert "permission denied" in tool_results(llm.requests[2])[-1]["content"]


def test_plan_agent_is_read_only(llm, repo):
    llm.enqueue(Turn(tool_calls=[ToolCall("bash", {"command": "rm calc.py"})]),
                Turn(text="plan: change add"))
    proc = run_cli("run", "--agent", "plan", "--yolo", "plan it", cwd=repo, env=env_for(llm))
    assert proc.returncode == 0, proc.stderr
    offered = {t["function"]["name"] for t in llm.requests[0].body["tools"]}
    assert "write" not in offered and "edit" not in offered and "read" in offered
    assert (repo / "calc.py").exists()
    assert "read-only" in tool_results(llm.requests[1])[-1]["content"]


def test_continue_session_sends_history(llm, repo):
    llm.enqueue(Turn(text="first answer"), Turn(text="second answer"))
    first = jsonl(run_cli("run", "--format", "jsonl", "first question", cwd=repo,
                          env=env_for(llm)).stdout)
    proc = run_cli("run", "-c", "--format", "jsonl", "second question", cwd=repo,
                   env=env_for(llm))
    assert proc.returncode == 0, proc.stderr
    assert jsonl(proc.stdout)[-1]["session_id"] == first[-1]["session_id"]
    contents = [m.get("content") for m in llm.requests[1].body["messages"]]
    assert "first question" in contents and "first answer" in contents
    assert contents[-1] == "second question"


def test_max_steps_stops_the_loop(llm, repo):
    llm.enqueue(*[Turn(tool_calls=[ToolCall("list", {"path": "."})]) for _ in range(3)])
    proc = run_cli("run", "--max-steps", "2", "--format", "json", "loop", cwd=repo,
                   env=env_for(llm))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["stop_reason"] == "max_steps" and out["steps"] == 2
    assert len(llm.requests) == 2


def test_unknown_tool_and_bad_arguments_become_tool_errors(llm, repo):
    llm.enqueue(Turn(tool_calls=[ToolCall("nosuchtool", {}),
                                 ToolCall("read", "{not json")]), Turn(text="ok"))
    proc = run_cli("run", "go", cwd=repo, env=env_for(llm))
    assert proc.returncode == 0, proc.stderr
    results = [m["content"] for m in tool_results(llm.requests[1])]
    assert "unknown tool 'nosuchtool'" in results[0]
    assert "not a JSON object" in results[1] or "invalid JSON" in results[1]


def test_provider_error_mid_stream_keeps_partial_and_session_resumes(llm, repo):
    llm.enqueue(Turn(text="partial words that break", text_chunk=3, cut_after=4),
                Turn(text="recovered"))
    proc = run_cli("run", "--format", "jsonl", "go", cwd=repo, env=env_for(llm))
    assert proc.returncode == 1
    events = jsonl(proc.stdout)
    assert events[-1]["type"] == "run.failed" and "broke off" in events[-1]["error"]
    session_id = events[-1]["session_id"]
    shown = json.loads(run_cli("session", "show", session_id, "--json", cwd=repo).stdout)
    assistant = shown["messages"][-1]
    assert assistant["role"] == "assistant" and assistant["meta"]["error"]
    assert assistant["parts"][0]["text"].startswith("par")
    proc = run_cli("run", "-s", session_id, "again", cwd=repo, env=env_for(llm))
    assert proc.returncode == 0 and proc.stdout == "recovered\n"


def test_sigint_during_bash_cancels_and_session_stays_resumable(llm, repo):
    llm.enqueue(Turn(tool_calls=[ToolCall("bash", {"command": "echo started; sleep 60"})]),
                Turn(text="resumed fine"))
    env = dict(os.environ) | env_for(llm) | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "codetether", "run", "--yolo", "--format",
                             "jsonl", "sleep please"], cwd=repo, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    started = threading.Event()
    lines: list[str] = []

    def reader():
        for line in proc.stdout:
            lines.append(line)
            if '"tool.started"' in line:
                started.set()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    assert started.wait(30), proc.stderr.read() if proc.poll() is not None else "no tool start"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) == 130
    thread.join(5)
    events = [json.loads(line) for line in lines]
    assert events[-1]["type"] == "run.completed" and events[-1]["stop_reason"] == "cancelled"
    session_id = events[-1]["session_id"]
    shown = json.loads(run_cli("session", "show", session_id, "--json", cwd=repo).stdout)
    call_ids = [p["id"] for m in shown["messages"] for p in m["parts"] if p["type"] == "tool_call"]
    result_ids = [p["tool_call_id"] for m in shown["messages"] for p in m["parts"]
                  if p["type"] == "tool_result"]
    assert call_ids and call_ids == result_ids  # every call has a result
    proc2 = run_cli("run", "-c", "--yolo", "continue", cwd=repo, env=env_for(llm))
    assert proc2.returncode == 0, proc2.stderr
    assert proc2.stdout == "resumed fine\n"


def test_undo_restores_the_files_the_agent_changed(llm, repo):
    llm.enqueue(Turn(tool_calls=[ToolCall("edit", {"path": "calc.py", "old_string": "a - b",
                                                   "new_string": "a * b"})]),
                Turn(tool_calls=[ToolCall("write", {"path": "notes.txt", "content": "n"})]),
                Turn(text="changed"))
    assert run_cli("run", "--yolo", "change", cwd=repo, env=env_for(llm)).returncode == 0
    assert "a * b" in (repo / "calc.py").read_text() and (repo / "notes.txt").exists()
    preview = run_cli("undo", "--steps", "2", "--preview", cwd=repo)
    assert preview.returncode == 0, preview.stderr
    assert "calc.py" in preview.stdout and (repo / "notes.txt").exists()
    proc = run_cli("undo", "--steps", "2", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert (repo / "calc.py").read_text() == BUGGY
    assert not (repo / "notes.txt").exists()
    status = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True,
                            text=True).stdout
    assert status == ""  # the user's repo is exactly as before, index included


def test_old_tool_output_is_pruned_with_a_small_window(llm, repo):
    big = "\n".join(f"line {i} " + "x" * 60 for i in range(300))  # ~5.5K tokens
    (repo / "big.txt").write_text(big)
    env = env_for(llm) | {"CODETETHER_SESSION_CONTEXT_WINDOW": "8000"}
    llm.enqueue(Turn(tool_calls=[ToolCall("read", {"path": "big.txt"})]), Turn(text="read it"),
                Turn(text="second answer"), Turn(text="third answer"))
    assert run_cli("run", "--yolo", "read big.txt", cwd=repo, env=env).returncode == 0
    assert run_cli("run", "-c", "second", cwd=repo, env=env).returncode == 0
    assert "line 299" in json.dumps(llm.requests[-1].body)  # within the last two user turns
    proc = run_cli("run", "-c", "--format", "jsonl", "third", cwd=repo, env=env)
    assert proc.returncode == 0, proc.stderr
    compactions = [e for e in jsonl(proc.stdout) if e["type"] == "compaction"]
    assert compactions == [{"type": "compaction", "pruned_messages": 1,
                            "summarized_messages": 0}]
    sent = json.dumps(llm.requests[-1].body)
    assert "line 299" not in sent and "[Old tool result content cleared]" in sent
    session_id = jsonl(proc.stdout)[-1]["session_id"]
    stored = run_cli("session", "export", session_id, cwd=repo).stdout
    assert "line 299" in stored  # the transcript on disk is complete


def test_older_history_is_summarised_with_a_small_window(llm, repo):
    env = env_for(llm) | {"CODETETHER_SESSION_CONTEXT_WINDOW": "8000"}
    llm.enqueue(Turn(text="first answer"))
    first = run_cli("run", "-", input="A" * 24000, cwd=repo, env=env)  # ~6K tokens
    assert first.returncode == 0, first.stderr
    llm.enqueue(Turn(text="## Objective\n- remembered facts"), Turn(text="second answer"))
    proc = run_cli("run", "-c", "--format", "jsonl", "B" * 8000 + " second question", cwd=repo,
                   env=env)
    assert proc.returncode == 0, proc.stderr
    events = jsonl(proc.stdout)
    assert {"type": "compaction", "pruned_messages": 0, "summarized_messages": 2} in events
    summary_request, final_request = llm.requests[-2], llm.requests[-1]
    assert "handoff summary" in summary_request.body["messages"][0]["content"]
    assert "A" * 100 in json.dumps(summary_request.body)
    sent = json.dumps(final_request.body["messages"])
    assert "remembered facts" in sent and "A" * 100 not in sent
    assert final_request.body["messages"][-1]["content"].endswith("second question")
    assert events[-1]["response"] == "second answer"


def test_task_runs_an_explore_subagent_in_a_child_session(llm, repo):
    llm.enqueue(
        Turn(tool_calls=[ToolCall("task", {"prompt": "find the add function",
                                           "subagent_type": "explore"})]),
        # the sub-agent's own steps
        Turn(tool_calls=[ToolCall("grep", {"pattern": "def add"})]),
        Turn(text="add() is in calc.py line 1"),
        # back in the parent
        Turn(text="The sub-agent found it."),
    )
    proc = run_cli("run", "--format", "json", "where is add?", cwd=repo, env=env_for(llm))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["response"] == "The sub-agent found it."
    child_tools = {t["function"]["name"] for t in llm.requests[1].body["tools"]}
    assert "write" not in child_tools and "task" not in child_tools and "grep" in child_tools
    assert "calc.py:1" in json.dumps(llm.requests[2].body)  # grep ran for the child
    assert "add() is in calc.py line 1" in tool_results(llm.requests[3])[-1]["content"]
    listed = json.loads(run_cli("session", "list", "--json", cwd=repo).stdout)
    sessions = listed if isinstance(listed, list) else listed["sessions"]
    child = [s for s in sessions if s["parent_id"] == out["session_id"]]
    assert len(child) == 1 and child[0]["agent"] == "explore"


def test_batch_and_parallel_read_only_calls_keep_call_order(llm, repo):
    llm.enqueue(
        Turn(tool_calls=[ToolCall("read", {"path": "calc.py"}),
                         ToolCall("read", {"path": "test_calc.py"}),
                         ToolCall("batch", {"calls": [
                             {"tool": "glob", "args": {"pattern": "*.py"}},
                             {"tool": "write", "args": {"path": "x", "content": "y"}}]})]),
        Turn(text="done"))
    proc = run_cli("run", "--yolo", "read both", cwd=repo, env=env_for(llm))
    assert proc.returncode == 0, proc.stderr
    results = [m for m in llm.requests[1].body["messages"] if m["role"] == "tool"]
    assert "return a - b" in results[0]["content"]
    assert "from calc import add" in results[1]["content"]
    assert "cannot be batched" in results[2]["content"]
    assert not (repo / "x").exists()


def _run_in_pty(args: list[str], cwd: Path, env: dict[str, str], answer: bytes) -> tuple[int, str]:
    """Run codetether on a pseudo-terminal, answer its approval prompt, return (code, screen)."""
    import pty
    import select

    pid, fd = pty.fork()
    if pid == 0:  # the child: becomes codetether, with the pty as its controlling terminal
        os.chdir(cwd)
        os.execvpe(sys.executable, [sys.executable, "-m", "codetether", *args], env)
    screen = b""
    answered = False
    while True:
        ready, _, _ = select.select([fd], [], [], 30)
        if not ready:
            os.kill(pid, signal.SIGKILL)
            break
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        screen += chunk
        if not answered and b"[n] no:" in screen:
            os.write(fd, answer)
            answered = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), screen.decode("utf-8", "replace")


def test_terminal_approval_always_is_remembered_for_the_project(llm, repo):
    llm.enqueue(Turn(tool_calls=[ToolCall("write", {"path": "one.txt", "content": "1"})]),
                Turn(text="wrote one"),
                Turn(tool_calls=[ToolCall("write", {"path": "two.txt", "content": "2"})]),
                Turn(text="wrote two"))
    env = dict(os.environ) | env_for(llm) | {"PYTHONPATH": str(ROOT)}
    code, screen = _run_in_pty(["run", "make one"], repo, env, b"a\n")
    assert code == 0, screen
    assert "allow write one.txt" in screen
    assert (repo / "one.txt").read_text() == "1"
    proc = run_cli("run", "make two", cwd=repo, env=env_for(llm))  # no terminal now
    assert proc.returncode == 0, proc.stderr
    assert (repo / "two.txt").read_text() == "2"


def test_terminal_approval_rejected(llm, repo):
    llm.enqueue(Turn(tool_calls=[ToolCall("bash", {"command": "touch nope"})]),
                Turn(text="ok, not doing it"))
    env = dict(os.environ) | env_for(llm) | {"PYTHONPATH": str(ROOT)}
    code, screen = _run_in_pty(["run", "--access-mode", "approve", "touch it"], repo, env,
                               b"n\n")
    assert code == 0, screen
    assert not (repo / "nope").exists()
    assert "rejected" in tool_results(llm.requests[1])[-1]["content"]


def test_agents_md_reaches_the_system_prompt_and_cost_is_counted(llm, repo):
    (repo / "AGENTS.md").write_text("Always run the tests with make check.")
    llm.enqueue(Turn(text="ok", input_tokens=1_000_000, output_tokens=1_000_000))
    proc = run_cli("run", "--format", "json", "hi", cwd=repo, env=env_for(llm))
    assert proc.returncode == 0, proc.stderr
    system = llm.requests[0].body["messages"][0]
    assert system["role"] == "system"
    assert "Always run the tests with make check." in system["content"]
    assert str(repo) in system["content"]  # the environment block
    out = json.loads(proc.stdout)
    assert out["cost"] == pytest.approx(2.5 + 10.0)  # gpt-4o: $2.5 in, $10 out per million
    shown = json.loads(run_cli("session", "show", out["session_id"], "--json", cwd=repo).stdout)
    assert shown["cost"] == pytest.approx(12.5)
