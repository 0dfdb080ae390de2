"""todo_write / todo_read, plan mode and question, with a real data dir and real files."""

from __future__ import annotations

import json
import stat

import pytest

from codetether.tools import registry
from codetether.tools.base import ToolContext, ToolError
from codetether.tools.planning import (
    PlanEnterTool,
    PlanExitTool,
    QuestionTool,
    TodoReadTool,
    TodoWriteTool,
)


@pytest.fixture
def ctx(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    return ToolContext(workspace=ws, data_dir=tmp_path / "data", session_id="ses_abc")


TODOS = [
    {"id": "1", "content": "read the parser", "status": "completed", "priority": "high"},
    {"id": "2", "content": "fix the bug", "status": "in_progress"},
    {"id": "3", "content": "add a test", "status": "pending", "priority": "low"},
    {"id": "4", "content": "rewrite it all", "status": "cancelled"},
]


def test_registry_names_resolve():
    for name in ("todo_read", "todo_write", "plan_enter", "plan_exit", "question"):
        assert registry.get(name).name == name


def test_todo_write_renders_persists_and_replaces(ctx, tmp_path):
    result = TodoWriteTool().run({"todos": TODOS}, ctx)
    assert result.output.splitlines() == [
        "[x] 1. read the parser (high)",
        "[>] 2. fix the bug",
        "[ ] 3. add a test (low)",
        "[-] 4. rewrite it all",
        "4 todos: 1 pending, 1 in progress, 1 completed, 1 cancelled",
    ]
    path = tmp_path / "data" / "todos" / "ses_abc.json"
    stored = json.loads(path.read_text())
    assert [t["id"] for t in stored["todos"]] == ["1", "2", "3", "4"]
    assert stored["todos"][1]["priority"] == "medium"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ctx.state["todos"] == stored["todos"]

    # replace semantics: the new list is the whole list
    TodoWriteTool().run({"todos": [{"id": "9", "content": "only this", "status": "pending"}]},
                        ctx)
    assert [t["id"] for t in json.loads(path.read_text())["todos"]] == ["9"]


def test_todo_read_from_state_then_from_disk(ctx, tmp_path):
    TodoWriteTool().run({"todos": TODOS}, ctx)
    assert "[>] 2. fix the bug" in TodoReadTool().run({}, ctx).output
    # a resumed session: new context, same session id, list comes from disk
    fresh = ToolContext(workspace=ctx.workspace, data_dir=ctx.data_dir, session_id="ses_abc")
    out = TodoReadTool().run({"status": "pending"}, fresh).output
    assert out.splitlines()[0] == "[ ] 3. add a test (low)"
    assert "1 todos: 1 pending" in out
    other = ToolContext(workspace=ctx.workspace, data_dir=ctx.data_dir, session_id="ses_other")
    assert TodoReadTool().run({}, other).output == "no todos"
    with pytest.raises(ToolError, match="unknown status"):
        TodoReadTool().run({"status": "done"}, ctx)


@pytest.mark.parametrize("todos, message", [
    ("not a list", "must be list"),
    ([{"id": "1", "content": "a", "status": "in_progress"},
      {"id": "2", "content": "b", "status": "in_progress"}], "one at a time"),
    ([{"id": "1", "content": "a", "status": "pending"},
      {"id": "1", "content": "b", "status": "pending"}], "used twice"),
    ([{"id": "1", "content": "a", "status": "done"}], "unknown status 'done'"),
    ([{"id": "1", "content": "a", "status": "pending", "priority": "urgent"}],
     "unknown priority"),
    ([{"id": "1", "content": "  ", "status": "pending"}], "content"),
    (["just a string"], "must be an object"),
])
def test_todo_write_rejects_bad_lists(ctx, tmp_path, todos, message):
    with pytest.raises(ToolError, match=message):
        TodoWriteTool().run({"todos": todos}, ctx)
    assert not (tmp_path / "data" / "todos").exists()
    assert "todos" not in ctx.state


def test_todo_write_without_session_stays_in_memory(tmp_path):
    ctx = ToolContext(workspace=tmp_path, data_dir=tmp_path / "data")
    TodoWriteTool().run({"todos": [{"id": 1, "content": "x", "status": "pending"}]}, ctx)
    assert ctx.state["todos"][0]["id"] == "1"
    assert not (tmp_path / "data").exists()


def test_damaged_todo_file_starts_afresh(ctx, tmp_path):
    path = tmp_path / "data" / "todos" / "ses_abc.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert TodoReadTool().run({}, ctx).output == "no todos"


def test_plan_mode_without_user(ctx):
    assert "plan mode on" in PlanEnterTool().run({}, ctx).output
    assert ctx.state["plan_mode"] is True
    assert "already" in PlanEnterTool().run({}, ctx).output
    result = PlanExitTool().run({"plan": "1. do x\n2. test"}, ctx)
    assert ctx.state["plan_mode"] is False
    assert "1. do x" in result.output and result.metadata["approved"] is None
    with pytest.raises(ToolError, match="empty"):
        PlanExitTool().run({"plan": "  "}, ctx)


def test_plan_exit_approved_and_kept(ctx):
    asked = []

    def ask(question, options):
        asked.append((question, options))
        return answers.pop(0)

    answers = ["keep planning", "use sqlite instead", "approve"]
    ctx.ask_user = ask
    PlanEnterTool().run({}, ctx)
    first = PlanExitTool().run({"plan": "the plan"}, ctx)
    assert ctx.state["plan_mode"] is True and first.metadata["approved"] is False
    assert asked[0] == ("Approve this plan?\n\nthe plan", ["approve", "keep planning"])
    second = PlanExitTool().run({"plan": "plan v2"}, ctx)
    assert "use sqlite instead" in second.output and ctx.state["plan_mode"] is True
    third = PlanExitTool().run({"plan": "plan v3"}, ctx)
    assert third.metadata["approved"] is True
    assert ctx.state["plan_mode"] is False and ctx.state["plan"] == "plan v3"


def test_question(ctx):
    with pytest.raises(ToolError, match="no user is available to answer; decide yourself"):
        QuestionTool().run({"question": "which db?"}, ctx)
    seen = {}

    def ask(question, options):
        seen.update(question=question, options=options)
        return "postgres"

    ctx.ask_user = ask
    result = QuestionTool().run({"question": "which db?", "options": ["sqlite", "postgres"]}, ctx)
    assert result.output == "the user answered: postgres"
    assert seen == {"question": "which db?", "options": ["sqlite", "postgres"]}
    with pytest.raises(ToolError, match="list of strings"):
        QuestionTool().run({"question": "q", "options": [1, 2]}, ctx)
    with pytest.raises(ToolError, match="question"):
        QuestionTool().run({}, ctx)
    ctx.ask_user = lambda q, o: ""
    assert "no answer" in QuestionTool().run({"question": "q"}, ctx).output


def test_flags():
    assert not TodoWriteTool.read_only and TodoReadTool.read_only
    assert PlanEnterTool.interactive and PlanExitTool.interactive and QuestionTool.interactive
    assert QuestionTool.read_only
