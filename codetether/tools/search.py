"""Search tools: ``grep`` (matching lines) and ``codesearch`` (matches with context).

Both walk the same file list: in a git work tree it is what git would show (tracked plus
untracked, minus ignored), so a search never drowns in ``node_modules`` or build output; outside
git a walk skips the usual generated directories. Binary and very large files are skipped because
their "lines" are noise to a model. The search is pure Python so it behaves the same everywhere
(no dependency on ``rg`` being installed).
"""

from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from codetether.tools.base import Tool, ToolContext, ToolError, ToolResult, cap_output
from codetether.tools.files_read import SKIP_DIRS as FILE_TOOL_SKIP_DIRS
from codetether.tools.files_read import run_git

# outside git: what the file tools skip, plus build output nobody wants searched
SKIP_DIRS = FILE_TOOL_SKIP_DIRS | {"dist", "build"}
MAX_FILE_BYTES = 5 * 1024 * 1024
BINARY_PROBE = 8192
LINE_CUT = 300
# constructs whose meaning changes between "one line" and "whole file": no whole-file prefilter
_PREFILTER_UNSAFE = re.compile(r"\\[AZzn]|\(\?[<=!]")


# ---- arguments -----------------------------------------------------------------------------

def _int_arg(args: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = args.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ToolError(f"argument '{key}' must be an integer, got {type(value).__name__}")
    return max(low, min(high, int(value)))


def _bool_arg(args: dict[str, Any], key: str, default: bool) -> bool:
    value = args.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ToolError(f"argument '{key}' must be true or false, got {value!r}")
    return value


def _split_globs(raw: Any, key: str) -> list[str]:
    """``"*.py"``, ``"*.py,*.md"``, ``"*.{ts,tsx}"`` or a list of those -> plain globs."""
    if raw is None or raw == "":
        return []
    items = raw if isinstance(raw, list) else [raw]
    globs: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ToolError(f"argument '{key}' must be a glob string or a list of them")
        for part in _split_outside_braces(item):
            globs.extend(_expand_braces(part.strip()))
    return [g for g in globs if g]


def _split_outside_braces(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += (ch == "{") - (ch == "}")
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _expand_braces(glob: str) -> list[str]:
    match = re.search(r"\{([^{}]*)\}", glob)
    if not match:
        return [glob]
    head, tail = glob[:match.start()], glob[match.end():]
    out: list[str] = []
    for choice in match.group(1).split(","):
        out.extend(_expand_braces(head + choice + tail))
    return out


def _glob_matches(rel: str, globs: list[str]) -> bool:
    """A glob without ``/`` matches the file name; with ``/`` the path under the search root
    (``**/`` may match no directory at all)."""
    name = rel.rsplit("/", 1)[-1]
    for glob in globs:
        if "/" not in glob:
            if fnmatchcase(name, glob):
                return True
            continue
        pattern = glob[2:] if glob.startswith("./") else glob
        if fnmatchcase(rel, pattern):
            return True
        if pattern.startswith("**/") and fnmatchcase(rel, pattern[3:]):
            return True
    return False


def compile_pattern(pattern: str, *, is_regex: bool, case_sensitive: bool) -> re.Pattern[str]:
    """The search regex; a bad one is the model's mistake, so say what Python objected to."""
    flags = 0 if case_sensitive else re.IGNORECASE
    source = pattern if is_regex else re.escape(pattern)
    try:
        return re.compile(source, flags)
    except re.error as exc:
        raise ToolError(f"invalid regular expression {pattern!r}: {exc}; escape special "
                        "characters, or pass is_regex=false to search for the literal text")


# ---- walking files -------------------------------------------------------------------------

@dataclass
class Walk:
    """Search bounds shared by a whole run: deadline, cancel, and why it stopped early."""

    ctx: ToolContext
    deadline: float
    timed_out: bool = False
    cancelled: bool = False
    skipped: dict[str, int] = field(default_factory=lambda: {"binary": 0, "large": 0})

    def should_stop(self) -> bool:
        if self.ctx.cancel.cancelled:
            self.cancelled = True
        elif time.monotonic() > self.deadline:
            self.timed_out = True
        return self.cancelled or self.timed_out


def _git_files(root: Path, walk: Walk) -> list[str] | None:
    """Files git shows under ``root`` (relative paths), or None outside a work tree."""
    remaining = max(1.0, walk.deadline - time.monotonic())
    try:
        proc = run_git(["ls-files", "--cached", "--others", "--exclude-standard", "-z"], root,
                       walk.ctx, timeout=remaining)
    except ToolError:  # timed out or cancelled: walk.should_stop() reports which
        return None
    if proc is None or proc.returncode != 0:
        return None
    raw = proc.stdout.decode("utf-8", "surrogateescape").split("\0")
    names = list(dict.fromkeys(n for n in raw if n))  # unmerged files appear once per stage
    # a directory ignored by git but asked for explicitly: the model wants it searched anyway
    return names or None


def _walk_files(root: Path, walk: Walk) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        if walk.should_stop():
            return
        rel_dir = os.path.relpath(dirpath, root)
        for name in filenames:
            yield name if rel_dir == "." else f"{rel_dir}/{name}".replace(os.sep, "/")


def iter_files(root: Path, globs: list[str], walk: Walk) -> list[Path]:
    """The files to search under ``root``, newest first (what was just edited is most likely
    what the model is looking for)."""
    if root.is_file():
        return [root]
    names = _git_files(root, walk)
    candidates = names if names is not None else list(_walk_files(root, walk))
    base = str(root)
    found: list[tuple[float, str]] = []
    for rel in candidates:
        if globs and not _glob_matches(rel, globs):
            continue
        full = os.path.join(base, rel)
        try:
            info = os.stat(full)
        except OSError:
            continue  # deleted but still in the index, broken symlink...
        if not stat.S_ISREG(info.st_mode):
            continue
        if info.st_size > MAX_FILE_BYTES:
            walk.skipped["large"] += 1
            continue
        found.append((-info.st_mtime, full))
    found.sort()
    return [Path(full) for _, full in found]


def whole_file_filter(regex: re.Pattern[str], pattern: str,
                      is_regex: bool) -> re.Pattern[str] | None:
    """A multi-line twin of ``regex`` that can rule a whole file out in one C-speed call;
    None where a construct (anchors, lookarounds, newlines) could make it miss a line match."""
    if is_regex and _PREFILTER_UNSAFE.search(pattern):
        return None
    return re.compile(regex.pattern, regex.flags | re.MULTILINE)


def search_file(path: Path, regex: re.Pattern[str], whole: re.Pattern[str] | None,
                walk: Walk) -> tuple[list[str], list[int]]:
    """(lines, 0-based indexes of matching lines); nothing for binary or unreadable files."""
    try:
        data = path.read_bytes()
    except OSError:
        return [], []
    if b"\0" in data[:BINARY_PROBE]:
        walk.skipped["binary"] += 1
        return [], []
    text = data.decode("utf-8", "replace").replace("\r\n", "\n")
    if whole is not None and not whole.search(text):
        return [], []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines, [i for i, line in enumerate(lines) if regex.search(line)]


def _cut(line: str) -> str:
    line = line.rstrip()
    return line if len(line) <= LINE_CUT else line[:LINE_CUT] + " …[line cut]"


def _search_root(args: dict[str, Any], ctx: ToolContext) -> Path:
    raw = args.get("path") or "."
    if not isinstance(raw, str):
        raise ToolError("argument 'path' must be a string")
    root = ctx.resolve_path(raw)
    if not root.exists():
        raise ToolError(f"{raw} does not exist; check the path with the list or glob tool")
    return root


def _stop_notes(walk: Walk, timeout: float) -> list[str]:
    notes = []
    if walk.cancelled:
        notes.append("[search cancelled; results are partial]")
    if walk.timed_out:
        notes.append(f"[search stopped after the {timeout:g}s timeout; results are partial: "
                     "narrow the path or include globs, or raise timeout_secs]")
    return notes


# ---- tools ---------------------------------------------------------------------------------

class GrepTool(Tool):
    name = "grep"
    description = (
        "Search file contents for a regex (or a literal string with is_regex=false). Respects "
        ".gitignore, skips binary and huge files. Returns `path:line: text` grouped by file, "
        "newest files first. Use include to restrict to file globs like '*.py'.")
    parameters = {
        "type": "object",
        "properties": {
            "pattern": {"type": "string", "description": "regex (Python syntax) or literal text"},
            "path": {"type": "string", "description": "file or directory to search (default .)"},
            "is_regex": {"type": "boolean", "description": "false: pattern is literal text"},
            # a plain string in the schema (some providers reject anyOf); a list also works
            "include": {"type": "string",
                        "description": "glob(s) of files to search: '*.py', '*.{ts,tsx}', "
                                       "'src/**/*.py,*.md'"},
            "limit": {"type": "integer", "description": "max matching lines shown (default 50)"},
            "case_sensitive": {"type": "boolean", "description": "default true"},
            "timeout_secs": {"type": "integer", "description": "stop after this long (default 15)"},
        },
        "required": ["pattern"],
    }
    read_only = True

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        pattern = args.get("pattern")
        if not isinstance(pattern, str) or not pattern:
            raise ToolError("missing required argument 'pattern' (a non-empty string)")
        is_regex = _bool_arg(args, "is_regex", True)
        regex = compile_pattern(pattern, is_regex=is_regex,
                                case_sensitive=_bool_arg(args, "case_sensitive", True))
        limit = _int_arg(args, "limit", 50, 1, 1000)
        timeout = float(_int_arg(args, "timeout_secs", 15, 1, 300))
        globs = _split_globs(args.get("include"), "include")
        root = _search_root(args, ctx)
        walk = Walk(ctx, time.monotonic() + timeout)
        prefilter = whole_file_filter(regex, pattern, is_regex)

        groups: list[str] = []
        shown = hidden = files_with_matches = 0
        for path in iter_files(root, globs, walk):
            if walk.should_stop():
                break
            lines, hits = search_file(path, regex, prefilter, walk)
            if not hits:
                continue
            files_with_matches += 1
            room = max(0, limit - shown)
            if room:
                label = ctx.relative(path)
                groups.append("\n".join(f"{label}:{i + 1}: {_cut(lines[i])}" for i in hits[:room]))
            shown += min(room, len(hits))
            hidden += len(hits) - min(room, len(hits))

        total = shown + hidden
        meta = {"matches": total, "files": files_with_matches, "truncated": hidden > 0,
                "timed_out": walk.timed_out, "cancelled": walk.cancelled}
        if not total:
            where = ctx.relative(root)
            text = f"No matches for {pattern!r} in {where}"
            if globs:
                text += f" (files matching {', '.join(globs)})"
            return ToolResult("\n".join([text, *_stop_notes(walk, timeout)]), True, meta)
        head = f"{total} match{'es' if total != 1 else ''} in {files_with_matches} file" + \
            ("s" if files_with_matches != 1 else "")
        parts = [head, "", "\n\n".join(groups)]
        if hidden:
            parts += ["", f"[{hidden} more matches not shown; narrow the pattern or path]"]
        parts += _stop_notes(walk, timeout)
        return ToolResult(cap_output("\n".join(parts), ctx.limits.output_bytes), True, meta)


class CodeSearchTool(Tool):
    name = "codesearch"
    description = (
        "Regex search over code with surrounding context lines (like grep -C). Respects "
        ".gitignore. Match lines are `path:N: text`, context lines `path-N- text`, blocks "
        "separated by `--`. Case-insensitive by default.")
    parameters = {
        "type": "object",
        "properties": {
            "pattern": {"type": "string", "description": "regex (Python syntax)"},
            "path": {"type": "string", "description": "file or directory (default .)"},
            "file_pattern": {"type": "string", "description": "glob of files, e.g. '*.py'"},
            "context_lines": {"type": "integer", "description": "lines before/after (default 2)"},
            "case_sensitive": {"type": "boolean", "description": "default false"},
            "limit": {"type": "integer", "description": "max matches shown (default 20)"},
        },
        "required": ["pattern"],
    }
    read_only = True

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        pattern = args.get("pattern")
        if not isinstance(pattern, str) or not pattern:
            raise ToolError("missing required argument 'pattern' (a non-empty string)")
        regex = compile_pattern(pattern, is_regex=True,
                                case_sensitive=_bool_arg(args, "case_sensitive", False))
        context = _int_arg(args, "context_lines", 2, 0, 50)
        limit = _int_arg(args, "limit", 20, 1, 500)
        globs = _split_globs(args.get("file_pattern"), "file_pattern")
        root = _search_root(args, ctx)
        timeout = 30.0
        walk = Walk(ctx, time.monotonic() + timeout)
        prefilter = whole_file_filter(regex, pattern, True)

        blocks: list[str] = []
        shown = hidden = files_with_matches = 0
        for path in iter_files(root, globs, walk):
            if walk.should_stop():
                break
            lines, hits = search_file(path, regex, prefilter, walk)
            if not hits:
                continue
            files_with_matches += 1
            room = max(0, limit - shown)
            kept = hits[:room]
            if kept:
                blocks.extend(_context_blocks(ctx.relative(path), lines, kept, context))
            shown += len(kept)
            hidden += len(hits) - len(kept)

        total = shown + hidden
        meta = {"matches": total, "files": files_with_matches, "truncated": hidden > 0,
                "timed_out": walk.timed_out, "cancelled": walk.cancelled}
        if not total:
            text = f"No matches for {pattern!r} in {ctx.relative(root)}"
            return ToolResult("\n".join([text, *_stop_notes(walk, timeout)]), True, meta)
        parts = [f"{total} match{'es' if total != 1 else ''} in {files_with_matches} file"
                 + ("s" if files_with_matches != 1 else ""), "", "\n--\n".join(blocks)]
        if hidden:
            parts += ["", f"[{hidden} more matches not shown; narrow the pattern or path, "
                          "or raise limit]"]
        parts += _stop_notes(walk, timeout)
        return ToolResult(cap_output("\n".join(parts), ctx.limits.output_bytes), True, meta)


def _context_blocks(label: str, lines: list[str], hits: list[int], context: int) -> list[str]:
    """grep -C style blocks; overlapping or touching windows merge into one block."""
    hit_set = set(hits)
    spans: list[list[int]] = []
    for i in hits:
        start, end = max(0, i - context), min(len(lines) - 1, i + context)
        if spans and start <= spans[-1][1] + 1:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    blocks = []
    for start, end in spans:
        rows = []
        for n in range(start, end + 1):
            sep = ":" if n in hit_set else "-"
            rows.append(f"{label}{sep}{n + 1}{sep} {_cut(lines[n])}".rstrip())
        blocks.append("\n".join(rows))
    return blocks
