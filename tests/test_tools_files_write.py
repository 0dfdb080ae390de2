"""write, edit and multiedit on real files: matching strategies, conventions kept, atomicity."""

from __future__ import annotations

import os
import stat

import pytest

from codetether.tools import files_write, registry
from codetether.tools.base import ToolContext, ToolError
from codetether.tools.files_write import EditTool, MultiEditTool, WriteTool, apply_edit


@pytest.fixture
def ctx(tmp_path):
    (tmp_path / "ws").mkdir()
    return ToolContext(workspace=tmp_path / "ws", data_dir=tmp_path / "data")


def put(ctx, rel, data):
    path = ctx.workspace / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_bytes(data.encode())
    return path


def test_registry_names_resolve_to_these_classes():
    for name in ("write", "edit", "multiedit"):
        tool = registry.get(name)
        assert tool.name == name and not tool.read_only


# ---------------------------------------------------------------- write


def test_write_creates_parents_then_overwrites(ctx):
    first = WriteTool().run({"path": "a/b/new.txt", "content": "héllo\n"}, ctx)
    assert (ctx.workspace / "a/b/new.txt").read_text() == "héllo\n"
    assert first.metadata == {"path": "a/b/new.txt", "created": True, "bytes": 7}
    assert "created a/b/new.txt" in first.output
    second = WriteTool().run({"path": "a/b/new.txt", "content": "x"}, ctx)
    assert second.metadata["created"] is False and "overwrote" in second.output
    assert (ctx.workspace / "a/b/new.txt").read_text() == "x"
    assert [p.name for p in (ctx.workspace / "a/b").iterdir()] == ["new.txt"]  # no temp left


def test_write_keeps_the_mode_of_an_executable_script(ctx):
    script = put(ctx, "run.sh", "#!/bin/sh\necho old\n")
    script.chmod(0o755)
    WriteTool().run({"path": "run.sh", "content": "#!/bin/sh\necho new\n"}, ctx)
    assert stat.S_IMODE(script.stat().st_mode) == 0o755
    assert script.read_text().endswith("new\n")


def test_write_refuses_outside_paths_and_directories(ctx, tmp_path):
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", ctx.workspace / "escape")
    for raw in ("../evil.txt", str(tmp_path / "evil.txt"), "escape/evil.txt"):
        with pytest.raises(ToolError, match="outside the workspace"):
            WriteTool().run({"path": raw, "content": "x"}, ctx)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "outside/evil.txt").exists()
    (ctx.workspace / "d").mkdir()
    with pytest.raises(ToolError, match="directory"):
        WriteTool().run({"path": "d", "content": "x"}, ctx)


def test_write_through_a_symlink_inside_keeps_the_link(ctx):
    target = put(ctx, "real.txt", "old")
    os.symlink("real.txt", ctx.workspace / "alias.txt")
    WriteTool().run({"path": "alias.txt", "content": "new"}, ctx)
    assert (ctx.workspace / "alias.txt").is_symlink() and target.read_text() == "new"


# ---------------------------------------------------------------- apply_edit


def test_apply_edit_exact_once_and_replace_all():
    assert apply_edit("a b a", "b", "c") == ("a c a", 1)
    assert apply_edit("x\nx\n", "x", "y", replace_all=True) == ("y\ny\n", 2)
    with pytest.raises(ToolError, match="identical"):
        apply_edit("a", "a", "a")


def test_apply_edit_ambiguous_shows_candidates_with_line_numbers():
    text = "def f():\n    return 1\n\ndef g():\n    return 1\n"
    with pytest.raises(ToolError) as exc:
        apply_edit(text, "return 1", "return 2")
    message = exc.value.message
    assert "matches 2 places" in message and "replace_all" in message
    assert "     2\t    return 1" in message and "     5\t    return 1" in message
    assert exc.value.metadata["candidates"] == [2, 5]


def test_apply_edit_whitespace_tolerant_reindents_new_string():
    text = "class A:\n    def f(self):\n        x  =  1\n        return x\n"
    old = "def f(self):\n    x = 1\n    return x\n"  # model lost the class indentation
    new = "def f(self):\n    x = 2\n    if x:\n        return x\n"
    result, count = apply_edit(text, old, new)
    assert count == 1
    assert result == ("class A:\n    def f(self):\n        x = 2\n        if x:\n"
                      "            return x\n")


def test_apply_edit_tolerant_match_uses_the_files_tabs():
    text = "func main() {\n\tif ok {\n\t\trun()\n\t}\n}\n"
    old = "    if ok {\n        run()\n    }"
    new = "    if ok {\n        run()\n        stop()\n    }"
    result, _ = apply_edit(text, old, new)
    assert result == "func main() {\n\tif ok {\n\t\trun()\n\t\tstop()\n\t}\n}\n"


def test_apply_edit_tolerant_match_scales_two_space_indents_to_four():
    text = "def compute(x, y):\n    total = x + y\n    return total\n"
    old = "def compute(x, y):\n  total = x + y"
    new = "def compute(x, y):\n  total = x - y\n  if total:\n    print(total)"
    result, _ = apply_edit(text, old, new)
    assert result == ("def compute(x, y):\n    total = x - y\n    if total:\n"
                      "        print(total)\n    return total\n")


def test_apply_edit_inline_whitespace_tolerance():
    result, count = apply_edit("total = add(a,  b) + 1\n", "add(a, b)", "add(a, c)")
    assert (result, count) == ("total = add(a, c) + 1\n", 1)


def test_apply_edit_no_match_shows_the_closest_region():
    text = "".join(f"line {n}\n" for n in range(1, 30)) + "def compute(a, b):\n    return a+b\n"
    with pytest.raises(ToolError) as exc:
        apply_edit(text, "def compute(a, c):\n    return a*c\n", "x")
    message = exc.value.message
    assert "not found" in message and "closest region is lines 30-31" in message
    assert "    30\tdef compute(a, b):" in message
    with pytest.raises(ToolError, match="nothing similar"):
        apply_edit(text, "zzzzqqqq", "x")


# ---------------------------------------------------------------- edit


def test_edit_reports_diff_and_metadata(ctx):
    put(ctx, "m.py", "a = 1\nb = 2\n")
    result = EditTool().run({"path": "m.py", "old_string": "b = 2", "new_string": "b = 3"}, ctx)
    assert (ctx.workspace / "m.py").read_text() == "a = 1\nb = 3\n"
    assert result.metadata["replacements"] == 1 and result.metadata["path"] == "m.py"
    assert "-b = 2\n+b = 3" in result.metadata["diff"]
    assert result.output.startswith("edited m.py: 1 replacement\n--- a/m.py")


def test_edit_preserves_crlf_and_missing_final_newline(ctx):
    path = put(ctx, "win.txt", b"one\r\ntwo\r\nthree")
    EditTool().run({"path": "win.txt", "old_string": "two\nthree",
                    "new_string": "2\n3\n4\n"}, ctx)
    assert path.read_bytes() == b"one\r\n2\r\n3\r\n4"
    path2 = put(ctx, "unix.txt", "a\nb\n")
    EditTool().run({"path": "unix.txt", "old_string": "b\n", "new_string": "c"}, ctx)
    assert path2.read_bytes() == b"a\nc\n"


def test_edit_ambiguous_writes_nothing_and_replace_all_works(ctx):
    path = put(ctx, "dup.txt", "x = 1\ny = 2\nx = 1\n")
    with pytest.raises(ToolError) as exc:
        EditTool().run({"path": "dup.txt", "old_string": "x = 1", "new_string": "x = 9"}, ctx)
    assert exc.value.message.startswith("dup.txt: old_string matches 2 places")
    assert path.read_text() == "x = 1\ny = 2\nx = 1\n"
    result = EditTool().run({"path": "dup.txt", "old_string": "x = 1", "new_string": "x = 9",
                             "replace_all": True}, ctx)
    assert result.metadata["replacements"] == 2 and path.read_text().count("x = 9") == 2


def test_edit_whitespace_tolerant_in_a_file(ctx):
    path = put(ctx, "w.py", "if True:\n        call( 1 )\n")
    EditTool().run({"path": "w.py", "old_string": "call( 1 )\n", "new_string": "call(2)\n"}, ctx)
    assert path.read_text() == "if True:\n        call(2)\n"


def test_edit_creates_a_file_with_empty_old_string(ctx):
    result = EditTool().run({"path": "new/f.txt", "old_string": "", "new_string": "hi\n"}, ctx)
    assert (ctx.workspace / "new/f.txt").read_text() == "hi\n"
    assert result.metadata["created"] is True
    with pytest.raises(ToolError, match="old_string is empty but the file has content"):
        EditTool().run({"path": "new/f.txt", "old_string": "", "new_string": "x"}, ctx)


def test_edit_errors_missing_binary_same_strings_and_outside(ctx, tmp_path):
    put(ctx, "config.py", "a\n")
    put(ctx, "bin.dat", b"\x00\x01\x02")
    with pytest.raises(ToolError, match="did you mean: config.py"):
        EditTool().run({"path": "confg.py", "old_string": "a", "new_string": "b"}, ctx)
    with pytest.raises(ToolError, match="binary"):
        EditTool().run({"path": "bin.dat", "old_string": "a", "new_string": "b"}, ctx)
    with pytest.raises(ToolError, match="identical"):
        EditTool().run({"path": "config.py", "old_string": "a", "new_string": "a"}, ctx)
    (tmp_path / "victim.txt").write_text("a\n")
    with pytest.raises(ToolError, match="outside the workspace"):
        EditTool().run({"path": "../victim.txt", "old_string": "a", "new_string": "b"}, ctx)
    assert (tmp_path / "victim.txt").read_text() == "a\n"


def test_edit_keeps_mode(ctx):
    script = put(ctx, "s.sh", "echo a\n")
    script.chmod(0o755)
    EditTool().run({"path": "s.sh", "old_string": "a", "new_string": "b"}, ctx)
    assert stat.S_IMODE(script.stat().st_mode) == 0o755


# ---------------------------------------------------------------- multiedit


def test_multiedit_sequential_edits_across_files(ctx):
    a = put(ctx, "a.py", "x = 1\ny = 2\n")
    b = put(ctx, "b.py", "z = 3\n")
    result = MultiEditTool().run({"path": "a.py", "edits": [
        {"old_string": "x = 1", "new_string": "x = 10"},
        {"old_string": "x = 10\ny", "new_string": "x = 10\nyy"},
        {"path": "b.py", "old_string": "z = 3", "new_string": "z = 30"},
        {"path": "c.py", "old_string": "", "new_string": "new\n"},
    ]}, ctx)
    assert a.read_text() == "x = 10\nyy = 2\n" and b.read_text() == "z = 30\n"
    assert (ctx.workspace / "c.py").read_text() == "new\n"
    assert result.metadata["files"] == ["a.py", "b.py", "c.py"]
    assert result.metadata["replacements"] == 4


def test_multiedit_failure_writes_nothing_and_names_the_edit(ctx):
    a = put(ctx, "a.py", "one\n")
    b = put(ctx, "b.py", "two\n")
    with pytest.raises(ToolError) as exc:
        MultiEditTool().run({"edits": [
            {"path": "a.py", "old_string": "one", "new_string": "ONE"},
            {"path": "b.py", "old_string": "missing text", "new_string": "x"},
        ]}, ctx)
    assert exc.value.message.startswith("edits[1] failed, nothing was written: b.py:")
    assert exc.value.metadata["failed_index"] == 1
    assert a.read_text() == "one\n" and b.read_text() == "two\n"


def test_multiedit_rolls_back_when_a_write_fails_midway(ctx, monkeypatch):
    a = put(ctx, "a.py", "one\n")
    b = put(ctx, "b.py", "two\n")
    real = files_write.atomic_write_text
    calls = []

    def flaky(path, text, mode=None):
        calls.append(path.name)
        if path.name == "b.py" and calls.count("b.py") == 1:
            raise OSError(28, "No space left on device")
        real(path, text, mode)

    monkeypatch.setattr(files_write, "atomic_write_text", flaky)
    with pytest.raises(ToolError, match="No space left on device.*restored"):
        MultiEditTool().run({"edits": [
            {"path": "a.py", "old_string": "one", "new_string": "ONE"},
            {"path": "b.py", "old_string": "two", "new_string": "TWO"},
        ]}, ctx)
    assert calls[:2] == ["a.py", "b.py"] and "a.py" in calls[2:]
    assert a.read_text() == "one\n" and b.read_text() == "two\n"


def test_multiedit_needs_a_path_and_edits(ctx):
    with pytest.raises(ToolError, match="edits\\[0\\] failed.*no path"):
        MultiEditTool().run({"edits": [{"old_string": "a", "new_string": "b"}]}, ctx)
    with pytest.raises(ToolError, match="empty"):
        MultiEditTool().run({"path": "a.py", "edits": []}, ctx)
