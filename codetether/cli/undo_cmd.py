"""``codetether undo [--session ID] [--steps N] [--preview] [--json]``: put the files back as
they were before the session's last change steps (default: the latest session of this
directory) and hide those steps from the conversation. ``--preview`` changes nothing."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from codetether.core.errors import CodetetherError, UsageError


class NoSessionError(CodetetherError):
    """No session to undo in."""


def run(args: argparse.Namespace) -> int:
    from codetether.agent.store import SessionStore
    from codetether.agent.undo import undo

    steps = getattr(args, "steps", None) or 1
    if steps < 1:
        raise UsageError(f"--steps must be at least 1, not {steps}")
    store = SessionStore()
    try:
        session = _session(store, getattr(args, "session", None))
        result = undo(store, session, steps, bool(getattr(args, "preview", False)))
    finally:
        store.close()
    if getattr(args, "json", False):
        print(json.dumps(result.to_json(), indent=2))
        return 0
    print(result.summary(), file=sys.stderr)
    if result.preview:
        sys.stdout.write(result.diff)
    else:
        for change in result.changes:
            print(change.path)
    return 0


def _session(store, session_id: str | None):
    if session_id:
        return store.load(session_id)
    here = str(Path.cwd().resolve())
    session = store.latest(here)
    if session is None:
        raise NoSessionError(f"no session for {here}",
                             "pass --session ID (see `codetether session list --all-projects`)")
    return session
