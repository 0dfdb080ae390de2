"""Approval prompt (inline), pickers with search (sessions, models, themes), help.

Each dialog calls back with the user's choice; ``Esc`` closes (for an approval: denies). The app
decides where a dialog goes: the approval prompt replaces the input line, pickers and help are
centred overlays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import urwid
import urwid.widget  # noqa: F401  (explicit submodule import: PyInstaller)

from codetether.tui.conversation import args_summary

APPROVAL_KEYS = {"a": "once", "y": "once", "A": "always", "d": "reject", "n": "reject",
                 "D": "reject", "esc": "reject"}


class ApprovalPrompt(urwid.WidgetWrap):
    """``A`` allow once, ``Shift+A`` always (this project), ``D`` deny — with tool and args."""

    def __init__(self, request: Any, on_answer: Callable[[str], None]) -> None:
        self.request = request
        self.on_answer = on_answer
        subject = request.subject or args_summary(request.args, 200)
        lines: list[Any] = [("approval", f"? allow {request.tool}"),
                            ("approval.body", f"  {subject}" if subject else "")]
        if request.reason:
            lines.append(("panel.dim", f"\n  ({request.reason})"))
        lines += ["\n  ", ("approval", "[A]"), ("approval.body", " allow once   "),
                  ("approval", "[Shift+A]"), ("approval.body", " always (this project)   "),
                  ("approval", "[D]"), ("approval.body", " deny")]
        super().__init__(urwid.AttrMap(urwid.Text(lines), "approval.body"))

    def selectable(self) -> bool:
        return True

    def keypress(self, size, key):
        answer = APPROVAL_KEYS.get(key)
        if answer is None:
            return key if key in ("ctrl c",) else None  # swallow typing; Ctrl+C still cancels
        self.on_answer(answer)
        return None


@dataclass
class Item:
    label: str
    value: Any
    detail: str = ""


class _Row(urwid.WidgetWrap):
    def __init__(self, item: Item) -> None:
        self.item = item
        text = urwid.Text([item.label, ("panel.dim", f"  {item.detail}" if item.detail else "")],
                          wrap="ellipsis")
        super().__init__(urwid.AttrMap(text, "dialog", "focus"))

    def selectable(self) -> bool:
        return True

    def keypress(self, size, key):
        return key


class Picker(urwid.WidgetWrap):
    """A filterable list: type to search, Up/Down to move, Enter to choose, Esc to close.

    With ``allow_custom``, Enter on a search that matches nothing chooses the typed text.
    """

    def __init__(self, title: str, items: list[Item], on_select: Callable[[Any], None],
                 on_cancel: Callable[[], None], allow_custom: bool = False,
                 empty: str = "nothing to show") -> None:
        self.title = title
        self.items = items
        self.on_select = on_select
        self.on_cancel = on_cancel
        self.allow_custom = allow_custom
        self.empty = empty
        self.search = urwid.Edit(("dialog.title", "search: "))
        self.walker = urwid.SimpleFocusListWalker([])
        self.listbox = urwid.ListBox(self.walker)
        self.hint = urwid.Text(("panel.dim", "↑↓ move · Enter choose · Esc close"))
        body = urwid.Pile([("pack", self.search), ("pack", urwid.Divider("─")),
                           self.listbox, ("pack", self.hint)])
        frame = urwid.LineBox(body, title=title)
        super().__init__(urwid.AttrMap(frame, "dialog"))
        self.filter()

    def matches(self) -> list[Item]:
        words = self.search.edit_text.lower().split()
        return [i for i in self.items
                if all(w in f"{i.label} {i.detail}".lower() for w in words)]

    def filter(self) -> None:
        found = self.matches()
        rows: list[urwid.Widget] = [_Row(item) for item in found]
        if not rows:
            custom = self.allow_custom and self.search.edit_text.strip()
            rows = [urwid.Text(("panel.dim", f"Enter uses '{self.search.edit_text.strip()}'"
                                if custom else self.empty))]
        self.walker[:] = rows
        if found:
            self.walker.set_focus(0)

    def selectable(self) -> bool:
        return True

    def keypress(self, size, key):
        if key == "esc":
            self.on_cancel()
            return None
        if key == "enter":
            self._choose()
            return None
        if key in ("up", "down", "page up", "page down"):
            rows = len(self.walker)
            if rows and isinstance(self.walker[0], _Row):
                position = self.walker.focus or 0
                step = {"up": -1, "down": 1, "page up": -10, "page down": 10}[key]
                self.walker.set_focus(max(0, min(rows - 1, position + step)))
            return None
        before = self.search.edit_text
        cols = size[0] - 2 if size else 40
        self.search.keypress((max(cols, 1),), key)
        if self.search.edit_text != before:
            self.filter()
        return None

    def chosen(self) -> Item | None:
        if len(self.walker) and isinstance(self.walker[self.walker.focus or 0], _Row):
            return self.walker[self.walker.focus or 0].item
        return None

    def _choose(self) -> None:
        item = self.chosen()
        if item is not None:
            self.on_select(item.value)
        elif self.allow_custom and self.search.edit_text.strip():
            self.on_select(self.search.edit_text.strip())


class TextDialog(urwid.WidgetWrap):
    """Read-only text (help): any of Esc, Enter, q or ? closes it."""

    def __init__(self, title: str, text: str, on_close: Callable[[], None]) -> None:
        self.on_close = on_close
        self._listbox = urwid.ListBox(urwid.SimpleFocusListWalker(
            [urwid.Text(line) for line in text.split("\n")]))
        super().__init__(urwid.AttrMap(urwid.LineBox(self._listbox, title=title), "dialog"))

    def selectable(self) -> bool:
        return True

    def keypress(self, size, key):
        if key in ("esc", "enter", "q", "?"):
            self.on_close()
            return None
        return self._listbox.keypress((size[0] - 2, size[1] - 2), key) if len(size) == 2 \
            else None


def centred(dialog: urwid.Widget, under: urwid.Widget) -> urwid.Overlay:
    """``dialog`` over ``under``, sized relative to the screen so it fits 80×24 as well."""
    return urwid.Overlay(dialog, under, align="center", width=("relative", 90),
                         valign="middle", height=("relative", 80), min_width=20, min_height=6)


HELP = """Keys
  Enter            send the prompt          Alt+Enter / Ctrl+J   new line
  Up / Down        prompt history           Tab        complete @path, else switch agent
  Ctrl+C           cancel the turn (twice: quit)      Ctrl+D on an empty prompt: quit
  Esc              close a dialog           Ctrl+B     side panel (sessions, todos, files)
  Alt+j / Alt+k    scroll down / up         PgUp/PgDn  scroll a page; End: follow output
  Enter on an empty prompt: fold/unfold the selected tool output or thinking
  Ctrl+M, Ctrl+O, F2  model picker (Ctrl+M where the terminal tells it from Enter)
  F1 or ?          this help
Approvals
  A allow once     Shift+A always (this project)     D deny (Esc too)
Commands
  /new                 start a new session
  /sessions            pick a session to resume (type to search)
  /resume ID           resume a session by id or prefix
  /model [REF]         pick or set the model (provider/model)
  /agent NAME          build, plan (read-only) or explore
  /undo                restore files changed by the last step
  /compact             summarise older history now
  /export [FILE]       write this session as JSON
  /theme [NAME]        marketing, dark, light, solarized-dark, solarized-light, or yours
  /file PATH           attach a file to the next prompt (or write @path in the prompt)
  /help, ?             this help           /quit  leave"""
