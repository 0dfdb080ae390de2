"""The patch tool against diffs produced by real ``git diff``: take the diff of a change, put the
files back, apply the diff with our tool and compare with what git saw."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from codetether.tools import patch as patch_module
from codetether.tools import registry
from codetether.tools.base import ToolContext, ToolError
from codetether.tools.patch import PatchTool, parse_patch


@pytest.fixture
def ctx(tmp_path):
    (tmp_path / "ws").mkdir()
    return ToolContext(workspace=tmp_path / "ws", data_dir=tmp_path / "data")


def git(ws, *args) -> str:
    done = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com",
                           "-c", "core.autocrlf=false", *args],
                          cwd=ws, check=True, capture_output=True)
    return done.stdout.decode()


def snapshot(ws) -> dict[str, bytes]:
    out = {}
    for root, dirs, files in os.walk(ws):
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                out[os.path.relpath(path, ws)] = handle.read()
    return out


def roundtrip(ctx, before: dict[str, bytes], after: dict[str, bytes | None]) -> str:
    """Commit ``before``, make ``after`` (None deletes), take git's diff, restore, apply ours."""
    ws = ctx.workspace
    git(ws, "init", "-q")
    for rel, data in before.items():
        (ws / rel).parent.mkdir(parents=True, exist_ok=True)
        (ws / rel).write_bytes(data)
    git(ws, "add", "-A")
    git(ws, "commit", "-qm", "before")
    for rel, data in after.items():
        if data is None:
            (ws / rel).unlink()
        else:
            (ws / rel).parent.mkdir(parents=True, exist_ok=True)
            (ws / rel).write_bytes(data)
    git(ws, "add", "-A")
    diff = git(ws, "diff", "--cached", "--no-renames", "--no-color")
    expected = snapshot(ws)
    git(ws, "reset", "-q", "--hard")
    git(ws, "clean", "-qfd")
    assert snapshot(ws) == before
    result = PatchTool().run({"patch": diff}, ctx)
    assert result.success
    assert snapshot(ws) == expected
    return diff


def lines(n: int, fmt: str = "line {}") -> bytes:
    return "".join(fmt.format(i) + "\n" for i in range(1, n + 1)).encode()


def test_registry_name_resolves():
    assert registry.get("patch").name == "patch" and not registry.get("patch").read_only


def test_git_diff_multiple_hunks(ctx):
    before = lines(60)
    after = before.replace(b"line 3\n", b"line three\n").replace(b"line 30\n", b"")
    after = after.replace(b"line 55\n", b"line 55\nextra a\nextra b\n")
    diff = roundtrip(ctx, {"f.txt": before}, {"f.txt": after})
    assert diff.count("@@ -") == 3


def test_git_diff_multi_file_add_and_delete(ctx):
    before = {"src/a.py": lines(10), "src/b.py": lines(5, "b{}"), "gone.txt": b"bye\n"}
    after = {"src/a.py": lines(10).replace(b"line 5", b"LINE 5"),
             "src/b.py": lines(5, "b{}") + b"b6\n",
             "gone.txt": None,
             "new/dir/fresh.md": b"# fresh\n\ntext\n"}
    diff = roundtrip(ctx, before, after)
    assert "new file mode" in diff and "deleted file mode" in diff


def test_git_diff_no_newline_at_end_of_file_both_ways(ctx):
    before = {"drop.txt": b"a\nb\nc\n", "add.txt": b"x\ny", "keep.txt": b"p\nq"}
    after = {"drop.txt": b"a\nb\nC", "add.txt": b"x\ny\nz\n", "keep.txt": b"p\nQ"}
    diff = roundtrip(ctx, before, after)
    assert diff.count("\\ No newline at end of file") == 4


def test_git_diff_new_empty_file_and_executable_new_file(ctx):
    ws = ctx.workspace
    git(ws, "init", "-q")
    (ws / "keep").write_text("k\n")
    git(ws, "add", "-A")
    git(ws, "commit", "-qm", "base")
    (ws / "empty.txt").touch()
    (ws / "tool.sh").write_text("#!/bin/sh\necho hi\n")
    (ws / "tool.sh").chmod(0o755)
    git(ws, "add", "-A")
    diff = git(ws, "diff", "--cached")
    git(ws, "reset", "-q", "--hard")
    git(ws, "clean", "-qfd")
    PatchTool().run({"patch": diff}, ctx)
    assert (ws / "empty.txt").read_bytes() == b""
    assert (ws / "tool.sh").read_text() == "#!/bin/sh\necho hi\n"
    assert stat.S_IMODE((ws / "tool.sh").stat().st_mode) == 0o755


def test_git_diff_of_a_crlf_file(ctx):
    before = {"win.txt": b"one\r\ntwo\r\nthree\r\n"}
    after = {"win.txt": b"one\r\n2\r\nthree\r\nfour\r\n"}
    roundtrip(ctx, before, after)


def test_drifted_line_numbers_apply_with_offset_and_note(ctx):
    ws = ctx.workspace
    (ws / "f.txt").write_bytes(b"new top 1\nnew top 2\n" + lines(20))
    diff = ("--- a/f.txt\n+++ b/f.txt\n@@ -9,3 +9,3 @@\n line 9\n-line 10\n+line ten\n"
            " line 11\n")
    result = PatchTool().run({"patch": diff}, ctx)
    assert b"line 9\nline ten\nline 11\n" in (ws / "f.txt").read_bytes()
    assert "hunk 1 applied at line 11 (offset +2)" in result.output


def test_plain_diff_wrong_counts_trailing_whitespace_and_fence(ctx):
    ws = ctx.workspace
    (ws / "g.py").write_text("def f():\n    return 1   \n\nprint(f())\n")
    # hand-written: counts too small, trailing spaces lost, wrapped in a ```diff fence
    diff = ("```diff\n--- g.py\n+++ g.py\n@@ -1,1 +1,1 @@\n def f():\n-    return 1\n"
            "+    return 2\n \n print(f())\n```\n")
    result = PatchTool().run({"patch": diff}, ctx)
    assert (ws / "g.py").read_text() == "def f():\n    return 2\n\nprint(f())\n"
    assert "trailing whitespace ignored" in result.output


def test_failed_hunk_changes_nothing_and_shows_expected_vs_actual(ctx):
    ws = ctx.workspace
    (ws / "ok.txt").write_text("a\nb\nc\n")
    (ws / "bad.txt").write_text("x\ny\nz\n")
    diff = ("--- a/ok.txt\n+++ b/ok.txt\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"
            "--- a/bad.txt\n+++ b/bad.txt\n@@ -1,2 +1,2 @@\n x\n-y\n+Y\n"
            "@@ -3,1 +3,1 @@\n-not there\n+W\n")
    with pytest.raises(ToolError) as exc:
        PatchTool().run({"patch": diff}, ctx)
    message = exc.value.message
    assert message.startswith("bad.txt: hunk 2 of 2 (@@ -3,1 +3,1 @@) does not apply")
    assert "expected:\n  not there" in message and "     3\tz" in message
    assert (ws / "ok.txt").read_text() == "a\nb\nc\n"
    assert (ws / "bad.txt").read_text() == "x\ny\nz\n"


def test_dry_run_reports_without_writing(ctx):
    ws = ctx.workspace
    (ws / "a.txt").write_text("1\n2\n")
    diff = ("--- a/a.txt\n+++ b/a.txt\n@@ -1,2 +1,2 @@\n 1\n-2\n+two\n"
            "--- /dev/null\n+++ b/n.txt\n@@ -0,0 +1 @@\n+new\n")
    result = PatchTool().run({"patch": diff, "dry_run": True}, ctx)
    assert result.output.startswith("dry run: the patch applies cleanly")
    assert "M a.txt (+1 -1)" in result.output and "A n.txt (+1 -0)" in result.output
    assert result.metadata["dry_run"] is True
    assert (ws / "a.txt").read_text() == "1\n2\n" and not (ws / "n.txt").exists()


def test_paths_outside_the_workspace_are_refused(ctx, tmp_path):
    (tmp_path / "victim.txt").write_text("a\n")
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", ctx.workspace / "link")
    for target in ("../victim.txt", "link/x.txt"):
        diff = f"--- /dev/null\n+++ b/{target}\n@@ -0,0 +1 @@\n+pwned\n"
        with pytest.raises(ToolError, match="outside the workspace"):
            PatchTool().run({"patch": diff}, ctx)
    diff = "--- a/../victim.txt\n+++ b/../victim.txt\n@@ -1 +1 @@\n-a\n+b\n"
    with pytest.raises(ToolError, match="outside the workspace"):
        PatchTool().run({"patch": diff}, ctx)
    assert (tmp_path / "victim.txt").read_text() == "a\n"
    assert list((tmp_path / "outside").iterdir()) == []


def test_create_over_existing_and_modify_missing_are_errors(ctx):
    (ctx.workspace / "here.txt").write_text("content\n")
    with pytest.raises(ToolError, match="already exists"):
        PatchTool().run({"patch": "--- /dev/null\n+++ b/here.txt\n@@ -0,0 +1 @@\n+x\n"}, ctx)
    with pytest.raises(ToolError, match="does not exist"):
        PatchTool().run({"patch": "--- a/nope.txt\n+++ b/nope.txt\n@@ -1 +1 @@\n-a\n+b\n"}, ctx)


def test_garbage_and_begin_patch_format_are_explained(ctx):
    with pytest.raises(ToolError, match="no file changes found"):
        PatchTool().run({"patch": "just some text\n"}, ctx)
    with pytest.raises(ToolError, match="Begin Patch"):
        PatchTool().run({"patch": "*** Begin Patch\n*** Update File: a\n"}, ctx)


def test_write_failure_midway_restores_written_files(ctx, monkeypatch):
    ws = ctx.workspace
    (ws / "a.txt").write_text("a\n")
    (ws / "b.txt").write_text("b\n")
    real = patch_module.atomic_write_text
    calls = []

    def flaky(path, text, mode=None):
        calls.append(path.name)
        if path.name == "b.txt":
            raise OSError(28, "No space left on device")
        real(path, text, mode)

    monkeypatch.setattr(patch_module, "atomic_write_text", flaky)
    diff = ("--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-a\n+A\n"
            "--- a/b.txt\n+++ b/b.txt\n@@ -1 +1 @@\n-b\n+B\n")
    with pytest.raises(ToolError, match="restored"):
        PatchTool().run({"patch": diff}, ctx)
    assert calls == ["a.txt", "b.txt", "a.txt"]
    assert (ws / "a.txt").read_text() == "a\n" and (ws / "b.txt").read_text() == "b\n"


def test_parser_paths_quoting_and_signature():
    text = ('diff --git "a/caf\\303\\251 x.txt" "b/caf\\303\\251 x.txt"\n'
            "index 1..2 100644\n"
            '--- "a/caf\\303\\251 x.txt"\n+++ "b/caf\\303\\251 x.txt"\n'
            "@@ -1 +1 @@\n-old\n+new\n-- \n2.39.5\n")
    files = parse_patch(text)
    assert len(files) == 1
    assert files[0].old_path == files[0].new_path == "café x.txt"
    assert files[0].hunks[0].lines == [("-", "old"), ("+", "new")]


def test_git_diff_with_a_rename_and_an_edit(ctx):
    ws = ctx.workspace
    git(ws, "init", "-q")
    (ws / "old_name.py").write_bytes(lines(30))
    git(ws, "add", "-A")
    git(ws, "commit", "-qm", "base")
    git(ws, "mv", "old_name.py", "new_name.py")
    (ws / "new_name.py").write_bytes(lines(30).replace(b"line 15\n", b"line fifteen\n"))
    git(ws, "add", "-A")
    diff = git(ws, "diff", "--cached", "-M")
    assert "rename from old_name.py" in diff
    expected = snapshot(ws)
    git(ws, "reset", "-q", "--hard")
    git(ws, "clean", "-qfd")
    result = PatchTool().run({"patch": diff}, ctx)
    assert snapshot(ws) == expected
    assert "R old_name.py -> new_name.py" in result.output


@pytest.mark.parametrize("seed", range(12))
def test_random_changes_roundtrip_through_git_diff(tmp_path, seed):
    import random

    rng = random.Random(seed)
    before: dict[str, bytes] = {}
    after: dict[str, bytes | None] = {}
    for n in range(4):
        rows = [f"{n}-{i} {rng.choice(['a', 'b', 'c', ''])}" for i in range(rng.randint(0, 40))]
        ending = rng.choice(["\n", "\n", ""]) if rows else ""
        before[f"d{n % 2}/f{n}.txt"] = ("\n".join(rows) + ending).encode()
        for _ in range(rng.randint(1, 5)):
            at = rng.randint(0, len(rows))
            op = rng.choice(["insert", "delete", "replace"])
            if op == "insert":
                rows[at:at] = [f"new {rng.random():.4f}" for _ in range(rng.randint(1, 3))]
            elif op == "delete":
                del rows[at:at + rng.randint(1, 3)]
            elif at < len(rows):
                rows[at] = rows[at] + " changed"
        ending = rng.choice(["\n", ""]) if rows else ""
        after[f"d{n % 2}/f{n}.txt"] = ("\n".join(rows) + ending).encode()
    if rng.random() < 0.5:
        after["d0/f0.txt"] = None
    after["added.txt"] = b"fresh\nfile" if rng.random() < 0.5 else b"fresh\n"
    (tmp_path / "ws").mkdir()
    context = ToolContext(workspace=tmp_path / "ws", data_dir=tmp_path / "data")
    roundtrip(context, before, after)
