"""The TUI application: layout, keys, the worker thread and the bridge between them.

Threads: the UI thread runs urwid's main loop and owns every widget. A turn (and anything that
may touch the network: building the runtime, which can ask Vault; /compact; /undo's git work)
runs in a worker thread. Workers never touch widgets: they ``post(callable)`` — the callable
goes on a queue and one byte on a ``loop.watch_pipe`` fd wakes the UI thread, which runs every
queued callable, re-renders what changed and redraws once.

Approvals: the permission engine calls ``approver`` in the worker thread; it posts the prompt to
the UI and blocks on a ``Pending`` (an Event) until the user answers, or the turn is cancelled.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urwid
import urwid.display.raw  # noqa: F401  (explicit submodule import: PyInstaller)
import urwid.event_loop.main_loop  # noqa: F401
import urwid.widget  # noqa: F401

from codetether.agent.events import Event
from codetether.core import paths
from codetether.core.errors import CodetetherError
from codetether.tui import commands, dialogs, themes
from codetether.tui.conversation import (
    ConversationView,
    NoticeBlock,
    ToolBlock,
    UserBlock,
    blocks_from_session,
)
from codetether.tui.input import History, PasteFilter, PromptInput
from codetether.tui.status import SidePanel, StatusBar, StatusInfo, git_branch

log = logging.getLogger("codetether.tui")

AGENT_CYCLE = ("build", "plan", "explore")
FILE_WRITERS = ("write", "edit", "multiedit", "patch")
THEME_POLL_SECONDS = 1.0
MAX_ATTACH_BYTES = 512 * 1024


@dataclass
class Options:
    workspace: Path
    model: str | None = None
    agent: str | None = None
    access_mode: str | None = None
    theme: str | None = None


class Pending:
    """An answer the worker thread waits for (approval or question), given by the UI thread."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.answer: Any = None
        self.on_done: Callable[[], None] | None = None

    def set(self, answer: Any) -> None:
        if self._event.is_set():
            return
        self.answer = answer
        self._event.set()
        if self.on_done is not None:
            self.on_done()

    @property
    def done(self) -> bool:
        return self._event.is_set()

    def wait(self) -> Any:
        self._event.wait()
        return self.answer


@dataclass
class TurnTotals:
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0


@dataclass
class Attachment:
    name: str
    part: Any


class App:
    """Everything on the screen plus the agent it drives."""

    def __init__(self, options: Options, store: Any, cfg: Any, session: Any = None) -> None:
        self.opts = options
        self.store, self.cfg = store, cfg
        self.session = session
        self.agent: Any = None
        self.model_ref = options.model
        self.agent_name = options.agent
        self.queue: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self.loop: Any = None
        self._wake_fd: int | None = None
        self._wake_lock = threading.Lock()
        self._wake_pending = False
        self.posted = threading.Event()  # set on every post (lets tests wait without a loop)
        self.worker: threading.Thread | None = None
        self.busy = ""
        self.totals = TurnTotals()
        self.attachments: list[Attachment] = []
        self.changed_files: list[str] = []
        self.approvals: list[tuple[Any, Pending]] = []
        self.question: tuple[str, list[str], Pending] | None = None
        self.queued_prompt: tuple[str, list[Attachment]] | None = None
        self.quit_armed = False
        self.panel_open = False
        self.overlay: urwid.Widget | None = None
        self._context_key: tuple[int, int] | None = None
        self._context_pct: int | None = None
        self.branch = git_branch(options.workspace)
        self.theme = self._initial_theme()
        self.theme_watcher = themes.ThemeWatcher(self.theme)
        self._build_widgets()

    # -- layout ------------------------------------------------------------------------------
    def _build_widgets(self) -> None:
        history = History(paths.data_dir() / "tui_history")
        self.conversation = ConversationView()
        self.input = PromptInput(self.submit, self.opts.workspace, history, on_hint=self.hint)
        self.hint_text = urwid.Text("", wrap="ellipsis")
        self.status = StatusBar()
        self.panel = SidePanel()
        self.slot = urwid.WidgetPlaceholder(self.input)  # the input, or an approval prompt
        self.footer = urwid.Pile([("pack", urwid.AttrMap(urwid.Divider("─"), "dim")),
                                  ("pack", self.slot), ("pack", self.status)])
        self._focus_slot()
        self.columns = urwid.Columns([self.conversation])
        self.frame = urwid.Frame(urwid.AttrMap(self.columns, "body"), footer=self.footer,
                                 focus_part="footer")
        self.top = urwid.WidgetPlaceholder(urwid.AttrMap(self.frame, "body"))
        self.paste_filter = PasteFilter(lambda: self.input if self.slot.original_widget is
                                        self.input and self.overlay is None else None)
        self.update_status()

    def _initial_theme(self) -> themes.Theme:
        name = self.opts.theme or (self.cfg.get("ui.theme") if self.cfg else None)
        try:
            return themes.load(name)
        except themes.ThemeError as exc:
            self._startup_notes = [str(exc)]
            return themes.load(None)

    # -- running -----------------------------------------------------------------------------
    def make_loop(self, screen: Any = None) -> urwid.MainLoop:
        self.loop = urwid.MainLoop(self.top, self.theme.palette(), screen=screen,
                                   unhandled_input=self.unhandled_input,
                                   input_filter=self.input_filter, handle_mouse=False)
        self._wake_fd = self.loop.watch_pipe(self._on_wake)
        self.loop.set_alarm_in(THEME_POLL_SECONDS, self._poll_theme)
        return self.loop

    def start(self) -> None:
        """Things to do once the loop exists: greet, build the agent in the background."""
        for note in getattr(self, "_startup_notes", []):
            self.notice(note, "warning")
        if self.session is not None:
            for block in blocks_from_session(self.session):
                self.conversation.add(block)
            self.notice(f"resumed session {self.session.id}: {self.session.title or 'untitled'}")
        else:
            self.notice("Type a prompt and press Enter. /help or ? for keys and commands.")
        self.rebuild(session=self.session)

    def shutdown(self, timeout: float = 10.0) -> None:
        """After the loop: stop the turn, release waiting workers, let the session be saved."""
        if self.agent is not None and self.worker is not None and self.worker.is_alive():
            self.agent.rt.cancel.cancel()
        for _request, pending in self.approvals:
            pending.set("reject")
        if self.question is not None:
            self.question[2].set("")
        if self.worker is not None:
            self.worker.join(timeout)
        if self._wake_fd is not None and self.loop is not None:
            self.loop.remove_watch_pipe(self._wake_fd)
            self._wake_fd = None

    def quit(self) -> None:
        raise urwid.ExitMainLoop()

    # -- the thread bridge -------------------------------------------------------------------
    def post(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the UI thread soon (callable from any thread)."""
        self.queue.put(fn)
        self.posted.set()
        with self._wake_lock:
            if self._wake_pending or self._wake_fd is None:
                return
            self._wake_pending = True
        try:
            os.write(self._wake_fd, b"!")
        except OSError:
            pass

    def _on_wake(self, _data: bytes) -> bool:
        with self._wake_lock:
            self._wake_pending = False
        self.drain()
        return True

    def drain(self) -> None:
        """Run every queued callable, then re-render what changed (tests call this directly)."""
        while True:
            try:
                fn = self.queue.get_nowait()
            except queue.Empty:
                break
            try:
                fn()
            except urwid.ExitMainLoop:
                raise
            except Exception:
                log.exception("UI callback failed")
        self.conversation.refresh()
        self.update_status()

    def background(self, what: str, job: Callable[[], Any],
                   done: Callable[[Any], None] | None = None,
                   failed: Callable[[str], None] | None = None) -> bool:
        """Run ``job`` in the worker thread; ``done(result)`` / ``failed(line)`` on the UI."""
        if self.worker is not None and self.worker.is_alive():
            self.notice(f"busy ({self.busy}); wait, or Ctrl+C to cancel", "warning")
            return False
        self.busy = what

        def run() -> None:
            try:
                result = job()
            except CodetetherError as exc:
                line = exc.one_line()
                self.post(lambda: self._job_failed(line, failed))
            except Exception as exc:  # a bug: keep the UI alive, keep the traceback in the log
                log.exception("%s failed", what)
                line = f"{what} failed unexpectedly: {type(exc).__name__}: {exc}"
                self.post(lambda: self._job_failed(line, failed))
            else:
                self.post(lambda: self._job_done(result, done))

        self.worker = threading.Thread(target=run, name=f"codetether-tui-{what}", daemon=True)
        self.worker.start()
        self.update_status()
        return True

    def _job_done(self, result: Any, done: Callable[[Any], None] | None) -> None:
        self.busy = ""
        if done is not None:
            done(result)
        self._after_job()

    def _job_failed(self, line: str, failed: Callable[[str], None] | None) -> None:
        self.busy = ""
        self.notice(line, "error")
        if self.queued_prompt is not None and self.agent is None:
            self.queued_prompt = None
            self.notice("the queued prompt was not sent; send it again once a model works",
                        "warning")
        if failed is not None:
            failed(line)
        self._after_job()

    def _after_job(self) -> None:
        if self.queued_prompt is not None and self.agent is not None:
            text, attached = self.queued_prompt
            self.queued_prompt = None
            self._start_turn(text, attached)

    # -- the agent ---------------------------------------------------------------------------
    def rebuild(self, session: Any = None, model: str | None = None,
                agent_name: str | None = None, note: str | None = None) -> bool:
        """Build the runtime in the background (it may ask Vault for keys), then swap it in."""
        from codetether.agent.setup import build_runtime

        model = model or self.model_ref
        agent_name = agent_name or self.agent_name

        def job():
            return build_runtime(
                session=session, store=self.store, cfg=self.cfg, workspace=self.opts.workspace,
                model=model, agent_name=agent_name, access_mode=self.opts.access_mode,
                on_event=self.on_event, approver=self.approver, ask_user=self.ask_user)

        def done(agent) -> None:
            switched = self.session is None or self.session.id != agent.session.id
            reload = switched and (self.session is not None or bool(agent.session.messages))
            self.agent = agent
            self.session = agent.session
            self.model_ref = agent.rt.model_ref
            self.agent_name = agent.rt.profile.name
            if reload:  # another session (resume): show its transcript
                self.conversation.clear()
                self.changed_files.clear()
                for block in blocks_from_session(agent.session):
                    self.conversation.add(block)
            if note:
                self.notice(note)
            self.refresh_panel()

        return self.background("connecting", job, done)

    def on_event(self, event: Event) -> None:
        """The agent's event sink (worker and tool threads)."""
        self.post(lambda: self.handle_event(event))

    def handle_event(self, event: Event) -> None:
        data, kind = event.data, event.type
        if kind == "text.delta":
            self.conversation.stream_text(data.get("text", ""))
        elif kind == "thinking.delta":
            self.conversation.stream_thinking(data.get("text", ""))
        elif kind == "tool.started":
            self.conversation.add(ToolBlock(data.get("call_id", ""), data.get("name", "?"),
                                            data.get("args") or {}))
        elif kind == "tool.output":
            block = self.conversation.running_tool(data.get("tool"))
            if block is not None:
                block.append_output(data.get("text", ""))
        elif kind == "tool.finished":
            self._tool_finished(data)
        elif kind == "approval.requested":
            block = self.conversation.tool(data.get("call_id", ""))
            if block is not None:
                block.set_status("approval")
        elif kind == "usage":
            self.totals.input_tokens += int(data.get("input_tokens") or 0)
            self.totals.output_tokens += int(data.get("output_tokens") or 0)
            self.totals.cost += float(data.get("cost") or 0.0)
        elif kind == "compaction":
            self.notice(f"compacted the context ({data.get('pruned_messages', 0)} tool outputs "
                        f"pruned, {data.get('summarized_messages', 0)} messages summarised)")
        elif kind == "error" and not data.get("fatal"):
            self.notice(str(data.get("message", "")), "warning")

    def _tool_finished(self, data: dict[str, Any]) -> None:
        block = self.conversation.tool(data.get("call_id", ""))
        if block is None:
            block = self.conversation.add(ToolBlock(data.get("call_id", ""),
                                                    data.get("name", "?"), {}))
        block.finish(bool(data.get("success")), str(data.get("output") or ""),
                     data.get("duration_ms"))
        if data.get("success") and block.name in FILE_WRITERS:
            for name in _touched_paths(block.args):
                if name not in self.changed_files:
                    self.changed_files.append(name)
            self.refresh_panel()

    # -- approvals and questions (called in the worker thread) -------------------------------
    def approver(self, request: Any) -> str:
        pending = Pending()
        pending.on_done = lambda: self.post(self._show_next_approval)
        self.post(lambda: self._queue_approval(request, pending))
        agent = self.agent
        unregister = agent.rt.cancel.on_cancel(lambda: pending.set("reject")) if agent else None
        answer = pending.wait()
        if unregister is not None:
            unregister()
        return answer

    def ask_user(self, question: str, options: list[str]) -> str:
        pending = Pending()
        self.post(lambda: self._show_question(question, options, pending))
        agent = self.agent
        unregister = agent.rt.cancel.on_cancel(lambda: pending.set("")) if agent else None
        answer = pending.wait()
        if unregister is not None:
            unregister()
        return str(answer or "")

    def _queue_approval(self, request: Any, pending: Pending) -> None:
        self.approvals.append((request, pending))
        self._show_next_approval()

    def _show_next_approval(self) -> None:
        self.approvals = [(r, p) for r, p in self.approvals if not p.done]
        if not self.approvals:
            self.slot.original_widget = self.input
            return
        request, pending = self.approvals[0]
        if isinstance(self.slot.original_widget, dialogs.ApprovalPrompt) and \
                self.slot.original_widget.request is request:
            return

        def answer(choice: str) -> None:
            word = {"once": "allowed once", "always": "allowed always",
                    "reject": "denied"}[choice]
            self.notice(f"{request.tool}: {word}", "dim")
            pending.set(choice)

        self.close_overlay()
        self.slot.original_widget = dialogs.ApprovalPrompt(request, answer)
        self._focus_slot()

    def _show_question(self, question: str, options: list[str], pending: Pending) -> None:
        lines = [f"? {question}"] + [f"  {n}. {o}" for n, o in enumerate(options, 1)]
        self.notice("\n".join(lines), "warning")
        self.question = (question, options, pending)
        self.input.set_caption(("warning", "answer › "))

    def _answer_question(self, text: str) -> None:
        assert self.question is not None
        _question, options, pending = self.question
        self.question = None
        self.input.set_caption(("prompt", "› "))
        text = text.strip()
        if text.isdigit() and 1 <= int(text) <= len(options):
            text = options[int(text) - 1]
        pending.set(text)

    # -- prompts -----------------------------------------------------------------------------
    def submit(self, text: str) -> None:
        """Enter in the prompt box: answer a question, run a command, or start a turn."""
        self.hint("")
        if self.question is not None:
            self._answer_question(text)
            return
        stripped = text.strip()
        if not stripped:
            self.conversation.toggle_focused()
            return
        if stripped == "?" or (stripped.startswith("/") and not stripped.startswith("//")):
            commands.dispatch(self, stripped)
            return
        attached = self.attachments + self._at_mentions(stripped)
        self.attachments = []
        if self.agent is None or (self.worker is not None and self.worker.is_alive()):
            if self.agent is None and self.busy == "connecting":
                self.queued_prompt = (text, attached)
                self.conversation.add(UserBlock(text, [a.name for a in attached]))
                self.notice("queued until the model is ready", "dim")
                return
            if self.agent is None:
                self.notice("no model is ready: pick one with /model", "error")
                self.input.set_edit_text(text)
                return
            self.notice(f"busy ({self.busy}); Ctrl+C cancels the running turn", "warning")
            self.input.set_edit_text(text)
            return
        self.conversation.add(UserBlock(text, [a.name for a in attached]))
        self._start_turn(text, attached)

    def _start_turn(self, text: str, attached: list[Attachment]) -> None:
        agent = self.agent
        agent.reset_cancel()  # the token of a cancelled turn stays tripped
        self.totals = TurnTotals()
        self.conversation.follow = True

        def job():
            return agent.run(text, [a.part for a in attached])

        self.background("working", job, self._turn_done)

    def _turn_done(self, result: Any) -> None:
        self.totals = TurnTotals()  # the session's own usage now includes this turn
        if result.stop_reason == "cancelled":
            self.notice("turn cancelled; the session is saved", "warning")
            for block in list(self.conversation._tools.values()):
                if block.status in ("running", "approval"):
                    block.set_status("cancelled")
        elif result.stop_reason == "max_steps":
            self.notice(f"stopped after {result.steps} steps; send another prompt to go on",
                        "warning")
        self.refresh_panel()

    def _at_mentions(self, text: str) -> list[Attachment]:
        """``@path`` words naming workspace files are attached to the prompt."""
        found = []
        for word in text.split():
            if word.startswith("@") and len(word) > 1:
                path = self.opts.workspace / word[1:].rstrip(",.;:")
                if path.is_file():
                    attachment = self.load_attachment(str(path), quiet=True)
                    if attachment is not None:
                        found.append(attachment)
        return found

    def load_attachment(self, name: str, quiet: bool = False) -> Attachment | None:
        from codetether.cli.run_cmd import attachments

        path = Path(name).expanduser()
        if not path.is_absolute():
            path = self.opts.workspace / path
        try:
            parts = attachments([str(path)])
        except CodetetherError as exc:
            if not quiet:
                self.notice(exc.one_line(), "error")
            return None
        try:
            shown = str(path.relative_to(self.opts.workspace))
        except ValueError:
            shown = str(path)
        return Attachment(shown, parts[0])

    # -- keys --------------------------------------------------------------------------------
    def input_filter(self, keys: list, raw: list) -> list:
        keys = self.paste_filter(keys, raw)
        out = []
        for key in keys:
            if not isinstance(key, str):
                continue
            if key != "ctrl c" and self.quit_armed:
                self.quit_armed = False
                self.hint("")
            if self._global_key(key):
                continue
            out.append(key)
        return out

    def _global_key(self, key: str) -> bool:
        """Keys that work wherever the focus is; True when handled."""
        if key == "ctrl c":
            self.interrupt()
            return True
        if key == "ctrl b":
            self.toggle_panel()
            return True
        if key in ("f1",) and self.overlay is None:
            self.show_help()
            return True
        if key in ("ctrl o", "f2", "ctrl m") and self.overlay is None:
            commands.dispatch(self, "/model")
            return True
        if self.overlay is None and key in ("meta j", "meta k", "page up", "page down"):
            self.conversation.scroll({"meta j": "down", "meta k": "up"}.get(key, key))
            return True
        return False

    def unhandled_input(self, key: Any) -> bool | None:
        if not isinstance(key, str):
            return None
        if key == "tab":
            self.cycle_agent()
        elif key in ("up", "down", "home", "end"):
            self.conversation.scroll(key)
        elif key == "ctrl d" and not self.input.edit_text:
            self.quit()
        elif key == "esc":
            self.close_overlay()
        elif key == "ctrl l":
            if self.loop is not None:
                self.loop.screen.clear()
        else:
            return None
        return True

    def interrupt(self) -> None:
        """Ctrl+C: close a dialog, cancel the turn, clear the prompt — or, the second time, quit."""
        if self.overlay is not None:
            self.close_overlay()
            return
        if self.quit_armed:
            self.quit()
        running = self.worker is not None and self.worker.is_alive()
        if running and self.agent is not None and self.busy == "working":
            self.agent.rt.cancel.cancel()
            self.notice("cancelling… (Ctrl+C again quits)", "warning")
            self.quit_armed = True
            return
        if self.input.edit_text:
            self.input.set_edit_text("")
            return
        self.quit_armed = True
        self.hint("Ctrl+C again to quit")

    # -- small actions used by commands and keys ---------------------------------------------
    def notice(self, text: str, role: str = "notice") -> None:
        self.conversation.add(NoticeBlock(text, role))

    def hint(self, text: str) -> None:
        """A transient line above the prompt (completions, 'Ctrl+C again…')."""
        self.hint_text.set_text(("dim", text))
        has = any(w is self.hint_text for w, _ in self.footer.contents)
        if text and not has:
            self.footer.contents.insert(1, (self.hint_text, ("pack", None)))
        elif not text and has:
            self.footer.contents.pop(1)
        self._focus_slot()

    def _focus_slot(self) -> None:
        """Keys go to the prompt (or the approval prompt in its place), whatever else is shown."""
        for index, (widget, _options) in enumerate(self.footer.contents):
            if widget is self.slot:
                self.footer.focus_position = index

    def open_overlay(self, dialog: urwid.Widget) -> None:
        self.overlay = dialog
        self.top.original_widget = dialogs.centred(dialog, urwid.AttrMap(self.frame, "body"))

    def close_overlay(self) -> None:
        if self.overlay is None:
            return
        self.overlay = None
        self.top.original_widget = urwid.AttrMap(self.frame, "body")

    def show_help(self) -> None:
        self.open_overlay(dialogs.TextDialog("help", dialogs.HELP, self.close_overlay))

    def toggle_panel(self) -> None:
        self.panel_open = not self.panel_open
        if self.panel_open:
            self.refresh_panel()
            self.columns.contents.append((self.panel, self.columns.options(
                "given", self.panel.WIDTH)))
        else:
            self.columns.contents[:] = self.columns.contents[:1]
        self.columns.focus_position = 0

    def refresh_panel(self) -> None:
        if not self.panel_open:
            return
        sessions = []
        try:
            rows = self.store.list(str(self.opts.workspace), 10)
            sessions = [(r.id, r.title) for r in rows if r.message_count or
                        (self.session is not None and r.id == self.session.id)]
        except CodetetherError as exc:
            log.warning("session list failed: %s", exc)
        todos: list[dict[str, Any]] = []
        if self.agent is not None:
            try:
                from codetether.tools.planning import load_todos

                todos = load_todos(self.agent.ctx)
            except Exception:  # a damaged todo file must not break the panel
                log.exception("todos")
        self.panel.update(sessions, todos, self.changed_files,
                          self.session.id if self.session is not None else None)

    def cycle_agent(self) -> None:
        current = self.agent_name or "build"
        following = AGENT_CYCLE[(AGENT_CYCLE.index(current) + 1) % len(AGENT_CYCLE)] \
            if current in AGENT_CYCLE else "build"
        commands.dispatch(self, f"/agent {following}")

    def set_theme(self, theme: themes.Theme) -> None:
        self.theme = theme
        self.theme_watcher = themes.ThemeWatcher(theme)
        if self.loop is not None:
            self.loop.screen.register_palette(theme.palette())
            self.loop.screen.clear()

    def _poll_theme(self, loop: Any, _data: Any = None) -> None:
        changed = self.theme_watcher.changed()
        if changed is not None:
            self.theme = changed
            loop.screen.register_palette(changed.palette())
            loop.screen.clear()
            log.info("theme %s reloaded", changed.name)
        loop.set_alarm_in(THEME_POLL_SECONDS, self._poll_theme)

    def update_status(self) -> None:
        session = self.session
        info = StatusInfo(model=self.model_ref or "…", agent=self.agent_name or "build",
                          cwd=str(self.opts.workspace), branch=self.branch, busy=self.busy,
                          attachments=len(self.attachments))
        if session is not None:
            info.title = session.title
            info.input_tokens = session.usage.input_tokens + self.totals.input_tokens
            info.output_tokens = session.usage.output_tokens + self.totals.output_tokens
            info.cost = session.cost + self.totals.cost
        if self.agent is not None:
            key = (id(self.agent), len(self.agent.session.messages))
            if key != self._context_key:  # estimating walks the transcript: once per change
                self._context_key, self._context_pct = key, context_percent(self.agent)
            info.context_pct = self._context_pct
        self.status.update(info)

    def export(self, target: str | None) -> Path:
        from codetether.core.fsutil import atomic_write_text

        data = self.store.export(self.session.id)
        if target:
            path = Path(target).expanduser()
            path = path if path.is_absolute() else self.opts.workspace / path
        else:
            path = paths.ensure_private_dir(paths.data_dir() / "exports") / \
                f"{self.session.id}.json"
        atomic_write_text(path, json.dumps(data, indent=2) + "\n", mode=0o600)
        return path


def context_percent(agent: Any) -> int | None:
    """How full the model's window is, estimated the way compaction estimates it."""
    from codetether.agent.compaction import estimate

    try:
        used = estimate(agent.session.context_messages(), agent.system)
        return min(999, used * 100 // max(1, agent.rt.budget.window))
    except Exception:  # never let the status bar break the UI
        log.exception("context estimate")
        return None


def _touched_paths(args: Any) -> list[str]:
    if not isinstance(args, dict):
        return []
    found = [args[k] for k in ("path", "file_path") if isinstance(args.get(k), str)]
    for edit in args.get("edits") or []:
        if isinstance(edit, dict) and isinstance(edit.get("path"), str):
            found.append(edit["path"])
    return found


def setup_logging() -> tuple[logging.Handler, int | None]:
    """Logs (and anything written to fd 2) go to ``<data dir>/tui.log``, never the screen."""
    path = paths.ensure_private_dir(paths.data_dir()) / "tui.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("codetether")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    saved = None
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        saved = os.dup(2)
        os.dup2(fd, 2)
        os.close(fd)
    except OSError:
        saved = None
    log.info("tui started (pid %d)", os.getpid())
    return handler, saved


def restore_logging(handler: logging.Handler, saved_stderr: int | None) -> None:
    logging.getLogger("codetether").removeHandler(handler)
    handler.close()
    if saved_stderr is not None:
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)


def run_app(app: App) -> None:
    """Start the screen with Ctrl+C as a key, run until quit, and leave the terminal clean."""
    depth = themes.color_depth()
    # extended_keys: where the terminal speaks the kitty protocol or modifyOtherKeys, keys the
    # legacy encoding merges (Ctrl+M vs Enter) arrive apart; elsewhere nothing changes
    screen = urwid.display.raw.Screen(extended_keys=True)
    screen.set_terminal_properties(colors=depth)
    old_keys = screen.tty_signal_keys()
    loop = app.make_loop(screen)
    started = time.monotonic()
    try:
        screen.tty_signal_keys(intr="undefined")
        loop.set_alarm_in(0, lambda *_: log.info("first frame after %.1f ms",
                                                   (time.monotonic() - started) * 1000))
        app.start()
        loop.run()
    finally:
        app.shutdown()
        if old_keys is not None:
            screen.tty_signal_keys(*old_keys)

