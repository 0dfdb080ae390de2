"""``codetether session …``, ``export`` and ``import``: the real CLI in a subprocess against a
store filled in-process (both use the test's CODETETHER_DATA_DIR), plus ``run()`` directly for
the rendering details."""

from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path

import pytest

from codetether.agent.session import Session, StoredMessage
from codetether.agent.store import SessionStore
from codetether.cli import session_cmd
from codetether.core.errors import CodetetherError
from codetether.providers.base import (
    ImagePart,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
)
from tests.cli import run_cli


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = tmp_path / "proj"
    path.mkdir()
    return path.resolve()


def make_session(directory: Path | str, title: str, n_messages: int = 0) -> Session:
    with SessionStore() as store:
        session = store.create(str(directory), model="p/m", title=title)
        for i in range(n_messages):
            store.append(session, StoredMessage("user", [TextPart(f"{title} message {i}")]))
    return session


def rich_session(directory: Path) -> Session:
    with SessionStore() as store:
        session = store.create(str(directory), model="openai/gpt-x", title="fix the parser")
        messages = [
            StoredMessage("user", [TextPart("please fix parse()"), ImagePart("image/png", "AAAA")]),
            StoredMessage("assistant", [ThinkingPart("the bug is in tokenising", "sig"),
                                        ToolCallPart("call_1", "read",
                                                     '{"path": "src/parse.py", "limit": 50}')]),
            StoredMessage("tool", [ToolResultPart("call_1", "\n".join(
                f"{n}\tline {n}" for n in range(1, 41)))]),
            StoredMessage("assistant", [TextPart("Fixed it.")], meta={"reverted": True}),
        ]
        for message in messages:
            store.append(session, message)
    return session


def db_counts() -> tuple[int, int]:
    with SessionStore() as store:
        conn = store._conn
        return (conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0],
                conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0])


# ---- list ------------------------------------------------------------------------------------


def test_list_shows_this_directory_unless_all_projects(project: Path, tmp_path: Path) -> None:
    mine = make_session(project, "mine", 2)
    newer = make_session(project, "newer mine", 1)
    other = make_session(tmp_path, "elsewhere")

    result = run_cli("session", "list", cwd=project)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "UPDATED", "MSGS", "TITLE"]
    assert lines[1].startswith(newer.id) and "newer mine" in lines[1]
    assert lines[2].startswith(mine.id) and " 2 " in lines[2]
    assert other.id not in result.stdout

    everything = run_cli("session", "list", "--all-projects", "--json", cwd=project)
    rows = json.loads(everything.stdout)
    assert [r["id"] for r in rows] == [other.id, newer.id, mine.id]
    assert rows[2]["message_count"] == 2 and rows[2]["directory"] == str(project)
    assert set(rows[0]) >= {"id", "title", "directory", "model", "agent", "parent_id",
                            "created_at", "updated_at", "message_count", "usage", "cost"}

    limited = json.loads(run_cli("session", "list", "-n", "1", "--json", cwd=project).stdout)
    assert [r["id"] for r in limited] == [newer.id]


def test_list_with_no_sessions_says_so_on_stderr(project: Path) -> None:
    result = run_cli("session", "list", cwd=project)
    assert result.returncode == 0
    assert result.stdout == ""
    assert "no sessions" in result.stderr and "--all-projects" in result.stderr
    assert run_cli("session", "list", "--json", cwd=project).stdout.strip() == "[]"


# ---- show ------------------------------------------------------------------------------------


def test_show_renders_messages_readably(project: Path, capsys) -> None:
    session = rich_session(project)
    assert session_cmd.run(argparse.Namespace(session_action="show", id=session.id[:10],
                                              json=False)) == 0
    out = capsys.readouterr().out
    assert f"session   {session.id}" in out and "fix the parser" in out
    assert "openai/gpt-x" in out
    assert "1. user" in out and "please fix parse()" in out and "[image image/png" in out
    assert "[thinking] the bug is in tokenising" in out
    assert '→ read(path="src/parse.py", limit=50)' in out
    assert "← result [call_1]" in out and "line 6" in out
    assert "line 7\n" not in out and "(34 more lines)" in out
    assert "[reverted]" in out and "Fixed it." in out


def test_show_json_is_the_export_and_unknown_ids_fail_cleanly(project: Path) -> None:
    session = rich_session(project)
    shown = run_cli("session", "show", session.id, "--json", cwd=project)
    assert shown.returncode == 0, shown.stderr
    with SessionStore() as store:
        assert json.loads(shown.stdout) == store.export(session.id)

    missing = run_cli("session", "show", "ses_doesnotexist", cwd=project)
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [
        "error: no session 'ses_doesnotexist': see `codetether session list` "
        "(add --all-projects for other directories)"]


# ---- export / import -------------------------------------------------------------------------


def test_export_defaults_to_the_latest_session_and_imports_elsewhere(project: Path,
                                                                    tmp_path: Path) -> None:
    make_session(project, "older", 1)
    session = rich_session(project)
    out = run_cli("export", cwd=project)
    assert out.returncode == 0, out.stderr
    exported = json.loads(out.stdout)
    assert exported["id"] == session.id and len(exported["messages"]) == 4

    target = tmp_path / "s.json"
    written = run_cli("session", "export", session.id[:-4], "-o", str(target), cwd=project)
    assert written.returncode == 0 and written.stdout == ""
    assert json.loads(target.read_text()) == exported

    other_data = {"CODETETHER_DATA_DIR": str(tmp_path / "other-data")}
    imported = run_cli("import", str(target), cwd=project, env=other_data)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == session.id
    back = run_cli("session", "export", session.id, cwd=project, env=other_data)
    assert json.loads(back.stdout) == exported


def test_importing_a_session_twice_gives_a_new_id(project: Path) -> None:
    session = rich_session(project)
    with SessionStore() as store:
        data = json.dumps(store.export(session.id))
    result = run_cli("session", "import", "-", input=data, cwd=project)
    assert result.returncode == 0, result.stderr
    new_id = result.stdout.strip()
    assert new_id.startswith("ses_") and new_id != session.id
    assert "already exists" in result.stderr
    with SessionStore() as store:
        assert store.load(new_id).metadata["imported_from"] == session.id


def test_import_of_invalid_json_names_the_file_and_position(project: Path,
                                                            tmp_path: Path) -> None:
    rich_session(project)
    before = db_counts()
    bad = tmp_path / "bad.json"
    bad.write_text('{"id": "ses_x",\n  "messages": [,]}')
    result = run_cli("import", str(bad), cwd=project)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {bad} is not valid JSON: ")
    assert "line 2 column 16" in lines[0]
    assert db_counts() == before


def test_import_of_a_malformed_session_leaves_the_database_unchanged(project: Path,
                                                                     tmp_path: Path) -> None:
    session = rich_session(project)
    with SessionStore() as store:
        data = store.export(session.id)
    data["id"] = "ses_other"
    data["messages"][2]["parts"][0]["type"] = "hologram"
    bad = tmp_path / "bad-session.json"
    bad.write_text(json.dumps(data))
    before = db_counts()
    result = run_cli("session", "import", str(bad), cwd=project)
    assert result.returncode == 1
    assert "invalid session data: unknown message part type 'hologram'" in result.stderr
    assert db_counts() == before
    missing = run_cli("import", str(tmp_path / "nope.json"), cwd=project)
    assert missing.returncode == 1 and "cannot read" in missing.stderr


def test_export_without_a_session_here_is_an_error(project: Path) -> None:
    with pytest.raises(CodetetherError, match="no session for"):
        session_cmd.run(argparse.Namespace(session_action="export", id=None, output=None))


# ---- fork / delete ---------------------------------------------------------------------------


def test_fork_at_a_message_then_delete(project: Path) -> None:
    session = rich_session(project)
    at = session.messages[1].id
    forked = run_cli("session", "fork", session.id[:12], "--at", at, cwd=project)
    assert forked.returncode == 0, forked.stderr
    fork_id = forked.stdout.strip()
    with SessionStore() as store:
        fork = store.load(fork_id)
    assert fork.parent_id == session.id and len(fork.messages) == 2
    assert fork.title == "fork of fix the parser"

    bad_at = run_cli("session", "fork", session.id, "--at", "msg_nothere", cwd=project)
    assert bad_at.returncode == 1 and "msg_nothere" in bad_at.stderr

    deleted = run_cli("session", "delete", fork_id, cwd=project)
    assert deleted.returncode == 0 and deleted.stdout.strip() == f"deleted {fork_id}"
    with SessionStore() as store:
        ids = [s.id for s in store.list(None, 0)]
        orphans = store._conn.execute(
            "SELECT COUNT(*) FROM messages WHERE session_id = ?", (fork_id,)).fetchone()[0]
    assert ids == [session.id] and orphans == 0
    assert run_cli("session", "delete", fork_id, cwd=project).returncode == 1


def test_unknown_action_is_a_usage_error() -> None:
    with pytest.raises(CodetetherError) as info:
        session_cmd.run(argparse.Namespace(session_action="rename"))
    assert info.value.exit_code == 2


def test_sqlite_file_is_readable_by_other_tools(project: Path, tmp_path: Path) -> None:
    """The database is plain SQLite: a person can inspect it with the sqlite3 shell."""
    session = make_session(project, "inspect me", 1)
    with sqlite3.connect(tmp_path / "data" / "codetether.db") as conn:
        title = conn.execute("SELECT title FROM sessions WHERE id = ?",
                             (session.id,)).fetchone()[0]
    assert title == "inspect me"
