"""Read-only file tools: read, list, glob, tree, file_info, head_tail, diff.

Their output is written for a model: line numbers it can cite, paths relative to the workspace,
and a note whenever something was left out saying which argument shows the rest. Files are
streamed line by line so a multi-gigabyte log never lands in memory, and every error says how
to make the call work (a near-miss file name, "use list for a directory"...).

The helpers at the top (binary detection, missing-file suggestions, the git runner, the walk
that honours .gitignore) are shared by the write and patch tools.
"""

from __future__ import annotations

import difflib
import fnmatch
import mimetypes
import os
import re
import stat
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from codetether.tools.base import (
    Tool,
    ToolContext,
    ToolError,
    ToolResult,
    cap_output,
    require,
)

MAX_LINE_CHARS = 2000
DEFAULT_READ_LIMIT = 2000
SNIFF_BYTES = 8192
LIST_CAP = 1000
TREE_CAP = 1000
WALK_CAP = 200_000
GIT_TIMEOUT = 30.0
# never worth showing to a model, even outside a git repo
SKIP_DIRS = frozenset({
    ".git", ".hg", ".svn", "node_modules", ".venv", "venv", "__pycache__", ".mypy_cache",
    ".pytest_cache", ".ruff_cache", ".tox",
})

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF8", "GIF image"),
    (b"%PDF", "PDF document"),
    (b"PK\x03\x04", "zip archive (zip/jar/wheel/docx)"),
    (b"\x1f\x8b", "gzip archive"),
    (b"BZh", "bzip2 archive"),
    (b"\xfd7zXZ\x00", "xz archive"),
    (b"7z\xbc\xaf\x27\x1c", "7-zip archive"),
    (b"\x7fELF", "ELF executable/library"),
    (b"MZ", "Windows executable"),
    (b"\xcf\xfa\xed\xfe", "Mach-O executable"),
    (b"\xca\xfe\xba\xbe", "Java class / Mach-O universal binary"),
    (b"SQLite format 3\x00", "SQLite database"),
    (b"\x00asm", "WebAssembly module"),
    (b"RIFF", "RIFF media (wav/avi/webp)"),
    (b"OggS", "Ogg media"),
    (b"ID3", "MP3 audio"),
    (b"wOFF", "WOFF font"),
)


# ---------------------------------------------------------------- shared helpers


def int_arg(args: dict[str, Any], key: str, default: int, minimum: int = 0) -> int:
    """An optional integer argument; models send "20" as often as 20, so digits are accepted."""
    value = args.get(key, default)
    if value is None:
        return default
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ToolError(f"argument '{key}' must be an integer, got {value!r}")
    if value < minimum:
        raise ToolError(f"argument '{key}' must be >= {minimum}, got {value}")
    return value


def bool_arg(args: dict[str, Any], key: str, default: bool = False) -> bool:
    value = args.get(key, default)
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def binary_kind(head: bytes, path: Path) -> str | None:
    """None when ``head`` (the first bytes of a file) looks like text, else a guess of its type.

    A NUL byte or bytes that are not UTF-8 mean binary; an incomplete multi-byte character at
    the very end of the sample is not held against the file.
    """
    if b"\x00" not in head:
        try:
            head.decode("utf-8")
            return None
        except UnicodeDecodeError as exc:
            if exc.start >= len(head) - 3 and exc.reason == "unexpected end of data":
                return None
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "unknown binary data"


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "K", "M", "G"):
        if value < 1024 or unit == "G":
            return f"{int(value)}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{size}B"


def missing_file_error(path: Path, ctx: ToolContext) -> ToolError:
    """'not found', plus up to three similarly named entries of the same directory, because a
    model that misspelt a name usually wants the nearest one."""
    rel = ctx.relative(path)
    parent = path.parent
    if not parent.is_dir():
        return ToolError(f"{rel} does not exist (nor does its directory {ctx.relative(parent)}/); "
                         "use glob or list to find the right path")
    try:
        names = os.listdir(parent)
    except OSError:
        names = []
    close = difflib.get_close_matches(path.name, names, n=3, cutoff=0.5)
    if not close:
        lowered = path.name.lower()
        close = [n for n in names if lowered in n.lower() or n.lower() in lowered][:3]
    if close:
        shown = ", ".join(ctx.relative(parent / n) for n in close)
        return ToolError(f"{rel} does not exist; did you mean: {shown}?")
    return ToolError(f"{rel} does not exist; use list or glob to see what is there")


def open_text_file(raw: str, ctx: ToolContext) -> Path:
    """Resolve ``raw`` for reading and make sure it is an existing, textual file."""
    path = ctx.resolve_path(raw)
    if path.is_dir():
        raise ToolError(f"{ctx.relative(path)} is a directory; use the list (or tree) tool "
                        "to see its contents")
    if not path.exists():
        raise missing_file_error(path, ctx)
    if not path.is_file():
        raise ToolError(f"{ctx.relative(path)} is not a regular file")
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    kind = binary_kind(head, path)
    if kind is not None:
        size = path.stat().st_size
        raise ToolError(f"{ctx.relative(path)} is a binary file ({kind}, {size} bytes, "
                        f"{human_size(size)}); it cannot be shown as text",
                        binary=True, size=size, type=kind)
    return path


def _cut(text: str, full_len: int | None = None) -> str:
    """A line shown whole, or its first MAX_LINE_CHARS characters with a marker."""
    total = full_len if full_len is not None else len(text)
    if total <= MAX_LINE_CHARS and len(text) <= MAX_LINE_CHARS:
        return text
    return f"{text[:MAX_LINE_CHARS]}… [line cut: {total} chars]"


def iter_lines(handle: Any, ctx: ToolContext | None = None) -> Iterator[str]:
    """Lines of a binary file object as text (no line end), a long line cut to MAX_LINE_CHARS.

    A single line is never read whole beyond a few KiB: a 1 GiB minified file on one line
    costs the same as a short one.
    """
    chunk = MAX_LINE_CHARS * 4 + 4
    count = 0
    while True:
        data = handle.readline(chunk)
        if not data:
            return
        count += 1
        if ctx is not None and count % 4096 == 0 and ctx.cancel.cancelled:
            raise ToolError("cancelled")
        if data.endswith(b"\n"):
            yield _cut(data.rstrip(b"\r\n").decode("utf-8", "replace"))
            continue
        extra = 0
        while True:  # the rest of an overlong line: counted, not kept
            more = handle.readline(1 << 16)
            if not more:
                break
            extra += len(more.rstrip(b"\r\n"))
            if more.endswith(b"\n"):
                break
        text = data.rstrip(b"\r").decode("utf-8", "replace")
        yield _cut(text, len(text) + extra)


def count_lines(path: Path, ctx: ToolContext | None = None) -> int:
    """Lines in a file, counted in 1 MiB chunks; a last line without a newline counts."""
    total = 0
    last = b"\n"
    with path.open("rb") as handle:
        while True:
            block = handle.read(1 << 20)
            if not block:
                break
            if ctx is not None and ctx.cancel.cancelled:
                raise ToolError("cancelled")
            total += block.count(b"\n")
            last = block[-1:]
    return total + (0 if last == b"\n" else 1)


def numbered(number: int, text: str) -> str:
    return f"{number:>6}\t{text}"


def run_git(args: list[str], cwd: Path, ctx: ToolContext,
            timeout: float = GIT_TIMEOUT) -> subprocess.CompletedProcess[bytes] | None:
    """Run ``git args`` (never through a shell); None when git is not installed.

    Cancelling the context kills git at once instead of waiting for the timeout.
    """
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0", GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    try:
        proc = subprocess.Popen(["git", "-c", "core.quotepath=off", *args], cwd=cwd, env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return None
    unregister = ctx.cancel.on_cancel(proc.kill)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise ToolError(f"git {args[0]} took longer than {timeout:.0f}s and was stopped")
    finally:
        unregister()
    if ctx.cancel.cancelled:
        raise ToolError("cancelled")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def candidate_files(base: Path, ctx: ToolContext) -> tuple[list[str], bool]:
    """Files under ``base`` as POSIX paths relative to it, and whether git chose them.

    In a git work tree this is what git would consider (tracked + untracked not ignored), so
    .gitignore is honoured exactly; elsewhere a walk that skips VCS and dependency dirs.
    """
    done = run_git(["ls-files", "--cached", "--others", "--exclude-standard", "-z"], base, ctx)
    if done is not None and done.returncode == 0:
        names = sorted({n for n in done.stdout.decode("utf-8", "replace").split("\0") if n})
        return [n for n in names if (base / n).is_file() or (base / n).is_symlink()], True
    return walk_files(base, ctx), False


def walk_files(base: Path, ctx: ToolContext, cap: int = WALK_CAP) -> list[str]:
    found: list[str] = []
    for root, dirs, files in os.walk(base):
        if ctx.cancel.cancelled:
            raise ToolError("cancelled")
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        rel_root = Path(root).relative_to(base)
        for name in sorted(files):
            found.append((rel_root / name).as_posix())
            if len(found) >= cap:
                return found
    return found


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A regex for a glob over POSIX relative paths: ``*`` and ``?`` stay inside one path
    segment, ``**`` spans directories (``**/`` may match none), ``{a,b}`` alternates."""
    return re.compile("(?s:" + _glob_body(pattern) + r")\Z")


def _glob_body(pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:[^/]*/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif ch == "*":
            out.append("[^/]*")
            i += 1
        elif ch == "?":
            out.append("[^/]")
            i += 1
        elif ch == "[":
            end = pattern.find("]", i + 2)
            if end == -1:
                out.append(re.escape(ch))
                i += 1
            else:
                body = pattern[i + 1:end].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end + 1
        elif ch == "{":
            end = pattern.find("}", i)
            if end == -1:
                out.append(re.escape(ch))
                i += 1
            else:
                alts = pattern[i + 1:end].split(",")
                out.append("(?:" + "|".join(_glob_body(a) for a in alts) + ")")
                i = end + 1
        else:
            out.append(re.escape(ch))
            i += 1
    return "".join(out)


def _literal_path(raw: str, ctx: ToolContext) -> Path:
    """``raw`` made absolute without resolving symlinks (resolve_path follows them)."""
    path = Path(raw).expanduser()
    return path if path.is_absolute() else ctx.workspace / path


def _dir_arg(args: dict[str, Any], ctx: ToolContext) -> Path:
    raw = args.get("path") or "."
    if not isinstance(raw, str):
        raise ToolError("argument 'path' must be a string")
    base = ctx.resolve_path(raw)
    if not base.exists():
        raise missing_file_error(base, ctx)
    if not base.is_dir():
        raise ToolError(f"{ctx.relative(base)} is a file, not a directory; use read for a file")
    return base


def _str_list(args: dict[str, Any], key: str) -> list[str]:
    value = args.get(key) or []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ToolError(f"argument '{key}' must be a list of glob strings")
    return value


# ---------------------------------------------------------------- read


class ReadTool(Tool):
    name = "read"
    description = (
        "Read a text file. Lines come back numbered as `     N<TAB>text` (cite these numbers; do "
        "not copy them into edits). Reads up to `limit` lines (default 2000) from `offset` "
        "(1-based); a footer says how to read on. Lines over 2000 chars are cut. Binary files "
        "and directories are refused (use list/tree for directories)."
    )
    parameters = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "file path, relative to the workspace"},
            "offset": {"type": "integer", "description": "first line to show, 1-based"},
            "limit": {"type": "integer", "description": "how many lines (default 2000)"},
        },
        "required": ["path"],
    }
    read_only = True

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        path = open_text_file(require(args, "path"), ctx)
        offset = int_arg(args, "offset", 1, minimum=0) or 1
        limit = int_arg(args, "limit", DEFAULT_READ_LIMIT, minimum=1)
        budget = ctx.limits.output_bytes - 200
        rel = ctx.relative(path)
        shown: list[str] = []
        used = 0
        last = offset - 1
        total = 0
        more = False
        with path.open("rb") as handle:
            for number, text in enumerate(iter_lines(handle, ctx), start=1):
                total = number
                if number < offset:
                    continue
                line = numbered(number, text)
                if len(shown) >= limit or used + len(line.encode()) + 1 > budget:
                    more = True
                    break
                shown.append(line)
                used += len(line.encode()) + 1
                last = number
        if more:
            total = count_lines(path, ctx)
        if total == 0:
            return ToolResult(f"({rel} is empty)", metadata={"path": rel, "total_lines": 0})
        if offset > total:
            raise ToolError(f"offset {offset} is past the end of {rel} ({total} lines); "
                            f"use an offset between 1 and {total}")
        body = "\n".join(shown)
        if last < total:
            body += (f"\n\n(file has {total} lines; showing {offset}-{last}; "
                     f"use offset={last + 1} to read more)")
        meta = {"path": rel, "offset": offset, "last_line": last, "total_lines": total,
                "truncated": last < total}
        return ToolResult(body, metadata=meta)


# ---------------------------------------------------------------- list


class ListTool(Tool):
    name = "list"
    description = (
        "List one directory level (default: the workspace root). Directories end with `/`, "
        "symlinks show their target. `.git` is skipped; `ignore` takes extra glob patterns "
        "matched against entry names. Use tree for several levels, glob to find files."
    )
    parameters = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "directory (default '.')"},
            "ignore": {"type": "array", "items": {"type": "string"},
                       "description": "glob patterns of names to leave out, e.g. ['*.pyc']"},
        },
    }
    read_only = True

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        base = _dir_arg(args, ctx)
        ignore = _str_list(args, "ignore")
        rows: list[tuple[bool, str, str]] = []
        with os.scandir(base) as entries:
            for entry in entries:
                if entry.name == ".git" or any(fnmatch.fnmatch(entry.name, g) for g in ignore):
                    continue
                is_dir = entry.is_dir()
                label = entry.name + ("/" if is_dir else "")
                if entry.is_symlink():
                    label += f" -> {os.readlink(entry.path)}"
                rows.append((not is_dir, entry.name.lower(), label))
        rows.sort()
        rel = ctx.relative(base)
        if not rows:
            return ToolResult(f"{rel}/ is empty", metadata={"path": rel, "count": 0})
        lines = [label for _, _, label in rows[:LIST_CAP]]
        text = f"{rel}/\n" + "\n".join(lines)
        if len(rows) > LIST_CAP:
            text += (f"\n\n({len(rows)} entries; showing the first {LIST_CAP}; use glob or "
                     "ignore to narrow)")
        return ToolResult(cap_output(text, ctx.limits.output_bytes),
                          metadata={"path": rel, "count": len(rows)})


# ---------------------------------------------------------------- glob


class GlobTool(Tool):
    name = "glob"
    description = (
        "Find files by glob pattern relative to `path` (default: workspace root), e.g. "
        "`**/*.py`, `src/**/test_*.{ts,tsx}`. `*` stays within a directory; `**/` spans "
        "directories. Honours .gitignore in a git repo. Newest files first, up to `limit` (200)."
    )
    parameters = {
        "type": "object",
        "properties": {
            "pattern": {"type": "string", "description": "glob, e.g. '**/*.py'"},
            "path": {"type": "string", "description": "directory to search (default '.')"},
            "limit": {"type": "integer", "description": "max results (default 200)"},
        },
        "required": ["pattern"],
    }
    read_only = True

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        pattern = require(args, "pattern").strip()
        if not pattern:
            raise ToolError("argument 'pattern' is empty; pass a glob such as '**/*.py'")
        base = _dir_arg(args, ctx)
        limit = int_arg(args, "limit", 200, minimum=1)
        pattern = pattern.removeprefix("./")
        if os.path.isabs(pattern):
            try:
                pattern = Path(pattern).relative_to(base).as_posix()
            except ValueError:
                raise ToolError(f"pattern {pattern!r} is absolute and not under "
                                f"{ctx.relative(base)}; give a pattern relative to path")
        regex = glob_regex(pattern)
        files, used_git = candidate_files(base, ctx)
        matches = [n for n in files if regex.match(n)]
        stamped = []
        for name in matches:
            try:
                mtime = (base / name).stat().st_mtime
            except OSError:
                mtime = 0.0
            stamped.append((-mtime, name))
        stamped.sort()
        shown = [ctx.relative(base / name) for _, name in stamped[:limit]]
        meta = {"count": len(matches), "gitignore": used_git}
        if not shown:
            hint = ""
            if "/" not in pattern and "**" not in pattern:
                hint = f"; '{pattern}' only matches at the top level, try '**/{pattern}'"
            return ToolResult(f"no files match {pattern!r} under {ctx.relative(base)}/{hint}",
                              metadata=meta)
        text = "\n".join(shown)
        if len(matches) > limit:
            text += (f"\n\n({len(matches)} files match; showing the {limit} newest; raise limit "
                     "or use a narrower pattern)")
        return ToolResult(cap_output(text, ctx.limits.output_bytes, "use a narrower pattern"),
                          metadata=meta)


# ---------------------------------------------------------------- tree


class TreeTool(Tool):
    name = "tree"
    description = (
        "Show the directory tree under `path` (default: workspace root) down to `depth` levels "
        "(default 3). Honours .gitignore in a git repo; hidden entries only with show_hidden; "
        "file sizes with show_size. Deeper directories show how many files they hold."
    )
    parameters = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "directory (default '.')"},
            "depth": {"type": "integer", "description": "levels to show (default 3)"},
            "show_hidden": {"type": "boolean", "description": "include dot files (false)"},
            "show_size": {"type": "boolean", "description": "show file sizes (false)"},
        },
    }
    read_only = True

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        base = _dir_arg(args, ctx)
        depth = int_arg(args, "depth", 3, minimum=1)
        hidden = bool_arg(args, "show_hidden")
        sizes = bool_arg(args, "show_size")
        files, _ = candidate_files(base, ctx)
        root: dict[str, Any] = {}
        for name in files:
            parts = name.split("/")
            if not hidden and any(p.startswith(".") for p in parts):
                continue
            node = root
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = None
        lines = [f"{ctx.relative(base)}/"]
        state = {"count": 0, "cut": False}
        _render(root, base, "", 1, depth, sizes, lines, state)
        text = "\n".join(lines)
        if state["cut"]:
            text += (f"\n\n(tree cut at {TREE_CAP} entries; use a smaller depth or a "
                     "subdirectory path)")
        return ToolResult(cap_output(text, ctx.limits.output_bytes),
                          metadata={"entries": state["count"], "truncated": state["cut"]})


def _file_total(node: dict[str, Any]) -> int:
    return sum(1 if child is None else _file_total(child) for child in node.values())


def _render(node: dict[str, Any], path: Path, prefix: str, level: int, depth: int,
            sizes: bool, lines: list[str], state: dict[str, Any]) -> None:
    names = sorted(node, key=lambda n: (node[n] is None, n.lower()))
    for index, name in enumerate(names):
        if state["count"] >= TREE_CAP:
            state["cut"] = True
            return
        state["count"] += 1
        last = index == len(names) - 1
        branch = "└── " if last else "├── "
        child = node[name]
        if child is None:
            label = name
            if sizes:
                try:
                    label += f" ({human_size((path / name).stat().st_size)})"
                except OSError:
                    pass
            lines.append(prefix + branch + label)
        elif level >= depth:
            lines.append(f"{prefix}{branch}{name}/ ({_file_total(child)} files)")
        else:
            lines.append(f"{prefix}{branch}{name}/")
            _render(child, path / name, prefix + ("    " if last else "│   "), level + 1, depth,
                    sizes, lines, state)


# ---------------------------------------------------------------- file_info


class FileInfoTool(Tool):
    name = "file_info"
    description = (
        "Facts about a path without reading it: type (text/binary/dir/symlink), size, line "
        "count for text, permissions, modification time, and whether git tracks it."
    )
    parameters = {
        "type": "object",
        "properties": {"path": {"type": "string", "description": "file or directory"}},
        "required": ["path"],
    }
    read_only = True

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        raw = require(args, "path")
        path = ctx.resolve_path(raw)
        literal = _literal_path(raw, ctx)
        if not path.exists() and not literal.is_symlink():
            raise missing_file_error(path, ctx)
        info: dict[str, Any] = {"path": ctx.relative(literal)}
        if literal.is_symlink():
            info["type"] = "symlink"
            info["target"] = os.readlink(literal)
            if not path.exists():
                info["target_exists"] = False
                return _info_result(info)
            info["target_type"] = _kind(path)
        else:
            info["type"] = _kind(path)
        st = path.stat()
        info["size"] = st.st_size
        if info.get("target_type", info["type"]) == "text":
            info["lines"] = count_lines(path, ctx)
        elif path.is_dir():
            info["entries"] = len(os.listdir(path))
        kind = info.get("target_type", info["type"])
        if kind not in ("text", "dir"):
            with path.open("rb") as handle:
                info["binary_type"] = binary_kind(handle.read(SNIFF_BYTES), path)
        info["mode"] = f"{stat.S_IMODE(st.st_mode):04o} ({stat.filemode(st.st_mode)})"
        info["mtime"] = datetime.fromtimestamp(st.st_mtime).astimezone().isoformat("T", "seconds")
        info["is_git_tracked"] = _git_tracked(path, ctx)
        return _info_result(info)


def _kind(path: Path) -> str:
    if path.is_dir():
        return "dir"
    if not path.is_file():
        return "special"
    with path.open("rb") as handle:
        return "text" if binary_kind(handle.read(SNIFF_BYTES), path) is None else "binary"


def _git_tracked(path: Path, ctx: ToolContext) -> bool | None:
    cwd = path if path.is_dir() else path.parent
    done = run_git(["ls-files", "--error-unmatch", "--", str(path)], cwd, ctx)
    if done is None:
        return None
    return done.returncode == 0


def _info_result(info: dict[str, Any]) -> ToolResult:
    text = "\n".join(f"{key}: {value}" for key, value in info.items())
    return ToolResult(text, metadata=info)


# ---------------------------------------------------------------- head_tail


class HeadTailTool(Tool):
    name = "head_tail"
    description = (
        "Show the first `head` (20) and last `tail` (20) lines of a text file, numbered, with "
        "the total line count; the tail is read from the end, so it is cheap for huge logs."
    )
    parameters = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "text file"},
            "head": {"type": "integer", "description": "lines from the start (default 20)"},
            "tail": {"type": "integer", "description": "lines from the end (default 20)"},
        },
        "required": ["path"],
    }
    read_only = True

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        path = open_text_file(require(args, "path"), ctx)
        head = int_arg(args, "head", 20)
        tail = int_arg(args, "tail", 20)
        rel = ctx.relative(path)
        total = count_lines(path, ctx)
        if total == 0:
            return ToolResult(f"({rel} is empty)", metadata={"path": rel, "total_lines": 0})
        out: list[str] = []
        with path.open("rb") as handle:
            for number, text in enumerate(iter_lines(handle), start=1):
                if number > min(head, total):
                    break
                out.append(numbered(number, text))
        first_tail = max(total - tail + 1, head + 1)
        if first_tail <= total:
            if first_tail > head + 1:
                out.append(f"   ...\t({first_tail - head - 1} lines not shown)")
            for offset, text in enumerate(tail_lines(path, total - first_tail + 1)):
                out.append(numbered(first_tail + offset, text))
        text = f"{rel}: {total} lines\n" + "\n".join(out)
        return ToolResult(cap_output(text, ctx.limits.output_bytes, "use smaller head/tail"),
                          metadata={"path": rel, "total_lines": total})


def tail_lines(path: Path, count: int) -> list[str]:
    """The last ``count`` lines, found by reading blocks backwards from the end of the file."""
    if count <= 0:
        return []
    block = 1 << 16
    with path.open("rb") as handle:
        end = handle.seek(0, os.SEEK_END)
        data = b""
        pos = end
        while pos > 0:
            step = min(block, pos)
            pos -= step
            handle.seek(pos)
            data = handle.read(step) + data
            # count+1 newlines (ignoring a final one) guarantee `count` complete lines
            if data.count(b"\n", 0, len(data) - 1) >= count:
                break
    body = data[:-1] if data.endswith(b"\n") else data
    lines = body.split(b"\n")[-count:]
    return [_cut(line.rstrip(b"\r").decode("utf-8", "replace")) for line in lines]


# ---------------------------------------------------------------- diff


class DiffTool(Tool):
    name = "diff"
    description = (
        "Compare two files (file1, file2: unified diff) or show git changes (git=true: the "
        "working tree against the index, staged=true for the index against HEAD; `path` "
        "narrows to a file or directory)."
    )
    parameters = {
        "type": "object",
        "properties": {
            "file1": {"type": "string", "description": "old file"},
            "file2": {"type": "string", "description": "new file"},
            "git": {"type": "boolean", "description": "show `git diff` of the workspace"},
            "staged": {"type": "boolean", "description": "with git: staged changes (--cached)"},
            "path": {"type": "string", "description": "with git: limit to this path"},
            "context": {"type": "integer", "description": "context lines (default 3)"},
        },
    }
    read_only = True

    def subject(self, args: dict[str, Any]) -> str | None:
        value = args.get("file1") or args.get("path")
        return value if isinstance(value, str) else None

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        context = int_arg(args, "context", 3)
        if bool_arg(args, "git"):
            return self._git(args, ctx, context)
        if not args.get("file1") or not args.get("file2"):
            raise ToolError("pass file1 and file2 to compare two files, or git=true for the "
                            "changes in the workspace")
        first = open_text_file(require(args, "file1"), ctx)
        second = open_text_file(require(args, "file2"), ctx)
        a = first.read_text("utf-8", "replace").splitlines(keepends=True)
        b = second.read_text("utf-8", "replace").splitlines(keepends=True)
        lines = list(difflib.unified_diff(a, b, ctx.relative(first), ctx.relative(second),
                                          n=context))
        if not lines:
            return ToolResult("the files are identical", metadata={"identical": True})
        text = "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                       for line in lines)
        return ToolResult(cap_output(text.rstrip("\n"), ctx.limits.output_bytes,
                                     "compare smaller files or use head_tail"),
                          metadata={"identical": False})

    def _git(self, args: dict[str, Any], ctx: ToolContext, context: int) -> ToolResult:
        staged = bool_arg(args, "staged")
        cmd = ["diff", "--no-color", "--no-ext-diff", f"-U{context}"]
        if staged:
            cmd.append("--cached")
        raw = args.get("path")
        if raw:
            target = ctx.resolve_path(raw)
            cmd += ["--", str(target)]
        done = run_git(cmd, ctx.workspace, ctx)
        if done is None:
            raise ToolError("git is not installed; compare files with file1/file2 instead")
        if done.returncode != 0:
            err = done.stderr.decode("utf-8", "replace").strip()
            if "not a git repository" in err.lower():
                raise ToolError("the workspace is not a git repository; use file1/file2")
            raise ToolError(f"git diff failed: {err}")
        text = done.stdout.decode("utf-8", "replace").rstrip("\n")
        if not text:
            return ToolResult("no staged changes" if staged else "no unstaged changes",
                              metadata={"empty": True})
        return ToolResult(cap_output(text, ctx.limits.output_bytes, "pass path to narrow"),
                          metadata={"empty": False})
