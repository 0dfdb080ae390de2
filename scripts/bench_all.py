#!/usr/bin/env python3
"""The whole benchmark suite in one table: ``make bench``.

    python scripts/bench_all.py [--out bench-results] [--binary dist/codetether-...] [--runs 20]

1. Runs every other ``scripts/bench_*.py`` (each writes ``<name>.md`` + ``.json`` into --out;
   one without ``--out`` has its printed table saved as ``<name>.md``).
2. Measures the shipped binary (if built: ``make binary``): its size, and ``--version`` /
   ``--help`` start-up of the single file (warm: unpack cache filled; cold: empty cache), the
   ``--onedir`` build inside it, the source install (``.venv/bin/codetether``) and
   ``python -c pass``, all in the same run (median and min of --runs, peak RSS from wait4).
3. Idle RSS of ``codetether serve --backend echo --port 0`` (source, and binary if built).

Writes ``summary.md`` (every table, with the machine and the command) and ``summary.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ONEDIR = ROOT / "build" / "pyinstaller" / "dist" / "codetether" / "codetether"
IDLE_SETTLE_S = 1.0  # let the server finish start-up allocations before reading its RSS


def machine() -> str:
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}")


def _tables(out: Path) -> dict[str, int]:
    """The .md/.json files in ``out`` with their mtimes: what a script wrote is what changed."""
    return {p.name: p.stat().st_mtime_ns for p in out.iterdir()
            if p.suffix in (".md", ".json") and not p.name.startswith("summary.")}


def run_sub_benchmarks(out: Path) -> list[dict]:
    """Each ``bench_*.py`` but this one; a failing one is reported, not fatal."""
    results = []
    for script in sorted((ROOT / "scripts").glob("bench_*.py")):
        if script.name == Path(__file__).name:
            continue
        started = time.time()
        before = _tables(out)
        takes_out = "--out" in script.read_text()
        cmd = [sys.executable, str(script), *(["--out", str(out)] if takes_out else [])]
        print(f"bench: {script.name}", file=sys.stderr, flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if not takes_out and proc.returncode == 0:  # its table is what it printed
            (out / f"{script.stem.removeprefix('bench_')}.md").write_text(proc.stdout)
        written = sorted(name for name, stamp in _tables(out).items()
                         if before.get(name) != stamp)
        results.append({"script": script.name, "ok": proc.returncode == 0, "files": written,
                        "error": "" if proc.returncode == 0 else proc.stderr.strip()[-500:],
                        "seconds": round(time.time() - started, 1)})
    return results


def measure(cmd: list[str], runs: int, warmup: int, env: dict[str, str]) -> dict:
    walls, rss = [], []
    for index in range(warmup + runs):
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = (time.perf_counter() - start) * 1000
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"bench: {' '.join(cmd)} failed")
        if index >= warmup:
            walls.append(wall)
            rss.append(usage.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024))
    return {"median_ms": round(statistics.median(walls), 1), "min_ms": round(min(walls), 1),
            "peak_rss_mib": round(max(rss), 1), "runs": runs}


def cold_start(binary: Path, runs: int, env: dict[str, str]) -> dict:
    """First start of the single file: verify + unpack into an empty cache, then run."""
    walls = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as cache:
            start = time.perf_counter()
            subprocess.run([str(binary), "--version"], check=True, stdout=subprocess.DEVNULL,
                           env=env | {"XDG_CACHE_HOME": cache})
            walls.append((time.perf_counter() - start) * 1000)
    return {"median_ms": round(statistics.median(walls), 1), "min_ms": round(min(walls), 1),
            "runs": runs}


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def startup(binary: Path | None, runs: int, cache: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["XDG_CACHE_HOME"] = cache
    source = Path(sys.executable).parent / "codetether"
    cases: dict[str, list[str]] = {"python -c pass": [sys.executable, "-c", "pass"]}
    for flag in ("--version", "--help"):
        if source.exists():
            cases[f"source: codetether {flag}"] = [str(source), flag]
        if ONEDIR.exists():
            cases[f"onedir: codetether {flag}"] = [str(ONEDIR), flag]
        if binary:
            cases[f"single file: codetether {flag}"] = [str(binary), flag]
    results = {name: measure(cmd, runs, 3, env) for name, cmd in cases.items()}
    if binary:
        results["single file, first start (unpack): --version"] = cold_start(binary, 3, env)
    return results


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status")
    if status.exists():
        found = re.search(r"VmRSS:\s+(\d+) kB", status.read_text())
        return round(int(found.group(1)) / 1024, 1) if found else 0.0
    out = subprocess.run(["ps", "-o", "rss=", "-p", str(pid)], capture_output=True, text=True)
    return round(int(out.stdout.strip() or 0) / 1024, 1)


def idle_serve_rss(cmd: list[str], cache: str) -> dict:
    """Start ``serve``, wait for its "listening" line, let it settle, read its RSS."""
    with tempfile.TemporaryDirectory() as data:
        env = dict(os.environ, XDG_CACHE_HOME=cache, CODETETHER_DATA_DIR=data,
                   CODETETHER_AUTH_TOKEN="bench-token-0123456789")
        proc = subprocess.Popen([*cmd, "serve", "--backend", "echo", "--port", "0",
                                 "--grpc-port", "0"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                env=env)
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            for line in proc.stderr:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        started = time.perf_counter()
        try:
            while True:
                line = lines.get(timeout=60)
                if line is None:
                    return {"error": f"serve exited {proc.wait()}"}
                if "listening on" in line:
                    break
            ready_ms = round((time.perf_counter() - started) * 1000, 1)
            threading.Event().wait(IDLE_SETTLE_S)
            return {"idle_rss_mib": rss_mib(proc.pid), "ready_ms": ready_ms}
        except queue.Empty:
            return {"error": "serve did not say where it listens within 60 s"}
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def find_binary(given: str | None) -> Path | None:
    if given:
        path = Path(given)
        if not path.is_file():
            raise SystemExit(f"bench: no binary at {path}")
        return path.absolute()
    built = sorted((ROOT / "dist").glob("codetether-*-*-*"), key=lambda p: p.stat().st_mtime)
    built = [p for p in built if not p.name.endswith((".tmp", ".exe"))]
    return built[-1] if built else None


def markdown(report: dict) -> str:
    lines = ["# Benchmarks", "", f"Machine: {report['machine']}; command: `{report['command']}`",
             f"({report['date']})", ""]
    binary = report.get("binary")
    if binary:
        lines += ["## Binary", "", "| artifact | size |", "|---|---|",
                  f"| `{binary['name']}` (single file) | {binary['size_mb']} MB |"]
        if binary.get("onedir_mb"):
            lines.append(f"| unpacked (onedir, in the cache) | {binary['onedir_mb']} MB |")
        lines.append("")
    lines += ["## Start-up", "", "| command | median ms | min ms | vs `python -c pass` | "
              "peak RSS MiB |", "|---|---|---|---|---|"]
    base = report["startup"]["python -c pass"]["median_ms"]
    for name, r in report["startup"].items():
        rss = r.get("peak_rss_mib", "")
        lines.append(f"| `{name}` | {r['median_ms']} | {r['min_ms']} | "
                     f"+{r['median_ms'] - base:.1f} ms | {rss} |")
    ratio = report.get("single_file_vs_onedir")
    if ratio:
        lines += ["", f"Warm single file vs onedir (`--version`, median): {ratio}x."]
    lines += ["", "## Idle `serve --backend echo --port 0`", "", "| build | idle RSS MiB | "
              "ready after ms |", "|---|---|---|"]
    for name, r in report["serve"].items():
        if "error" in r:
            lines.append(f"| {name} | {r['error']} | |")
        else:
            lines.append(f"| {name} | {r['idle_rss_mib']} | {r['ready_ms']} |")
    for sub in report["benchmarks"]:
        lines += ["", f"## {sub['script']}", ""]
        if not sub["ok"]:
            lines.append(f"failed: {sub['error']}")
            continue
        for name in sub["files"]:
            if name.endswith(".md"):
                lines.append((Path(report["out"]) / name).read_text().strip())
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "bench-results"))
    parser.add_argument("--binary", help="single-file binary (default: newest in dist/)")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--skip-sub", action="store_true", help="only the binary/serve part")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    binary = find_binary(args.binary)
    report: dict = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "out": str(out),
                    "command": "make bench (python scripts/bench_all.py)"}
    report["benchmarks"] = [] if args.skip_sub else run_sub_benchmarks(out)
    with tempfile.TemporaryDirectory() as cache:
        if binary:  # fill the unpack cache once, so the warm figures are warm
            subprocess.run([str(binary), "--version"], check=True, stdout=subprocess.DEVNULL,
                           env=dict(os.environ, XDG_CACHE_HOME=cache))
            unpacked = [p for p in (Path(cache) / "codetether").iterdir() if p.is_dir()]
            report["binary"] = {"name": binary.name,
                                "size_mb": round(binary.stat().st_size / 1e6, 1),
                                "onedir_mb": round(dir_size(unpacked[0]) / 1e6, 1)}
        print("bench: start-up", file=sys.stderr, flush=True)
        report["startup"] = startup(binary, args.runs, cache)
        warm = report["startup"].get("single file: codetether --version")
        onedir = report["startup"].get("onedir: codetether --version")
        if warm and onedir:
            report["single_file_vs_onedir"] = round(warm["median_ms"] / onedir["median_ms"], 2)
        report["serve"] = {}
        if (ROOT / "codetether" / "cli" / "serve_cmd.py").exists():
            print("bench: idle serve", file=sys.stderr, flush=True)
            source = Path(sys.executable).parent / "codetether"
            if source.exists() or shutil.which("codetether"):
                report["serve"]["source"] = idle_serve_rss([str(source)], cache)
            if binary:
                report["serve"]["single file"] = idle_serve_rss([str(binary)], cache)
    (out / "summary.json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    (out / "summary.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
