"""grep and codesearch on real files and real git work trees."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from codetether.tools import search
from codetether.tools.base import ToolContext, ToolError
from codetether.tools.search import CodeSearchTool, GrepTool


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    return root


@pytest.fixture
def ctx(ws: Path, tmp_path: Path) -> ToolContext:
    return ToolContext(workspace=ws, data_dir=tmp_path / "data")


def write(root: Path, rel: str, text: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def grep(ctx: ToolContext, **args):
    return GrepTool().run(args, ctx)


def test_git_tree_respects_gitignore_and_includes_untracked(ws, ctx):
    git(ws, "init", "-q")
    write(ws, ".gitignore", "ignored/\n*.log\n")
    write(ws, "src/app.py", "def needle():\n    return 1\n")
    write(ws, "ignored/x.py", "needle here\n")
    write(ws, "debug.log", "needle in log\n")
    write(ws, "untracked.txt", "a needle too\n")
    git(ws, "add", "src/app.py", ".gitignore")

    result = grep(ctx, pattern="needle")

    assert result.success
    assert "src/app.py:1: def needle():" in result.output
    assert "untracked.txt:1: a needle too" in result.output
    assert "ignored/" not in result.output and "debug.log" not in result.output
    assert result.metadata["matches"] == 2 and result.metadata["files"] == 2


def test_ignored_directory_asked_for_explicitly_is_searched(ws, ctx):
    git(ws, "init", "-q")
    write(ws, ".gitignore", "vendor/\n")
    write(ws, "vendor/lib.py", "needle\n")
    assert "vendor/lib.py:1: needle" in grep(ctx, pattern="needle", path="vendor").output


def test_plain_walk_skips_generated_dirs_binary_and_huge_files(ws, ctx):
    write(ws, "keep.py", "needle = 1\n")
    for skipped in ("node_modules/m.js", ".venv/v.py", "__pycache__/c.py", "dist/d.js",
                    "build/b.js", ".git/config"):
        write(ws, skipped, "needle\n")
    write(ws, "blob.bin", b"needle\0\x01\x02")
    big = write(ws, "big.txt", "needle\n")
    with big.open("ab") as handle:
        handle.truncate(search.MAX_FILE_BYTES + 1)

    result = grep(ctx, pattern="needle")

    assert result.output.splitlines()[2:] == ["keep.py:1: needle = 1"]
    assert result.metadata["files"] == 1


def test_literal_regex_and_case(ws, ctx):
    write(ws, "a.txt", "value = a.b(c)\nvalue = axb(c)\nVALUE = 2\n")
    literal = grep(ctx, pattern="a.b(c)", is_regex=False)
    assert literal.metadata["matches"] == 1 and "a.txt:1:" in literal.output
    regex = grep(ctx, pattern=r"a.b\(c\)")
    assert regex.metadata["matches"] == 2
    assert grep(ctx, pattern="^value").metadata["matches"] == 2
    assert grep(ctx, pattern="^value", case_sensitive=False).metadata["matches"] == 3


def test_anchors_work_per_line_with_crlf_files(ws, ctx):
    write(ws, "win.txt", b"first line\r\nneedle at end\r\n")
    result = grep(ctx, pattern=r"end$")
    assert "win.txt:2: needle at end" in result.output
    assert grep(ctx, pattern=r"\Aneedle").metadata["matches"] == 1  # per line, like grep


def test_include_globs_string_list_and_braces(ws, ctx):
    for rel in ("a.py", "b.ts", "c.tsx", "d.md", "src/deep/e.py"):
        write(ws, rel, "needle\n")

    def files(include):
        out = grep(ctx, pattern="needle", include=include).output
        return sorted(line.split(":")[0] for line in out.splitlines()[2:] if line)

    assert files("*.py") == ["a.py", "src/deep/e.py"]
    assert files(["*.md", "*.ts"]) == ["b.ts", "d.md"]
    assert files("*.{ts,tsx}") == ["b.ts", "c.tsx"]
    assert files("*.md,*.tsx") == ["c.tsx", "d.md"]
    assert files("src/**/*.py") == ["src/deep/e.py"]
    assert "No matches" in grep(ctx, pattern="needle", include="*.rs").output


def test_limit_footer_counts_hidden_matches_and_long_lines_are_cut(ws, ctx):
    write(ws, "many.txt", "".join(f"needle {i}\n" for i in range(30)))
    write(ws, "long.txt", "needle " + "x" * 1000 + "\n")
    result = grep(ctx, pattern="needle", limit=10)
    shown = [line for line in result.output.splitlines() if ": needle" in line]
    assert len(shown) == 10
    assert "21 more matches not shown; narrow the pattern or path" in result.output
    assert result.metadata["truncated"] and result.metadata["matches"] == 31
    long_line = grep(ctx, pattern="needle", path="long.txt").output.splitlines()[2]
    assert long_line.endswith("…[line cut]") and len(long_line) < 330


def test_newest_file_first(ws, ctx):
    old = write(ws, "old.txt", "needle\n")
    write(ws, "new.txt", "needle\n")
    os.utime(old, (1_000_000, 1_000_000))
    lines = [line for line in grep(ctx, pattern="needle").output.splitlines() if line][1:]
    assert lines == ["new.txt:1: needle", "old.txt:1: needle"]


def test_errors_bad_regex_missing_path_and_outside_workspace(ws, ctx, tmp_path):
    with pytest.raises(ToolError, match=r"invalid regular expression '\(unclosed'.*missing \)"):
        grep(ctx, pattern="(unclosed")
    with pytest.raises(ToolError, match="nope does not exist"):
        grep(ctx, pattern="x", path="nope")
    with pytest.raises(ToolError, match="outside the workspace"):
        grep(ctx, pattern="x", path=str(tmp_path))
    with pytest.raises(ToolError, match="pattern"):
        grep(ctx, pattern="")


def test_cancel_stops_between_files(ws, ctx):
    write(ws, "a.txt", "needle\n")
    ctx.cancel.cancel()
    result = grep(ctx, pattern="needle")
    assert result.metadata["cancelled"] and "cancelled" in result.output
    assert result.metadata["matches"] == 0


def test_timeout_between_files(ws, ctx, monkeypatch):
    for i in range(3):
        write(ws, f"f{i}.txt", "needle\n")

    class Clock:  # every look at the clock is ten seconds later
        now = 0.0

        @classmethod
        def monotonic(cls) -> float:
            cls.now += 10.0
            return cls.now

    monkeypatch.setattr(search, "time", Clock)
    result = grep(ctx, pattern="needle", timeout_secs=15)
    assert result.metadata["timed_out"]
    assert "timeout" in result.output and result.metadata["matches"] < 3


def test_codesearch_context_blocks(ws, ctx):
    lines = [f"line {i}" for i in range(1, 21)]
    lines[4] = "def Target():"   # line 5
    lines[6] = "target again"    # line 7: its window touches the first -> one block
    lines[15] = "TARGET end"     # line 16: separate block
    write(ws, "mod.py", "\n".join(lines) + "\n")
    write(ws, "other.txt", "target\n")

    result = CodeSearchTool().run({"pattern": "target", "file_pattern": "*.py",
                                   "context_lines": 1}, ctx)

    assert result.metadata["matches"] == 3 and "other.txt" not in result.output
    body = result.output.split("\n\n", 1)[1]
    assert body.split("\n--\n") == [
        "mod.py-4- line 4\nmod.py:5: def Target():\nmod.py-6- line 6\nmod.py:7: target again\n"
        "mod.py-8- line 8",
        "mod.py-15- line 15\nmod.py:16: TARGET end\nmod.py-17- line 17",
    ]


def test_codesearch_case_sensitive_and_limit(ws, ctx):
    write(ws, "a.py", "".join(f"Item {i}\nitem {i}\n" for i in range(10)))
    tool = CodeSearchTool()
    exact = tool.run({"pattern": "^Item", "case_sensitive": True, "context_lines": 0}, ctx)
    assert exact.metadata["matches"] == 10
    capped = tool.run({"pattern": "item", "limit": 3, "context_lines": 0}, ctx)
    assert capped.output.count("a.py:") == 3
    assert "17 more matches not shown" in capped.output
    with pytest.raises(ToolError, match="invalid regular expression"):
        tool.run({"pattern": "[z-a]"}, ctx)
