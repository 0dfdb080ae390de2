"""The status bar and the side panel (Ctrl+B): what the agent is, costs, and what it touched."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urwid
import urwid.widget  # noqa: F401  (explicit submodule import: PyInstaller)


@dataclass
class StatusInfo:
    model: str = "…"
    agent: str = "build"
    title: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    context_pct: int | None = None
    cwd: str = ""
    branch: str | None = None
    busy: str = ""  # "" when idle, else what is happening ("working", "compacting"…)
    attachments: int = 0


def git_branch(workspace: Path) -> str | None:
    """The checked-out branch, read from ``.git/HEAD`` (no subprocess on the UI thread)."""
    for folder in (workspace, *workspace.parents):
        dot_git = folder / ".git"
        try:
            if dot_git.is_file():  # a worktree or submodule: "gitdir: <path>"
                text = dot_git.read_text(encoding="utf-8").strip()
                if not text.startswith("gitdir:"):
                    return None
                gitdir = Path(text.split(":", 1)[1].strip())
                dot_git = gitdir if gitdir.is_absolute() else folder / gitdir
            if dot_git.is_dir():
                head = (dot_git / "HEAD").read_text(encoding="utf-8").strip()
                if head.startswith("ref: refs/heads/"):
                    return head[len("ref: refs/heads/"):]
                return head[:8] or None
        except OSError:
            return None
    return None


def short_tokens(count: int) -> str:
    if count >= 1_000_000:
        return f"{count / 1_000_000:.1f}M"
    if count >= 10_000:
        return f"{count // 1000}k"
    if count >= 1000:
        return f"{count / 1000:.1f}k"
    return str(count)


def short_path(path: str, limit: int = 24) -> str:
    home = str(Path.home())
    if path.startswith(home):
        path = "~" + path[len(home):]
    return path if len(path) <= limit else "…" + path[-(limit - 1):]


class StatusBar(urwid.WidgetWrap):
    """One line: model · agent · title on the left; tokens, cost, context, cwd, branch right."""

    def __init__(self) -> None:
        self.info = StatusInfo()
        self._left = urwid.Text("", wrap="ellipsis")
        self._right = urwid.Text("", align="right", wrap="clip")
        columns = urwid.Columns([("weight", 1, self._left), ("pack", self._right)], dividechars=1)
        super().__init__(urwid.AttrMap(columns, "status"))

    def update(self, info: StatusInfo | None = None) -> None:
        info = info or self.info
        self.info = info
        left: list[Any] = []
        if info.busy:
            left.append(("status.busy", f" ● {info.busy} "))
        left += [("status.key", f" {info.model} "), f"· {info.agent} "]
        if info.title:
            left.append(f"· {info.title}")
        if info.attachments:
            left.append(f" · +{info.attachments} file(s)")
        ctx = f" ctx {info.context_pct}%" if info.context_pct is not None else ""
        right = (f"↑{short_tokens(info.input_tokens)} ↓{short_tokens(info.output_tokens)}"
                 f" ${info.cost:.4f}{ctx} · {short_path(info.cwd)}")
        if info.branch:
            right += f" ⎇ {info.branch}"
        self._left.set_text(left)
        self._right.set_text(right + " ")

    def text(self) -> str:
        return self._left.text + " " + self._right.text


class SidePanel(urwid.WidgetWrap):
    """Recent sessions, the todo list and the files changed in this session."""

    WIDTH = 32

    def __init__(self) -> None:
        self._walker = urwid.SimpleListWalker([])
        super().__init__(urwid.AttrMap(urwid.ListBox(self._walker), "panel"))
        self.update([], [], [])

    def update(self, sessions: list[tuple[str, str]], todos: list[dict[str, Any]],
               files: list[str], current: str | None = None) -> None:
        marks = {"completed": "[x]", "in_progress": "[>]", "pending": "[ ]", "cancelled": "[-]"}
        rows: list[urwid.Widget] = [urwid.Text(("panel.title", " Sessions"))]
        for session_id, title in sessions[:8]:
            mark = "•" if session_id == current else " "
            rows.append(urwid.Text(f" {mark} {title or session_id}", wrap="ellipsis"))
        if not sessions:
            rows.append(urwid.Text(("panel.dim", "   none yet")))
        rows += [urwid.Divider(), urwid.Text(("panel.title", " Todos"))]
        for todo in todos[:20]:
            mark = marks.get(str(todo.get("status")), "[ ]")
            rows.append(urwid.Text(f" {mark} {todo.get('content', '')}", wrap="ellipsis"))
        if not todos:
            rows.append(urwid.Text(("panel.dim", "   none")))
        rows += [urwid.Divider(), urwid.Text(("panel.title", " Changed files"))]
        rows += [urwid.Text(f"   {name}", wrap="ellipsis") for name in files[-20:]]
        if not files:
            rows.append(urwid.Text(("panel.dim", "   none")))
        rows.append(urwid.Divider())
        rows.append(urwid.Text(("panel.dim", " Ctrl+B hides this panel")))
        self._walker[:] = rows
