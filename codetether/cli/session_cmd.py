"""``codetether session list|show|export|import|fork|delete`` (and the ``export``/``import``
aliases): look at, move and branch the sessions kept in the SQLite store.

Results go to stdout (ids, tables, JSON); notes for the person go to stderr, so
``codetether export > s.json`` and ``id=$(codetether session fork X)`` work as expected.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from codetether.agent.session import Session, StoredMessage
from codetether.agent.store import SessionStore, SessionSummary
from codetether.core.errors import CodetetherError, UsageError
from codetether.core.fsutil import atomic_write_text
from codetether.providers.base import (
    ImagePart,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
)

RESULT_LINES = 6
ARG_CHARS = 60


def run(args: argparse.Namespace) -> int:
    action = getattr(args, "session_action", None)
    handler = _ACTIONS.get(action or "")
    if handler is None:
        raise UsageError(f"unknown session action {action!r}",
                         f"choose one of: {', '.join(_ACTIONS)}")
    with SessionStore() as store:
        return handler(store, args)


def _cwd() -> str:
    return str(Path.cwd().resolve())


# ---- list ----------------------------------------------------------------------------------


def _list(store: SessionStore, args: argparse.Namespace) -> int:
    all_projects = bool(getattr(args, "all_projects", False))
    limit = getattr(args, "limit", None)
    limit = 20 if limit is None else int(limit)
    rows = store.list(None if all_projects else _cwd(), limit)
    if getattr(args, "json", False):
        print(json.dumps([asdict(r) for r in rows], indent=2, ensure_ascii=False))
        return 0
    if not rows:
        where = "anywhere" if all_projects else f"for {_cwd()}"
        more = "" if all_projects else " (--all-projects shows every directory)"
        print(f"no sessions {where}{more}", file=sys.stderr)
        return 0
    print(_table(rows, all_projects))
    return 0


def _table(rows: list[SessionSummary], with_directory: bool) -> str:
    now = time.time()
    header = ["ID", "UPDATED", "MSGS", "TITLE"] + (["DIRECTORY"] if with_directory else [])
    body = [[r.id, _when(r.updated_at, now), str(r.message_count), _cut(r.title or "untitled", 60)]
            + ([r.directory] if with_directory else []) for r in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
             for line in [header, *body]]
    return "\n".join(lines)


def _when(stamp: float, now: float) -> str:
    """"3m ago" for the last week, an ISO date and time before that."""
    age = max(0.0, now - stamp)
    for unit, seconds in (("d", 86400), ("h", 3600), ("m", 60)):
        if age >= seconds and age < 7 * 86400:
            return f"{int(age // seconds)}{unit} ago"
    if age < 60:
        return "just now"
    return datetime.fromtimestamp(stamp).isoformat(sep=" ", timespec="minutes")


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


# ---- show ----------------------------------------------------------------------------------


def _show(store: SessionStore, args: argparse.Namespace) -> int:
    session = store.load(_required_id(args))
    if getattr(args, "json", False):
        print(json.dumps(session.to_dict(), indent=2, ensure_ascii=False))
        return 0
    print(_render(session))
    return 0


def _render(session: Session) -> str:
    u = session.usage
    out = [f"session   {session.id}",
           f"title     {session.title or 'untitled'}",
           f"directory {session.directory}",
           f"model     {session.model or '-'}   agent {session.agent}"]
    if session.parent_id:
        out.append(f"parent    {session.parent_id}")
    out += [f"created   {_iso(session.created_at)}   updated {_iso(session.updated_at)}",
            f"usage     {u.input_tokens} in / {u.output_tokens} out tokens"
            f"   cost ${session.cost:.4f}   {len(session.messages)} messages"]
    for number, message in enumerate(session.messages, 1):
        out.append("")
        out.extend(_render_message(number, message))
    return "\n".join(out)


def _render_message(number: int, message: StoredMessage) -> list[str]:
    flags = [name for name in ("summary", "reverted", "cancelled") if message.meta.get(name)]
    if message.meta.get("error"):
        flags.append(f"error: {_cut(str(message.meta['error']), 80)}")
    tail = f"  [{', '.join(flags)}]" if flags else ""
    lines = [f"── {number}. {message.role} · {message.id} · {_iso(message.created_at)}{tail}"]
    for part in message.parts:
        lines.extend(_render_part(part))
    return lines


def _render_part(part: Any) -> list[str]:
    if isinstance(part, TextPart):
        return part.text.splitlines() or [""]
    if isinstance(part, ThinkingPart):
        return [f"[thinking] {line}" for line in _head(part.text, RESULT_LINES)]
    if isinstance(part, ToolCallPart):
        return [f"→ {part.name}({_args_summary(part)})  [{part.id}]"]
    if isinstance(part, ToolResultPart):
        status = "error" if part.is_error else "result"
        return [f"← {status} [{part.tool_call_id}]"] + [
            f"  {line}" for line in _head(part.content, RESULT_LINES)]
    if isinstance(part, ImagePart):
        return [f"[image {part.media_type}, {len(part.data) * 3 // 4} bytes]"]
    return [f"[{getattr(part, 'type', 'part')}]"]


def _head(text: str, count: int) -> list[str]:
    lines = text.splitlines()
    if len(lines) <= count:
        return lines
    return lines[:count] + [f"… ({len(lines) - count} more lines)"]


def _args_summary(part: ToolCallPart) -> str:
    args = part.parsed_arguments()
    if not args and part.arguments.strip() not in ("", "{}"):
        return _cut(part.arguments, ARG_CHARS)
    return ", ".join(f"{key}={_cut(json.dumps(value, ensure_ascii=False), ARG_CHARS)}"
                     for key, value in args.items())


def _iso(stamp: float) -> str:
    return datetime.fromtimestamp(stamp).isoformat(sep=" ", timespec="seconds")


# ---- export / import -----------------------------------------------------------------------


def _export(store: SessionStore, args: argparse.Namespace) -> int:
    wanted = getattr(args, "id", None)
    if wanted:
        data = store.export(wanted)
    else:
        latest = store.latest(_cwd())
        if latest is None:
            raise CodetetherError(f"no session for {_cwd()}",
                                  "pass a session id; see `codetether session list "
                                  "--all-projects`")
        data = latest.to_dict()
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    output = getattr(args, "output", None)
    if output and output != "-":
        atomic_write_text(Path(output), text)
        print(f"exported {data['id']} ({len(data['messages'])} messages) to {output}",
              file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _import(store: SessionStore, args: argparse.Namespace) -> int:
    name = getattr(args, "file", None) or "-"
    label = "stdin" if name == "-" else name
    try:
        raw = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CodetetherError(f"cannot read {label}: {exc}",
                              "give a file written by `codetether export`") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CodetetherError(f"{label} is not valid JSON: {exc.msg} at line {exc.lineno} "
                              f"column {exc.colno}",
                              "give a file written by `codetether export`") from None
    session = store.import_session(data)
    original = data.get("id")
    if original != session.id:
        print(f"note: session {original} already exists; imported as a copy with a new id",
              file=sys.stderr)
    print(session.id)
    return 0


# ---- fork / delete -------------------------------------------------------------------------


def _fork(store: SessionStore, args: argparse.Namespace) -> int:
    fork = store.fork(_required_id(args), getattr(args, "at", None))
    print(fork.id)
    return 0


def _delete(store: SessionStore, args: argparse.Namespace) -> int:
    session_id = store.delete(_required_id(args))
    print(f"deleted {session_id}")
    return 0


def _required_id(args: argparse.Namespace) -> str:
    wanted = getattr(args, "id", None)
    if not wanted:
        raise UsageError("a session id is required", "see `codetether session list`")
    return wanted


_ACTIONS = {"list": _list, "show": _show, "export": _export, "import": _import,
            "fork": _fork, "delete": _delete}
