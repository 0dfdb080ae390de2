"""``codetether mcp ...``: serve our tools over MCP, and manage the external MCP servers whose
tools our agent uses.

    mcp serve [WORKSPACE] [--access-mode M]     stdio MCP server (stdout carries only protocol)
              [--bus-url URL [--bus-token T]]  ... plus a `codetether serve`'s agent bus
    mcp list-tools [--json]                      what serve exposes
    mcp add NAME -- CMD ARGS...                  a stdio server  (--env K=V repeatable)
    mcp add NAME --url URL [--header K=V]        a streamable HTTP server
    mcp list [--json]                            configured servers and their live status
    mcp remove NAME
    mcp tools NAME [--json]                      the server's tools (as our agent names them)
    mcp call NAME TOOL [--arguments JSON] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``mcp`` entry of the CLI table (stdlib only, so ``--help`` stays fast)."""
    p = sub.add_parser("mcp", help="MCP: serve our tools, manage external MCP servers",
                       description="Serve CodeTether's tools to MCP clients over stdio, and "
                                   "connect MCP servers whose tools the agent can use.")
    msub = p.add_subparsers(dest="mcp_action", metavar="ACTION", required=True)
    serve = msub.add_parser("serve", help="run an MCP server on stdin/stdout")
    serve.add_argument("workspace", nargs="?", default=".", help="workspace (default: .)")
    serve.add_argument("--access-mode", choices=("ask", "approve", "full"),
                       help="what tool calls may change (default: config, else ask = read-only)")
    serve.add_argument("--bus-url", metavar="URL",
                       help="also offer this `codetether serve`'s agent bus (tools bus_events, "
                            "bus_status; resources codetether://bus/...)")
    serve.add_argument("--bus-token", metavar="TOKEN",
                       help="bearer token for --bus-url (default: $CODETETHER_BUS_TOKEN, "
                            "else $CODETETHER_AUTH_TOKEN)")
    lt = msub.add_parser("list-tools", help="the tools `mcp serve` exposes")
    lt.add_argument("--json", action="store_true", help="machine-readable output")
    add = msub.add_parser("add", help="add an MCP server: NAME -- CMD ARGS... or NAME --url URL",
                          usage="codetether mcp add NAME (-- CMD [ARGS...] | --url URL "
                                "[--header K=V])")
    add.add_argument("name", help="short name; its tools become NAME_TOOL")
    add.add_argument("--url", help="streamable HTTP endpoint, e.g. http://127.0.0.1:3001/mcp")
    add.add_argument("--header", action="append", default=[], metavar="K=V",
                     help="HTTP header for --url (repeatable)")
    add.add_argument("--env", action="append", default=[], metavar="K=V",
                     help="environment variable for a stdio server (repeatable)")
    add.add_argument("--timeout", type=float, help="seconds to wait for each answer (default 60)")
    add.add_argument("server_command", nargs=argparse.REMAINDER, metavar="-- CMD ARGS",
                     help="the command that starts a stdio server")
    lst = msub.add_parser("list", help="configured MCP servers and their live status")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    rm = msub.add_parser("remove", help="remove an MCP server from the config")
    rm.add_argument("name")
    tools = msub.add_parser("tools", help="list the tools of a configured server")
    tools.add_argument("name")
    tools.add_argument("--json", action="store_true", help="machine-readable output")
    call = msub.add_parser("call", help="call one tool of a configured server")
    call.add_argument("name")
    call.add_argument("tool")
    call.add_argument("--arguments", default="{}", metavar="JSON",
                      help="the tool's arguments as a JSON object (default {})")
    call.add_argument("--json", action="store_true", help="print the raw MCP result")
    p.set_defaults(module="mcp_cmd", json=False)


def run(args: argparse.Namespace) -> int:
    action = args.mcp_action
    handler = {"serve": _serve, "list-tools": _list_tools, "add": _add, "list": _list,
               "remove": _remove, "tools": _tools, "call": _call}[action]
    return handler(args)


# ---- serving -----------------------------------------------------------------------------------

def _serve(args: argparse.Namespace) -> int:
    from codetether.core.config import load_config
    from codetether.core.errors import UsageError
    from codetether.mcp.server import serve_stdio

    workspace = Path(args.workspace).expanduser().resolve()
    if not workspace.is_dir():
        raise UsageError(f"{workspace} is not a directory", "pass an existing WORKSPACE")
    cfg = load_config(workspace)
    return serve_stdio(workspace, cfg, args.access_mode, bus=_bus_bridge(args))


def _bus_bridge(args: argparse.Namespace) -> Any:
    """The ``--bus-url`` reader (not started), or None; a bad URL is a usage error now rather
    than a retry loop later."""
    import os

    from codetether.core.errors import UsageError

    url = getattr(args, "bus_url", None)
    flag = getattr(args, "bus_token", None)
    if not url:
        if flag:
            raise UsageError("--bus-token needs --bus-url", "add --bus-url URL")
        return None
    from codetether.mcp.bus_bridge import BusBridge, resolve_token

    token, source = resolve_token(flag, os.environ)
    return BusBridge(url, token, token_source=source)


def _list_tools(args: argparse.Namespace) -> int:
    from codetether.mcp.server import exposed_tools, tool_json

    tools = [tool_json(t) for t in exposed_tools()]
    if args.json:
        print(json.dumps(tools, indent=2))
        return 0
    width = max(len(t["name"]) for t in tools)
    for tool in tools:
        mark = "read-only" if tool["annotations"]["readOnlyHint"] else "changes"
        first = tool["description"].strip().splitlines()[0][:90]
        print(f"{tool['name']:<{width}}  {mark:<9}  {first}")
    return 0


# ---- managing servers --------------------------------------------------------------------------

def _pairs(items: list[str], what: str) -> dict[str, str]:
    from codetether.core.errors import UsageError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{what} {item!r} is not KEY=VALUE", f"write e.g. --{what} K=V")
        out[key.strip()] = value
    return out


def _add(args: argparse.Namespace) -> int:
    from codetether.core.errors import UsageError
    from codetether.mcp.config import DEFAULT_TIMEOUT, ServerSpec, add_server, check_name

    name = check_name(args.name)
    command = _split_remainder(args)
    timeout = getattr(args, "timeout", None) or DEFAULT_TIMEOUT
    if args.url and command:
        raise UsageError("give either --url or -- CMD ARGS, not both",
                         "an MCP server is stdio or HTTP")
    if args.url:
        if not args.url.startswith(("http://", "https://")):
            raise UsageError(f"--url {args.url!r} is not an http(s) URL",
                             "use e.g. http://127.0.0.1:3001/mcp")
        if args.env:
            raise UsageError("--env is for stdio servers", "drop it, or use -- CMD ARGS")
        spec = ServerSpec(name, "http", url=args.url, headers=_pairs(args.header, "header"),
                          timeout=timeout)
    elif command:
        if args.header:
            raise UsageError("--header is for --url servers", "drop it, or use --url")
        spec = ServerSpec(name, "stdio", command=command[0], args=command[1:],
                          env=_pairs(args.env, "env"), timeout=timeout)
    else:
        raise UsageError("nothing to start", f"use: codetether mcp add {name} -- CMD ARGS... "
                         f"or: codetether mcp add {name} --url URL")
    path = add_server(spec)
    print(f"added mcp server '{name}' ({spec.type}: {spec.target()}) to {path}", file=sys.stderr)
    return 0


def _split_remainder(args: argparse.Namespace) -> list[str]:
    """The server command after ``--``. A parser that declares the command as REMAINDER hands
    over the options too (``--url U --header K=V -- CMD``): read those here."""
    from codetether.core.errors import UsageError

    rest = list(args.server_command or [])
    cut = rest.index("--") if "--" in rest else (0 if rest and not rest[0].startswith("-")
                                                 else len(rest))
    options, command = rest[:cut], rest[cut + 1:] if "--" in rest else rest[cut:]
    if options:
        extra = argparse.ArgumentParser(prog="codetether mcp add", add_help=False)
        extra.add_argument("--url")
        extra.add_argument("--header", action="append", default=[])
        extra.add_argument("--env", action="append", default=[])
        extra.add_argument("--timeout", type=float)
        try:
            parsed, unknown = extra.parse_known_args(options)
        except SystemExit:
            raise UsageError(f"cannot read the options {' '.join(options)}",
                             "see codetether mcp add --help") from None
        if unknown:
            raise UsageError(f"unknown options {' '.join(unknown)}",
                             "put the server command after --")
        args.url = args.url or parsed.url
        args.header = list(getattr(args, "header", None) or []) + parsed.header
        args.env = list(getattr(args, "env", None) or []) + parsed.env
        args.timeout = getattr(args, "timeout", None) or parsed.timeout
    return command


def _remove(args: argparse.Namespace) -> int:
    from codetether.mcp.config import remove_server

    path = remove_server(args.name)
    print(f"removed mcp server '{args.name}' from {path}", file=sys.stderr)
    return 0


def _configured(name: str | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    from codetether.core.config import load_config
    from codetether.core.errors import UsageError
    from codetether.mcp.config import McpConfigError, load_servers

    specs, errors = load_servers(load_config())
    if name is not None:
        if name in errors:
            raise McpConfigError(errors[name])
        if name not in specs:
            raise UsageError(f"no MCP server named '{name}'",
                             "see `codetether mcp list`, or add it with `codetether mcp add`")
    return specs, errors


def _status(spec: Any) -> dict[str, Any]:
    """Connect, count tools, disconnect: connected / failed: reason / needs_auth / disabled."""
    from codetether.core.errors import CodetetherError
    from codetether.mcp.client import McpAuthRequired, McpClient
    from codetether.mcp.config import McpConfigError

    row: dict[str, Any] = {"name": spec.name, "type": spec.type, "target": spec.target()}
    if not spec.enabled:
        return {**row, "status": "disabled"}
    client = McpClient(spec)
    try:
        client.connect()
        tools = client.list_tools()
        row.update(status="connected", tools=len(tools), server=client.server_info,
                   protocol_version=client.protocol_version)
    except McpAuthRequired as exc:
        row.update(status="needs_auth", error=exc.one_line())
    except McpConfigError as exc:
        row.update(status="failed", error="config error: " + exc.one_line())
    except CodetetherError as exc:
        row.update(status="failed", error="connection error: " + exc.one_line())
    finally:
        client.close()
    return row


def _list(args: argparse.Namespace) -> int:
    from concurrent.futures import ThreadPoolExecutor

    specs, errors = _configured()
    with ThreadPoolExecutor(max_workers=8) as pool:
        rows = list(pool.map(_status, specs.values()))
    rows += [{"name": n, "type": "?", "target": "", "status": "failed",
              "error": "config error: " + e} for n, e in errors.items()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no MCP servers configured; add one with `codetether mcp add NAME -- CMD ARGS` "
              "or `codetether mcp add NAME --url URL`", file=sys.stderr)
        return 0
    for row in rows:
        status = row["status"]
        if status == "connected":
            status += f" ({row['tools']} tools)"
        elif row.get("error"):
            status += ": " + row["error"]
        print(f"{row['name']}\t{row['type']}\t{row['target']}\t{status}")
    return 0


def _tools(args: argparse.Namespace) -> int:
    from codetether.mcp.bridge import tool_name
    from codetether.mcp.client import McpClient

    specs, _ = _configured(args.name)
    client = McpClient(specs[args.name])
    try:
        tools = client.connect().list_tools()
    finally:
        client.close()
    if args.json:
        print(json.dumps(tools, indent=2))
        return 0
    for tool in tools:
        first = (tool.get("description") or "").strip().splitlines()
        print(f"{tool_name(args.name, tool['name'])}\t{first[0][:90] if first else ''}")
    return 0


def _call(args: argparse.Namespace) -> int:
    from codetether.core.errors import UsageError
    from codetether.mcp.client import McpClient, result_text

    try:
        arguments = json.loads(args.arguments)
    except ValueError as exc:
        raise UsageError(f"--arguments is not valid JSON ({exc})",
                         'pass an object, e.g. --arguments \'{"timezone": "UTC"}\'') from None
    if not isinstance(arguments, dict):
        raise UsageError("--arguments must be a JSON object", "wrap the values in {...}")
    specs, _ = _configured(args.name)
    client = McpClient(specs[args.name])
    try:
        result = client.connect().call_tool(args.tool, arguments)
    finally:
        client.close()
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print(result_text(result))
    if result.get("isError"):
        print(f"error: tool {args.tool} of mcp server '{args.name}' reported an error",
              file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m codetether.cli.mcp_cmd ...``: the same commands before the CLI table has the
    ``mcp`` entry (and a fixed entry point for tests and benchmarks)."""
    from codetether.cli.main import _dispatch

    parser = argparse.ArgumentParser(prog="codetether")
    add_parser(parser.add_subparsers(dest="command"))
    return _dispatch(parser.parse_args(["mcp", *(sys.argv[1:] if argv is None else argv)]))


if __name__ == "__main__":
    sys.exit(main())
