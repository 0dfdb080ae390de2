"""Open the shared SQLite database the same way everywhere: owner-only file, WAL, busy timeout.

Several processes (a ``serve`` and a ``run``) and many threads use one file, so every store opens
it with the same settings: WAL for concurrent readers, a 5 s busy timeout instead of
"database is locked", autocommit mode so each store controls its own ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from codetether.core.paths import data_dir, ensure_private_dir

DB_NAME = "codetether.db"


def database_path(path: Path | None = None) -> Path:
    """``path``, or ``<data dir>/codetether.db``; its directory exists and is owner-only."""
    path = Path(path) if path is not None else data_dir() / DB_NAME
    ensure_private_dir(path.parent)
    return path


def connect(path: Path) -> sqlite3.Connection:
    """A connection shared across threads (callers hold their own lock).

    Raises ``sqlite3.DatabaseError`` / ``OSError``; each store turns them into its own error
    with a hint, since only it knows what the file holds.
    """
    if not path.exists():
        # transcripts and tasks can hold anything a tool printed: owner-only from the first
        # byte (SQLite gives the -wal and -shm files the same mode)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    conn = sqlite3.connect(str(path), timeout=5.0, isolation_level=None,
                           check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn
