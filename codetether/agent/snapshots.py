"""Workspace snapshots in a shadow git repository, so undo can bring files back.

The shadow repository lives in ``<data_dir>/snapshots/<sha256(workspace)[:16]>/`` and is used
with ``GIT_DIR``, ``GIT_WORK_TREE`` and ``GIT_INDEX_FILE`` pointing at it and at the workspace.
The user's own ``.git`` (HEAD, index, refs, objects) is never read or written, and nothing here
ever runs ``git reset --hard``: a checkpoint tool that shared the user's index lost people's
staged work (openai/codex#8214), which is exactly what this design rules out.

A snapshot is a *tree* hash (``git add -A`` + ``git write-tree``): cheap, content-addressed,
and it honours the workspace's ``.gitignore`` files because git reads them from the work tree.
Files above ``MAX_FILE_BYTES`` are skipped (and remembered per tree, so a restore never deletes
them). ``gc.auto=0`` keeps unreferenced trees alive; pruning old snapshots is left to a
maintenance command.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from codetether.core.errors import CodetetherError

MAX_FILE_BYTES = 10 * 1024 * 1024
GIT_TIMEOUT = 300.0
_GITLINK = "160000"
_EMPTY_MODE = "000000"


class SnapshotError(CodetetherError):
    """git is missing or failed on the shadow repository."""


@dataclass(frozen=True)
class Change:
    """One path that differs between a snapshot and the work tree."""

    status: str  # "M" modified, "A" exists now but not in the snapshot, "D" gone since
    path: str


class Snapshots:
    """Take and restore snapshots of ``workspace`` without touching its own git repository."""

    def __init__(self, data_dir: Path | str, workspace: Path | str) -> None:
        self.workspace = Path(workspace).resolve()
        digest = hashlib.sha256(str(self.workspace).encode("utf-8")).hexdigest()[:16]
        self.git_dir = Path(data_dir).resolve() / "snapshots" / digest
        self.last_skipped: list[str] = []  # files too large for the last take()

    # -- public ----------------------------------------------------------------------------------
    def take(self) -> str:
        """Record the work tree as it is now; returns the tree hash to restore later."""
        self._ensure_repo()
        big = self._oversized()
        spec = ["."] + [f":(exclude,literal){path}" for path in big]
        self._git("add", "-A", "--ignore-errors", "--pathspec-from-file=-",
                  "--pathspec-file-nul", stdin="\0".join(spec) + "\0", ok_codes=(0, 1))
        if big:
            # a file that grew past the limit may still be in the index from an earlier take
            self._git("update-index", "--force-remove", "-z", "--stdin",
                      stdin="\0".join(big) + "\0")
        tree = self._git("write-tree").strip()
        self.last_skipped = big
        if big:
            self._remember_skipped(tree, big)
        return tree

    def changes(self, tree: str, paths: Iterable[str] | None = None) -> list[Change]:
        """What differs between ``tree`` and the work tree now (nested repositories and files
        skipped for size left out: a restore never touches them)."""
        self._require_repo()
        current = self.take()
        return self._changes_between(tree, current, paths)

    def changed_files(self, tree: str) -> list[str]:
        return [change.path for change in self.changes(tree)]

    def diff(self, tree: str, paths: Iterable[str] | None = None) -> str:
        """A unified diff from the work tree now back to ``tree``: what a restore would do."""
        self._require_repo()
        current = self.take()
        selected = [c.path for c in self._changes_between(tree, current, paths)]
        if not selected:
            return ""
        return self._git("diff", "--no-color", "--no-ext-diff", "--no-textconv", "--binary",
                         current, tree, "--", *[f":(literal){p}" for p in selected])

    def restore(self, tree: str, paths: Iterable[str] | None = None) -> list[Change]:
        """Bring the work tree back to ``tree`` (only ``paths`` when given): rewrite modified
        and deleted files, delete files created since. Ignored files, nested repositories and
        files skipped for size are never touched. Returns what was changed."""
        self._require_repo()
        current = self.take()
        changes = self._changes_between(tree, current, paths)
        if not changes:
            return []
        for change in changes:
            if change.status == "A":
                self._delete(change.path)
        wanted = [c.path for c in changes if c.status != "A"]
        if wanted:
            # one-tree merge keeps the stat data of unchanged entries, so the next take is cheap
            self._git("read-tree", "-m", tree)
            self._git("checkout-index", "-f", "-u", "-z", "--stdin",
                      stdin="\0".join(wanted) + "\0")
        self.take()  # the shadow index follows the work tree again
        return changes

    # -- the repository ----------------------------------------------------------------------------
    def _ensure_repo(self) -> None:
        if not self.workspace.is_dir():
            raise SnapshotError(f"cannot snapshot {self.workspace}: not a directory")
        if not (self.git_dir / "HEAD").exists():
            self.git_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._git("init", "-q", "--template=")
            for key, value in (("core.autocrlf", "false"), ("core.quotepath", "false"),
                               ("core.safecrlf", "false"), ("gc.auto", "0"),
                               ("core.fsmonitor", "false"), ("core.untrackedCache", "true")):
                self._git("config", key, value)
        self._write_excludes()

    def _write_excludes(self) -> None:
        """``.git`` always; the data dir too when it lies inside the workspace (else the
        shadow repository would snapshot itself)."""
        lines = [".git"]
        data_root = self.git_dir.parent.parent
        try:
            inside = data_root.relative_to(self.workspace)
        except ValueError:
            inside = None
        if inside is not None and str(inside) != ".":
            lines.append("/" + inside.as_posix() + "/")
        text = "\n".join(lines) + "\n"
        exclude = self.git_dir / "info" / "exclude"
        if not exclude.exists() or exclude.read_text(encoding="utf-8") != text:
            exclude.parent.mkdir(parents=True, exist_ok=True)
            exclude.write_text(text, encoding="utf-8")

    def _oversized(self) -> list[str]:
        """New or modified files above the size limit (unchanged ones were checked before)."""
        listed = self._git("ls-files", "-z", "--others", "--exclude-standard")
        listed += self._git("diff-files", "--name-only", "-z")
        big = []
        for rel in sorted(set(filter(None, listed.split("\0")))):
            try:
                size = (self.workspace / rel).lstat().st_size
            except OSError:
                continue
            if size > MAX_FILE_BYTES and not (self.workspace / rel).is_dir():
                big.append(rel)
        return big

    def _skipped_file(self, tree: str) -> Path:
        return self.git_dir / "codetether-skipped" / f"{tree}.json"

    def _remember_skipped(self, tree: str, big: list[str]) -> None:
        known = set(self._skipped(tree)) | set(big)
        target = self._skipped_file(tree)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(sorted(known)), encoding="utf-8")

    def _skipped(self, tree: str) -> list[str]:
        try:
            return list(json.loads(self._skipped_file(tree).read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return []

    def _require_repo(self) -> None:
        if not (self.git_dir / "HEAD").exists():
            raise SnapshotError(f"no snapshots exist for {self.workspace}",
                                "snapshots are taken before each file-changing tool call")

    def _check_tree(self, tree: str) -> None:
        kind = self._git("cat-file", "-t", tree, ok_codes=(0, 128)).strip()
        if kind != "tree":
            raise SnapshotError(f"snapshot {tree} is not in {self.git_dir}",
                                "it may have been pruned; nothing can be restored from it")

    def _changes_between(self, tree: str, current: str,
                         paths: Iterable[str] | None) -> list[Change]:
        """Parse ``git diff-tree --raw``: old = snapshot, new = now."""
        self._check_tree(tree)
        out = self._git("diff-tree", "-r", "-z", "--no-renames", tree, current)
        fields = out.split("\0")
        protected = set(self._skipped(tree))
        wanted = set(paths) if paths is not None else None
        changes = []
        for meta, path in zip(fields[0::2], fields[1::2], strict=False):
            if not meta.startswith(":"):
                continue
            old_mode, new_mode = meta[1:].split(" ")[:2]
            if _GITLINK in (old_mode, new_mode) or path in protected:
                continue
            if wanted is not None and path not in wanted:
                continue
            status = ("A" if old_mode == _EMPTY_MODE else
                      "D" if new_mode == _EMPTY_MODE else "M")
            changes.append(Change(status, path))
        return changes

    def _delete(self, rel: str) -> None:
        """Remove a file created since the snapshot, then the directories it leaves empty."""
        target = self.workspace / rel
        if target.is_dir() and not target.is_symlink():
            return  # a tracked path that is now a directory is left alone
        try:
            target.unlink()
        except FileNotFoundError:
            return
        parent = target.parent
        while parent != self.workspace and self.workspace in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update(GIT_DIR=str(self.git_dir), GIT_WORK_TREE=str(self.workspace),
                   GIT_INDEX_FILE=str(self.git_dir / "index"), GIT_CONFIG_NOSYSTEM="1",
                   GIT_CONFIG_GLOBAL=os.devnull, GIT_TERMINAL_PROMPT="0",
                   # our own repository, so a workspace owned by someone else is fine
                   GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="safe.directory",
                   GIT_CONFIG_VALUE_0="*", LC_ALL="C")
        return env

    def _git(self, *args: str, stdin: str | None = None,
             ok_codes: tuple[int, ...] = (0,)) -> str:
        data = stdin.encode("utf-8", "surrogateescape") if stdin is not None else None
        try:
            proc = subprocess.run(["git", *args], cwd=self.workspace, env=self._env(), input=data,
                                  stdin=None if data is not None else subprocess.DEVNULL,
                                  capture_output=True, timeout=GIT_TIMEOUT, check=False)
        except FileNotFoundError:
            raise SnapshotError("git is not installed, so snapshots (and undo) are off",
                                "install git and make sure it is on PATH") from None
        except subprocess.TimeoutExpired:
            raise SnapshotError(f"git {args[0]} on the snapshot of {self.workspace} took more "
                                f"than {GIT_TIMEOUT:.0f}s",
                                "add large generated directories to .gitignore") from None
        if proc.returncode not in ok_codes:
            err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise SnapshotError(f"git {args[0]} failed on the snapshot of {self.workspace}: "
                                f"{err[-1] if err else 'exit ' + str(proc.returncode)}")
        return proc.stdout.decode("utf-8", "surrogateescape")
