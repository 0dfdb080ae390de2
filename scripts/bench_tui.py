#!/usr/bin/env python3
"""TUI benchmark: launch → first frame, idle RSS and idle CPU, in a real terminal (tmux).

    python scripts/bench_tui.py [--python .venv/bin/python] [--runs 10] [--out bench-results]

Each run starts ``python -m codetether.tui`` in a fresh detached tmux session (100×30, private
tmux server) and polls ``capture-pane`` every few milliseconds until the greeting is drawn (the
first frame as a user sees it), then until the model shows in the status bar (the runtime is
built in the background after the first frame). The same is done for ``python -c "print(...)"`` as a
floor (tmux + interpreter start). Then the TUI sits idle for ``--idle`` seconds and we read its
RSS (``/proc/<pid>/status``) and the CPU time it used meanwhile. No LLM is called: start-up
builds the runtime from an env key only. Prints a markdown table; writes tui.md and tui.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def tmux(socket: str, *args: str) -> str:
    return subprocess.run(["tmux", "-L", socket, "-f", "/dev/null", *args], check=True,
                          capture_output=True, text=True).stdout


def launch(command: str, marker: str, env: dict[str, str], cwd: str, exec_: bool = True,
           timeout: float = 30.0) -> tuple[float, str, int]:
    """Start ``command`` in tmux; (ms until ``marker`` is on screen, socket, pane pid — the
    command's own pid when ``exec_``, else 0)."""
    socket = f"bench-{uuid.uuid4().hex[:8]}"
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    pause = threading.Event()
    start = time.perf_counter()
    tmux(socket, "new-session", "-d", "-s", "b", "-x", "100", "-y", "30", "-c", cwd,
         f"export {exports}; {'exec ' if exec_ else ''}{command}; sleep 60")
    while time.perf_counter() - start < timeout:
        if marker in tmux(socket, "capture-pane", "-p", "-t", "b"):
            elapsed = (time.perf_counter() - start) * 1000
            pid = int(tmux(socket, "display-message", "-p", "-t", "b", "#{pane_pid}").strip()
                      ) if exec_ else 0
            return elapsed, socket, pid
        pause.wait(0.003)
    tmux(socket, "kill-server")
    raise SystemExit(f"{marker!r} did not appear within {timeout}s for: {command}")


def wait_for(socket: str, marker: str, timeout: float = 30.0) -> float:
    """ms until ``marker`` is on the screen of an already running session."""
    pause = threading.Event()
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if marker in tmux(socket, "capture-pane", "-p", "-t", "b"):
            return (time.perf_counter() - start) * 1000
        pause.wait(0.003)
    raise SystemExit(f"{marker!r} did not appear within {timeout}s")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--idle", type=float, default=3.0, help="seconds idle before RSS/CPU")
    parser.add_argument("--out", default="bench-results")
    args = parser.parse_args()
    python = str(Path(args.python).absolute())
    tmp = Path(tempfile.mkdtemp(prefix="bench-tui-"))
    (tmp / "ws").mkdir()
    env = {"PYTHONPATH": str(ROOT), "TERM": "xterm-256color", "LANG": "C.UTF-8",
           "HOME": str(tmp), "CODETETHER_DATA_DIR": str(tmp / "data"),
           "CODETETHER_CONFIG": str(tmp / "config.toml"), "PATH": os.environ.get("PATH", ""),
           "OPENAI_API_KEY": "sk-bench-not-used", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
           "CODETETHER_DEFAULT_MODEL": "openai/gpt-4o"}
    tui = shlex.join([python, "-m", "codetether.tui", str(tmp / "ws")])
    floor = shlex.join([python, "-c", "print('ready')"])
    frames, readies, floors, rss, cpu = [], [], [], [], []
    for index in range(args.runs + 1):  # the first run warms bytecode caches
        floor_ms, socket, _pid = launch(floor, "ready", env, str(tmp), exec_=False)
        tmux(socket, "kill-server")
        frame_ms, socket, pid = launch(tui, "Type a prompt", env, str(tmp))
        try:
            ready_ms = frame_ms + wait_for(socket, "openai/gpt-4o")
            before = cpu_seconds(pid)
            threading.Event().wait(args.idle)  # a benchmark measures idling; nothing to sync on
            used = cpu_seconds(pid) - before
            resident = rss_mib(pid)
        finally:
            tmux(socket, "kill-server")
        if index:
            frames.append(frame_ms)
            readies.append(ready_ms)
            floors.append(floor_ms)
            rss.append(resident)
            cpu.append(used / args.idle * 100)
    result = {
        "first_frame_ms_median": round(statistics.median(frames), 1),
        "first_frame_ms_min": round(min(frames), 1),
        "model_ready_ms_median": round(statistics.median(readies), 1),
        "python_print_ms_median": round(statistics.median(floors), 1),
        "idle_rss_mib_median": round(statistics.median(rss), 1),
        "idle_cpu_percent_median": round(statistics.median(cpu), 2),
        "runs": args.runs, "idle_seconds": args.idle,
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
                   f"Python {platform.python_version()}",
    }
    table = "\n".join([
        "| measure | value |", "|---|---|",
        f"| launch → first frame (median / min) | {result['first_frame_ms_median']} ms / "
        f"{result['first_frame_ms_min']} ms |",
        f"| launch → model ready in the status bar (median) | "
        f"{result['model_ready_ms_median']} ms |",
        f"| floor: tmux + `python -c print` (median) | {result['python_print_ms_median']} ms |",
        f"| idle RSS after launch (median) | {result['idle_rss_mib_median']} MiB |",
        f"| idle CPU over {args.idle:g} s (median) | {result['idle_cpu_percent_median']} % |",
        "", f"{args.runs} runs in tmux 100×30, {result['machine']}."])
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tui.md").write_text("# TUI benchmark\n\n" + table + "\n")
    (out / "tui.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
