"""Shadow-git snapshots: real git, real repositories in temp dirs. The user's own repository must
come out byte-identical; restores must bring back exactly the tracked-or-trackable files."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from codetether.agent import snapshots as snapmod
from codetether.agent.snapshots import SnapshotError, Snapshots


def git(cwd: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "HOME": str(cwd), "PATH": "/usr/bin:/bin"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout


def user_repo(root: Path) -> Path:
    """A repo with a commit, a staged change, an ignored file and a stash-free work tree."""
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / ".gitignore").write_text("*.log\nbuild/\n")
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text("print('v1')\n")
    (root / "README.md").write_text("readme\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "first")
    git(root, "branch", "feature")
    (root / "README.md").write_text("readme staged\n")
    git(root, "add", "README.md")  # a staged change the snapshots must not disturb
    (root / "debug.log").write_text("ignored v1\n")
    (root / "build").mkdir()
    (root / "build" / "out.bin").write_text("artifact v1\n")
    return root


def dot_git_state(repo: Path) -> dict[str, bytes]:
    """Every file of the user's .git except objects (HEAD, index, refs, config, logs)."""
    out = {}
    for path in sorted((repo / ".git").rglob("*")):
        if path.is_file() and "objects" not in path.relative_to(repo / ".git").parts:
            out[str(path.relative_to(repo))] = path.read_bytes()
    return out


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


def test_take_and_restore_leave_user_git_untouched(tmp_path, data, monkeypatch):
    repo = user_repo(tmp_path / "repo")
    # a GIT_DIR inherited from the caller (e.g. running inside a git hook) must not leak in
    monkeypatch.setenv("GIT_DIR", str(repo / ".git"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(repo / ".git" / "index"))
    before = dot_git_state(repo)
    objects_before = sorted(p.name for p in (repo / ".git" / "objects").rglob("*"))
    snaps = Snapshots(data, repo)
    tree = snaps.take()
    assert len(tree) == 40

    (repo / "src" / "app.py").write_text("print('v2')\n")  # modified
    (repo / "README.md").unlink()  # deleted
    (repo / "new" / "deep").mkdir(parents=True)
    (repo / "new" / "deep" / "file.txt").write_text("created\n")  # created
    (repo / "debug.log").write_text("ignored v2\n")  # ignored: never touched
    (repo / "build" / "extra.bin").write_text("ignored new\n")

    assert sorted(snaps.changed_files(tree)) == ["README.md", "new/deep/file.txt", "src/app.py"]
    changes = snaps.restore(tree)
    assert {(c.status, c.path) for c in changes} == {
        ("M", "src/app.py"), ("D", "README.md"), ("A", "new/deep/file.txt")}

    assert (repo / "src" / "app.py").read_text() == "print('v1')\n"
    assert (repo / "README.md").read_text() == "readme staged\n"
    assert not (repo / "new").exists()
    assert (repo / "debug.log").read_text() == "ignored v2\n"
    assert (repo / "build" / "extra.bin").read_text() == "ignored new\n"
    assert (repo / "build" / "out.bin").read_text() == "artifact v1\n"
    assert dot_git_state(repo) == before
    assert sorted(p.name for p in (repo / ".git" / "objects").rglob("*")) == objects_before
    monkeypatch.delenv("GIT_DIR")
    monkeypatch.delenv("GIT_INDEX_FILE")
    assert git(repo, "diff", "--cached", "--name-only") == "README.md\n"
    assert snaps.changed_files(tree) == []


def test_shadow_repo_lives_in_data_dir(tmp_path, data):
    repo = user_repo(tmp_path / "repo")
    snaps = Snapshots(data, repo)
    snaps.take()
    assert snaps.git_dir.parent == (data / "snapshots").resolve()
    assert len(snaps.git_dir.name) == 16
    assert (snaps.git_dir / "HEAD").exists()
    assert git(repo, "status", "--porcelain") == "M  README.md\n"
    # another workspace gets another shadow repository
    other = tmp_path / "other"
    other.mkdir()
    assert Snapshots(data, other).git_dir != snaps.git_dir


def test_works_in_a_directory_that_is_not_a_repo(tmp_path, data):
    ws = tmp_path / "plain"
    (ws / "a").mkdir(parents=True)
    (ws / "a" / "one.txt").write_text("1\n")
    (ws / "two.txt").write_text("2\n")
    snaps = Snapshots(data, ws)
    tree = snaps.take()
    (ws / "a" / "one.txt").write_text("changed\n")
    (ws / "two.txt").unlink()
    (ws / "three.txt").write_text("3\n")
    diff = snaps.diff(tree)
    assert "-changed" in diff and "+1" in diff and "two.txt" in diff
    snaps.restore(tree)
    assert (ws / "a" / "one.txt").read_text() == "1\n"
    assert (ws / "two.txt").read_text() == "2\n"
    assert not (ws / "three.txt").exists()
    assert not (ws / ".git").exists()


def test_restore_only_given_paths(tmp_path, data):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.txt").write_text("a1\n")
    (ws / "b.txt").write_text("b1\n")
    snaps = Snapshots(data, ws)
    tree = snaps.take()
    (ws / "a.txt").write_text("a2\n")
    (ws / "b.txt").write_text("b2\n")
    changes = snaps.restore(tree, paths=["a.txt"])
    assert [c.path for c in changes] == ["a.txt"]
    assert (ws / "a.txt").read_text() == "a1\n"
    assert (ws / "b.txt").read_text() == "b2\n"
    assert snaps.changed_files(tree) == ["b.txt"]


def test_file_and_directory_swap_and_modes(tmp_path, data):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "thing").write_text("a file\n")
    (ws / "run.sh").write_text("#!/bin/sh\n")
    (ws / "run.sh").chmod(0o755)
    snaps = Snapshots(data, ws)
    tree = snaps.take()
    (ws / "thing").unlink()
    (ws / "thing").mkdir()
    (ws / "thing" / "inside.txt").write_text("x\n")
    (ws / "run.sh").chmod(0o644)
    snaps.restore(tree)
    assert (ws / "thing").read_text() == "a file\n"
    assert (ws / "run.sh").stat().st_mode & 0o111


def test_large_files_are_skipped_and_never_deleted(tmp_path, data, monkeypatch):
    monkeypatch.setattr(snapmod, "MAX_FILE_BYTES", 1000)
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "small.txt").write_text("small\n")
    (ws / "big.dat").write_bytes(b"x" * 5000)
    snaps = Snapshots(data, ws)
    tree = snaps.take()
    assert snaps.last_skipped == ["big.dat"]
    (ws / "big.dat").write_bytes(b"y" * 10)  # now small: would look "created since"
    (ws / "small.txt").write_text("changed\n")
    snaps.restore(tree)
    assert (ws / "small.txt").read_text() == "small\n"
    assert (ws / "big.dat").read_bytes() == b"y" * 10


def test_a_tracked_file_that_grows_too_large_leaves_the_snapshot(tmp_path, data, monkeypatch):
    monkeypatch.setattr(snapmod, "MAX_FILE_BYTES", 1000)
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "grow.txt").write_text("small\n")
    snaps = Snapshots(data, ws)
    first = snaps.take()
    (ws / "grow.txt").write_bytes(b"z" * 5000)
    second = snaps.take()
    assert snaps.last_skipped == ["grow.txt"]
    assert first != second
    assert "grow.txt" not in git_ls_tree(snaps, second)


def git_ls_tree(snaps: Snapshots, tree: str) -> str:
    return snaps._git("ls-tree", "-r", "--name-only", tree)


def test_nested_repositories_are_not_deleted(tmp_path, data):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "top.txt").write_text("top\n")
    snaps = Snapshots(data, ws)
    tree = snaps.take()
    nested = ws / "vendor" / "lib"
    nested.mkdir(parents=True)
    git(nested, "init", "-q")
    (nested / "code.py").write_text("x = 1\n")
    snaps.restore(tree)
    assert (nested / "code.py").read_text() == "x = 1\n"
    assert (nested / ".git").is_dir()


def test_data_dir_inside_workspace_is_not_snapshotted(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "f.txt").write_text("f\n")
    snaps = Snapshots(ws / ".localdata", ws)
    tree = snaps.take()
    listed = git_ls_tree(snaps, tree)
    assert listed.split() == ["f.txt"]
    (ws / "g.txt").write_text("g\n")
    snaps.restore(tree)
    assert not (ws / "g.txt").exists()
    assert (snaps.git_dir / "HEAD").exists()


def test_unknown_tree_is_a_clear_error(tmp_path, data):
    ws = tmp_path / "ws"
    ws.mkdir()
    snaps = Snapshots(data, ws)
    with pytest.raises(SnapshotError, match="no snapshots exist"):
        snaps.restore("0" * 40)
    snaps.take()
    with pytest.raises(SnapshotError, match="is not in"):
        snaps.restore("1" * 40)


def test_missing_workspace_is_a_clear_error(tmp_path, data):
    with pytest.raises(SnapshotError, match="not a directory"):
        Snapshots(data, tmp_path / "nope").take()


def test_unchanged_workspace_gives_the_same_tree(tmp_path, data):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "f.txt").write_text("f\n")
    snaps = Snapshots(data, ws)
    assert snaps.take() == snaps.take()
    assert snaps.restore(snaps.take()) == []
