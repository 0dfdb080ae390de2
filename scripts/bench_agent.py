#!/usr/bin/env python3
"""Agent harness benchmark: what one tool step costs us, apart from the model.

    python scripts/bench_agent.py [--steps 20] [--runs 3] [--out bench-results]

Runs the real ``codetether run --yolo`` against the scripted LLM server (tests/scripted_llm) in a
temporary git repo: ``--steps`` model steps, each calling one tool (read, grep, glob, list,
edit, bash in turn), then a final answer. Per run we take the wall time of the whole process
and subtract the time the LLM server spent answering (receipt to last byte), which leaves the
harness: start-up, request building, tool execution, snapshots, session writes. Reported:
start-up of ``--version`` alone, overhead per step ((wall - server - startup) / steps), and the
process's peak RSS (``os.wait4``).
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
sys.path.insert(0, str(ROOT))

from tests.scripted_llm import ScriptedLLMServer, ToolCall, Turn  # noqa: E402


def script(steps: int) -> list[Turn]:
    calls = [
        lambda i: ToolCall("read", {"path": "src/module_1.py"}),
        lambda i: ToolCall("grep", {"pattern": "def f"}),
        lambda i: ToolCall("glob", {"pattern": "**/*.py"}),
        lambda i: ToolCall("list", {"path": "src"}),
        lambda i: ToolCall("edit", {"path": "src/module_2.py", "old_string": f"VALUE = {i}",
                                    "new_string": f"VALUE = {i + 1}"}),
        lambda i: ToolCall("bash", {"command": "true"}),
    ]
    turns = [Turn(tool_calls=[calls[i % len(calls)](i)]) for i in range(steps)]
    return turns + [Turn(text="done")]


def make_repo(root: Path) -> None:
    src = root / "src"
    src.mkdir(parents=True)
    for n in range(1, 41):
        body = "".join(f"def f{k}(x):\n    return x + {k}\n\n" for k in range(50))
        (src / f"module_{n}.py").write_text(f"VALUE = 0\n\n{body}")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)


def fix_edit_values(turns: list[Turn]) -> None:
    """The edit steps must see the value the previous edit left."""
    value = 0
    for turn in turns:
        for call in turn.tool_calls:
            if call.name == "edit":
                call.arguments = {"path": "src/module_2.py", "old_string": f"VALUE = {value}",
                                  "new_string": f"VALUE = {value + 1}"}
                value += 1


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, int]:
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    return wall, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def one_run(steps: int, python: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp, ScriptedLLMServer() as llm:
        tmp_path = Path(tmp)
        repo = tmp_path / "repo"
        make_repo(repo)
        turns = script(steps)
        fix_edit_values(turns)
        llm.enqueue(*turns)
        env = dict(os.environ, OPENAI_API_KEY="sk-bench-0000000000", PYTHONPATH=str(ROOT),
                   OPENAI_BASE_URL=llm.url + "/v1", CODETETHER_DEFAULT_MODEL="openai/gpt-4o",
                   CODETETHER_DATA_DIR=str(tmp_path / "data"),
                   CODETETHER_CONFIG=str(tmp_path / "config.toml"))
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        startup, _, _ = timed([python, "-m", "codetether", "--version"], repo, env)
        wall, rss, code = timed([python, "-m", "codetether", "run", "--yolo", "--max-steps",
                                 str(steps + 1), "go"], repo, env)
        if code != 0 or llm.remaining:
            raise SystemExit(f"run failed (exit {code}, {llm.remaining} turns left)")
        server = sum(r.finished_at - r.received_at for r in llm.requests)
        return {"wall_s": wall, "server_s": server, "startup_s": startup, "rss_mib": rss,
                "per_step_ms": (wall - server - startup) / steps * 1000}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--out", default="bench-results")
    args = parser.parse_args()
    one_run(2, args.python)  # warm caches (bytecode, git)
    runs = [one_run(args.steps, args.python) for _ in range(args.runs)]
    result = {key: round(statistics.median(r[key] for r in runs), 4) for key in runs[0]}
    machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, " \
              f"Python {platform.python_version()}"
    table = "\n".join([
        f"Machine: {machine}; {args.steps} tool steps, median of {args.runs} runs", "",
        "| metric | value |", "|---|---|",
        f"| harness overhead per tool step | {result['per_step_ms']:.1f} ms |",
        f"| whole run (wall) | {result['wall_s'] * 1000:.0f} ms |",
        f"| of which scripted LLM serving | {result['server_s'] * 1000:.0f} ms |",
        f"| of which process start-up | {result['startup_s'] * 1000:.0f} ms |",
        f"| peak RSS of the {args.steps}-step run | {result['rss_mib']:.1f} MiB |",
    ])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "agent.md").write_text(table + "\n")
    (out / "agent.json").write_text(json.dumps({"machine": machine, "steps": args.steps,
                                                "runs": runs, "median": result}, indent=2))
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
