"""The read-only file tools against real files, real symlinks and a real git repo."""

from __future__ import annotations

import os
import subprocess

import pytest

from codetether.tools import registry
from codetether.tools.base import ToolContext, ToolError
from codetether.tools.files_read import (
    DiffTool,
    FileInfoTool,
    GlobTool,
    HeadTailTool,
    ListTool,
    ReadTool,
    TreeTool,
    glob_regex,
)


@pytest.fixture
def ctx(tmp_path):
    (tmp_path / "ws").mkdir()
    return ToolContext(workspace=tmp_path / "ws", data_dir=tmp_path / "data")


def git(ws, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                   cwd=ws, check=True, capture_output=True)


def write(ctx, rel, text):
    path = ctx.workspace / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_registry_names_resolve_to_these_classes():
    for name in ("read", "list", "glob", "tree", "file_info", "head_tail", "diff"):
        tool = registry.get(name)
        assert tool.name == name and tool.read_only


# ---------------------------------------------------------------- read


def test_read_numbers_lines_and_pages_with_a_footer(ctx):
    write(ctx, "a.txt", "".join(f"line {n}\n" for n in range(1, 11)))
    result = ReadTool().run({"path": "a.txt", "offset": 3, "limit": 4}, ctx)
    lines = result.output.split("\n")
    assert lines[0] == "     3\tline 3"
    assert lines[3] == "     6\tline 6"
    assert lines[-1] == "(file has 10 lines; showing 3-6; use offset=7 to read more)"
    assert result.metadata["total_lines"] == 10

    whole = ReadTool().run({"path": "a.txt"}, ctx).output
    assert whole.endswith("    10\tline 10") and "file has" not in whole


def test_read_cuts_long_lines_and_handles_crlf_and_no_final_newline(ctx):
    write(ctx, "long.txt", "x" * 5000 + "\nshort")
    (ctx.workspace / "crlf.txt").write_bytes(b"one\r\ntwo\r\n")
    out = ReadTool().run({"path": "long.txt"}, ctx).output
    first, second = out.split("\n")
    assert first.startswith("     1\t" + "x" * 2000 + "…") and "5000 chars" in first
    assert second == "     2\tshort"
    assert ReadTool().run({"path": "crlf.txt"}, ctx).output == "     1\tone\n     2\ttwo"


def test_read_huge_single_line_is_not_loaded_whole(ctx):
    (ctx.workspace / "min.js").write_bytes(b"a" * (3 * 1024 * 1024) + b"\nend\n")
    out = ReadTool().run({"path": "min.js"}, ctx).output
    assert "3145728 chars" in out and out.endswith("     2\tend")
    assert len(out) < 3000


def test_read_stops_at_the_output_budget_with_a_usable_footer(ctx):
    ctx.limits.output_bytes = 2000
    write(ctx, "big.txt", "".join(f"{n:05d} {'y' * 50}\n" for n in range(1, 501)))
    out = ReadTool().run({"path": "big.txt"}, ctx).output
    assert len(out.encode()) <= 2000
    last_shown = int(out.split("\n\n")[0].split("\n")[-1].split("\t")[0])
    assert f"(file has 500 lines; showing 1-{last_shown}; use offset={last_shown + 1}" in out


def test_read_refuses_binary_with_size_and_type(ctx):
    (ctx.workspace / "img.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    (ctx.workspace / "latin1.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    with pytest.raises(ToolError) as exc:
        ReadTool().run({"path": "img.png"}, ctx)
    assert "binary" in exc.value.message and "108 bytes" in exc.value.message
    assert "PNG image" in exc.value.message
    with pytest.raises(ToolError, match="binary"):
        ReadTool().run({"path": "latin1.txt"}, ctx)


def test_read_directory_and_missing_file_errors_say_what_to_do(ctx):
    (ctx.workspace / "src").mkdir()
    for name in ("config.py", "configs.py", "conftest.py", "unrelated.md"):
        write(ctx, f"src/{name}", "x\n")
    with pytest.raises(ToolError, match="directory; use the list"):
        ReadTool().run({"path": "src"}, ctx)
    with pytest.raises(ToolError) as exc:
        ReadTool().run({"path": "src/confg.py"}, ctx)
    assert "did you mean" in exc.value.message
    assert "src/config.py" in exc.value.message and "unrelated" not in exc.value.message
    with pytest.raises(ToolError, match="nor does its directory"):
        ReadTool().run({"path": "nowhere/x.py"}, ctx)


def test_read_offset_past_end_and_empty_file(ctx):
    write(ctx, "three.txt", "a\nb\nc\n")
    write(ctx, "empty.txt", "")
    with pytest.raises(ToolError, match="past the end.*3 lines"):
        ReadTool().run({"path": "three.txt", "offset": 9}, ctx)
    assert "is empty" in ReadTool().run({"path": "empty.txt"}, ctx).output


def test_paths_outside_the_workspace_are_refused(ctx, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret\n")
    os.symlink(secret, ctx.workspace / "link.txt")
    assert ctx.check_external is None
    for raw in (str(secret), "../secret.txt", "link.txt", "sub/../../secret.txt"):
        with pytest.raises(ToolError, match="outside the workspace"):
            ReadTool().run({"path": raw}, ctx)
    with pytest.raises(ToolError, match="outside the workspace"):
        ListTool().run({"path": ".."}, ctx)


def test_external_paths_go_through_check_external(ctx, tmp_path):
    outside = tmp_path / "other.txt"
    outside.write_text("hello\n")
    asked = []
    ctx.check_external = lambda path, write: asked.append((path, write))
    assert ReadTool().run({"path": str(outside)}, ctx).output == "     1\thello"
    assert asked == [(outside.resolve(), False)]


# ---------------------------------------------------------------- list / glob / tree


def test_list_one_level_dirs_first_skips_git_and_ignores(ctx):
    write(ctx, "b.py", "")
    write(ctx, "a.pyc", "")
    write(ctx, "pkg/inner.py", "")
    (ctx.workspace / ".git").mkdir()
    os.symlink("b.py", ctx.workspace / "alias.py")
    out = ListTool().run({"ignore": ["*.pyc"]}, ctx).output
    assert out.split("\n") == ["./", "pkg/", "alias.py -> b.py", "b.py"]


def test_list_caps_entries_with_a_note(ctx):
    for n in range(1005):
        (ctx.workspace / f"f{n:04d}").touch()
    out = ListTool().run({}, ctx).output
    assert "f0999" in out and "f1000" not in out
    assert "1005 entries; showing the first 1000" in out


def test_list_rejects_a_file(ctx):
    write(ctx, "a.txt", "x")
    with pytest.raises(ToolError, match="not a directory"):
        ListTool().run({"path": "a.txt"}, ctx)


def test_glob_regex_semantics():
    assert glob_regex("**/*.py").match("a.py") and glob_regex("**/*.py").match("x/y/a.py")
    assert not glob_regex("*.py").match("x/a.py")
    assert glob_regex("src/**/test_*.{ts,tsx}").match("src/a/b/test_x.tsx")
    assert not glob_regex("src/**/test_*.{ts,tsx}").match("src/a/test_x.js")
    assert glob_regex("file?.[ch]").match("file1.c") and not glob_regex("file?.[ch]").match("f.c")


def test_glob_newest_first_limit_and_walk_skips(ctx):
    for n, name in enumerate(["old.py", "pkg/mid.py", "new.py", "node_modules/dep.py",
                              ".venv/lib.py", "notes.txt"]):
        path = write(ctx, name, "x")
        os.utime(path, (1_000_000 + n, 1_000_000 + n))
    out = GlobTool().run({"pattern": "**/*.py"}, ctx)
    assert out.output.split("\n") == ["new.py", "pkg/mid.py", "old.py"]
    assert out.metadata["gitignore"] is False
    limited = GlobTool().run({"pattern": "**/*.py", "limit": 1}, ctx).output
    assert limited.startswith("new.py\n") and "3 files match; showing the 1 newest" in limited
    none = GlobTool().run({"pattern": "mid.py"}, ctx).output
    assert "no files match" in none and "'**/mid.py'" in none


def test_glob_and_tree_respect_gitignore_in_a_repo(ctx):
    ws = ctx.workspace
    git(ws, "init", "-q")
    write(ctx, ".gitignore", "build/\n*.log\n")
    write(ctx, "src/app.py", "x")
    write(ctx, "build/out.py", "x")
    write(ctx, "debug.log", "x")
    write(ctx, "untracked.py", "x")
    git(ws, "add", "src/app.py", ".gitignore")
    result = GlobTool().run({"pattern": "**/*"}, ctx)
    assert sorted(result.output.split("\n")) == [".gitignore", "src/app.py", "untracked.py"]
    assert result.metadata["gitignore"] is True
    sub = GlobTool().run({"pattern": "*.py", "path": "src"}, ctx).output
    assert sub == "src/app.py"
    tree = TreeTool().run({}, ctx).output
    assert "build" not in tree and "debug.log" not in tree and ".gitignore" not in tree
    assert "app.py" in tree
    assert ".gitignore" in TreeTool().run({"show_hidden": True}, ctx).output


def test_tree_depth_sizes_and_drawing(ctx):
    write(ctx, "a/b/c/deep.txt", "1234")
    write(ctx, "a/b/c/deeper.txt", "1")
    write(ctx, "a/top.txt", "12")
    write(ctx, "z.txt", "")
    write(ctx, ".hidden", "")
    out = TreeTool().run({"depth": 2, "show_size": True}, ctx).output
    assert out.split("\n") == [
        "./",
        "├── a/",
        "│   ├── b/ (2 files)",
        "│   └── top.txt (2B)",
        "└── z.txt (0B)",
    ]


# ---------------------------------------------------------------- file_info / head_tail


def test_file_info_text_binary_dir_symlink_and_git(ctx):
    ws = ctx.workspace
    git(ws, "init", "-q")
    script = write(ctx, "run.sh", "#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    (ws / "blob.bin").write_bytes(b"\x7fELF\x00\x01")
    os.symlink("run.sh", ws / "link")
    git(ws, "add", "run.sh")
    info = FileInfoTool().run({"path": "run.sh"}, ctx).metadata
    assert info["type"] == "text" and info["lines"] == 2 and info["size"] == 18
    assert info["mode"].startswith("0755") and info["is_git_tracked"] is True
    assert "T" in info["mtime"]
    blob = FileInfoTool().run({"path": "blob.bin"}, ctx).metadata
    assert blob["type"] == "binary" and blob["is_git_tracked"] is False
    assert "ELF" in blob["binary_type"]
    link = FileInfoTool().run({"path": "link"}, ctx).metadata
    assert link["type"] == "symlink" and link["target"] == "run.sh"
    assert link["target_type"] == "text"
    assert FileInfoTool().run({"path": "."}, ctx).metadata["type"] == "dir"


def test_head_tail_numbers_both_ends_and_reads_the_tail_from_the_end(ctx):
    write(ctx, "log.txt", "".join(f"entry {n}\n" for n in range(1, 100_001)))
    out = HeadTailTool().run({"path": "log.txt", "head": 2, "tail": 3}, ctx).output
    assert out.split("\n") == [
        "log.txt: 100000 lines",
        "     1\tentry 1",
        "     2\tentry 2",
        "   ...\t(99995 lines not shown)",
        " 99998\tentry 99998",
        " 99999\tentry 99999",
        "100000\tentry 100000",
    ]
    # a tail spanning several 64 KiB blocks read backwards
    ctx.limits.output_bytes = 1 << 20
    wide = HeadTailTool().run({"path": "log.txt", "head": 0, "tail": 9000}, ctx).output
    rows = wide.split("\n")
    assert rows[2] == " 91001\tentry 91001" and rows[-1] == "100000\tentry 100000"
    assert len(rows) == 9002


def test_head_tail_small_file_overlap_and_no_final_newline(ctx):
    write(ctx, "s.txt", "a\nb\nc")
    out = HeadTailTool().run({"path": "s.txt", "head": 2, "tail": 2}, ctx).output
    assert out.split("\n") == ["s.txt: 3 lines", "     1\ta", "     2\tb", "     3\tc"]


# ---------------------------------------------------------------- diff


def test_diff_two_files_and_identical(ctx):
    write(ctx, "a.txt", "one\ntwo\nthree\n")
    write(ctx, "b.txt", "one\n2\nthree")
    out = DiffTool().run({"file1": "a.txt", "file2": "b.txt"}, ctx).output
    assert out.startswith("--- a.txt\n+++ b.txt\n@@")
    assert out.endswith("-two\n-three\n+2\n+three\n\\ No newline at end of file")
    same = DiffTool().run({"file1": "a.txt", "file2": "a.txt"}, ctx)
    assert same.output == "the files are identical"
    with pytest.raises(ToolError, match="file1 and file2"):
        DiffTool().run({"file1": "a.txt"}, ctx)


def test_diff_git_unstaged_staged_and_path(ctx):
    ws = ctx.workspace
    git(ws, "init", "-q")
    write(ctx, "a.txt", "a\n")
    write(ctx, "b.txt", "b\n")
    git(ws, "add", ".")
    git(ws, "commit", "-qm", "init")
    write(ctx, "a.txt", "A\n")
    write(ctx, "b.txt", "B\n")
    git(ws, "add", "b.txt")
    unstaged = DiffTool().run({"git": True}, ctx).output
    assert "+A" in unstaged and "+B" not in unstaged
    staged = DiffTool().run({"git": True, "staged": True}, ctx).output
    assert "+B" in staged and "+A" not in staged
    assert DiffTool().run({"git": True, "path": "b.txt"}, ctx).output == "no unstaged changes"


def test_diff_git_output_is_capped_and_non_repo_is_an_error(ctx):
    ws = ctx.workspace
    with pytest.raises(ToolError, match="not a git repository"):
        DiffTool().run({"git": True}, ctx)
    git(ws, "init", "-q")
    write(ctx, "big.txt", "x\n")
    git(ws, "add", ".")
    git(ws, "commit", "-qm", "init")
    write(ctx, "big.txt", "".join(f"line {n}\n" for n in range(5000)))
    ctx.limits.output_bytes = 1000
    out = DiffTool().run({"git": True}, ctx).output
    assert "[output truncated" in out and "pass path to narrow" in out


def test_read_and_glob_stop_when_cancelled(ctx):
    write(ctx, "many.txt", "x\n" * 10_000)
    ctx.cancel.cancel()
    with pytest.raises(ToolError, match="cancelled"):
        ReadTool().run({"path": "many.txt"}, ctx)
    with pytest.raises(ToolError, match="cancelled"):
        GlobTool().run({"pattern": "**/*"}, ctx)
