"""The ``patch`` tool: apply a unified diff (git-style or plain) to the workspace.

A pure-Python parser and applier rather than ``patch``/``git apply``: those may be missing,
write outside the workspace, or half-apply. Here every file's result is computed in memory
first (hunks found by their context, searching nearby when the line numbers drifted, then
ignoring trailing whitespace); only when every hunk of every file applies is anything written.
A failure names the file and hunk and shows the expected lines next to the actual ones.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codetether.core.fsutil import atomic_write_text
from codetether.tools.base import Tool, ToolContext, ToolError, ToolResult, cap_output, require
from codetether.tools.files_read import SNIFF_BYTES, binary_kind, bool_arg, numbered

DEV_NULL = "/dev/null"
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "a": "\a", "b": "\b", "f": "\f",
            "r": "\r", "v": "\v"}


# ---------------------------------------------------------------- model


@dataclass
class Hunk:
    old_start: int
    old_len: int
    new_start: int
    new_len: int
    header: str
    lines: list[tuple[str, str]] = field(default_factory=list)  # (" " | "-" | "+", text)
    old_no_newline: bool = False  # "\ No newline at end of file" after the old side's last line
    new_no_newline: bool = False

    def old_lines(self) -> list[str]:
        return [text for tag, text in self.lines if tag != "+"]

    def new_lines(self) -> list[str]:
        return [text for tag, text in self.lines if tag != "-"]


@dataclass
class FilePatch:
    old_path: str | None = None  # None: /dev/null (a new file)
    new_path: str | None = None  # None: /dev/null (a deletion)
    hunks: list[Hunk] = field(default_factory=list)
    new_mode: int | None = None
    binary: bool = False
    git_paths: tuple[str, str] | None = None

    @property
    def target(self) -> str:
        return self.new_path or self.old_path or ""


# ---------------------------------------------------------------- parser


def _unquote(raw: str) -> str:
    """A path as git writes it: plain, or C-quoted ("a/caf\\303\\251") for unusual names."""
    raw = raw.strip()
    if not (len(raw) >= 2 and raw[0] == raw[-1] == '"'):
        return raw
    out = bytearray()
    body, i = raw[1:-1], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in "01234567" and re.match(r"[0-7]{3}", body[i + 1:i + 4]):
                out.append(int(body[i + 1:i + 4], 8))
                i += 4
                continue
            out += _ESCAPES.get(nxt, nxt).encode()
            i += 2
            continue
        out += ch.encode()
        i += 1
    return out.decode("utf-8", "replace")


def _header_path(raw: str, prefix: str) -> str | None:
    """The path of a ``---``/``+++`` line: timestamp dropped, a/ or b/ stripped, /dev/null None."""
    raw = raw.rstrip("\r\n")
    raw = raw.split("\t", 1)[0] if not raw.startswith('"') else raw
    path = _unquote(raw)
    if path == DEV_NULL:
        return None
    if path.startswith(prefix):
        path = path[len(prefix):]
    return path


def _git_header_paths(line: str) -> tuple[str, str] | None:
    rest = line[len("diff --git "):].rstrip("\r\n")
    if rest.startswith('"'):
        match = re.match(r'("(?:[^"\\]|\\.)*")\s+(.*)$', rest)
        if not match:
            return None
        a, b = _unquote(match.group(1)), _unquote(match.group(2))
    else:
        # "a/x b/x": split where the second half starts with b/ (names may contain spaces)
        half = rest.find(" b/")
        if half == -1:
            return None
        a, b = rest[:half], _unquote(rest[half + 1:])
    return a.removeprefix("a/"), b.removeprefix("b/")


def parse_patch(text: str) -> list[FilePatch]:
    """The files of a unified diff; ``ToolError`` when there are none or a hunk is broken."""
    if "*** Begin Patch" in text:
        raise ToolError("this is the '*** Begin Patch' format; give a unified diff "
                        "('--- a/file', '+++ b/file', '@@ -1,3 +1,4 @@' hunks) instead")
    lines = text.replace("\r\n", "\n").split("\n") if "\r\n" in text and \
        text.count("\r\n") == text.count("\n") else text.split("\n")
    files: list[FilePatch] = []
    current: FilePatch | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("diff --git "):
            current = FilePatch(git_paths=_git_header_paths(line))
            files.append(current)
            if current.git_paths:
                current.old_path, current.new_path = current.git_paths
        elif current is not None and not current.hunks and _extended(line, current):
            pass
        elif line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            if current is None or current.hunks or (current.git_paths is None and
                                                    current.old_path is not None):
                current = FilePatch()
                files.append(current)
            current.old_path = _header_path(line[4:], "a/")
            current.new_path = _header_path(lines[i + 1][4:], "b/")
            i += 1
        elif line.startswith("@@"):
            if current is None:
                raise ToolError("the patch has a hunk (@@ ...) before any file header; start "
                                "each file with '--- a/path' and '+++ b/path'")
            i = _parse_hunk(lines, i, current)
            continue
        i += 1
    files = [f for f in files if f.hunks or f.old_path != f.new_path or f.new_mode or f.binary
             or f.old_path is None or f.new_path is None]
    if not files:
        raise ToolError("no file changes found in the patch; expected a unified diff with "
                        "'--- a/path', '+++ b/path' and '@@ -l,s +l,s @@' hunks")
    return files


def _extended(line: str, current: FilePatch) -> bool:
    """git's extended header lines between ``diff --git`` and the first hunk."""
    if line.startswith(("new file mode ", "new mode ")):
        current.new_mode = int(line.split()[-1], 8) & 0o777
        if line.startswith("new file"):
            current.old_path = None
        return True
    if line.startswith("deleted file mode "):
        current.new_path = None
        return True
    if line.startswith("rename from "):
        current.old_path = _unquote(line[len("rename from "):])
        return True
    if line.startswith("rename to "):
        current.new_path = _unquote(line[len("rename to "):])
        return True
    if line.startswith(("Binary files ", "GIT binary patch")):
        current.binary = True
        return True
    return line.startswith(("index ", "old mode ", "similarity index ", "dissimilarity index ",
                            "copy from ", "copy to "))


def _parse_hunk(lines: list[str], i: int, current: FilePatch) -> int:
    """Read the hunk at ``lines[i]``; returns the index of the first line after it.

    The counts in the header decide where it ends (so a removed line that reads "-- x" is not
    taken for a file header). Without usable counts (a hand-written "@@ @@") the hunk runs
    while lines look like hunk lines.
    """
    header = lines[i]
    match = _HUNK.match(header)
    if match:
        old_start, new_start = int(match.group(1)), int(match.group(3))
        old_len = int(match.group(2)) if match.group(2) is not None else 1
        new_len = int(match.group(4)) if match.group(4) is not None else 1
    else:
        old_start = new_start = 0
        old_len = new_len = -1
    hunk = Hunk(old_start, old_len, new_start, new_len, header.rstrip())
    current.hunks.append(hunk)
    counted = old_len >= 0
    need_old, need_new = old_len, new_len
    i += 1
    while i < len(lines):
        line = lines[i]
        if counted and need_old <= 0 and need_new <= 0:
            if line.startswith("\\"):
                _no_newline(hunk)
                i += 1
                continue
            if not _more_hunk_lines(lines, i):
                break
            counted = False  # the counts were too small: read on and recount
        if line.startswith("\\"):
            _no_newline(hunk)
        elif line.startswith(("@@", "diff --git ")) or (
                line.startswith("--- ") and i + 1 < len(lines) and
                lines[i + 1].startswith("+++ ")) or (
                not counted and line == "" and _only_blank_or_header_after(lines, i)):
            break
        elif line[:1] in (" ", "-", "+") or line == "":
            tag = line[:1] or " "
            hunk.lines.append((tag, line[1:]))
            if tag != "+":
                need_old -= 1
            if tag != "-":
                need_new -= 1
        else:
            break
        i += 1
    if not counted or need_old > 0 or need_new > 0:
        # hand-written counts that are off, or none: trust the lines that are there
        hunk.old_len, hunk.new_len = len(hunk.old_lines()), len(hunk.new_lines())
    return i


def _more_hunk_lines(lines: list[str], i: int) -> bool:
    """After a hunk's counted lines: does a line that can only belong to it follow?
    (Not a header, nor the "-- " that ends a format-patch mail.)"""
    line = lines[i]
    if line[:1] not in (" ", "+", "-") or line.rstrip() == "--":
        return False
    return not (line.startswith("--- ") and i + 1 < len(lines) and
                lines[i + 1].startswith("+++ "))


def _only_blank_or_header_after(lines: list[str], i: int) -> bool:
    for line in lines[i:]:
        if line.startswith(("@@", "diff --git ", "--- ")):
            return True
        if line != "":
            return False
    return True


def _no_newline(hunk: Hunk) -> None:
    if not hunk.lines:
        return
    tag = hunk.lines[-1][0]
    if tag in (" ", "-"):
        hunk.old_no_newline = True
    if tag in (" ", "+"):
        hunk.new_no_newline = True


# ---------------------------------------------------------------- applier


@dataclass
class Outcome:
    path: Path
    rel: str
    action: str  # "modify" | "create" | "delete" | "rename"
    before: str | None
    after: str | None
    mode: int | None
    added: int = 0
    removed: int = 0
    notes: list[str] = field(default_factory=list)
    source: Path | None = None  # a rename's old path (deleted after the write)


def _split_text(text: str) -> tuple[list[str], bool]:
    if text == "":
        return [], True
    if text.endswith("\n"):
        return text[:-1].split("\n"), True
    return text.split("\n"), False


def _find(lines: list[str], want: list[str], expected: int, floor: int) -> tuple[int, str] | None:
    """Where ``want`` occurs in ``lines`` at or after ``floor``, nearest to ``expected``:
    exactly first, then ignoring trailing whitespace, then ignoring all whitespace runs."""
    if not want:
        return min(max(expected, floor), len(lines)), "exact"
    last = len(lines) - len(want)
    if last < floor:
        return None
    expected = min(max(expected, floor), last)
    order = [expected]
    for delta in range(1, max(expected - floor, last - expected) + 1):
        if expected - delta >= floor:
            order.append(expected - delta)
        if expected + delta <= last:
            order.append(expected + delta)
    for how, norm in (("exact", None), ("trailing whitespace ignored", str.rstrip),
                      ("whitespace ignored", lambda s: " ".join(s.split()))):
        target = want if norm is None else [norm(x) for x in want]
        for pos in order:
            window = lines[pos:pos + len(want)]
            if (window if norm is None else [norm(x) for x in window]) == target:
                return pos, how
    return None


def apply_hunks(text: str, patch: FilePatch, rel: str) -> tuple[str, list[str]]:
    """``text`` with every hunk of ``patch`` applied, and notes on drift/fuzz for the model."""
    crlf = "\r\n" in text and text.count("\r\n") == text.count("\n")
    if crlf:
        text = text.replace("\r\n", "\n")
    lines, trailing = _split_text(text)
    out: list[str] = []
    cursor = drift = 0
    notes: list[str] = []
    for number, hunk in enumerate(patch.hunks, start=1):
        old = [x.rstrip("\r") for x in hunk.old_lines()] if crlf else hunk.old_lines()
        start = hunk.old_start - 1 if hunk.old_len else hunk.old_start
        found = _find(lines, old, start + drift, cursor)
        if found is None:
            raise _hunk_error(rel, number, len(patch.hunks), hunk, lines, start + drift, old)
        pos, how = found
        if pos != start + drift or how != "exact":
            where = f"at line {pos + 1} (offset {pos - start:+d})" if pos != start else ""
            notes.append(f"{rel}: hunk {number} applied {where}"
                         f"{' with ' + how if how != 'exact' else ''}".rstrip())
        drift = pos - start
        out.extend(lines[cursor:pos])
        at = pos
        for tag, body in hunk.lines:
            body = body.rstrip("\r") if crlf else body
            if tag == " ":
                out.append(lines[at])
                at += 1
            elif tag == "-":
                at += 1
            else:
                out.append(body)
        cursor = at
        if hunk.new_no_newline:
            trailing = False
        elif cursor == len(lines) and (hunk.old_no_newline or not lines) and hunk.new_len:
            trailing = True
    out.extend(lines[cursor:])
    result = "\n".join(out) + ("\n" if trailing and out else "")
    return (result.replace("\n", "\r\n") if crlf else result), notes


def _hunk_error(rel: str, number: int, total: int, hunk: Hunk, lines: list[str], at: int,
                old: list[str]) -> ToolError:
    at = max(min(at, len(lines) - 1), 0)
    expected = "\n".join(f"  {x}" for x in old[:20]) or "  (nothing)"
    actual = "\n".join(numbered(at + k + 1, lines[at + k])
                       for k in range(min(len(old) or 1, 20)) if at + k < len(lines))
    return ToolError(
        f"{rel}: hunk {number} of {total} ({hunk.header}) does not apply; its context and "
        f"removed lines were not found near line {at + 1}.\nexpected:\n{expected}\n"
        f"actual (file lines {at + 1}...):\n{actual or '  (end of file)'}\n"
        "Read the file again and rebuild the hunk from its current content.",
        file=rel, hunk=number)


def _read_text(path: Path, rel: str) -> str:
    data = path.read_bytes()
    kind = binary_kind(data[:SNIFF_BYTES], path)
    if kind is not None:
        raise ToolError(f"{rel} is a binary file ({kind}); the patch tool only changes text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ToolError(f"{rel} is not valid UTF-8; the patch tool only changes UTF-8 text")


def plan_patch(files: list[FilePatch], ctx: ToolContext) -> list[Outcome]:
    """Every file's new content, in memory; raises before anything is written."""
    state: dict[Path, str | None] = {}  # content as changed by earlier file patches
    outcomes: list[Outcome] = []
    for patch in files:
        if patch.binary:
            raise ToolError(f"{patch.target}: binary patches are not supported; use write")
        source = ctx.resolve_path(patch.old_path, write=True) if patch.old_path else None
        dest = ctx.resolve_path(patch.new_path, write=True) if patch.new_path else None
        path = dest or source
        assert path is not None
        rel = ctx.relative(path)

        def current(p: Path, name: str) -> str | None:
            if p in state:
                return state[p]
            if p.is_dir():
                raise ToolError(f"{name} is a directory")
            return _read_text(p, name) if p.exists() else None

        if source is None:
            existing = current(path, rel)
            if existing:
                raise ToolError(f"{rel}: the patch creates this file but it already exists; "
                                "patch it as a change (--- a/path) or delete it first")
            before = None
        else:
            before = current(source, ctx.relative(source))
            if before is None:
                raise ToolError(f"{ctx.relative(source)}: the patch changes this file but it does"
                                " not exist; for a new file use '--- /dev/null'")
        after, notes = apply_hunks(before or "", patch, rel)
        if dest is None:
            if after.strip():
                raise ToolError(f"{rel}: the patch deletes this file but the file has content the"
                                " patch does not remove; read it and rebuild the patch")
            action, after_text = "delete", None
        elif source is None:
            action, after_text = "create", after
        elif source != dest:
            action, after_text = "rename", after
            if current(dest, rel) is not None:
                raise ToolError(f"{rel}: a rename target that already exists")
        else:
            action, after_text = "modify", after
        mode = patch.new_mode
        if mode is None and source is not None and source.exists():
            mode = source.stat().st_mode & 0o777
        added = sum(1 for h in patch.hunks for t, _ in h.lines if t == "+")
        removed = sum(1 for h in patch.hunks for t, _ in h.lines if t == "-")
        outcomes.append(Outcome(path, rel, action, before, after_text, mode, added, removed, notes,
                                source if action == "rename" else None))
        state[path] = after_text
        if action == "rename" and source is not None:
            state[source] = None
    return outcomes


def write_outcomes(outcomes: list[Outcome], ctx: ToolContext) -> None:
    """Write them all; on a failure, restore what was already changed and report it."""
    undo: list[tuple[Path, str | None, int | None]] = []
    try:
        for outcome in outcomes:
            if ctx.cancel.cancelled:
                raise ToolError("cancelled")
            targets = [(outcome.path, outcome.after)]
            if outcome.source is not None:
                targets.append((outcome.source, None))
            for path, content in targets:
                prior = _read_text(path, outcome.rel) if path.is_file() else None
                mode = path.stat().st_mode & 0o777 if path.exists() else None
                if content is None:
                    if path.exists():
                        os.unlink(path)
                else:
                    atomic_write_text(path, content, outcome.mode)
                undo.append((path, prior, mode))  # atomic: a failed write changed nothing
    except (OSError, ToolError) as exc:
        for path, prior, mode in reversed(undo):
            try:
                if prior is None:
                    if path.exists():
                        os.unlink(path)
                else:
                    atomic_write_text(path, prior, mode)
            except OSError:
                pass
        raise ToolError(f"writing the patch failed ({exc}); every file was restored")


class PatchTool(Tool):
    name = "patch"
    description = (
        "Apply a unified diff (as `git diff` or `diff -u` print it) to files in the workspace: "
        "several files, new files ('--- /dev/null'), deletions ('+++ /dev/null'), renames. "
        "Hunks are located by their context lines, so slightly wrong line numbers are fine. "
        "All or nothing: if any hunk fails, no file changes. dry_run=true only reports."
    )
    parameters = {
        "type": "object",
        "properties": {
            "patch": {"type": "string", "description": "the unified diff text"},
            "dry_run": {"type": "boolean", "description": "check and report only (false)"},
        },
        "required": ["patch"],
    }

    def subject(self, args: dict[str, Any]) -> str | None:
        try:
            files = parse_patch(args.get("patch") or "")
        except ToolError:
            return None
        return files[0].target if files else None

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        text = _strip_fences(require(args, "patch"))
        dry_run = bool_arg(args, "dry_run")
        outcomes = plan_patch(parse_patch(text), ctx)
        if not dry_run:
            write_outcomes(outcomes, ctx)
        lines = []
        marks = {"modify": "M", "create": "A", "delete": "D", "rename": "R"}
        for o in outcomes:
            name = o.rel if o.source is None else f"{ctx.relative(o.source)} -> {o.rel}"
            lines.append(f"{marks[o.action]} {name} (+{o.added} -{o.removed})")
        notes = [n for o in outcomes for n in o.notes]
        head = ("dry run: the patch applies cleanly; it would change" if dry_run
                else "applied the patch to") + f" {len(outcomes)} file(s):"
        body = "\n".join([head, *lines, *([""] + notes if notes else [])])
        files = [{"path": o.rel, "action": o.action, "added": o.added, "removed": o.removed}
                 for o in outcomes]
        return ToolResult(cap_output(body, ctx.limits.output_bytes),
                          metadata={"files": files, "dry_run": dry_run})


def _strip_fences(text: str) -> str:
    """Models often wrap a diff in a ```diff fence; the fence lines are not part of it."""
    lines = text.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    if lines and lines[0].startswith("```"):
        lines.pop(0)
        while lines and not lines[-1].strip():
            lines.pop()
        if lines and lines[-1].startswith("```"):
            lines.pop()
    return "\n".join(lines) + "\n"
