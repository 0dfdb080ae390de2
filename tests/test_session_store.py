"""The SQLite session store: round trips, durability, concurrency (threads and processes),
lookup by prefix, listing, fork, export/import, delete and migrations."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from codetether.agent import store as store_mod
from codetether.agent.session import Session, StoredMessage
from codetether.agent.store import (
    AmbiguousSession,
    SessionNotFound,
    SessionStore,
    StoreError,
)
from codetether.core.errors import CodetetherError
from codetether.providers.base import (
    ImagePart,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
    Usage,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "store" / "sessions.db"


@pytest.fixture
def store(db: Path):
    with SessionStore(db) as s:
        yield s


def every_part_messages() -> list[StoredMessage]:
    return [
        StoredMessage("user", [TextPart("fix the bug ünïcode"),
                               ImagePart("image/png", "iVBORw0=")]),
        StoredMessage("assistant", [ThinkingPart("let me look", signature="sig-123"),
                                    ThinkingPart("unsigned"),
                                    TextPart("reading it"),
                                    ToolCallPart("call_1", "read", '{"path": "a.py"}')],
                      meta={"usage": {"input_tokens": 10}, "model": "p/m"}),
        StoredMessage("tool", [ToolResultPart("call_1", "1\tprint('x')\n"),
                               ToolResultPart("call_2", "boom", is_error=True)]),
    ]


def message_rows(db: Path, session_id: str) -> list[tuple[int, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT seq, id FROM messages WHERE session_id = ? ORDER BY seq",
                            (session_id,)).fetchall()


def session_data(session_id: str, directory: str = "/w", updated_at: float = 1000.0,
                 messages: list[dict] | None = None) -> dict:
    return {"id": session_id, "directory": directory, "title": session_id, "model": "p/m",
            "agent": "build", "parent_id": None, "created_at": 1.0, "updated_at": updated_at,
            "usage": {}, "cost": 0.0, "metadata": {}, "messages": messages or []}


# ---- round trip and durability ---------------------------------------------------------------


def test_every_part_type_round_trips_through_a_new_store(store: SessionStore, db: Path) -> None:
    session = store.create("/w", model="p/m", agent="plan", title="t")
    for message in every_part_messages():
        store.append(session, message)
    session.usage = Usage(5, 7, 1, 2, 3)
    session.cost = 0.25
    session.metadata = {"todo": [1, 2]}
    store.save_header(session)

    with SessionStore(db) as other:
        loaded = other.load(session.id)
    assert loaded.to_dict() == session.to_dict()
    assistant = loaded.messages[1]
    assert isinstance(assistant.parts[0], ThinkingPart)
    assert assistant.parts[0].signature == "sig-123"
    assert assistant.parts[1].signature is None
    assert isinstance(assistant.parts[3], ToolCallPart)
    assert assistant.parts[3].parsed_arguments() == {"path": "a.py"}
    assert loaded.messages[2].parts[1] == ToolResultPart("call_2", "boom", is_error=True)
    assert loaded.messages[0].parts[1] == ImagePart("image/png", "iVBORw0=")
    assert loaded.usage == Usage(5, 7, 1, 2, 3) and loaded.cost == 0.25


def test_appends_are_visible_to_another_store_before_any_close(store: SessionStore,
                                                               db: Path) -> None:
    session = store.create("/w")
    reader = SessionStore(db)
    try:
        for n in range(3):
            store.append(session, StoredMessage("user", [TextPart(f"m{n}")]))
            assert [m.text() for m in reader.load(session.id).messages] == \
                [f"m{i}" for i in range(n + 1)]
    finally:
        reader.close()
    assert [seq for seq, _ in message_rows(db, session.id)] == [1, 2, 3]


def test_append_to_a_session_built_in_memory_creates_its_header(store: SessionStore) -> None:
    session = Session(directory="/w", title="in memory")
    store.append(session, StoredMessage("user", [TextPart("hi")]))
    loaded = store.load(session.id)
    assert loaded.title == "in memory" and loaded.messages[0].text() == "hi"
    assert loaded.updated_at == session.updated_at


def test_a_stored_message_cannot_be_appended_twice(store: SessionStore) -> None:
    session = store.create("/w")
    message = StoredMessage("user", [TextPart("once")])
    store.append(session, message)
    with pytest.raises(CodetetherError, match="already stored"):
        store.append(session, message)
    assert len(session.messages) == 1 and len(store.load(session.id).messages) == 1


def test_update_message_meta_merges_and_rejects_unknown_messages(store: SessionStore) -> None:
    session = store.create("/w")
    message = StoredMessage("assistant", [TextPart("x")], meta={"model": "p/m"})
    store.append(session, message)
    store.update_message_meta(session.id, message.id, {"reverted": True})
    assert store.load(session.id).messages[0].meta == {"model": "p/m", "reverted": True}
    with pytest.raises(CodetetherError, match="msg_nope"):
        store.update_message_meta(session.id, "msg_nope", {"reverted": True})


def test_database_settings_and_private_files(tmp_path: Path) -> None:
    with SessionStore() as default:
        assert default.path == tmp_path / "data" / "codetether.db"
        mode = default._conn.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
        assert default._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert default._conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
        assert default._conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "data" / "codetether.db").stat().st_mode) == 0o600


def test_a_file_that_is_not_a_database_is_a_clear_error(db: Path) -> None:
    db.parent.mkdir(parents=True)
    db.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot .* session database") as info:
        SessionStore(db)
    assert "CODETETHER_DATA_DIR" in (info.value.hint or "")


# ---- concurrency -----------------------------------------------------------------------------


def test_four_threads_append_to_one_session_without_losing_any(store: SessionStore,
                                                               db: Path) -> None:
    session = store.create("/w")
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            start.wait()
            for i in range(25):
                store.append(session, StoredMessage("user", [TextPart(f"{n}-{i}")]))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    rows = message_rows(db, session.id)
    assert [seq for seq, _ in rows] == list(range(1, 101))
    # the in-memory list is in the same order as the rows on disk
    assert [m.id for m in session.messages] == [mid for _, mid in rows]
    texts = {m.text() for m in store.load(session.id).messages}
    assert texts == {f"{n}-{i}" for n in range(4) for i in range(25)}


APPENDER = """
import sys
from codetether.agent.session import Session, StoredMessage
from codetether.agent.store import SessionStore
from codetether.providers.base import TextPart
store = SessionStore(__import__("pathlib").Path(sys.argv[1]))
session = store.load(sys.argv[2])
print("ready", flush=True)
sys.stdin.readline()
for i in range(40):
    store.append(session, StoredMessage("user", [TextPart(sys.argv[3] + str(i))]))
store.close()
"""


def test_two_processes_append_to_one_session(store: SessionStore, db: Path) -> None:
    session = store.create("/w")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([sys.executable, "-c", APPENDER, str(db), session.id, name],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
             for name in ("a", "b")]
    for p in procs:  # both opened the store; release them together
        assert p.stdout.readline().strip() == "ready"
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        p.stdin.close()
        assert p.wait(timeout=60) == 0
        p.stdout.close()
    rows = message_rows(db, session.id)
    assert [seq for seq, _ in rows] == list(range(1, 81))
    texts = sorted(m.text() for m in store.load(session.id).messages)
    assert texts == sorted([f"a{i}" for i in range(40)] + [f"b{i}" for i in range(40)])


# ---- lookup ----------------------------------------------------------------------------------


def test_lookup_by_full_id_and_unique_prefix_and_ambiguity(store: SessionStore) -> None:
    for sid in ("ses_abc111", "ses_abc222", "ses_xyz999"):
        store.import_session(session_data(sid))
    assert store.load("ses_abc111").id == "ses_abc111"
    assert store.load("ses_abc1").id == "ses_abc111"
    assert store.load("abc2").id == "ses_abc222"  # the "ses_" may be left out
    assert store.load("xyz9").id == "ses_xyz999"
    with pytest.raises(AmbiguousSession) as info:
        store.load("ses_abc")
    assert "ses_abc111" in info.value.message and "ses_abc222" in info.value.message
    with pytest.raises(SessionNotFound) as info:
        store.load("ses_nothere")
    assert "codetether session list" in (info.value.hint or "")
    with pytest.raises(SessionNotFound, match="at least 4"):
        store.load("ses")
    assert isinstance(info.value, CodetetherError)


def test_list_filters_by_directory_orders_newest_first_and_limits(store: SessionStore) -> None:
    store.import_session(session_data("ses_a1", "/a", 100.0))
    store.import_session(session_data("ses_a2", "/a", 300.0))
    store.import_session(session_data("ses_a3", "/a", 200.0))
    store.import_session(session_data("ses_b1", "/b", 400.0))
    assert [s.id for s in store.list("/a")] == ["ses_a2", "ses_a3", "ses_a1"]
    assert [s.id for s in store.list("/a", limit=2)] == ["ses_a2", "ses_a3"]
    assert [s.id for s in store.list()] == ["ses_b1", "ses_a2", "ses_a3", "ses_a1"]
    assert [s.id for s in store.list(limit=0)] == ["ses_b1", "ses_a2", "ses_a3", "ses_a1"]
    assert store.list("/nowhere") == []

    oldest = store.load("ses_a1")
    store.append(oldest, StoredMessage("user", [TextPart("bump")]))
    summaries = store.list("/a")
    assert summaries[0].id == "ses_a1" and summaries[0].message_count == 1
    assert summaries[1].message_count == 0
    assert store.latest("/a").id == "ses_a1"
    assert store.latest("/b").id == "ses_b1"
    assert store.latest("/nowhere") is None


# ---- fork ------------------------------------------------------------------------------------


def test_fork_at_a_message_copies_up_to_it_with_new_ids(store: SessionStore) -> None:
    source = store.create("/w", model="p/m", title="original")
    for message in every_part_messages():
        store.append(source, message)
    at = source.messages[1]

    fork = store.fork(source.id[:12], at.id)
    assert fork.id != source.id and fork.parent_id == source.id
    assert fork.title == "fork of original" and fork.model == "p/m"
    assert len(fork.messages) == 2
    assert [m.parts for m in fork.messages] == [m.parts for m in source.messages[:2]]
    assert not {m.id for m in fork.messages} & {m.id for m in source.messages}
    assert store.load(fork.id).to_dict() == fork.to_dict()

    store.append(fork, StoredMessage("user", [TextPart("only in the fork")]))
    assert len(store.load(source.id).messages) == 3
    assert len(store.fork(source.id).messages) == 3
    with pytest.raises(CodetetherError, match="msg_unknown"):
        store.fork(source.id, "msg_unknown")


# ---- export / import -------------------------------------------------------------------------


def test_export_import_round_trip_into_another_database(store: SessionStore,
                                                        tmp_path: Path) -> None:
    session = store.create("/w", title="exported")
    for message in every_part_messages():
        store.append(session, message)
    data = json.loads(json.dumps(store.export(session.id[:10])))
    with SessionStore(tmp_path / "other.db") as other:
        imported = other.import_session(data)
        assert imported.id == session.id
        assert other.export(session.id) == data


def test_importing_an_existing_id_makes_a_copy_with_new_ids(store: SessionStore) -> None:
    session = store.create("/w", title="twice")
    for message in every_part_messages():
        store.append(session, message)
    data = store.export(session.id)
    copy = store.import_session(data)
    assert copy.id != session.id
    assert copy.metadata["imported_from"] == session.id
    again = store.export(copy.id)
    assert not {m["id"] for m in again["messages"]} & {m["id"] for m in data["messages"]}

    def without_ids(d: dict) -> dict:
        d = dict(d, id=None, metadata={})
        d["messages"] = [dict(m, id=None) for m in d["messages"]]
        return d

    assert without_ids(again) == without_ids(data)
    assert store.export(session.id) == data  # the original is untouched


@pytest.mark.parametrize("breakage, complaint", [
    (lambda d: d["messages"][1]["parts"].append({"type": "video"}), "unknown message part"),
    (lambda d: d["messages"][1]["parts"].append({"type": "text", "text": 5}), "'text' must be"),
    (lambda d: d["messages"][2].update(role="system"), "role"),
    (lambda d: d["messages"][2].update(id=d["messages"][0]["id"]), "appears twice"),
    (lambda d: d.update(usage=[1]), "usage"),
    (lambda d: d.update(metadata="x"), "metadata"),
    (lambda d: d.pop("directory"), "directory"),
])
def test_a_malformed_import_leaves_the_database_unchanged(store: SessionStore, db: Path,
                                                          breakage, complaint) -> None:
    session = store.create("/w")
    for message in every_part_messages():
        store.append(session, message)
    data = store.export(session.id)
    data["id"] = "ses_brokencopy"
    breakage(data)
    before = store.list(limit=0)
    with pytest.raises(CodetetherError, match=complaint) as info:
        store.import_session(data)
    assert info.value.message.startswith("invalid session data")
    assert store.list(limit=0) == before
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 3


def test_a_failure_mid_import_rolls_back_everything(store: SessionStore, monkeypatch) -> None:
    data = session_data("ses_half", messages=[
        StoredMessage("user", [TextPart(str(n))]).to_dict() for n in range(4)])
    real = store_mod._insert_message
    calls = []

    def failing(conn, session_id, message):
        calls.append(message.id)
        if len(calls) == 3:
            raise sqlite3.OperationalError("disk I/O error")
        real(conn, session_id, message)

    monkeypatch.setattr(store_mod, "_insert_message", failing)
    with pytest.raises(sqlite3.OperationalError):
        store.import_session(data)
    monkeypatch.undo()
    assert store.list(limit=0) == []
    with pytest.raises(SessionNotFound):
        store.load("ses_half")
    assert store.import_session(data).id == "ses_half"  # the store still works


# ---- delete and migrations -------------------------------------------------------------------


def test_delete_by_prefix_cascades_to_messages(store: SessionStore, db: Path) -> None:
    keep = store.create("/w")
    store.append(keep, StoredMessage("user", [TextPart("keep")]))
    gone = store.create("/w")
    for message in every_part_messages():
        store.append(gone, message)
    assert store.delete(gone.id[:-3]) == gone.id
    with pytest.raises(SessionNotFound):
        store.load(gone.id)
    assert message_rows(db, gone.id) == []
    assert len(message_rows(db, keep.id)) == 1
    with pytest.raises(SessionNotFound):
        store.delete(gone.id)


def test_migrations_run_once_and_new_ones_apply_to_old_databases(db: Path,
                                                                 monkeypatch) -> None:
    SessionStore(db).close()
    ran = []

    def _m999_add_notes(conn: sqlite3.Connection) -> None:
        ran.append(1)
        conn.execute("ALTER TABLE sessions ADD COLUMN notes TEXT")

    monkeypatch.setattr(store_mod, "MIGRATIONS", [*store_mod.MIGRATIONS, _m999_add_notes])
    with SessionStore(db) as first:
        session = first.create("/w")  # the old tables still work alongside the new column
    with SessionStore(db) as second:
        assert second.load(session.id).id == session.id
        names = second.applied_migrations()
    assert ran == [1]
    assert names == ["_m001_sessions_and_messages", "_m002_sessions_directory_index",
                     "_m999_add_notes"]
