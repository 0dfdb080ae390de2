#!/usr/bin/env python3
"""Agent-bus benchmark: publish→deliver rate with 1 and 8 subscribers.

    python scripts/bench_bus.py [--messages 200000] [--out bench-results]

One publisher thread publishes ``--messages`` envelopes on ``task.{n}`` while each subscriber
(pattern ``task.#``, its own thread) reads its queue until it has them all. The rate is
messages published per second from the first publish to the last delivery to the slowest
subscriber; "deliveries/s" counts each subscriber's copy. Queues are sized to hold the whole run
so nothing is dropped (a drop would show in the table). Writes ``bus.md`` and ``bus.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from codetether.bus import AgentBus  # noqa: E402


def run(subscribers: int, messages: int) -> dict:
    bus = AgentBus()
    subs = [bus.subscribe("task.#", maxsize=messages + 1) for _ in range(subscribers)]
    done = threading.Barrier(subscribers + 1)

    def reader(sub) -> None:
        for _ in range(messages):
            sub.get()
        done.wait()

    threads = [threading.Thread(target=reader, args=(s,), daemon=True) for s in subs]
    for t in threads:
        t.start()
    message = {"kind": "task_update", "state": "working"}
    start = time.perf_counter()
    for i in range(messages):
        bus.publish(f"task.{i & 63}", message, "bench")
    publish_s = time.perf_counter() - start
    done.wait()
    total_s = time.perf_counter() - start
    return {"subscribers": subscribers, "messages": messages,
            "publish_per_s": round(messages / publish_s),
            "delivered_per_s": round(messages / total_s),
            "deliveries_per_s": round(messages * subscribers / total_s),
            "dropped": sum(s.dropped for s in subs)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--out", default="bench-results")
    args = parser.parse_args()
    rows = [run(n, args.messages) for n in (1, 8)]
    lines = [f"Bus publish→deliver, {args.messages} messages, Python "
             f"{platform.python_version()} on {platform.machine()}", "",
             "| subscribers | publish msg/s | delivered msg/s | deliveries/s | dropped |",
             "|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['subscribers']} | {r['publish_per_s']:,} | {r['delivered_per_s']:,} | "
              f"{r['deliveries_per_s']:,} | {r['dropped']} |" for r in rows]
    table = "\n".join(lines)
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bus.md").write_text(table + "\n")
    (out / "bus.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
