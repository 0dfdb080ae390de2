"""The audit log: one JSON object per line in ``audit.jsonl`` in the data dir, append-only.

Every request a server answers, every task it runs and every tool the agent executes leaves a
line ``{ts, actor, action, resource, outcome, duration_ms, session_id, task_id}``. The file is
opened with ``O_APPEND`` and each record is one ``os.write`` of a whole line, so lines from
several threads (or several processes sharing a data dir) never interleave, and a record is in
the kernel's hands before the request it describes is acknowledged. Mode 0600: the log names
who did what.

``query`` reads it back with simple filters; it scans the file, which is fine for the sizes a
single server produces and keeps the format greppable with ordinary tools.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from codetether.core import paths
from codetether.core.errors import UsageError

log = logging.getLogger("codetether.audit")

FILE_NAME = "audit.jsonl"
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
FIELDS = ("ts", "actor", "action", "resource", "outcome", "duration_ms", "session_id", "task_id")


def now_ts() -> str:
    """UTC, millisecond precision, fixed width: such strings sort in time order."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def normalize_time(value: Any, name: str = "time") -> str | None:
    """An ISO 8601 string or epoch seconds -> the log's own ``ts`` form (None passes through).

    Bad input is a ``UsageError`` so servers can turn it into a 400.
    """
    if value is None or value == "":
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, int | float):
            moment = datetime.fromtimestamp(float(value), UTC)
        else:
            text = str(value).strip()
            moment = (datetime.fromtimestamp(float(text), UTC) if _is_number(text)
                      else datetime.fromisoformat(text))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        raise UsageError(f"bad {name} {value!r}",
                         "give an ISO 8601 time such as 2025-01-31T12:00:00Z or epoch seconds"
                         ) from None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class AuditLog:
    """Thread-safe appender and reader of one ``audit.jsonl``."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else paths.data_dir() / FILE_NAME
        self._lock = threading.Lock()
        self._fd: int | None = None

    def _open(self) -> int:
        if self._fd is None:
            paths.ensure_private_dir(self.path.parent)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            if os.fstat(self._fd).st_mode & 0o077:
                os.fchmod(self._fd, 0o600)  # an older file made with a looser umask
            if not _ends_with_newline(self.path):
                os.write(self._fd, b"\n")  # a torn line from a crash: do not glue onto it
        return self._fd

    def record(self, actor: str | None, action: str, resource: str = "", outcome: Any = "ok",
               duration_ms: float | None = None, session_id: str | None = None,
               task_id: str | None = None, **extra: Any) -> dict[str, Any]:
        """Append one event and return it; ``extra`` fields (e.g. ``context_id``) follow the
        fixed ones. Never raises: losing the disk must not take the server down with it, so a
        failed write is logged instead."""
        event = {"ts": now_ts(), "actor": actor or "anonymous", "action": action,
                 "resource": resource, "outcome": outcome,
                 "duration_ms": None if duration_ms is None else round(float(duration_ms), 3),
                 "session_id": session_id, "task_id": task_id}
        event.update({k: v for k, v in extra.items() if k not in event and v is not None})
        line = (json.dumps(event, ensure_ascii=False, default=str) + "\n").encode("utf-8")
        with self._lock:
            try:
                fd = self._open()
                written = 0
                while written < len(line):  # one write almost always; loop for short writes
                    written += os.write(fd, line[written:])
            except OSError as exc:
                log.error("could not write the audit log %s: %s", self.path, exc)
        return event

    def query(self, actor: str | None = None, action: str | None = None,
              resource: str | None = None, since: Any = None, until: Any = None,
              limit: int | None = DEFAULT_LIMIT, outcome: Any = None,
              task_id: str | None = None, session_id: str | None = None) -> list[dict[str, Any]]:
        """The newest ``limit`` matching events, oldest first.

        ``actor``, ``outcome``, ``task_id`` and ``session_id`` match exactly; ``action`` matches
        exactly or, ending in ``*``, as a prefix (``tool.*``); ``resource`` matches as a
        substring (``/a2a`` finds ``POST /a2a``); ``since``/``until`` bound ``ts`` inclusively
        (ISO 8601 or epoch seconds).
        """
        lo, hi = normalize_time(since, "since"), normalize_time(until, "until")
        limit = _check_limit(limit)
        found: deque[dict[str, Any]] = deque(maxlen=limit)
        for event in self._read():
            ts = str(event.get("ts", ""))
            if (lo and ts < lo) or (hi and ts > hi):
                continue
            if actor is not None and event.get("actor") != actor:
                continue
            if action is not None and not _action_matches(action, str(event.get("action"))):
                continue
            if resource is not None and resource not in str(event.get("resource", "")):
                continue
            if outcome is not None and str(event.get("outcome")) != str(outcome):
                continue
            if task_id is not None and event.get("task_id") != task_id:
                continue
            if session_id is not None and event.get("session_id") != session_id:
                continue
            found.append(event)
        return list(found)

    def _read(self) -> Iterator[dict[str, Any]]:
        try:
            with open(self.path, encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue  # a torn last line after a crash: skip, never fail the query
                    if isinstance(event, dict):
                        yield event
        except FileNotFoundError:
            return

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def _ends_with_newline(path: Path) -> bool:
    """True for an empty file or one whose last byte is a newline."""
    with open(path, "rb") as handle:
        if handle.seek(0, os.SEEK_END) == 0:
            return True
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def _action_matches(pattern: str, action: str) -> bool:
    if pattern.endswith("*"):
        return action.startswith(pattern[:-1])
    return action == pattern


def _check_limit(limit: Any) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    try:
        value = int(limit)
        if isinstance(limit, bool) or value != float(limit):
            raise ValueError
    except (TypeError, ValueError):
        raise UsageError(f"bad limit {limit!r}", f"give a whole number from 1 to {MAX_LIMIT}"
                         ) from None
    if not 1 <= value <= MAX_LIMIT:
        raise UsageError(f"limit {value} is out of range", f"give 1 to {MAX_LIMIT}")
    return value


_default: AuditLog | None = None
_default_lock = threading.Lock()


def default_audit() -> AuditLog:
    """The process's audit log in the current data dir (re-opened if the data dir moved)."""
    global _default
    with _default_lock:
        wanted = paths.data_dir() / FILE_NAME
        if _default is None or _default.path != wanted:
            _default = AuditLog(wanted)
        return _default
