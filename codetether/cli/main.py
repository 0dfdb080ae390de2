"""The ``codetether`` command: one parser table, lazy command modules, one error boundary.

Only the stdlib is imported here so ``--version`` and ``--help`` start as fast as Python does.
Each subcommand names the module that runs it (``codetether.cli.<module>.run(args)``); that
module, and whatever it needs, is imported only when the command is used.

This is also the single place that turns a ``CodetetherError`` into ``error: <what>: <fix>`` on
stderr and an exit code (2 usage, 1 failure, 130 interrupt). ``CODETETHER_RAISE_ERRORS=1`` lets
tracebacks through for debugging.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from codetether import __version__

PROG = "codetether"


def _add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the agent on one prompt and exit",
                       description="Run the agent on one prompt: it reads, edits and tests code "
                                   "in the current directory, then prints its answer.")
    p.add_argument("message", nargs="+", help="the prompt ('-' reads it from stdin)")
    p.add_argument("-m", "--model", help="provider/model, or a model of the default provider")
    p.add_argument("--agent", help="agent profile: build (default), plan, explore, general")
    resume = p.add_mutually_exclusive_group()
    resume.add_argument("-c", "--continue", dest="continue_session", action="store_true",
                        help="continue the latest session of this directory")
    resume.add_argument("-s", "--session", help="continue the session with this id")
    p.add_argument("-f", "--file", action="append", default=[],
                   help="attach a file to the prompt (repeatable)")
    p.add_argument("--max-steps", type=int, help="tool-loop steps before stopping")
    p.add_argument("--access-mode", choices=("ask", "approve", "full"),
                   help="ask: read-only; approve: workspace writes; full: everything")
    p.add_argument("--yolo", action="store_true", help="same as --access-mode full")
    p.add_argument("--format", choices=("default", "json", "jsonl"), default="default",
                   help="default: text; json: one object at the end; jsonl: one event per line")
    p.add_argument("--max-tokens", type=int, help="cap on each answer's length in tokens")
    p.add_argument("--dir", help="workspace directory (default: the current directory)")
    p.set_defaults(module="run_cmd")


def _add_session(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("session", help="list, show, export, import, fork and delete sessions")
    ssub = p.add_subparsers(dest="session_action", metavar="ACTION", required=True)
    lst = ssub.add_parser("list", help="sessions of this directory, newest first")
    lst.add_argument("-n", "--limit", type=int, default=20, help="how many (default 20)")
    lst.add_argument("--all-projects", action="store_true", help="sessions of every directory")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    show = ssub.add_parser("show", help="one session's messages")
    show.add_argument("id", help="session id or unique prefix")
    show.add_argument("--json", action="store_true", help="the complete export JSON")
    _add_export_args(ssub.add_parser("export", help="a session as complete JSON"))
    _add_import_args(ssub.add_parser("import", help="import a session exported as JSON"))
    fork = ssub.add_parser("fork", help="copy a session (up to a message) into a new one")
    fork.add_argument("id", help="session id or unique prefix")
    fork.add_argument("--at", help="last message id to copy (default: all)")
    delete = ssub.add_parser("delete", help="delete a session and its messages")
    delete.add_argument("id", help="session id or unique prefix")
    p.set_defaults(module="session_cmd", json=False, limit=20, all_projects=False, id=None,
                   at=None, output=None, file=None)


def _add_export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", nargs="?", help="session id (default: the latest of this directory)")
    p.add_argument("-o", "--output", help="write to this file instead of stdout")


def _add_import_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="JSON file from `codetether export` ('-' for stdin)")


def _add_export_import(sub: argparse._SubParsersAction) -> None:
    export = sub.add_parser("export", help="a session as complete JSON (= session export)")
    _add_export_args(export)
    export.set_defaults(module="session_cmd", session_action="export", json=False)
    imp = sub.add_parser("import", help="import a session from JSON (= session import)")
    _add_import_args(imp)
    imp.set_defaults(module="session_cmd", session_action="import", json=False)


def _add_undo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("undo", help="restore files changed by the agent's last steps")
    p.add_argument("--session", help="session id (default: the latest of this directory)")
    p.add_argument("--steps", type=int, default=1, help="how many changing steps to undo")
    p.add_argument("--preview", action="store_true", help="show what would change, change nothing")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(module="undo_cmd")


def _add_config(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="show or change configuration",
                       description="Read and change ~/.config/codetether-agent/config.toml "
                                   "(or $CODETETHER_CONFIG).")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--show", action="store_true", help="print the effective configuration")
    group.add_argument("--init", action="store_true", help="write a commented starter file")
    group.add_argument("--set", metavar="KEY=VALUE", action="append",
                       help="set a key, e.g. default.model=anthropic/claude-sonnet-4-20250514")
    group.add_argument("--path", action="store_true", help="print the config file's path")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--force", action="store_true", help="with --init: replace an existing file")
    p.set_defaults(module="config_cmd", config_action=None)
    psub = p.add_subparsers(dest="config_action", metavar="{project}")
    proj = psub.add_parser("project",
                           help="trust or untrust this project's .codetether/config.toml")
    proj.add_argument("project_action", choices=("status", "trust", "untrust"))
    proj.add_argument("directory", nargs="?", default=".", help="project directory (default: .)")
    proj.add_argument("--json", action="store_true", help="machine-readable output")


def _add_auth(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("auth", help="manage provider credentials",
                       description="Keys are read from Vault, then this store, then env vars.")
    asub = p.add_subparsers(dest="auth_action", metavar="{login,logout,list}", required=True)
    login = asub.add_parser("login",
                            help="save a provider key in the local 0600 store (read from stdin)")
    login.add_argument("provider")
    login.add_argument("--base-url", help="endpoint to use with this key")
    logout = asub.add_parser("logout", help="remove a provider key from the local store")
    logout.add_argument("provider")
    lst = asub.add_parser("list", help="providers with credentials and where they come from")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    # every action sees the same attributes, whichever was chosen
    p.set_defaults(provider=None, base_url=None, json=False)
    p.set_defaults(module="auth_cmd")


def _add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list models and which providers have credentials")
    p.add_argument("provider", nargs="?", help="only this provider")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--verbose", "-v", action="store_true", help="show costs and capabilities")
    p.add_argument("--refresh", action="store_true",
                   help="ask the providers for their model lists now")
    p.set_defaults(module="models_cmd")


def _add_tui(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tui", help="the interactive terminal UI (also: codetether with no command)")
    p.add_argument("directory", nargs="?", default=".", help="workspace (default: .)")
    _add_agent_options(p)
    p.set_defaults(module="tui_cmd")


def _add_agent_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-m", "--model", help="provider/model")
    p.add_argument("--agent", help="agent profile: build, plan, explore")
    resume = p.add_mutually_exclusive_group()
    resume.add_argument("-s", "--session", help="resume this session")
    resume.add_argument("-c", "--continue", dest="continue_session", action="store_true",
                        help="resume the latest session of this directory")
    p.add_argument("--access-mode", choices=("ask", "approve", "full"),
                   help="ask: read-only; approve: workspace writes; full: everything")


def _add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="A2A server (JSON-RPC, REST, SSE, gRPC) with auth and audit")
    p.add_argument("-p", "--port", type=int, default=4096, help="HTTP port (0: any free port)")
    p.add_argument("--hostname", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--grpc-port", type=int, default=None,
                   help="gRPC port (default $CODETETHER_GRPC_PORT or 50051; -1 disables)")
    p.add_argument("--backend", choices=("agent", "echo"), default="agent",
                   help="agent: tasks run the build agent; echo: deterministic, no LLM")
    p.add_argument("--allow-private-webhooks", action="store_true",
                   help="allow push notifications to loopback/private addresses")
    p.set_defaults(module="serve_cmd")


def _add_spawn(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("spawn", help="a standalone A2A peer that finds and greets other peers")
    p.add_argument("-n", "--name", required=True, help="this agent's name")
    p.add_argument("--peer", default="", help="comma-separated peer URLs to poll")
    p.add_argument("-p", "--port", type=int, default=0, help="HTTP port (0: any free port)")
    p.add_argument("--hostname", default="127.0.0.1", help="address to bind")
    p.add_argument("--discovery-interval", type=float, default=15.0,
                   help="seconds between peer polls (default 15)")
    p.set_defaults(module="spawn_cmd")


def _add_a2a(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("a2a", help="talk to an A2A agent (v1.0 or v0.3): card, send, get, cancel")
    asub = p.add_subparsers(dest="a2a_action", metavar="ACTION", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("url", help="the agent's base URL (a gRPC-only agent: grpc://host:port)")
        q.add_argument("--json", action="store_true", help="machine-readable output")
        q.add_argument("--token", help="bearer token (default: $CODETETHER_A2A_TOKEN)")
        q.add_argument("--dialect", choices=("auto", "1.0", "0.3"), default="auto")
        q.add_argument("--transport", choices=("auto", "jsonrpc", "grpc"), default="auto",
                       help="auto: the card's JSON-RPC interface, else its gRPC one")
        q.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")

    common(asub.add_parser("card", help="show the agent card"))
    send = asub.add_parser("send", help="send a message")
    common(send)
    send.add_argument("message")
    send.add_argument("--stream", action="store_true", help="stream progress as it happens")
    send.add_argument("--context-id", dest="context_id", help="continue this context")
    send.add_argument("--task-id", dest="task_id", help="continue this task (input-required)")
    for name in ("get", "cancel"):
        q = asub.add_parser(name, help=f"{name} a task")
        common(q)
        q.add_argument("task_id")
    p.set_defaults(module="a2a_cmd", message=None, task_id=None, stream=False, context_id=None)


def _add_mcp(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mcp", help="MCP server over stdio, and external MCP servers as tools")
    msub = p.add_subparsers(dest="mcp_action", metavar="ACTION", required=True)
    serve = msub.add_parser("serve", help="serve our tools over MCP on stdio")
    serve.add_argument("workspace", nargs="?", default=".", help="workspace (default: .)")
    serve.add_argument("--access-mode", choices=("ask", "approve", "full"),
                       help="what tools may do without a human (default from config)")
    serve.add_argument("--bus-url", metavar="URL",
                       help="also offer this `codetether serve`'s agent bus as MCP tools")
    serve.add_argument("--bus-token", metavar="TOKEN",
                       help="bearer token for --bus-url (default: $CODETETHER_BUS_TOKEN, "
                            "else $CODETETHER_AUTH_TOKEN)")
    lt = msub.add_parser("list-tools", help="the tools `mcp serve` exposes")
    lt.add_argument("--json", action="store_true")
    add = msub.add_parser("add", help="add an MCP server: NAME -- CMD ARGS... or NAME --url URL")
    add.add_argument("name")
    add.add_argument("--url", help="streamable HTTP endpoint")
    add.add_argument("--header", action="append", default=[], help="K=V header (repeatable)")
    add.add_argument("--env", action="append", default=[], help="K=V env var (repeatable)")
    add.add_argument("--timeout", type=float, default=60.0, help="seconds per request (default 60)")
    add.add_argument("server_command", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    lst = msub.add_parser("list", help="configured MCP servers and their status")
    lst.add_argument("--json", action="store_true")
    rm = msub.add_parser("remove", help="remove an MCP server")
    rm.add_argument("name")
    tools = msub.add_parser("tools", help="tools of one MCP server")
    tools.add_argument("name")
    tools.add_argument("--json", action="store_true")
    call = msub.add_parser("call", help="call a tool of an MCP server")
    call.add_argument("name")
    call.add_argument("tool")
    call.add_argument("--arguments", default="{}", help="JSON object of arguments")
    call.add_argument("--json", action="store_true")
    p.set_defaults(module="mcp_cmd", json=False)


def _add_acp(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("acp", help="Agent Client Protocol agent over stdio (Zed and others)")
    p.add_argument("-m", "--model", help="provider/model")
    p.add_argument("--agent", help="agent profile: build (default), plan, explore")
    p.add_argument("--access-mode", choices=("ask", "approve", "full"),
                   help="what tools may do without asking the editor")
    p.set_defaults(module="acp_cmd")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="CodeTether: a coding agent for people and for other agents.",
        epilog="Keys come from Vault, `codetether auth login`, or env vars such as "
               "OPENAI_API_KEY. See `codetether models`.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_run, _add_tui, _add_session, _add_export_import, _add_undo, _add_serve,
                _add_spawn, _add_a2a, _add_mcp, _add_acp, _add_models, _add_auth, _add_config):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "module", None):
        if sys.stdin.isatty() and sys.stdout.isatty():
            args = parser.parse_args(["tui"])  # no command on a terminal: the TUI
        else:
            parser.print_help(sys.stderr)
            return 2
    return _dispatch(args)


def _dispatch(args: argparse.Namespace) -> int:
    from codetether.core.errors import CodetetherError

    raise_errors = os.environ.get("CODETETHER_RAISE_ERRORS") == "1"
    try:
        module = importlib.import_module(f"codetether.cli.{args.module}")
        return int(module.run(args) or 0)
    except CodetetherError as exc:
        if raise_errors:
            raise
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # stdout closed early (e.g. `| head`): not an error; silence the flush at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def entry_point() -> None:
    """Console-script target (``codetether``)."""
    sys.exit(main())
