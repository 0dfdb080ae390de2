"""The conversation view: user prompts, streamed answers, folded thinking and tool-call blocks.

Blocks are plain urwid widgets in a ListBox. A streamed answer keeps its raw text and is
re-rendered from markdown at most once per UI wake-up (``refresh``), not once per delta, so a
fast stream costs one parse per frame. The view follows the bottom until the user scrolls up.
"""

from __future__ import annotations

import json
from typing import Any

import urwid
import urwid.widget  # noqa: F401  (explicit submodule import: PyInstaller)

from codetether.tui import markdown

MAX_OUTPUT_LINES = 200
FOLD_MARK = {True: "▾", False: "▸"}


def args_summary(args: Any, limit: int = 80) -> str:
    """The argument a person cares about (command, path, pattern…), else compact JSON."""
    if not isinstance(args, dict):
        return ""
    for key in ("command", "path", "file_path", "pattern", "url", "query", "prompt"):
        value = args.get(key)
        if isinstance(value, str) and value:
            text = value.replace("\n", " ")
            return text if len(text) <= limit else text[:limit - 1] + "…"
    text = json.dumps(args, ensure_ascii=False) if args else ""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def markdown_widgets(text: str) -> list[urwid.Widget]:
    widgets: list[urwid.Widget] = []
    previous = None
    for block in markdown.parse(text):
        if previous is not None and not (previous == block.kind == "item"):
            widgets.append(urwid.Divider())  # a blank line between paragraphs, not list items
        previous = block.kind
        if block.kind == "code":
            body = urwid.Text(block.markup or [("code", "")], wrap="any")
            widgets.append(urwid.Padding(urwid.AttrMap(body, "code"), left=2, right=1))
        elif block.kind == "rule":
            widgets.append(urwid.AttrMap(urwid.Divider("─"), "dim"))
        else:
            widgets.append(urwid.Text(block.markup or ""))
    return widgets or [urwid.Text("")]


class Block(urwid.WidgetWrap):
    """Base of every conversation entry; ``foldable`` ones react to ``toggle``."""

    foldable = False

    def toggle(self) -> None:
        """Fold or unfold; nothing for plain blocks."""


class UserBlock(Block):
    def __init__(self, text: str, attachments: list[str] | None = None) -> None:
        lines: list[Any] = ["\n", ("user", "› "), ("user.text", text)]
        if attachments:
            lines.append(("dim", "\n  attached: " + ", ".join(attachments)))
        super().__init__(urwid.Padding(urwid.Text(lines), left=0, right=1))
        self.text = text


class AssistantBlock(Block):
    """A streamed answer: raw text in, markdown out (on ``refresh``)."""

    def __init__(self, text: str = "") -> None:
        self.text = text
        self._pile = urwid.Pile([urwid.Text("")])
        self.dirty = True
        super().__init__(urwid.Padding(self._pile, left=2, right=1))
        self.refresh()

    def append(self, delta: str) -> None:
        self.text += delta
        self.dirty = True

    def refresh(self) -> None:
        if not self.dirty:
            return
        self.dirty = False
        self._pile.contents = [(w, self._pile.options()) for w in markdown_widgets(self.text)]


class ThinkingBlock(Block):
    """The model's reasoning, folded to one line until unfolded."""

    foldable = True

    def __init__(self, text: str = "") -> None:
        self.text = text
        self.expanded = False
        self.dirty = True
        self._text = urwid.Text("")
        super().__init__(urwid.Padding(self._text, left=2, right=1))
        self.refresh()

    def append(self, delta: str) -> None:
        self.text += delta
        self.dirty = True

    def toggle(self) -> None:
        self.expanded = not self.expanded
        self.dirty = True
        self.refresh()

    def refresh(self) -> None:
        if not self.dirty:
            return
        self.dirty = False
        words = len(self.text.split())
        head = f"{FOLD_MARK[self.expanded]} thinking ({words} words)"
        body = [("thinking", head)]
        if self.expanded:
            body.append(("thinking", "\n" + self.text.strip()))
        self._text.set_text(body)


class ToolBlock(Block):
    """One tool call: name, argument summary, live status, duration, folded output."""

    foldable = True

    def __init__(self, call_id: str, name: str, args: Any) -> None:
        self.call_id, self.name, self.args = call_id, name, args
        self.status = "running"  # running | approval | ok | error
        self.duration_ms: int | None = None
        self.output = ""
        self.expanded = False
        self.dirty = True
        self._text = urwid.Text("", wrap="any")
        super().__init__(urwid.Padding(self._text, left=2, right=1))
        self.refresh()

    def append_output(self, text: str) -> None:
        self.output += text
        self.dirty = True

    def finish(self, success: bool, output: str, duration_ms: int | None) -> None:
        self.status = "ok" if success else "error"
        self.output = output or self.output
        self.duration_ms = duration_ms
        self.dirty = True

    def set_status(self, status: str) -> None:
        self.status = status
        self.dirty = True

    def toggle(self) -> None:
        self.expanded = not self.expanded
        self.dirty = True
        self.refresh()

    def _status_markup(self) -> tuple[str, str]:
        took = f" {self.duration_ms} ms" if self.duration_ms is not None else ""
        return {"running": ("tool.run", "… running"),
                "approval": ("warning", "? awaiting approval"),
                "ok": ("tool.ok", f"✓{took}"),
                "error": ("tool.err", f"✗{took}"),
                "cancelled": ("tool.err", "✗ cancelled")}.get(self.status, ("dim", self.status))

    def refresh(self) -> None:
        if not self.dirty:
            return
        self.dirty = False
        summary = args_summary(self.args)
        markup: list[Any] = [("tool", f"⚙ {self.name}"), ("dim", f"  {summary}" if summary else ""),
                             "  ", self._status_markup()]
        lines = self.output.rstrip("\n").split("\n") if self.output.strip() else []
        if lines:
            if self.expanded:
                shown = lines[:MAX_OUTPUT_LINES]
                more = len(lines) - len(shown)
                text = "\n".join("  " + line for line in shown)
                if more > 0:
                    text += f"\n  … {more} more lines"
                markup += [("tool.out", f"\n  {FOLD_MARK[True]} output\n" + text)]
            else:
                first = lines[0][:70]
                count = f"{len(lines)} line{'s' if len(lines) != 1 else ''}"
                markup += [("tool.out", f"\n  {FOLD_MARK[False]} {first}  ({count}; Enter on an "
                                        "empty prompt unfolds)" if len(lines) > 1 else
                            f"\n  {FOLD_MARK[False]} {first}")]
        self._text.set_text(markup)


class NoticeBlock(Block):
    """A one-line note: command output, hints, errors."""

    def __init__(self, text: str, role: str = "notice") -> None:
        self.text = text
        super().__init__(urwid.Padding(urwid.Text((role, text)), left=1, right=1))


class ConversationView(urwid.WidgetWrap):
    """The scrolling list of blocks; follows new output unless the user scrolled up."""

    def __init__(self) -> None:
        self.walker = urwid.SimpleFocusListWalker([])
        self.listbox = urwid.ListBox(self.walker)
        self.follow = True
        self._size: tuple[int, int] | None = None
        self._tools: dict[str, ToolBlock] = {}
        super().__init__(self.listbox)

    # -- building ----------------------------------------------------------------------------
    def clear(self) -> None:
        self.walker.clear()
        self._tools.clear()
        self.follow = True

    def add(self, block: Block) -> Block:
        self.walker.append(block)
        if isinstance(block, ToolBlock):
            self._tools[block.call_id] = block
        if self.follow:
            self.walker.set_focus(len(self.walker) - 1)
        return block

    def last(self) -> Block | None:
        return self.walker[-1] if len(self.walker) else None

    def stream_text(self, delta: str) -> AssistantBlock:
        block = self.last()
        if not isinstance(block, AssistantBlock):
            block = self.add(AssistantBlock())
        block.append(delta)
        return block

    def stream_thinking(self, delta: str) -> ThinkingBlock:
        block = self.last()
        if not isinstance(block, ThinkingBlock):
            block = self.add(ThinkingBlock())
        block.append(delta)
        return block

    def tool(self, call_id: str) -> ToolBlock | None:
        return self._tools.get(call_id)

    def running_tool(self, name: str | None = None) -> ToolBlock | None:
        for block in reversed(list(self._tools.values())):
            if block.status in ("running", "approval") and (name is None or block.name == name):
                return block
        return None

    def refresh(self) -> None:
        """Re-render whatever changed since the last frame (cheap when nothing did)."""
        for block in list(self.walker)[-50:]:
            refresh = getattr(block, "refresh", None)
            if refresh is not None and getattr(block, "dirty", False):
                refresh()
                block._invalidate()
        if self.follow and len(self.walker):
            self.walker.set_focus(len(self.walker) - 1)
            self.listbox.set_focus_valign("bottom")

    # -- scrolling and folding ---------------------------------------------------------------
    def render(self, size, focus=False):
        self._size = size if len(size) == 2 else None
        return super().render(size, focus=True)

    def scroll(self, key: str) -> None:
        """``up``/``down``/``page up``/``page down``/``home``/``end`` on the list."""
        if not len(self.walker):
            return
        if key == "end":
            self.follow = True
            self.walker.set_focus(len(self.walker) - 1)
            self.listbox.set_focus_valign("bottom")
            return
        if key == "home":
            self.follow = False
            self.walker.set_focus(0)
            self.listbox.set_focus_valign("top")
            return
        if self._size is not None:
            self.listbox.keypress(self._size, key)
        else:
            position = self.walker.focus or 0
            step = -1 if "up" in key else 1
            self.walker.set_focus(max(0, min(len(self.walker) - 1, position + step)))
        self.follow = self._at_bottom()

    def _at_bottom(self) -> bool:
        if self.walker.focus != len(self.walker) - 1:
            return False
        if self._size is None:
            return True
        _, _, bottom, *_ = self.listbox.calculate_visible(self._size)
        return not bottom[1]  # nothing below the last visible row

    def toggle_focused(self) -> bool:
        """Fold/unfold the focused foldable block, else the newest one; True if one changed."""
        if not len(self.walker):
            return False
        focused = self.walker[self.walker.focus] if self.walker.focus is not None else None
        if not (focused is not None and focused.foldable):
            focused = next((b for b in reversed(self.walker) if b.foldable), None)
        if focused is None:
            return False
        focused.toggle()
        focused._invalidate()
        return True

    def text(self) -> str:
        """Plain text of every block (for tests and /export of the screen)."""
        out = []
        for block in self.walker:
            out.append(getattr(block, "text", "") or getattr(block, "name", ""))
        return "\n".join(out)


def blocks_from_session(session: Any) -> list[Block]:
    """Rebuild the view of a stored session (resume): prompts, answers, tool calls, results."""
    from codetether.providers import base

    blocks: list[Block] = []
    tools: dict[str, ToolBlock] = {}
    for message in session.messages:
        if message.meta.get("reverted") or message.meta.get("summary"):
            continue
        if message.role == "user":
            text = message.text()
            if text:
                blocks.append(UserBlock(text))
            continue
        for part in message.parts:
            if isinstance(part, base.ThinkingPart) and part.text:
                blocks.append(ThinkingBlock(part.text))
            elif isinstance(part, base.TextPart) and part.text:
                blocks.append(AssistantBlock(part.text))
            elif isinstance(part, base.ToolCallPart):
                try:
                    args = json.loads(part.arguments or "{}")
                except ValueError:
                    args = {}
                block = ToolBlock(part.id, part.name, args)
                tools[part.id] = block
                blocks.append(block)
            elif isinstance(part, base.ToolResultPart):
                block = tools.get(part.tool_call_id)
                if block is not None:
                    block.finish(not part.is_error, part.content, None)
                    block.refresh()
    for block in tools.values():
        if block.status == "running":
            block.set_status("cancelled")
            block.refresh()
    return blocks
