"""Colour themes: a dozen base colours per theme, turned into an urwid palette.

A theme names base colours (``background``, ``accent``…) as ``#rrggbb``; every display role
(``status``, ``tool.err``, ``code.kw``…) is derived from them, so a user theme only has to say
what differs. Each palette entry carries a 256-colour spec and a 16-colour fallback picked as
the nearest of the standard 16 (backgrounds from the first 8, which every terminal has).

User themes: ``~/.config/codetether-agent/themes/NAME.toml``::

    base = "dark"            # optional, a built-in to start from (default: marketing)
    [colors]
    accent = "#ff8800"
    background = "#000000"

The files are re-read when they change (``ThemeWatcher``), so editing one restyles the running TUI.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from codetether.core import paths

BASE_KEYS = ("background", "foreground", "muted", "accent", "user", "thinking", "tool",
             "success", "error", "warning", "code_bg", "panel_bg", "status_bg", "status_fg",
             "selection_bg", "keyword", "string", "comment", "number", "function")

BUILTIN: dict[str, dict[str, str]] = {
    "marketing": {
        "background": "#0b0f14", "foreground": "#d8e1ea", "muted": "#6b7785",
        "accent": "#00d7ff", "user": "#7ee0ff", "thinking": "#8a94a3", "tool": "#5fafff",
        "success": "#5fd787", "error": "#ff5f5f", "warning": "#ffd75f", "code_bg": "#121a22",
        "panel_bg": "#0f151c", "status_bg": "#00d7ff", "status_fg": "#0b0f14",
        "selection_bg": "#005f87", "keyword": "#00d7ff", "string": "#afd787",
        "comment": "#6b7785", "number": "#ffaf5f", "function": "#87d7ff"},
    "dark": {
        "background": "#1c1c1c", "foreground": "#d0d0d0", "muted": "#808080",
        "accent": "#af87ff", "user": "#87afff", "thinking": "#8a8a8a", "tool": "#87afd7",
        "success": "#87d787", "error": "#ff5f5f", "warning": "#ffd75f", "code_bg": "#262626",
        "panel_bg": "#222222", "status_bg": "#3a3a3a", "status_fg": "#e4e4e4",
        "selection_bg": "#5f5f87", "keyword": "#af87ff", "string": "#afd787",
        "comment": "#808080", "number": "#ffaf5f", "function": "#87afff"},
    "light": {
        "background": "#ffffff", "foreground": "#1c1c1c", "muted": "#6c6c6c",
        "accent": "#005faf", "user": "#005f87", "thinking": "#767676", "tool": "#0087af",
        "success": "#008700", "error": "#d70000", "warning": "#af5f00", "code_bg": "#eeeeee",
        "panel_bg": "#f5f5f5", "status_bg": "#005faf", "status_fg": "#ffffff",
        "selection_bg": "#afd7ff", "keyword": "#8700af", "string": "#008700",
        "comment": "#808080", "number": "#af5f00", "function": "#005faf"},
    "solarized-dark": {
        "background": "#002b36", "foreground": "#839496", "muted": "#586e75",
        "accent": "#268bd2", "user": "#2aa198", "thinking": "#657b83", "tool": "#268bd2",
        "success": "#859900", "error": "#dc322f", "warning": "#b58900", "code_bg": "#073642",
        "panel_bg": "#073642", "status_bg": "#073642", "status_fg": "#93a1a1",
        "selection_bg": "#586e75", "keyword": "#859900", "string": "#2aa198",
        "comment": "#586e75", "number": "#d33682", "function": "#268bd2"},
    "solarized-light": {
        "background": "#fdf6e3", "foreground": "#657b83", "muted": "#93a1a1",
        "accent": "#268bd2", "user": "#2aa198", "thinking": "#93a1a1", "tool": "#268bd2",
        "success": "#859900", "error": "#dc322f", "warning": "#b58900", "code_bg": "#eee8d5",
        "panel_bg": "#eee8d5", "status_bg": "#eee8d5", "status_fg": "#586e75",
        "selection_bg": "#93a1a1", "keyword": "#859900", "string": "#2aa198",
        "comment": "#93a1a1", "number": "#d33682", "function": "#268bd2"},
}
DEFAULT_THEME = "marketing"

# role -> (foreground key, background key, extra attributes)
ROLES: dict[str, tuple[str, str, str]] = {
    "body": ("foreground", "background", ""),
    "dim": ("muted", "background", ""),
    "accent": ("accent", "background", "bold"),
    "heading": ("accent", "background", "bold"),
    "bold": ("foreground", "background", "bold"),
    "user": ("user", "background", "bold"),
    "user.text": ("foreground", "background", ""),
    "assistant": ("accent", "background", "bold"),
    "thinking": ("thinking", "background", "italics"),
    "tool": ("tool", "background", "bold"),
    "tool.ok": ("success", "background", ""),
    "tool.err": ("error", "background", ""),
    "tool.run": ("warning", "background", ""),
    "tool.out": ("muted", "background", ""),
    "error": ("error", "background", "bold"),
    "warning": ("warning", "background", ""),
    "notice": ("muted", "background", ""),
    "code": ("foreground", "code_bg", ""),
    "code.kw": ("keyword", "code_bg", "bold"),
    "code.str": ("string", "code_bg", ""),
    "code.com": ("comment", "code_bg", "italics"),
    "code.num": ("number", "code_bg", ""),
    "code.fn": ("function", "code_bg", ""),
    "inline.code": ("string", "background", ""),
    "input": ("foreground", "background", ""),
    "prompt": ("accent", "background", "bold"),
    "status": ("status_fg", "status_bg", ""),
    "status.key": ("status_fg", "status_bg", "bold"),
    "status.busy": ("warning", "status_bg", "bold"),
    "panel": ("foreground", "panel_bg", ""),
    "panel.title": ("accent", "panel_bg", "bold"),
    "panel.dim": ("muted", "panel_bg", ""),
    "dialog": ("foreground", "panel_bg", ""),
    "dialog.title": ("accent", "panel_bg", "bold"),
    "focus": ("foreground", "selection_bg", "bold"),
    "approval": ("warning", "panel_bg", "bold"),
    "approval.body": ("foreground", "panel_bg", ""),
}

_STANDARD16 = [
    ("black", (0, 0, 0)), ("dark red", (205, 0, 0)), ("dark green", (0, 205, 0)),
    ("brown", (205, 205, 0)), ("dark blue", (0, 0, 238)), ("dark magenta", (205, 0, 205)),
    ("dark cyan", (0, 205, 205)), ("light gray", (229, 229, 229)),
    ("dark gray", (127, 127, 127)), ("light red", (255, 0, 0)), ("light green", (0, 255, 0)),
    ("yellow", (255, 255, 0)), ("light blue", (92, 92, 255)), ("light magenta", (255, 0, 255)),
    ("light cyan", (0, 255, 255)), ("white", (255, 255, 255)),
]


class ThemeError(ValueError):
    """A user theme file that cannot be used (the message names the file and the problem)."""


@dataclass
class Theme:
    name: str
    colors: dict[str, str]
    source: Path | None = None  # the user file, for reloads
    mtime: float = 0.0
    notes: list[str] = field(default_factory=list)

    def palette(self) -> list[tuple[str, str, str, str, str, str]]:
        """urwid palette entries: (name, fg16, bg16, mono, fg256, bg256)."""
        entries = []
        for role, (fg_key, bg_key, extra) in ROLES.items():
            fg, bg = self.colors[fg_key], self.colors[bg_key]
            attrs = f",{extra}" if extra else ""
            entries.append((role, nearest16(fg) + attrs, nearest16(bg, background=True),
                            extra or "default", fg + attrs, bg))
        return entries


def _rgb(color: str) -> tuple[int, int, int]:
    text = color.lstrip("#")
    if len(text) == 3:
        text = "".join(c * 2 for c in text)
    return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)


def nearest16(color: str, background: bool = False) -> str:
    """The closest standard colour name (backgrounds: one of the first eight)."""
    r, g, b = _rgb(color)
    choices = _STANDARD16[:8] if background else _STANDARD16
    if background and max(r, g, b) < 60:
        return "black"
    if background and min(r, g, b) > 200:
        return "light gray"
    return min(choices, key=lambda c: (c[1][0] - r) ** 2 + (c[1][1] - g) ** 2
               + (c[1][2] - b) ** 2)[0]


def valid_color(value: object) -> bool:
    if not isinstance(value, str) or not value.startswith("#") or len(value) not in (4, 7):
        return False
    try:
        int(value[1:], 16)
    except ValueError:
        return False
    return True


def user_theme_dir() -> Path:
    return paths.config_dir() / "themes"


def user_theme_files() -> dict[str, Path]:
    folder = user_theme_dir()
    try:
        return {p.stem: p for p in sorted(folder.glob("*.toml")) if p.is_file()}
    except OSError:
        return {}


def available() -> list[str]:
    return list(BUILTIN) + [name for name in user_theme_files() if name not in BUILTIN]


def load(name: str | None) -> Theme:
    """A built-in or user theme by name; ``ThemeError`` for an unknown name or a bad file."""
    name = (name or DEFAULT_THEME).strip()
    user = user_theme_files().get(name)
    if user is not None:
        return load_file(user)
    if name in BUILTIN:
        return Theme(name, dict(BUILTIN[name]))
    raise ThemeError(f"unknown theme {name!r}; available: {', '.join(available())}")


def load_file(path: Path) -> Theme:
    try:
        mtime = path.stat().st_mtime
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ThemeError(f"cannot read theme {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ThemeError(f"theme {path}: {exc}") from None
    base = data.get("base", DEFAULT_THEME)
    if base not in BUILTIN:
        raise ThemeError(f"theme {path}: base {base!r} is not one of {', '.join(BUILTIN)}")
    colors = dict(BUILTIN[base])
    notes = []
    given = data.get("colors", {})
    if not isinstance(given, dict):
        raise ThemeError(f"theme {path}: [colors] must be a table")
    for key, value in given.items():
        if key not in BASE_KEYS:
            notes.append(f"unknown colour {key!r} ignored")
        elif not valid_color(value):
            notes.append(f"{key} = {value!r} is not #rgb or #rrggbb; ignored")
        else:
            colors[key] = value
    return Theme(path.stem, colors, path, mtime, notes)


class ThemeWatcher:
    """Notices when the active user theme's file changes (polled by a UI alarm: one stat)."""

    def __init__(self, theme: Theme) -> None:
        self.theme = theme

    def changed(self) -> Theme | None:
        """The reloaded theme if its file changed since it was read, else None."""
        source = self.theme.source
        if source is None:
            return None
        try:
            mtime = source.stat().st_mtime
        except OSError:
            return None
        if mtime == self.theme.mtime:
            return None
        try:
            self.theme = load_file(source)
        except ThemeError:
            self.theme.mtime = mtime  # half-written file: keep the old colours, retry next edit
            return None
        return self.theme


def color_depth(environ: dict[str, str] | None = None) -> int:
    """256 where the terminal says so, 16 otherwise; 1 with ``NO_COLOR``."""
    env = os.environ if environ is None else environ
    forced = env.get("CODETETHER_TUI_COLORS", "")
    if forced in ("1", "16", "88", "256"):
        return int(forced)
    if env.get("NO_COLOR"):
        return 1
    term = env.get("TERM", "")
    if "256" in term or env.get("COLORTERM") in ("truecolor", "24bit"):
        return 256
    return 16
