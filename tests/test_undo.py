"""Undo over a real session store and real snapshots: sessions are built the way the loop
builds them (assistant message with tool calls, then a tool message carrying
``meta["snapshots"]``), and the workspace is changed between the snapshots."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from codetether.agent.session import Session, StoredMessage
from codetether.agent.snapshots import Snapshots
from codetether.agent.store import SessionStore
from codetether.agent.undo import UndoError, find_steps, record_snapshot, undo
from codetether.cli import undo_cmd
from codetether.core.errors import CodetetherError
from codetether.providers.base import TextPart, ToolCallPart, ToolResultPart
from codetether.tools.base import ToolContext, ToolError
from codetether.tools.undo import UndoTool


class World:
    """A workspace, a store and a session, plus a way to add one change step."""

    def __init__(self, tmp_path: Path) -> None:
        self.ws = (tmp_path / "ws").resolve()
        self.ws.mkdir()
        self.data = tmp_path / "data"
        self.store = SessionStore(self.data / "test.db")
        self.session = self.store.create(str(self.ws), model="fake/m")
        self.snaps = Snapshots(self.data, self.ws)
        self.counter = 0

    def say(self, role: str, text: str) -> StoredMessage:
        message = StoredMessage(role, [TextPart(text)])
        self.store.append(self.session, message)
        return message

    def step(self, *changes: tuple[str, str | None]) -> StoredMessage:
        """One assistant message with one call per change, snapshots taken before each."""
        calls, meta = [], {}
        for _ in changes:
            self.counter += 1
            calls.append(ToolCallPart(f"call_{self.counter}", "write", "{}"))
        assistant = StoredMessage("assistant", list(calls))
        self.store.append(self.session, assistant)
        for call, (name, content) in zip(calls, changes, strict=True):
            record_snapshot(meta, call.id, self.snaps.take())
            if content is None:
                (self.ws / name).unlink()
            else:
                (self.ws / name).parent.mkdir(parents=True, exist_ok=True)
                (self.ws / name).write_text(content)
        self.store.append(self.session, StoredMessage(
            "tool", [ToolResultPart(c.id, "ok") for c in calls], meta=meta))
        return assistant

    def files(self) -> dict[str, str]:
        return {str(p.relative_to(self.ws)): p.read_text()
                for p in sorted(self.ws.rglob("*")) if p.is_file()}


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    yield w
    w.store.close()


def test_undo_one_step_restores_and_marks_reverted(world):
    world.say("user", "make a and b")
    world.step(("a.txt", "a1\n"))
    world.say("assistant", "made a")
    world.say("user", "now change a, add b")
    second = world.step(("a.txt", "a2\n"), ("b.txt", "b1\n"))
    world.say("assistant", "done")
    assert world.files() == {"a.txt": "a2\n", "b.txt": "b1\n"}

    result = undo(world.store, world.session, data_dir=world.data)
    assert world.files() == {"a.txt": "a1\n"}
    assert {(c.status, c.path) for c in result.changes} == {("M", "a.txt"), ("A", "b.txt")}
    assert result.steps == 1 and not result.preview

    reloaded = world.store.load(world.session.id)
    index = [m.id for m in reloaded.messages].index(second.id)
    assert all(m.meta.get("reverted") for m in reloaded.messages[index:])
    assert not any(m.meta.get("reverted") for m in reloaded.messages[:index])
    assert reloaded.messages[index].meta["undo"]["restored"] == result.tree
    assert result.reverted_message_ids == [m.id for m in reloaded.messages[index:]]
    # the in-memory session the loop holds sees the same thing
    assert [m.id for m in world.session.context_messages()] == \
        [m.id for m in reloaded.messages[:index]]

    # the next undo goes one step further back; then there is nothing left
    undo(world.store, world.session, data_dir=world.data)
    assert world.files() == {}
    with pytest.raises(UndoError, match="nothing to undo"):
        undo(world.store, world.session, data_dir=world.data)


def test_undo_several_steps_goes_to_the_earliest(world):
    (world.ws / "keep.txt").write_text("original\n")
    world.say("user", "go")
    world.step(("keep.txt", "one\n"))
    world.step(("keep.txt", "two\n"))
    world.step(("gone.txt", "three\n"))
    result = undo(world.store, world.session, steps=2, data_dir=world.data)
    assert world.files() == {"keep.txt": "one\n"}
    assert result.steps == 2


def test_more_steps_than_exist_undoes_all_and_says_so(world):
    (world.ws / "f.txt").write_text("v0\n")
    world.say("user", "go")
    world.step(("f.txt", "v1\n"))
    result = undo(world.store, world.session, steps=5, data_dir=world.data)
    assert world.files() == {"f.txt": "v0\n"}
    assert "only 1 of 5" in result.summary()


def test_preview_changes_nothing(world):
    (world.ws / "f.txt").write_text("before\n")
    world.say("user", "go")
    world.step(("f.txt", "after\n"), ("new.txt", "n\n"))
    result = undo(world.store, world.session, preview=True, data_dir=world.data)
    assert world.files() == {"f.txt": "after\n", "new.txt": "n\n"}
    assert sorted(result.files) == ["f.txt", "new.txt"]
    assert "-after" in result.diff and "+before" in result.diff
    assert "would restore" in result.summary()
    reloaded = world.store.load(world.session.id)
    assert not any(m.meta.get("reverted") for m in reloaded.messages)


def test_deleted_file_comes_back(world):
    (world.ws / "precious.txt").write_text("keep me\n")
    world.say("user", "go")
    world.step(("precious.txt", None))
    undo(world.store, world.session, data_dir=world.data)
    assert world.files() == {"precious.txt": "keep me\n"}


def test_a_step_split_over_several_tool_messages_is_one_step(world):
    (world.ws / "f.txt").write_text("v0\n")
    world.say("user", "go")
    calls = [ToolCallPart("c1", "write", "{}"), ToolCallPart("c2", "write", "{}")]
    world.store.append(world.session, StoredMessage("assistant", calls))
    for call, content in zip(calls, ("v1\n", "v2\n"), strict=True):
        meta: dict = {}
        record_snapshot(meta, call.id, world.snaps.take())
        (world.ws / "f.txt").write_text(content)
        world.store.append(world.session, StoredMessage(
            "tool", [ToolResultPart(call.id, "ok")], meta=meta))
    assert len(find_steps(world.session.messages)) == 1
    undo(world.store, world.session, data_dir=world.data)
    assert world.files() == {"f.txt": "v0\n"}


def test_no_snapshots_is_a_clear_error(world):
    world.say("user", "hi")
    world.say("assistant", "hello")
    with pytest.raises(UndoError, match="nothing to undo") as info:
        undo(world.store, world.session, data_dir=world.data)
    assert info.value.hint
    with pytest.raises(UndoError, match="at least 1"):
        undo(world.store, world.session, steps=0, data_dir=world.data)


def tool_ctx(world: World) -> ToolContext:
    return ToolContext(workspace=world.ws, data_dir=world.data, session_id=world.session.id,
                       session=world.session, store=world.store)


def test_undo_tool_keeps_its_own_message_visible(world):
    (world.ws / "f.txt").write_text("v0\n")
    world.say("user", "go")
    world.step(("f.txt", "v1\n"))
    calling = StoredMessage("assistant", [ToolCallPart("u1", "undo", "{}")])
    world.store.append(world.session, calling)
    tool = UndoTool()
    preview = tool.run({"preview": True}, tool_ctx(world))
    assert "f.txt" in preview.output and "+v0" in preview.output
    assert world.files() == {"f.txt": "v1\n"}
    result = tool.run({}, tool_ctx(world))
    assert result.success and result.metadata["files"] == ["f.txt"]
    assert world.files() == {"f.txt": "v0\n"}
    assert not world.session.messages[-1].meta.get("reverted")
    assert world.session.messages[-2].meta.get("reverted")
    with pytest.raises(ToolError, match="nothing to undo"):
        tool.run({}, tool_ctx(world))


def test_undo_tool_argument_and_context_errors(world):
    tool = UndoTool()
    with pytest.raises(ToolError, match="steps"):
        tool.run({"steps": "two"}, tool_ctx(world))
    with pytest.raises(ToolError, match="stored session"):
        tool.run({}, ToolContext(workspace=world.ws, data_dir=world.data))


def cli_args(**kw) -> argparse.Namespace:
    base = {"session": None, "steps": 1, "preview": False, "json": False}
    base.update(kw)
    return argparse.Namespace(**base)


def test_cli_undo_latest_session_of_cwd(tmp_path, monkeypatch, capsys):
    ws = (tmp_path / "proj").resolve()
    ws.mkdir()
    (ws / "f.txt").write_text("v0\n")
    data = tmp_path / "data"  # the conftest's CODETETHER_DATA_DIR
    store = SessionStore()
    session = store.create(str(ws))
    snaps = Snapshots(data, ws)
    call = ToolCallPart("c1", "write", "{}")
    store.append(session, StoredMessage("assistant", [call]))
    meta: dict = {}
    record_snapshot(meta, "c1", snaps.take())
    (ws / "f.txt").write_text("v1\n")
    store.append(session, StoredMessage("tool", [ToolResultPart("c1", "ok")], meta=meta))
    store.close()
    monkeypatch.chdir(ws)

    assert undo_cmd.run(cli_args(preview=True)) == 0
    out = capsys.readouterr()
    assert "+v0" in out.out and "would restore" in out.err
    assert (ws / "f.txt").read_text() == "v1\n"

    assert undo_cmd.run(cli_args(session=session.id, json=True)) == 0
    data_out = json.loads(capsys.readouterr().out)
    assert data_out["changes"] == [{"status": "M", "path": "f.txt"}]
    assert (ws / "f.txt").read_text() == "v0\n"

    with pytest.raises(UndoError):
        undo_cmd.run(cli_args())


def test_cli_without_a_session_here(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    with pytest.raises(undo_cmd.NoSessionError, match="no session for"):
        undo_cmd.run(cli_args())


def test_session_without_directory_workspace(tmp_path):
    # a Session whose directory vanished: a clear error, not a traceback
    store = SessionStore(tmp_path / "s.db")
    session = Session(directory=str(tmp_path / "missing"))
    msg = StoredMessage("assistant", [ToolCallPart("c", "write", "{}")])
    store.append(session, msg)
    store.append(session, StoredMessage("tool", [ToolResultPart("c", "ok")],
                                        meta={"snapshots": {"c": "0" * 40}}))
    with pytest.raises(CodetetherError):
        undo(store, session, data_dir=tmp_path / "data")
    store.close()
