"""Undo: put the workspace back as it was before the last N changes, and mark them reverted.

The contract with the turn loop: before each mutating tool call the loop takes a snapshot
(``Snapshots.take()``) and records it with ``record_snapshot`` in the ``meta`` of the message
that carries the call's result, as ``meta["snapshots"] = {tool_call_id: tree}``.

A *step* is one assistant message that made tool calls together with the tool messages that
answer it. Undoing N steps restores the snapshot taken before the earliest call of the N-th
last step, then marks that assistant message and every later message ``reverted``, so the
model no longer sees them while the full record stays on disk. The state just before the undo
is snapshotted too and kept in the step's meta (``undo.before``) so a redo stays possible.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codetether.agent.session import Session, StoredMessage
from codetether.agent.snapshots import Change, Snapshots
from codetether.core import paths
from codetether.core.errors import CodetetherError


class UndoError(CodetetherError):
    """Nothing to undo, or the snapshot to go back to is gone."""


@dataclass
class Step:
    """An assistant message whose tool calls changed files, and the snapshot before them."""

    assistant_index: int
    tree: str


@dataclass
class UndoResult:
    session_id: str
    tree: str  # the snapshot the workspace was (or would be) restored to
    changes: list[Change]
    diff: str = ""
    steps: int = 0  # how many steps were (or would be) undone
    requested: int = 0
    preview: bool = False
    reverted_message_ids: list[str] = field(default_factory=list)
    before: str = ""  # snapshot of the workspace just before the undo (for a redo)

    @property
    def files(self) -> list[str]:
        return [change.path for change in self.changes]

    def to_json(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "tree": self.tree, "steps": self.steps,
                "requested": self.requested, "preview": self.preview,
                "changes": [{"status": c.status, "path": c.path} for c in self.changes],
                "diff": self.diff, "reverted_message_ids": self.reverted_message_ids,
                "before": self.before}

    def summary(self) -> str:
        """A few lines for a person or a model: what was (or would be) put back."""
        verb = "would restore" if self.preview else "restored"
        what = {"M": "modified", "A": "deleted (created since)", "D": "brought back"}
        head = (f"{verb} the workspace to before the last {self.steps} change step(s)"
                + (f" (only {self.steps} of {self.requested} requested exist)"
                   if self.steps < self.requested else ""))
        if not self.changes:
            return head + ": no files differ"
        lines = [f"{head}: {len(self.changes)} file(s)"]
        lines += [f"  {c.path}  [{what.get(c.status, c.status)}]" for c in self.changes]
        return "\n".join(lines)


def record_snapshot(message_meta: dict[str, Any], call_id: str, tree: str) -> None:
    """Note that ``tree`` is the workspace before tool call ``call_id`` (loop-side helper)."""
    message_meta.setdefault("snapshots", {})[call_id] = tree


def undo(store: Any, session: Session, steps: int = 1, preview: bool = False, *,
         data_dir: Path | None = None, stop_before: str | None = None) -> UndoResult:
    """Undo the last ``steps`` change steps of ``session`` (see the module docstring).

    ``stop_before``: a message id from which on nothing is considered or marked (the undo
    tool passes the assistant message that is calling it, which must stay visible).
    """
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise UndoError(f"steps must be a whole number of at least 1, not {steps!r}")
    messages = session.messages
    end = len(messages)
    if stop_before is not None:
        end = next((i for i, m in enumerate(messages) if m.id == stop_before), end)
    found = find_steps(messages[:end])
    if not found:
        raise UndoError(f"nothing to undo in session {session.id}",
                        "no file-changing tool call with a snapshot is left un-reverted")
    chosen = found[-steps:]
    target = chosen[0]
    snaps = Snapshots(data_dir or paths.data_dir(), session.directory)
    result = UndoResult(session.id, target.tree, [], steps=len(chosen), requested=steps,
                        preview=preview)
    if preview:
        result.changes = snaps.changes(target.tree)
        result.diff = snaps.diff(target.tree)
        return result
    result.before = snaps.take()
    result.changes = snaps.restore(target.tree)
    marked = messages[target.assistant_index:end]
    first = marked[0]
    first_meta = {"reverted": True, "undo": {"restored": target.tree, "before": result.before,
                                             "at": time.time()}}
    for message in marked:
        updates = first_meta if message is first else {"reverted": True}
        store.update_message_meta(session.id, message.id, updates)
        message.meta.update(updates)
        result.reverted_message_ids.append(message.id)
    return result


def find_steps(messages: list[StoredMessage]) -> list[Step]:
    """The un-reverted change steps, oldest first."""
    merged: dict[int, dict[str, str]] = {}
    for index, message in enumerate(messages):
        snapshots = message.meta.get("snapshots")
        if message.meta.get("reverted") or not isinstance(snapshots, dict):
            continue
        snapshots = {k: v for k, v in snapshots.items() if isinstance(v, str) and v}
        owner = _owner(messages, index, snapshots) if snapshots else None
        if owner is None or messages[owner].meta.get("reverted"):
            continue
        # several tool messages may answer one assistant message: they form one step
        merged.setdefault(owner, {}).update(snapshots)
    return [Step(i, _earliest(messages[i], merged[i])) for i in sorted(merged)]


def _owner(messages: list[StoredMessage], index: int, snapshots: dict[str, str]) -> int | None:
    """The assistant message holding the calls: the message itself, else the nearest earlier
    assistant message that made one of the calls (else simply the nearest one)."""
    if messages[index].role == "assistant":
        return index
    nearest = None
    for back in range(index - 1, -1, -1):
        message = messages[back]
        if message.role != "assistant":
            continue
        if nearest is None:
            nearest = back
        if any(call.id in snapshots for call in message.tool_calls()):
            return back
    return nearest


def _earliest(assistant: StoredMessage, snapshots: dict[str, str]) -> str:
    """The snapshot of the first call (in the model's order) that has one."""
    for call in assistant.tool_calls():
        if call.id in snapshots:
            return snapshots[call.id]
    return next(iter(snapshots.values()))
