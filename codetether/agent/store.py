"""Sessions on disk: one SQLite database (WAL) shared by every process of one user.

A server, a ``run`` and the TUI may all write to the same file at once, and the turn loop
writes from several threads, so every write is one ``BEGIN IMMEDIATE`` transaction (it takes
the write lock up front, so the next ``seq`` is computed under it) and the connection is shared
behind a lock. ``busy_timeout`` makes another process's open transaction a short wait rather
than an error. A message is on disk before ``append`` returns: "nothing is lost".

No cache: every ``load`` reads the database, so what one process sees is what another wrote.
The schema grows by migrations, small functions applied once each and recorded by name.
"""

from __future__ import annotations

import copy
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from codetether.agent.session import Session, StoredMessage, part_from_dict, part_to_dict
from codetether.core.errors import CodetetherError
from codetether.core.ids import new_id
from codetether.providers.base import Usage
from codetether.storage.sqlite import connect, database_path

MIN_PREFIX = 4
LIST_HINT = "see `codetether session list` (add --all-projects for other directories)"


class SessionNotFound(CodetetherError):
    """No session has that id or id prefix."""

    def __init__(self, message: str, hint: str | None = LIST_HINT) -> None:
        super().__init__(message, hint)


class AmbiguousSession(CodetetherError):
    """An id prefix that names more than one session."""


class StoreError(CodetetherError):
    """The database itself is unusable: locked too long, corrupt, unwritable."""


@dataclass
class SessionSummary:
    """One row of ``session list``: the header and a message count, never the messages."""

    id: str
    title: str
    directory: str
    model: str
    agent: str
    parent_id: str | None
    created_at: float
    updated_at: float
    message_count: int
    usage: dict[str, int] = field(default_factory=dict)
    cost: float = 0.0


# ---- migrations ----------------------------------------------------------------------------


def _m001_sessions_and_messages(conn: sqlite3.Connection) -> None:
    conn.execute(
        """CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL DEFAULT '',
            directory TEXT NOT NULL,
            model TEXT NOT NULL DEFAULT '',
            agent TEXT NOT NULL DEFAULT 'build',
            parent_id TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            usage_json TEXT NOT NULL DEFAULT '{}',
            cost REAL NOT NULL DEFAULT 0,
            metadata_json TEXT NOT NULL DEFAULT '{}'
        )""")
    conn.execute(
        """CREATE TABLE messages (
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            id TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL,
            parts_json TEXT NOT NULL,
            meta_json TEXT NOT NULL DEFAULT '{}',
            created_at REAL NOT NULL,
            PRIMARY KEY (session_id, seq)
        )""")


def _m002_sessions_directory_index(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE INDEX sessions_directory_updated ON sessions(directory, updated_at)")


# Append only: a migration's name is its identity in ``_migrations``; never rename or reorder.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _m001_sessions_and_messages,
    _m002_sessions_directory_index,
]


# ---- the store -----------------------------------------------------------------------------


class SessionStore:
    """Create, append to, load, list, fork, export and import sessions."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path = database_path(path)
        self._lock = threading.RLock()
        self._conn = self._open(path)
        try:
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise StoreError(f"cannot use the session database {path}: {exc}",
                             "move the file aside (sessions in it will be lost) or set "
                             "CODETETHER_DATA_DIR to another directory") from None

    # -- plumbing --

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        try:
            conn = connect(path)
        except (sqlite3.DatabaseError, OSError) as exc:
            raise StoreError(f"cannot open the session database {path}: {exc}",
                             "move the file aside (sessions in it will be lost) or set "
                             "CODETETHER_DATA_DIR to another directory") from None
        conn.row_factory = sqlite3.Row
        return conn

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction holding SQLite's write lock from the start (no lost updates)."""
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise self._busy(exc) from None
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction, so a header and its messages come from the same snapshot."""
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")

    def _busy(self, exc: sqlite3.OperationalError) -> CodetetherError:
        return StoreError(f"the session database {self.path} is busy: {exc}",
                          "another codetether process holds it; try again")

    def _migrate(self) -> None:
        with self._write() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS _migrations "
                         "(name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
            done = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
            for migration in MIGRATIONS:
                if migration.__name__ not in done:
                    migration(conn)
                    conn.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)",
                                 (migration.__name__, time.time()))

    def applied_migrations(self) -> list[str]:
        with self._read() as conn:
            return [r[0] for r in conn.execute("SELECT name FROM _migrations ORDER BY rowid")]

    # -- writing --

    def create(self, directory: str, model: str = "", agent: str = "build", title: str = "",
               parent_id: str | None = None) -> Session:
        session = Session(directory=directory, model=model, agent=agent, title=title,
                          parent_id=parent_id)
        with self._write() as conn:
            _insert_header(conn, session)
        return session

    def append(self, session: Session, message: StoredMessage) -> None:
        """Write ``message`` as the session's next one, then add it to ``session.messages``.

        The in-memory list changes only once the row is committed, and under the same lock, so
        its order matches ``seq`` even when several threads append to one session.
        """
        now = time.time()
        with self._write() as conn:
            # a Session built in memory (not via ``create``) gets its header on first append
            conn.execute("INSERT OR IGNORE INTO sessions (id, title, directory, model, agent, "
                         "parent_id, created_at, updated_at, usage_json, cost, metadata_json) "
                         "VALUES (?,?,?,?,?,?,?,?,?,?,?)", _header_row(session))
            _insert_message(conn, session.id, message)
            conn.execute("UPDATE sessions SET updated_at = ? WHERE id = ?", (now, session.id))
            session.updated_at = now
            session.messages.append(message)

    def update_message_meta(self, session_id: str, message_id: str,
                            updates: dict[str, Any]) -> None:
        """Merge ``updates`` into one message's meta (undo marks ``reverted``, etc.)."""
        with self._write() as conn:
            row = conn.execute("SELECT meta_json FROM messages WHERE session_id = ? AND id = ?",
                               (session_id, message_id)).fetchone()
            if row is None:
                raise CodetetherError(f"message {message_id} is not in session {session_id}",
                                      f"see `codetether session show {session_id}`")
            meta = json.loads(row[0] or "{}")
            meta.update(updates)
            conn.execute("UPDATE messages SET meta_json = ? WHERE session_id = ? AND id = ?",
                         (_dumps(meta), session_id, message_id))

    def save_header(self, session: Session) -> None:
        """Persist title, model, agent, usage, cost and metadata (creating the row if new)."""
        session.updated_at = time.time()
        row = _header_row(session)
        with self._write() as conn:
            conn.execute(
                "INSERT INTO sessions (id, title, directory, model, agent, parent_id, created_at, "
                "updated_at, usage_json, cost, metadata_json) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(id) DO UPDATE SET title = excluded.title, model = excluded.model, "
                "agent = excluded.agent, updated_at = excluded.updated_at, "
                "usage_json = excluded.usage_json, cost = excluded.cost, "
                "metadata_json = excluded.metadata_json", row)

    def delete(self, id_or_prefix: str) -> str:
        with self._write() as conn:
            session_id = self._resolve(conn, id_or_prefix)
            conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
        return session_id

    # -- reading --

    def load(self, id_or_prefix: str) -> Session:
        """The full session by id or unique id prefix (>= 4 characters, ``ses_`` optional)."""
        with self._read() as conn:
            return self._load(conn, self._resolve(conn, id_or_prefix))

    def latest(self, directory: str) -> Session | None:
        with self._read() as conn:
            row = conn.execute("SELECT id FROM sessions WHERE directory = ? "
                               "ORDER BY updated_at DESC, id DESC LIMIT 1",
                               (directory,)).fetchone()
            return self._load(conn, row[0]) if row else None

    def list(self, directory: str | None = None, limit: int = 20) -> list[SessionSummary]:
        """Newest first; all directories when ``directory`` is None; no limit if ``limit`` <= 0."""
        sql = ("SELECT s.*, (SELECT COUNT(*) FROM messages m WHERE m.session_id = s.id) AS n "
               "FROM sessions s")
        params: list[Any] = []
        if directory is not None:
            sql += " WHERE s.directory = ?"
            params.append(directory)
        sql += " ORDER BY s.updated_at DESC, s.id DESC"
        if limit and limit > 0:
            sql += " LIMIT ?"
            params.append(limit)
        with self._read() as conn:
            rows = conn.execute(sql, params).fetchall()
        return [SessionSummary(id=r["id"], title=r["title"], directory=r["directory"],
                               model=r["model"], agent=r["agent"], parent_id=r["parent_id"],
                               created_at=r["created_at"], updated_at=r["updated_at"],
                               message_count=r["n"], usage=json.loads(r["usage_json"] or "{}"),
                               cost=r["cost"]) for r in rows]

    def _resolve(self, conn: sqlite3.Connection, id_or_prefix: str) -> str:
        wanted = (id_or_prefix or "").strip()
        if not wanted:
            raise SessionNotFound("no session id given")
        if conn.execute("SELECT 1 FROM sessions WHERE id = ?", (wanted,)).fetchone():
            return wanted
        if len(wanted) < MIN_PREFIX:
            raise SessionNotFound(f"no session '{wanted}' (an id prefix needs at least "
                                  f"{MIN_PREFIX} characters)")
        candidates = [wanted] if wanted.startswith("ses_") else [wanted, "ses_" + wanted]
        for prefix in candidates:
            rows = conn.execute("SELECT id, title FROM sessions WHERE substr(id, 1, ?) = ? "
                                "ORDER BY updated_at DESC LIMIT 11",
                                (len(prefix), prefix)).fetchall()
            if len(rows) == 1:
                return rows[0]["id"]
            if len(rows) > 1:
                names = ", ".join(f"{r['id']} ({r['title'] or 'untitled'})" for r in rows[:10])
                more = " and more" if len(rows) > 10 else ""
                raise AmbiguousSession(f"'{wanted}' matches several sessions: {names}{more}",
                                       "give more characters of the id")
        raise SessionNotFound(f"no session '{wanted}'")

    @staticmethod
    def _load(conn: sqlite3.Connection, session_id: str) -> Session:
        r = conn.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if r is None:
            raise SessionNotFound(f"no session '{session_id}'")
        session = Session(directory=r["directory"], model=r["model"], agent=r["agent"],
                          title=r["title"], id=r["id"], parent_id=r["parent_id"],
                          created_at=r["created_at"], updated_at=r["updated_at"],
                          usage=_usage(json.loads(r["usage_json"] or "{}")), cost=r["cost"],
                          metadata=json.loads(r["metadata_json"] or "{}"))
        for m in conn.execute("SELECT * FROM messages WHERE session_id = ? ORDER BY seq",
                              (session_id,)):
            session.messages.append(StoredMessage(
                role=m["role"], parts=[part_from_dict(p) for p in json.loads(m["parts_json"])],
                id=m["id"], created_at=m["created_at"], meta=json.loads(m["meta_json"] or "{}")))
        return session

    # -- fork, export, import --

    def fork(self, id_or_prefix: str, at_message_id: str | None = None) -> Session:
        """A new session continuing from ``at_message_id`` (inclusive; all messages if None)."""
        with self._write() as conn:
            source = self._load(conn, self._resolve(conn, id_or_prefix))
            kept = source.messages
            if at_message_id is not None:
                kept = kept[:_message_index(source, at_message_id) + 1]
            metadata = copy.deepcopy(source.metadata)
            metadata["forked_from"] = {"session": source.id,
                                       "message": kept[-1].id if kept else None}
            fork = Session(directory=source.directory, model=source.model, agent=source.agent,
                           title=f"fork of {source.title or source.id}", parent_id=source.id,
                           metadata=metadata)
            _insert_header(conn, fork)
            for message in kept:
                copied = _copy_message(message, new_id("msg"))
                _insert_message(conn, fork.id, copied)
                fork.messages.append(copied)
        return fork

    def export(self, id_or_prefix: str) -> dict[str, Any]:
        return self.load(id_or_prefix).to_dict()

    def import_session(self, data: dict[str, Any]) -> Session:
        """Add an exported session; an id already here gets a new one (noted in metadata).

        Everything is validated before the first write and written in one transaction, so a
        bad message anywhere leaves the database as it was.
        """
        session = _validated(data)
        with self._write() as conn:
            exists = conn.execute("SELECT 1 FROM sessions WHERE id = ?",
                                  (session.id,)).fetchone()
            if exists:
                session.metadata["imported_from"] = session.id
                session.id = new_id("ses")
                session.messages = [_copy_message(m, new_id("msg")) for m in session.messages]
            else:
                # a message id taken by another session is renamed; nothing else needs it
                session.messages = [
                    _copy_message(m, new_id("msg")) if _message_exists(conn, m.id) else m
                    for m in session.messages]
            _insert_header(conn, session)
            for message in session.messages:
                _insert_message(conn, session.id, message)
        return session


# ---- helpers -------------------------------------------------------------------------------


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _usage_dict(usage: Usage) -> dict[str, int]:
    data = asdict(usage)
    data.pop("type", None)
    return data


def _usage(data: dict[str, Any]) -> Usage:
    known = {f.name for f in fields(Usage)} - {"type"}
    return Usage(**{k: int(v) for k, v in data.items() if k in known})


def _header_row(s: Session) -> tuple[Any, ...]:
    return (s.id, s.title, s.directory, s.model, s.agent, s.parent_id, s.created_at,
            s.updated_at, _dumps(_usage_dict(s.usage)), float(s.cost), _dumps(s.metadata))


def _insert_header(conn: sqlite3.Connection, session: Session) -> None:
    conn.execute("INSERT INTO sessions (id, title, directory, model, agent, parent_id, "
                 "created_at, updated_at, usage_json, cost, metadata_json) "
                 "VALUES (?,?,?,?,?,?,?,?,?,?,?)", _header_row(session))


def _insert_message(conn: sqlite3.Connection, session_id: str, message: StoredMessage) -> None:
    """Insert as the session's next message; the caller holds the write lock."""
    (last,) = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM messages WHERE session_id = ?",
                           (session_id,)).fetchone()
    try:
        conn.execute("INSERT INTO messages (session_id, seq, id, role, parts_json, meta_json, "
                     "created_at) VALUES (?,?,?,?,?,?,?)",
                     (session_id, last + 1, message.id, message.role,
                      _dumps([part_to_dict(p) for p in message.parts]), _dumps(message.meta),
                      message.created_at))
    except sqlite3.IntegrityError:
        if _message_exists(conn, message.id):
            raise CodetetherError(f"message id {message.id} is already stored",
                                  "append a new StoredMessage; stored ones are immutable") from None
        raise


def _message_exists(conn: sqlite3.Connection, message_id: str) -> bool:
    return conn.execute("SELECT 1 FROM messages WHERE id = ?", (message_id,)).fetchone() is not None


def _copy_message(message: StoredMessage, message_id: str) -> StoredMessage:
    """A deep copy under another id (forks and duplicate imports must not share objects)."""
    return StoredMessage(role=message.role,
                         parts=[part_from_dict(part_to_dict(p)) for p in message.parts],
                         id=message_id, created_at=message.created_at,
                         meta=copy.deepcopy(message.meta))


def _message_index(session: Session, message_id: str) -> int:
    """Index of a message by exact id, else by unique id prefix."""
    for index, message in enumerate(session.messages):
        if message.id == message_id:
            return index
    matches = [i for i, m in enumerate(session.messages)
               if len(message_id) >= MIN_PREFIX and m.id.startswith(message_id)]
    if len(matches) == 1:
        return matches[0]
    how = "matches several messages" if matches else "is not a message"
    raise CodetetherError(f"'{message_id}' {how} of session {session.id}",
                          f"see the message ids with `codetether session show {session.id}`")


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,), "str | None": (str, type(None)), "bool": (bool,)}


def _validated(data: Any) -> Session:
    """``Session.from_dict`` plus the type checks it leaves out; any problem is one clear error."""
    try:
        if isinstance(data, dict):
            if not isinstance(data.get("metadata") or {}, dict):
                raise ValueError("session metadata must be an object")
            if not isinstance(data.get("usage") or {}, dict):
                raise ValueError("session usage must be an object")
            parent = data.get("parent_id")
            if parent is not None and not isinstance(parent, str):
                raise ValueError("session parent_id must be a string or null")
        session = Session.from_dict(data)
        seen: set[str] = set()
        for number, message in enumerate(session.messages, 1):
            if message.id in seen:
                raise ValueError(f"message {number}: id {message.id} appears twice")
            seen.add(message.id)
            for part in message.parts:
                _check_part(part, number)
    except (ValueError, TypeError, AttributeError) as exc:
        raise CodetetherError(f"invalid session data: {exc}",
                              "import a file written by `codetether export`") from None
    return session


def _check_part(part: Any, number: int) -> None:
    for f in fields(part):
        allowed = _FIELD_TYPES.get(str(f.type))
        if allowed and not isinstance(getattr(part, f.name), allowed):
            raise ValueError(f"message {number}: {part.type} part field {f.name!r} must be "
                             f"{str(f.type).replace(' | None', ' or null')}")
