"""``codetether acp``: run as an Agent Client Protocol agent on stdin/stdout (for Zed and other
editors). Logs go to stderr; stdout carries only protocol messages."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``acp`` entry of the CLI table (stdlib only)."""
    p = sub.add_parser("acp", help="run as an ACP agent over stdio (Zed and other editors)",
                       description="Speak the Agent Client Protocol (version 1) on stdin/stdout.")
    p.add_argument("-m", "--model", help="provider/model (default: config)")
    p.add_argument("--agent", help="agent profile: build (default), plan, explore, general")
    p.add_argument("--access-mode", choices=("ask", "approve", "full"),
                   help="ask: every change asks the editor (default); approve: workspace writes "
                        "allowed; full: everything")
    p.set_defaults(module="acp_cmd")


def run(args: argparse.Namespace) -> int:
    from codetether.acp.agent import serve_stdio

    return serve_stdio(model=getattr(args, "model", None), agent_name=getattr(args, "agent", None),
                       access_mode=getattr(args, "access_mode", None))


def main(argv: list[str] | None = None) -> int:
    """``python -m codetether.cli.acp_cmd``: usable before the CLI table has ``acp``."""
    from codetether.cli.main import _dispatch

    parser = argparse.ArgumentParser(prog="codetether")
    add_parser(parser.add_subparsers(dest="command"))
    return _dispatch(parser.parse_args(["acp", *(sys.argv[1:] if argv is None else argv)]))


if __name__ == "__main__":
    sys.exit(main())
