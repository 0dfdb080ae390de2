#!/usr/bin/env python3
"""MCP server benchmark: ``codetether mcp serve`` against mcp-server-time on the same machine.

    python scripts/bench_mcp.py [--runs 5] [--calls 50]

For each server, ``--runs`` times: spawn it, send ``initialize`` and time until the answer
arrives (cold start, including interpreter start-up and imports), then send
``notifications/initialized`` and ``--calls`` ``tools/call`` requests one after another and
time each round trip (warm). The client is a bare pipe reader, the same for both, so only the
servers differ. Tools: our ``file_info`` on a small file (read-only, no permission prompt) and
mcp-server-time's ``get_current_time``. Prints a markdown table of medians (p95 for calls).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def init_message() -> bytes:
    return _line({"jsonrpc": "2.0", "id": 0, "method": "initialize",
                  "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                             "clientInfo": {"name": "bench", "version": "0"}}})


def _line(message: dict) -> bytes:
    return json.dumps(message).encode() + b"\n"


def _answer(proc: subprocess.Popen, request_id: int) -> dict:
    while True:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"server exited: {proc.stderr.read().decode()[-500:]}")
        message = json.loads(line)
        if message.get("id") == request_id:
            if "error" in message:
                raise SystemExit(f"server error: {message['error']}")
            return message["result"]


def one_run(argv: list[str], tool: str, args: dict, calls: int, env: dict) -> tuple[float,
                                                                                     list[float]]:
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, bufsize=0)
    try:
        proc.stdin.write(init_message())
        _answer(proc, 0)
        initialize = time.perf_counter() - started
        proc.stdin.write(_line({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        times = []
        for i in range(1, calls + 1):
            t = time.perf_counter()
            proc.stdin.write(_line({"jsonrpc": "2.0", "id": i, "method": "tools/call",
                                    "params": {"name": tool, "arguments": args}}))
            result = _answer(proc, i)
            times.append(time.perf_counter() - t)
            if result.get("isError"):
                raise SystemExit(f"{tool} failed: {result}")
        return initialize, times
    finally:
        proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def measure(name: str, argv: list[str], tool: str, args: dict, runs: int, calls: int,
            env: dict) -> dict:
    inits, rtts = [], []
    for _ in range(runs):
        init, times = one_run(argv, tool, args, calls, env)
        inits.append(init)
        rtts += times
    rtts.sort()
    return {"server": name, "tool": tool, "init_ms": statistics.median(inits) * 1000,
            "call_ms": statistics.median(rtts) * 1000,
            "call_p95_ms": rtts[int(len(rtts) * 0.95) - 1] * 1000}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--calls", type=int, default=50)
    opts = parser.parse_args()
    time_server = Path(sys.executable).with_name("mcp-server-time")
    if not time_server.exists():
        raise SystemExit("mcp-server-time is not installed next to this Python: "
                         "pip install mcp-server-time")
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp) / "ws"
        workspace.mkdir()
        (workspace / "hello.py").write_text("print('hello')\n")
        env = dict(os.environ, PYTHONPATH=str(ROOT), CODETETHER_DATA_DIR=str(Path(tmp) / "data"),
                   CODETETHER_CONFIG=str(Path(tmp) / "config.toml"))
        rows = [
            measure("codetether mcp serve", [sys.executable, "-m", "codetether", "mcp", "serve",
                                             str(workspace)],
                    "file_info", {"path": "hello.py"}, opts.runs, opts.calls, env),
            measure("mcp-server-time", [str(time_server)], "get_current_time",
                    {"timezone": "UTC"}, opts.runs, opts.calls, env),
        ]
    print(f"MCP over stdio, {opts.runs} runs x {opts.calls} calls; Python "
          f"{platform.python_version()}, {platform.system()} {platform.machine()}\n")
    print("| server | initialize answered (cold, median) | tools/call round trip (median) "
          "| tools/call p95 |")
    print("|---|---|---|---|")
    for row in rows:
        print(f"| {row['server']} (`{row['tool']}`) | {row['init_ms']:.0f} ms | "
              f"{row['call_ms']:.2f} ms | {row['call_p95_ms']:.2f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
