"""Where A2A tasks live: SQLite (WAL) in the data dir, written before a change is announced.

A task is kept as its v1.0 JSON (status, history, artifacts, metadata) plus indexed columns for
listing; push notification configs sit in their own table. Opening the store after a crash or
restart turns every task that was still running into a failed one with the reason
"server restarted": the thread that ran it is gone and a client must not wait for it forever.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from codetether.core.errors import CodetetherError
from codetether.storage.sqlite import connect, database_path

TERMINAL = frozenset({"TASK_STATE_COMPLETED", "TASK_STATE_FAILED", "TASK_STATE_CANCELED",
                      "TASK_STATE_REJECTED"})
INTERRUPTED = frozenset({"TASK_STATE_INPUT_REQUIRED", "TASK_STATE_AUTH_REQUIRED"})
RESTART_REASON = "server restarted"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS a2a_tasks (
    id TEXT PRIMARY KEY,
    context_id TEXT NOT NULL,
    state TEXT NOT NULL,
    principal TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    seq INTEGER NOT NULL,
    task TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS a2a_tasks_context ON a2a_tasks (context_id, seq);
CREATE INDEX IF NOT EXISTS a2a_tasks_seq ON a2a_tasks (seq);
CREATE TABLE IF NOT EXISTS a2a_push_configs (
    task_id TEXT NOT NULL,
    id TEXT NOT NULL,
    config TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (task_id, id)
);
CREATE TABLE IF NOT EXISTS a2a_contexts (
    context_id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL
);
"""


class TaskStoreError(CodetetherError):
    pass


def now_iso() -> str:
    """RFC 3339 UTC with milliseconds, the JSON form of ``google.protobuf.Timestamp``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TaskStore:
    """Tasks and push configs. Thread-safe (one connection behind a lock)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path = database_path(path)
        self._lock = threading.RLock()
        try:
            self._conn = connect(path)
            self._conn.executescript(_SCHEMA)
        except (sqlite3.DatabaseError, OSError) as exc:
            raise TaskStoreError(f"cannot open the task database {path}: {exc}",
                                 "move the file aside or set CODETETHER_DATA_DIR to another "
                                 "directory") from None

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    # -- tasks -------------------------------------------------------------------------------
    def save_task(self, task: dict[str, Any], principal: str = "") -> None:
        """Insert or replace a task (the whole v1.0 JSON); ``seq`` orders listings by change."""
        state = task.get("status", {}).get("state", "TASK_STATE_UNSPECIFIED")
        text = json.dumps(task, ensure_ascii=False, separators=(",", ":"))
        stamp = now_iso()
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO a2a_tasks (id, context_id, state, principal, created_at, updated_at,"
                " seq, task) VALUES (?, ?, ?, ?, ?, ?, "
                "(SELECT COALESCE(MAX(seq), 0) + 1 FROM a2a_tasks), ?) ON CONFLICT(id) DO UPDATE"
                " SET state = excluded.state, updated_at = excluded.updated_at, "
                "seq = excluded.seq, task = excluded.task",
                (task["id"], task.get("contextId", ""), state, principal, stamp, stamp, text))

    def get_task(self, task_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute("SELECT task FROM a2a_tasks WHERE id = ?",
                                     (task_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def list_tasks(self, context_id: str | None = None, state: str | None = None,
                   updated_after: str | None = None, limit: int = 50, offset: int = 0
                   ) -> tuple[list[dict[str, Any]], int]:
        """(tasks newest change first, total matching)."""
        where, args = [], []
        if context_id:
            where.append("context_id = ?")
            args.append(context_id)
        if state:
            where.append("state = ?")
            args.append(state)
        if updated_after:
            where.append("updated_at >= ?")
            args.append(updated_after)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        with self._lock:
            total = self._conn.execute(f"SELECT COUNT(*) FROM a2a_tasks{clause}",
                                       args).fetchone()[0]
            rows = self._conn.execute(
                f"SELECT task FROM a2a_tasks{clause} ORDER BY seq DESC LIMIT ? OFFSET ?",
                [*args, limit, offset]).fetchall()
        return [json.loads(r[0]) for r in rows], int(total)

    def fail_unfinished(self, reason: str = RESTART_REASON) -> list[str]:
        """Mark every task that is not terminal as failed (a restart lost its thread)."""
        placeholders = ", ".join("?" for _ in TERMINAL)
        with self._lock:
            rows = self._conn.execute(
                f"SELECT task FROM a2a_tasks WHERE state NOT IN ({placeholders})",
                sorted(TERMINAL)).fetchall()
        failed = []
        for (text,) in rows:
            task = json.loads(text)
            task["status"] = failed_status(task, reason)
            self.save_task(task)
            failed.append(task["id"])
        return failed

    # -- contexts ----------------------------------------------------------------------------
    def session_for(self, context_id: str) -> str | None:
        """The agent session that carries this A2A context's conversation."""
        with self._lock:
            row = self._conn.execute("SELECT session_id FROM a2a_contexts WHERE context_id = ?",
                                     (context_id,)).fetchone()
        return row[0] if row else None

    def set_session(self, context_id: str, session_id: str) -> None:
        with self._tx() as conn:
            conn.execute("INSERT INTO a2a_contexts (context_id, session_id) VALUES (?, ?) "
                         "ON CONFLICT(context_id) DO UPDATE SET session_id = excluded.session_id",
                         (context_id, session_id))

    # -- push configs ------------------------------------------------------------------------
    def save_push_config(self, task_id: str, config: dict[str, Any]) -> None:
        text = json.dumps(config, ensure_ascii=False, separators=(",", ":"))
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO a2a_push_configs (task_id, id, config, created_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT(task_id, id) DO UPDATE SET "
                "config = excluded.config", (task_id, config["id"], text, now_iso()))

    def push_configs(self, task_id: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT config FROM a2a_push_configs WHERE task_id = ? ORDER BY created_at, id",
                (task_id,)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def delete_push_config(self, task_id: str, config_id: str) -> bool:
        with self._tx() as conn:
            cursor = conn.execute("DELETE FROM a2a_push_configs WHERE task_id = ? AND id = ?",
                                  (task_id, config_id))
        return cursor.rowcount > 0


def failed_status(task: dict[str, Any], reason: str) -> dict[str, Any]:
    """A failed status whose agent message says why (what a client shows the user)."""
    message = {"messageId": f"{task['id']}-failed", "role": "ROLE_AGENT",
               "taskId": task["id"], "contextId": task.get("contextId", ""),
               "parts": [{"text": reason}], "metadata": {"reason": reason}}
    return {"state": "TASK_STATE_FAILED", "message": message, "timestamp": now_iso()}
