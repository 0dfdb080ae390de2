#!/usr/bin/env python3
"""A2A server benchmark: SendMessage requests/s and p50/p99 latency, JSON-RPC and gRPC.

    python scripts/bench_a2a.py [--requests 2000] [--concurrency 1,8,32] [--out bench-results]

Starts the real ``codetether serve --backend echo`` (its own process, so the load generator does
not share its GIL) on loopback with a throwaway data dir and token. Each row: ``--concurrency``
threads share a bounded count of ``--requests`` blocking ``SendMessage`` calls (each one a whole
task: submitted -> working -> artifact -> completed, written to SQLite and the audit log); each
JSON-RPC thread keeps one keep-alive HTTP connection, gRPC threads share one channel. Latency
is per call as the client sees it. Writes ``a2a.md`` and ``a2a.json``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TOKEN = "bench-token-" + uuid.uuid4().hex


def start_server(data_dir: str) -> tuple[subprocess.Popen, str, str | None]:
    env = {**os.environ, "CODETETHER_DATA_DIR": data_dir, "CODETETHER_AUTH_TOKEN": TOKEN,
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "codetether", "serve", "--port", "0",
                             "--grpc-port", "0", "--backend", "echo"], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    url = grpc_target = None
    deadline = time.monotonic() + 60
    lines: list[str] = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if found := re.search(r"listening on (http://\S+)", line):
            url = found.group(1)
        if found := re.search(r"A2A gRPC\s+(\S+)", line):
            grpc_target = found.group(1)
        if line.lstrip().startswith("backend"):  # the last line of the announcement
            break
    if url is None:
        proc.kill()
        raise SystemExit("serve did not start:\n" + "".join(lines))
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    return proc, url, grpc_target


def load(call_factory: Callable[[], Callable[[int], None]], requests: int, concurrency: int
         ) -> dict:
    """``concurrency`` threads make ``requests`` calls in all; per-call latencies in ms."""
    counter = iter(range(requests))
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    start_gate = threading.Barrier(concurrency + 1)

    def worker() -> None:
        call = call_factory()
        mine: list[float] = []
        start_gate.wait()
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                break
            began = time.perf_counter()
            try:
                call(n)
            except Exception as exc:  # count it; the table shows errors
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")
                continue
            mine.append((time.perf_counter() - began) * 1000.0)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    start_gate.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {"concurrency": concurrency, "requests": requests, "ok": len(latencies),
            "errors": len(errors), "first_error": errors[0] if errors else None,
            "req_per_s": round(len(latencies) / elapsed, 1) if elapsed else 0.0,
            "p50_ms": round(_percentile(latencies, 50), 2),
            "p99_ms": round(_percentile(latencies, 99), 2),
            "mean_ms": round(statistics.fmean(latencies), 2) if latencies else 0.0}


def _percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def jsonrpc_caller(url: str) -> Callable[[], Callable[[int], None]]:
    host_port = url.removeprefix("http://")
    host, _, port = host_port.partition(":")

    def factory() -> Callable[[int], None]:
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json",
                   "A2A-Version": "1.0"}

        def call(n: int) -> None:
            body = json.dumps({"jsonrpc": "2.0", "id": n, "method": "SendMessage", "params": {
                "message": {"messageId": f"bench-{n}-{uuid.uuid4().hex[:8]}",
                            "role": "ROLE_USER", "parts": [{"text": f"hello {n}"}]}}})
            conn.request("POST", "/a2a", body, headers)
            resp = conn.getresponse()
            data = json.loads(resp.read())
            state = data.get("result", {}).get("task", {}).get("status", {}).get("state")
            if resp.status != 200 or state != "TASK_STATE_COMPLETED":
                raise RuntimeError(f"HTTP {resp.status}: {str(data)[:200]}")

        return call

    return factory


def grpc_caller(target: str) -> Callable[[], Callable[[int], None]]:
    import grpc

    from codetether.a2a.grpc_gen import a2a_pb2, a2a_pb2_grpc

    channel = grpc.insecure_channel(target)
    stub = a2a_pb2_grpc.A2AServiceStub(channel)
    metadata = (("authorization", f"Bearer {TOKEN}"),)
    completed = a2a_pb2.TaskState.Value("TASK_STATE_COMPLETED")

    def factory() -> Callable[[int], None]:
        def call(n: int) -> None:
            request = a2a_pb2.SendMessageRequest(message=a2a_pb2.Message(
                message_id=f"bench-{n}-{uuid.uuid4().hex[:8]}", role=a2a_pb2.ROLE_USER,
                parts=[a2a_pb2.Part(text=f"hello {n}")]))
            reply = stub.SendMessage(request, metadata=metadata, timeout=60)
            if reply.task.status.state != completed:
                raise RuntimeError(f"task ended {reply.task.status.state}")

        return call

    return factory


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="calls per row")
    parser.add_argument("--concurrency", default="1,8,32", help="client threads, per row")
    parser.add_argument("--out", default="bench-results")
    args = parser.parse_args()
    levels = [int(x) for x in args.concurrency.split(",") if x.strip()]
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="ct-bench-a2a-") as data_dir:
        proc, url, grpc_target = start_server(data_dir)
        try:
            transports: list[tuple[str, Callable]] = [("JSON-RPC", jsonrpc_caller(url))]
            if grpc_target:
                transports.append(("gRPC", grpc_caller(grpc_target)))
            for name, factory in transports:
                load(factory, min(100, args.requests), 4)  # warm-up, not reported
                for level in levels:
                    row = {"transport": name, **load(factory, args.requests, level)}
                    rows.append(row)
                    print(f"{name:8} c={level:<3} {row['req_per_s']:>8} req/s  "
                          f"p50 {row['p50_ms']} ms  p99 {row['p99_ms']} ms  "
                          f"errors {row['errors']}", file=sys.stderr)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    lines = [f"A2A SendMessage (echo backend, whole task per call), {args.requests} calls per "
             f"row, loopback, Python {platform.python_version()} on {platform.machine()}, "
             f"{os.cpu_count()} CPUs", "",
             "| transport | client threads | req/s | p50 ms | p99 ms | errors |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['transport']} | {r['concurrency']} | {r['req_per_s']:,} | {r['p50_ms']} | "
              f"{r['p99_ms']} | {r['errors']} |" for r in rows]
    if not any(r["transport"] == "gRPC" for r in rows):
        lines += ["", "gRPC: not measured (the server did not start a gRPC listener)."]
    table = "\n".join(lines)
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "a2a.md").write_text(table + "\n")
    (out / "a2a.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
