"""Tools that change files: write, edit, multiedit.

Models rarely reproduce whitespace exactly, so ``edit`` falls back from an exact match to a
whitespace-tolerant one (and re-indents the replacement to fit); but it never guesses between
several places: an ambiguous edit is an error listing the candidates. A file keeps its line
endings (CRLF stays CRLF), its trailing newline (or lack of one) and its mode, and every write
is atomic. ``multiedit`` computes every result in memory before it writes anything.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codetether.core.fsutil import atomic_write_text
from codetether.tools.base import Tool, ToolContext, ToolError, ToolResult, require
from codetether.tools.files_read import (
    SNIFF_BYTES,
    binary_kind,
    bool_arg,
    missing_file_error,
    numbered,
)

DIFF_CAP = 4000
TAB_WIDTH = 4
# the closest-region search compares at most this many windows, so a no-match in a huge file
# costs a bounded time
MAX_WINDOWS = 4000


# ---------------------------------------------------------------- matching


@dataclass
class _Match:
    start: int  # first line index (line strategy) or char offset (exact / inline)
    end: int


def apply_edit(text: str, old: str, new: str, replace_all: bool = False) -> tuple[str, int]:
    """Replace ``old`` by ``new`` in ``text``: exactly when possible, else whitespace-tolerantly.

    Returns the new text and how many places changed; raises ``ToolError`` (with the
    candidates, or the closest region) when the edit is ambiguous or matches nothing.
    """
    if old == new:
        raise ToolError("old_string and new_string are identical; nothing to change")
    if old == "":
        if text == "":
            return new, 1
        raise ToolError("old_string is empty but the file has content; give the text to "
                        "replace, or use write to replace the whole file")
    count = text.count(old)
    if count == 1 or (count > 1 and replace_all):
        return text.replace(old, new), count
    if count > 1:
        starts = _find_all(text, old)
        lines = [text.count("\n", 0, s) for s in starts]
        raise _ambiguous(text, lines, len(starts))
    try:
        return _apply_by_lines(text, old, new, replace_all)
    except ToolError as exc:
        if "\n" in old or "not found" not in exc.message:
            raise
        inline = _inline_matches(text, old)
        if not inline:
            raise
    if len(inline) > 1 and not replace_all:
        raise _ambiguous(text, [text.count("\n", 0, m.start) for m in inline], len(inline))
    new = _trim_edges(new, old)
    for m in reversed(inline):
        text = text[:m.start] + new + text[m.end:]
    return text, len(inline)


def _trim_edges(new: str, old: str) -> str:
    """An inline match covers old's words only, so new loses the edge whitespace it shares
    with old (else a tab-indented old_string would leave a stray tab inside the line)."""
    lead = old[: len(old) - len(old.lstrip())]
    trail = old[len(old.rstrip()):]
    if lead and new.startswith(lead):
        new = new[len(lead):]
    if trail and new.endswith(trail):
        new = new[: len(new) - len(trail)]
    return new


def _find_all(text: str, old: str) -> list[int]:
    starts, at = [], text.find(old)
    while at != -1:
        starts.append(at)
        at = text.find(old, at + len(old))
    return starts


def _norm(line: str) -> str:
    return " ".join(line.split())


def _inline_matches(text: str, old: str) -> list[_Match]:
    """Single-line ``old`` inside a line, with any run of spaces/tabs matching any other."""
    tokens = old.strip().split()
    if not tokens:
        return []
    regex = re.compile(r"[ \t]+".join(re.escape(t) for t in tokens))
    return [_Match(m.start(), m.end()) for m in regex.finditer(text)]


def _line_matches(lines: list[str], old_lines: list[str]) -> list[int]:
    want = [_norm(line) for line in old_lines]
    if not any(want):
        return []
    size = len(want)
    found, i = [], 0
    normed = [_norm(line) for line in lines]
    while i <= len(lines) - size:
        if normed[i:i + size] == want:
            found.append(i)
            i += size
        else:
            i += 1
    return found


def _split(text: str) -> tuple[list[str], bool]:
    """Lines of ``text`` and whether it ended with a newline."""
    if text.endswith("\n"):
        return text[:-1].split("\n"), True
    return text.split("\n"), False


def _apply_by_lines(text: str, old: str, new: str, replace_all: bool) -> tuple[str, int]:
    lines, trailing = _split(text)
    old_lines, _ = _split(old)
    while old_lines and not old_lines[0].strip():  # blank edges make matches needlessly fail
        old_lines.pop(0)
    while old_lines and not old_lines[-1].strip():
        old_lines.pop()
    starts = _line_matches(lines, old_lines)
    if not starts:
        raise _no_match(lines, old_lines)
    if len(starts) > 1 and not replace_all:
        raise _ambiguous(text, starts, len(starts))
    new_lines = _split(new)[0] if new else []
    for start in reversed(starts):
        span = lines[start:start + len(old_lines)]
        lines[start:start + len(old_lines)] = _reindent(new_lines, old_lines, span)
    return "\n".join(lines) + ("\n" if trailing else ""), len(starts)


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _width(indent: str) -> int:
    return len(indent.expandtabs(TAB_WIDTH))


def _reindent(new_lines: list[str], old_lines: list[str], span: list[str]) -> list[str]:
    """Re-indent ``new_lines`` from old_string's indentation to the file's.

    Each old line and the file line it matched give a pair (old width -> real indent); a new
    line at a known width gets that real indent, one in between or deeper is placed by the
    same scale (a model writing 2-space indents for a 4-space file is common), in the file's
    own indent character.
    """
    pairs: dict[int, str] = {}
    same = True
    for old, real in zip(old_lines, span, strict=False):
        if old.strip() and real.strip():
            pairs.setdefault(_width(_indent(old)), _indent(real))
            same = same and _indent(old) == _indent(real)
    if same or not pairs:
        return list(new_lines)
    keys = sorted(pairs)
    scale = 1.0
    if len(keys) > 1:
        scale = (_width(pairs[keys[-1]]) - _width(pairs[keys[0]])) / (keys[-1] - keys[0])
        scale = scale if scale > 0 else 1.0
    use_tabs = any(_indent(line).startswith("\t") for line in span)
    out = []
    for line in new_lines:
        if not line.strip():
            out.append(line)
            continue
        width = _width(_indent(line))
        if width in pairs:
            out.append(pairs[width] + line.lstrip(" \t"))
            continue
        base = max((k for k in keys if k <= width), default=keys[0])
        target = max(_width(pairs[base]) + round((width - base) * scale), 0)
        pad = ("\t" * (target // TAB_WIDTH) + " " * (target % TAB_WIDTH) if use_tabs
               else " " * target)
        out.append(pad + line.lstrip(" \t"))
    return out


def _ambiguous(text: str, line_indexes: list[int], count: int) -> ToolError:
    lines = text.split("\n")
    shown = [numbered(i + 1, lines[i][:200]) for i in line_indexes[:10]]
    more = f"\n  ... and {count - 10} more" if count > 10 else ""
    return ToolError(
        f"old_string matches {count} places; add surrounding lines to old_string so it is "
        f"unique, or set replace_all=true to change every one. Candidates (line: text):\n"
        + "\n".join(shown) + more,
        candidates=[i + 1 for i in line_indexes])


def _no_match(lines: list[str], old_lines: list[str]) -> ToolError:
    target = "\n".join(old_lines)
    size = max(len(old_lines), 1)
    best, best_ratio = 0, -1.0
    windows = range(max(len(lines) - size + 1, 1))
    step = max(len(windows) // MAX_WINDOWS, 1)
    for start in windows[::step]:
        matcher = difflib.SequenceMatcher(None, "\n".join(lines[start:start + size]), target,
                                          autojunk=False)
        if matcher.real_quick_ratio() <= best_ratio or matcher.quick_ratio() <= best_ratio:
            continue
        ratio = matcher.ratio()
        if ratio > best_ratio:
            best, best_ratio = start, ratio
    if best_ratio < 0.3:
        return ToolError("old_string was not found in the file (nothing similar either); read "
                         "the file again and copy the exact text to replace")
    region = [numbered(best + i + 1, line) for i, line in enumerate(lines[best:best + size])]
    return ToolError(
        f"old_string was not found in the file. The closest region is lines {best + 1}-"
        f"{best + len(region)} ({best_ratio:.0%} similar):\n" + "\n".join(region)
        + "\nCopy the exact current text into old_string (re-read the file if it changed).",
        closest_line=best + 1)


# ---------------------------------------------------------------- documents


@dataclass
class Doc:
    """A text file held in memory with the conventions it must keep when written back."""

    path: Path
    original: str | None  # None: the file does not exist yet
    text: str = ""  # working copy, "\n" line ends when the file is CRLF
    crlf: bool = False
    trailing_newline: bool = True
    mode: int | None = None
    replacements: int = 0
    log: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path, ctx: ToolContext) -> Doc:
        if path.is_dir():
            raise ToolError(f"{ctx.relative(path)} is a directory, not a file")
        if not path.exists():
            return cls(path, None)
        data = path.read_bytes()
        kind = binary_kind(data[:SNIFF_BYTES], path)
        if kind is not None:
            raise ToolError(f"{ctx.relative(path)} is a binary file ({kind}); it cannot be "
                            "edited as text")
        try:
            raw = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ToolError(f"{ctx.relative(path)} is not valid UTF-8 (byte {exc.start}); it "
                            "cannot be edited as text")
        crlf = "\r\n" in raw and raw.count("\r\n") == raw.count("\n")
        text = raw.replace("\r\n", "\n") if crlf else raw
        return cls(path, raw, text, crlf, text.endswith("\n") or not text,
                   path.stat().st_mode & 0o777)

    def edit(self, old: str, new: str, replace_all: bool) -> int:
        if self.crlf or self.original is None:
            old, new = old.replace("\r\n", "\n"), new.replace("\r\n", "\n")
        if self.original is None and not self.text and old:
            raise ToolError("the file does not exist; use an empty old_string to create it")
        had_content = bool(self.text)
        self.text, count = apply_edit(self.text, old, new, replace_all)
        if had_content and self.text:
            if self.trailing_newline and not self.text.endswith("\n"):
                self.text += "\n"
            elif not self.trailing_newline and self.text.endswith("\n"):
                self.text = self.text[:-1]
        self.replacements += count
        return count

    def rendered(self) -> str:
        return self.text.replace("\n", "\r\n") if self.crlf else self.text

    def changed(self) -> bool:
        return self.rendered() != self.original

    def diff(self, ctx: ToolContext) -> str:
        before = (self.original or "").replace("\r\n", "\n") if self.crlf else self.original or ""
        rel = ctx.relative(self.path)
        lines = difflib.unified_diff(before.splitlines(keepends=True),
                                     self.text.splitlines(keepends=True),
                                     f"a/{rel}", f"b/{rel}", n=2)
        text = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
        if len(text) > DIFF_CAP:
            text = text[:DIFF_CAP] + f"\n[diff cut: {len(text) - DIFF_CAP} more chars]\n"
        return text.rstrip("\n")

    def write(self) -> None:
        atomic_write_text(self.path, self.rendered(), self.mode)


def _load(raw: str, ctx: ToolContext, docs: dict[Path, Doc]) -> Doc:
    path = ctx.resolve_path(raw, write=True)
    if path not in docs:
        docs[path] = Doc.load(path, ctx)
    return docs[path]


def write_all(docs: list[Doc]) -> None:
    """Write every document atomically; if one fails, put back the ones already written."""
    done: list[Doc] = []
    doc = docs[0]
    try:
        for doc in docs:
            doc.write()
            done.append(doc)
    except OSError as exc:
        for doc in done:
            try:
                if doc.original is None:
                    os.unlink(doc.path)
                else:
                    atomic_write_text(doc.path, doc.original, doc.mode)
            except OSError:
                pass
        raise ToolError(f"writing {doc.path} failed ({exc.strerror or exc}); every file was "
                        "restored to how it was")


# ---------------------------------------------------------------- tools


class WriteTool(Tool):
    name = "write"
    description = (
        "Create or overwrite a file with `content` (parent directories are created; the write "
        "is atomic and an existing file keeps its permissions). Prefer edit for changing part "
        "of an existing file."
    )
    parameters = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "file path, relative to the workspace"},
            "content": {"type": "string", "description": "the complete new file content"},
        },
        "required": ["path", "content"],
    }

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        path = ctx.resolve_path(require(args, "path"), write=True)
        content = require(args, "content")
        rel = ctx.relative(path)
        if path.is_dir():
            raise ToolError(f"{rel} is a directory; give a file path")
        existed = path.exists()
        before = path.stat().st_size if existed else 0
        atomic_write_text(path, content)
        size = len(content.encode("utf-8"))
        verb = f"overwrote {rel} ({size} bytes, was {before})" if existed else \
            f"created {rel} ({size} bytes)"
        return ToolResult(verb, metadata={"path": rel, "created": not existed, "bytes": size})


class EditTool(Tool):
    name = "edit"
    description = (
        "Replace `old_string` with `new_string` in a file. old_string must match one place "
        "(include a few surrounding lines to make it unique) unless replace_all=true. Exact "
        "match first; failing that, a match that ignores indentation and spacing differences "
        "(new_string is re-indented to fit). An empty old_string creates a new file. Copy text "
        "from read output without the line-number prefix."
    )
    parameters = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "file to change"},
            "old_string": {"type": "string", "description": "exact text to replace"},
            "new_string": {"type": "string", "description": "replacement text"},
            "replace_all": {"type": "boolean", "description": "change every match (false)"},
        },
        "required": ["path", "old_string", "new_string"],
    }

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        raw = require(args, "path")
        old, new = require(args, "old_string"), require(args, "new_string")
        path = ctx.resolve_path(raw, write=True)
        if old == new:
            raise ToolError("old_string and new_string are identical; nothing to change")
        if not path.exists() and old:
            raise missing_file_error(path, ctx)
        doc = _load(raw, ctx, {})
        created = doc.original is None
        rel = ctx.relative(path)
        try:
            count = doc.edit(old, new, bool_arg(args, "replace_all"))
        except ToolError as exc:
            raise ToolError(f"{rel}: {exc.message}", **exc.metadata)
        if not doc.changed():
            raise ToolError(f"{rel}: the edit would not change the file")
        doc.write()
        diff = doc.diff(ctx)
        head = f"created {rel}" if created else \
            f"edited {rel}: {count} replacement{'s' if count != 1 else ''}"
        return ToolResult(f"{head}\n{diff}".rstrip(),
                          metadata={"path": rel, "replacements": count, "diff": diff,
                                    "created": created})


class MultiEditTool(Tool):
    name = "multiedit"
    description = (
        "Several edits in one atomic step, in one or more files: `edits` is a list of "
        "{path?, old_string, new_string, replace_all?} applied in order (each sees the "
        "previous ones); `path` is the default file. Either every edit applies or nothing is "
        "written."
    )
    parameters = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "default file for edits without path"},
            "edits": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "path": {"type": "string"},
                        "old_string": {"type": "string"},
                        "new_string": {"type": "string"},
                        "replace_all": {"type": "boolean"},
                    },
                    "required": ["old_string", "new_string"],
                },
            },
        },
        "required": ["edits"],
    }

    def subject(self, args: dict[str, Any]) -> str | None:
        default = args.get("path") or args.get("file")
        if isinstance(default, str):
            return default
        edits = args.get("edits")
        if isinstance(edits, list) and edits and isinstance(edits[0], dict):
            first = edits[0].get("path") or edits[0].get("file")
            return first if isinstance(first, str) else None
        return None

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        edits = require(args, "edits", list)
        if not edits:
            raise ToolError("argument 'edits' is empty; give at least one edit")
        default = args.get("path") or args.get("file")
        docs: dict[Path, Doc] = {}
        for index, edit in enumerate(edits):
            try:
                self._apply_one(edit, default, ctx, docs)
            except ToolError as exc:
                raise ToolError(f"edits[{index}] failed, nothing was written: {exc.message}",
                                failed_index=index, **exc.metadata)
        changed = [doc for doc in docs.values() if doc.changed()]
        if not changed:
            raise ToolError("the edits would not change any file")
        write_all(changed)
        diff = "\n".join(doc.diff(ctx) for doc in changed)
        total = sum(doc.replacements for doc in docs.values())
        names = [ctx.relative(doc.path) for doc in changed]
        head = f"applied {len(edits)} edits ({total} replacements) to {', '.join(names)}"
        return ToolResult(f"{head}\n{diff}".rstrip(),
                          metadata={"files": names, "replacements": total, "diff": diff})

    @staticmethod
    def _apply_one(edit: Any, default: Any, ctx: ToolContext, docs: dict[Path, Doc]) -> None:
        if not isinstance(edit, dict):
            raise ToolError("each edit must be an object {path?, old_string, new_string}")
        raw = edit.get("path") or edit.get("file") or default
        if not isinstance(raw, str) or not raw:
            raise ToolError("no path: give the edit a path or set the top-level path")
        old, new = require(edit, "old_string"), require(edit, "new_string")
        doc = _load(raw, ctx, docs)
        if doc.original is None and not doc.text and old:
            raise missing_file_error(doc.path, ctx)
        try:
            doc.edit(old, new, bool_arg(edit, "replace_all"))
        except ToolError as exc:
            raise ToolError(f"{ctx.relative(doc.path)}: {exc.message}", **exc.metadata)
