"""``codetether tui [DIR]`` (and ``codetether`` alone on a terminal): the interactive UI.

Everything that can fail because of what the user typed (a bad directory, an unknown session,
no terminal) is checked before the screen starts, so it is one line on stderr, not a garbled
screen. Once the screen runs, logs and stray stderr go to ``<data dir>/tui.log``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from codetether.core.errors import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``tui`` parser entries (the lead wires them into ``cli/main.py``)."""
    p.add_argument("directory", nargs="?", default=None, help="workspace (default: .)")
    p.add_argument("-m", "--model", help="provider/model, or a model of the default provider")
    p.add_argument("--agent", choices=("build", "plan", "explore"),
                   help="agent profile (default: build; Tab switches in the UI)")
    resume = p.add_mutually_exclusive_group()
    resume.add_argument("-c", "--continue", dest="continue_session", action="store_true",
                        help="continue the latest session of this directory")
    resume.add_argument("-s", "--session", help="continue the session with this id")
    p.add_argument("--access-mode", choices=("ask", "approve", "full"),
                   help="ask: approve every change; approve: workspace writes; full: all")
    p.set_defaults(module="tui_cmd")


def run(args: argparse.Namespace) -> int:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("the TUI needs a terminal (stdin and stdout are not both TTYs)",
                         'use codetether run "prompt" for scripts and pipes')
    workspace = Path(getattr(args, "directory", None) or ".").expanduser().resolve()
    if not workspace.is_dir():
        raise UsageError(f"{workspace} is not a directory", "pass an existing directory")
    from codetether.agent.setup import open_session
    from codetether.tui.app import App, Options, restore_logging, run_app, setup_logging

    session, store, cfg = open_session(workspace, bool(getattr(args, "continue_session", False)),
                                       getattr(args, "session", None))
    options = Options(workspace=workspace, model=getattr(args, "model", None),
                      agent=getattr(args, "agent", None),
                      access_mode=getattr(args, "access_mode", None))
    app = App(options, store, cfg, session)
    handler, saved = setup_logging()
    try:
        run_app(app)
    finally:
        restore_logging(handler, saved)
        store.close()
    if app.session is not None:
        print(f"[session: {app.session.id} · continue with: codetether tui -c]", file=sys.stderr)
    return 0
