"""Slash commands: ``/name args`` typed in the prompt box.

A table maps each name to a handler ``(app, arg) -> None``; an unknown command is a one-line
hint in the conversation, never an error dialog. Handlers that may wait (network, git) hand
their work to ``app.background`` so the UI thread never blocks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from codetether.core.errors import CodetetherError
from codetether.tui import dialogs, themes

AGENTS = ("build", "plan", "explore")


@dataclass
class Command:
    name: str
    usage: str
    help: str
    handler: Callable[[Any, str], None]


def dispatch(app: Any, text: str) -> None:
    """Run the command in ``text`` (``/name args`` or ``?``)."""
    if text.strip() == "?":
        app.show_help()
        return
    name, _, arg = text.strip()[1:].partition(" ")
    command = COMMANDS.get(name.lower())
    if command is None:
        close = [c for c in COMMANDS if c.startswith(name.lower()[:2])] if name else []
        suggestion = f" — did you mean /{close[0]}?" if close else ""
        app.notice(f"unknown command /{name}{suggestion} (/help lists them)", "warning")
        return
    try:
        command.handler(app, arg.strip())
    except CodetetherError as exc:
        app.notice(exc.one_line(), "error")


def _idle(app: Any, what: str) -> bool:
    if app.worker is not None and app.worker.is_alive():
        app.notice(f"cannot {what} while {app.busy}; Ctrl+C cancels the turn", "warning")
        return False
    return True


# -- sessions ---------------------------------------------------------------------------------
def cmd_new(app: Any, _arg: str) -> None:
    if _idle(app, "start a new session"):
        app.conversation.clear()
        app.changed_files.clear()
        app.agent = None
        app.session = None
        app.rebuild(session=None, note="new session")


def cmd_sessions(app: Any, _arg: str) -> None:
    rows = app.store.list(str(app.opts.workspace), 200)
    current = app.session.id if app.session is not None else None
    items = [dialogs.Item(f"{r.title or 'untitled'}", r.id,
                          f"{r.id}  {_age(r.updated_at)}  {r.message_count} msgs"
                          + ("  (current)" if r.id == current else ""))
             for r in rows if r.message_count or r.id == current]

    def chosen(session_id: str) -> None:
        app.close_overlay()
        resume(app, session_id)

    app.open_overlay(dialogs.Picker("sessions", items, chosen, app.close_overlay,
                                    empty="no sessions in this directory yet"))


def cmd_resume(app: Any, arg: str) -> None:
    if not arg:
        cmd_sessions(app, "")
        return
    resume(app, arg)


def resume(app: Any, session_id: str) -> None:
    if not _idle(app, "switch sessions"):
        return
    session = app.store.load(session_id)  # a bad id raises a one-line CodetetherError
    app.rebuild(session=session, model=session.model or None, agent_name=session.agent or None,
                note=f"resumed session {session.id}: {session.title or 'untitled'}")


# -- model and agent -------------------------------------------------------------------------
def cmd_model(app: Any, arg: str) -> None:
    if arg:
        set_model(app, arg)
        return
    from codetether.tui.models import model_items

    def show(items: list[dialogs.Item]) -> None:
        app.open_overlay(dialogs.Picker(
            "model (providers with credentials)", items,
            lambda ref: (app.close_overlay(), set_model(app, ref)), app.close_overlay,
            allow_custom=True, empty="no provider has credentials: codetether auth login …"))

    app.background("listing models", lambda: model_items(app.cfg, app.model_ref), show)


def set_model(app: Any, ref: str) -> None:
    if _idle(app, "switch models"):
        app.rebuild(session=app.session, model=ref, note=f"model: {ref}")


def cmd_agent(app: Any, arg: str) -> None:
    name = arg.lower()
    if name not in AGENTS:
        app.notice(f"/agent takes one of {', '.join(AGENTS)} (now: {app.agent_name})",
                   "warning")
        return
    if _idle(app, "switch agents"):
        app.agent_name = name
        app.rebuild(session=app.session, agent_name=name, note=f"agent: {name}")


# -- work on the session ---------------------------------------------------------------------
def cmd_undo(app: Any, arg: str) -> None:
    if app.session is None or not _idle(app, "undo"):
        return
    steps = int(arg) if arg.isdigit() else 1
    session = app.session

    def job():
        from codetether.agent.undo import undo

        return undo(app.store, session, steps)

    def done(result) -> None:
        from codetether.tui.conversation import blocks_from_session

        app.conversation.clear()
        for block in blocks_from_session(session):
            app.conversation.add(block)
        app.notice(result.summary())

    app.background("undoing", job, done)


def cmd_compact(app: Any, _arg: str) -> None:
    if app.agent is None or not _idle(app, "compact"):
        return
    agent = app.agent

    def done(changed: bool) -> None:
        if not changed:
            app.notice("nothing to compact yet")

    app.background("compacting", agent.compact, done)


def cmd_export(app: Any, arg: str) -> None:
    if app.session is None:
        app.notice("no session yet", "warning")
        return
    try:
        path = app.export(arg or None)
    except OSError as exc:
        app.notice(f"cannot write the export: {exc.strerror or exc}", "error")
        return
    app.notice(f"exported session {app.session.id} to {path}")


def cmd_theme(app: Any, arg: str) -> None:
    if not arg:
        items = [dialogs.Item(name, name, "(current)" if name == app.theme.name else "")
                 for name in themes.available()]
        app.open_overlay(dialogs.Picker("theme", items,
                                        lambda name: (app.close_overlay(),
                                                      cmd_theme(app, name)),
                                        app.close_overlay))
        return
    try:
        theme = themes.load(arg)
    except themes.ThemeError as exc:
        app.notice(str(exc), "warning")
        return
    app.set_theme(theme)
    for note in theme.notes:
        app.notice(f"theme {theme.name}: {note}", "warning")
    app.notice(f"theme: {theme.name}")


def cmd_file(app: Any, arg: str) -> None:
    if not arg:
        app.notice("/file PATH attaches a file to the next prompt", "warning")
        return
    attachment = app.load_attachment(arg)
    if attachment is not None:
        app.attachments.append(attachment)
        app.notice(f"attached {attachment.name} to the next prompt")


def cmd_help(app: Any, _arg: str) -> None:
    app.show_help()


def cmd_quit(app: Any, _arg: str) -> None:
    app.quit()


def _age(timestamp: float) -> str:
    seconds = max(0, time.time() - timestamp)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return "just now"


COMMANDS: dict[str, Command] = {c.name: c for c in (
    Command("new", "/new", "start a new session", cmd_new),
    Command("sessions", "/sessions", "pick a session to resume", cmd_sessions),
    Command("resume", "/resume ID", "resume a session by id", cmd_resume),
    Command("model", "/model [REF]", "pick or set the model", cmd_model),
    Command("agent", "/agent NAME", "build, plan or explore", cmd_agent),
    Command("undo", "/undo [N]", "restore files changed by the last step(s)", cmd_undo),
    Command("compact", "/compact", "summarise older history now", cmd_compact),
    Command("export", "/export [FILE]", "write the session as JSON", cmd_export),
    Command("theme", "/theme [NAME]", "change colours", cmd_theme),
    Command("file", "/file PATH", "attach a file to the next prompt", cmd_file),
    Command("help", "/help", "keys and commands", cmd_help),
    Command("quit", "/quit", "leave", cmd_quit),
    Command("exit", "/exit", "leave", cmd_quit),
)}
