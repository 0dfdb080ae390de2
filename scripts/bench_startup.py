#!/usr/bin/env python3
"""Start-up benchmark: wall time and peak RSS of `codetether --version` / `--help` against a
bare `python -c pass`, all measured in the same run on the same interpreter.

    python scripts/bench_startup.py [--python .venv/bin/python] [--runs 30] [--out bench-results]

Each command runs ``--warmup`` times first (so bytecode caches exist: an installed package has
its .pyc files), then ``--runs`` times; we report the median and min wall time and the peak
RSS of the child (``os.wait4``'s rusage). Writes ``startup.md`` and ``startup.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path


def measure(cmd: list[str], runs: int, warmup: int, env: dict[str, str]) -> dict:
    walls, rss = [], []
    for index in range(warmup + runs):
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}")
        if index >= warmup:
            walls.append(wall * 1000)
            rss.append(usage.ru_maxrss / 1024)  # KiB -> MiB on Linux
    return {"median_ms": round(statistics.median(walls), 1), "min_ms": round(min(walls), 1),
            "peak_rss_mib": round(max(rss), 1), "runs": runs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter to measure with")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", default="bench-results", help="directory for md + json")
    args = parser.parse_args()
    python = str(Path(args.python).absolute())
    script = Path(python).parent / "codetether"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cases = {
        "python -c pass": [python, "-c", "pass"],
        "codetether --version": [str(script), "--version"],
        "codetether --help": [str(script), "--help"],
        "python -m codetether --version": [python, "-m", "codetether", "--version"],
    }
    results = {name: measure(cmd, args.runs, args.warmup, env) for name, cmd in cases.items()}
    base = results["python -c pass"]["median_ms"]
    machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, " \
              f"Python {platform.python_version()}"
    lines = [f"Machine: {machine}", "",
             "| command | median ms | min ms | vs `python -c pass` | peak RSS MiB |",
             "|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| `{name}` | {r['median_ms']} | {r['min_ms']} | "
                     f"+{r['median_ms'] - base:.1f} ms | {r['peak_rss_mib']} |")
    table = "\n".join(lines)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "startup.md").write_text(table + "\n")
    (out / "startup.json").write_text(json.dumps({"machine": machine, "results": results},
                                                 indent=2) + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
