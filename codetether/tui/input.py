"""The prompt box: multi-line editing, history, ``@file`` completion, fast paste.

Enter submits, Alt+Enter (or Ctrl+J) inserts a newline. Up/Down walk the history when the cursor
is on the first/last line. Tab after ``@partial/path`` completes a workspace path (the app uses
Tab otherwise). A paste arrives as many keys in one batch (or between bracketed-paste markers);
``PasteFilter`` turns such a run into one ``insert_text`` so a large paste does not re-layout the
box once per character.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import urwid
import urwid.widget  # noqa: F401  (explicit submodule import: PyInstaller)

NEWLINE_KEYS = ("meta enter", "shift enter", "ctrl j", "ctrl enter")
MAX_COMPLETIONS = 50
MAX_HISTORY = 500
PASTE_RUN = 8  # this many printable keys in one input batch is a paste, not typing


def complete_path(workspace: Path, partial: str) -> list[str]:
    """Workspace paths starting with ``partial`` (dirs end with ``/``), sorted, capped."""
    head, _, stem = partial.rpartition("/")
    folder = (workspace / head) if head else workspace
    try:
        folder.resolve().relative_to(workspace.resolve())
    except (ValueError, OSError):
        return []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    out = []
    for entry in entries:
        if not entry.name.startswith(stem):
            continue
        if entry.name.startswith(".") and not stem.startswith("."):
            continue
        name = (head + "/" if head else "") + entry.name
        out.append(name + "/" if entry.is_dir() else name)
    return sorted(out)[:MAX_COMPLETIONS]


def common_prefix(names: list[str]) -> str:
    return os.path.commonprefix(names) if names else ""


class History:
    """Submitted prompts, oldest first, optionally kept in a file between runs."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.items: list[str] = []
        self.index: int | None = None  # None: editing a new entry
        self.draft = ""
        if path is not None:
            try:
                lines = path.read_text(encoding="utf-8").split("\0")
                self.items = [line for line in lines if line.strip()][-MAX_HISTORY:]
            except OSError:
                pass

    def add(self, text: str) -> None:
        self.index = None
        if not text.strip() or (self.items and self.items[-1] == text):
            return
        self.items.append(text)
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.write(text + "\0")
            except OSError:
                pass

    def previous(self, current: str) -> str | None:
        if not self.items:
            return None
        if self.index is None:
            self.draft = current
            self.index = len(self.items)
        if self.index == 0:
            return None
        self.index -= 1
        return self.items[self.index]

    def next(self) -> str | None:
        if self.index is None:
            return None
        self.index += 1
        if self.index >= len(self.items):
            self.index = None
            return self.draft
        return self.items[self.index]


class PromptInput(urwid.Edit):
    """The multi-line prompt; calls ``on_submit(text)`` on Enter."""

    def __init__(self, on_submit: Callable[[str], None], workspace: Path,
                 history: History | None = None,
                 on_hint: Callable[[str], None] | None = None) -> None:
        super().__init__(("prompt", "› "), multiline=True)
        self.on_submit = on_submit
        self.on_hint = on_hint or (lambda _text: None)
        self.workspace = workspace
        self.history = history or History()

    def keypress(self, size, key):
        if key == "enter":
            text = self.edit_text
            self.history.add(text)
            self.set_edit_text("")
            self.on_submit(text)
            return None
        if key in NEWLINE_KEYS:
            self.insert_text("\n")
            return None
        if key == "up" and "\n" not in self.edit_text[:self.edit_pos]:
            return self._recall(self.history.previous(self.edit_text), key)
        if key == "down" and "\n" not in self.edit_text[self.edit_pos:]:
            return self._recall(self.history.next(), key)
        if key == "tab":
            return None if self.complete() else key
        return super().keypress(size, key)

    def _recall(self, text: str | None, key: str):
        if text is None:
            return key  # let the app scroll instead
        self.set_edit_text(text)
        self.set_edit_pos(len(text))
        return None

    def paste(self, text: str) -> None:
        """Insert a whole paste at once (newlines kept, never submitted)."""
        self.insert_text(text.replace("\r\n", "\n").replace("\r", "\n"))

    def word_at_cursor(self) -> tuple[int, str]:
        before = self.edit_text[:self.edit_pos]
        start = max(before.rfind(" "), before.rfind("\n"), before.rfind("\t")) + 1
        return start, before[start:]

    def complete(self) -> bool:
        """``@path`` completion; True if the word at the cursor was an ``@`` word."""
        start, word = self.word_at_cursor()
        if not word.startswith("@"):
            return False
        names = complete_path(self.workspace, word[1:])
        if not names:
            self.on_hint(f"no file matches {word}")
            return True
        completed = names[0] if len(names) == 1 else common_prefix(names)
        if len(completed) > len(word) - 1:
            text = self.edit_text
            new = "@" + completed
            self.set_edit_text(text[:start] + new + text[self.edit_pos:])
            self.set_edit_pos(start + len(new))
        if len(names) > 1:
            shown = "  ".join(names[:12]) + ("  …" if len(names) > 12 else "")
            self.on_hint(shown)
        else:
            self.on_hint("")
        return True


class PasteFilter:
    """An urwid ``input_filter``: folds pastes into one ``paste`` call on the input box.

    Keys between ``begin paste``/``end paste`` are a paste; so is a batch holding a run of
    ``PASTE_RUN`` or more printable keys (terminals without bracketed paste). Inside a paste,
    ``enter`` is a newline, not a submit — except a batch's final ``enter``, which is what a
    person (or ``tmux send-keys … Enter``) typing a line and pressing Enter produces.
    """

    def __init__(self, target: Callable[[], PromptInput | None]) -> None:
        self.target = target
        self.in_paste = False
        self.buffer: list[str] = []

    def __call__(self, keys: list, raw: list) -> list:
        box = self.target()
        if box is None:
            return keys
        printable = sum(1 for k in keys if isinstance(k, str) and len(k) == 1)
        batch_paste = printable >= PASTE_RUN
        out: list = []
        last = len(keys) - 1
        for index, key in enumerate(keys):
            if key == "begin paste":
                self.in_paste = True
                continue
            if key == "end paste":
                self._flush(box)
                self.in_paste = False
                continue
            trailing_enter = key == "enter" and index == last and not self.in_paste
            if self.in_paste or (batch_paste and not trailing_enter):
                char = _as_char(key)
                if char is not None:
                    self.buffer.append(char)
                    continue
            self._flush(box)
            out.append(key)
        if not self.in_paste:
            self._flush(box)
        return out

    def _flush(self, box: PromptInput) -> None:
        if self.buffer:
            box.paste("".join(self.buffer))
            self.buffer.clear()


def _as_char(key) -> str | None:
    if not isinstance(key, str):
        return None
    if len(key) == 1:
        return key
    return {"enter": "\n", "tab": "\t", "ctrl j": "\n"}.get(key)
