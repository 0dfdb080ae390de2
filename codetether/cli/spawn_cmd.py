"""``codetether spawn --name NAME``: a standalone A2A peer that finds and greets other peers.

It is the ``serve`` server (agent backend, same auth and audit) under its own name, plus peer
discovery (``server/peers.py``): seeds from ``--peer`` and ``CODETETHER_A2A_PEERS`` are polled
every 15 s, new peers get one intro message, and ``GET /v1/agents`` lists what it knows. Its
tasks live in their own database (``peers/NAME/tasks.db`` in the data dir) so several peers can
share a machine without failing each other's running tasks at start-up. Outgoing calls carry
``CODETETHER_A2A_PEER_TOKEN``, else this server's own token (a mesh on one machine shares it).
"""

from __future__ import annotations

import argparse
import os
import re
import sys

from codetether.core.errors import UsageError

ENV_PEER_TOKEN = "CODETETHER_A2A_PEER_TOKEN"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def run(args: argparse.Namespace) -> int:
    from codetether.cli.serve_cmd import StopSignals, announce, options_from
    from codetether.core import paths
    from codetether.server.app import CodetetherServer
    from codetether.server.peers import DEFAULT_INTERVAL, PeerDiscovery, seeds_from

    name = (getattr(args, "name", None) or "").strip()
    if not _NAME.match(name):
        raise UsageError(f"bad peer name {name!r}",
                         "use letters, digits, '-' and '_' (up to 64), e.g. --name reviewer")
    interval = getattr(args, "discovery_interval", None)
    interval = DEFAULT_INTERVAL if interval is None else interval
    if interval <= 0:
        raise UsageError("--discovery-interval must be positive", "give seconds, e.g. 15")
    if getattr(args, "port", None) is None:
        args.port = 0
    args.grpc_port = "off"  # a peer is reached over JSON-RPC; many peers, one 50051
    options = options_from(args, name=name,
                           description=f"CodeTether peer {name}: a coding agent on the A2A mesh.",
                           store_path=paths.data_dir() / "peers" / name / "tasks.db")
    peers = getattr(args, "peer", None) or []
    seeds = seeds_from([peers] if isinstance(peers, str) else peers)
    holder: dict[str, PeerDiscovery] = {}

    def on_intro(metadata: dict) -> None:
        if "d" in holder:
            holder["d"].on_intro(metadata)

    with StopSignals() as signals:
        server = CodetetherServer(options, on_intro=on_intro).start()
        discovery = PeerDiscovery(name, lambda: server.url, server.registry,
                                  os.environ.get(ENV_PEER_TOKEN) or server.token, seeds,
                                  interval, server.audit)
        holder["d"] = discovery
        try:
            announce(server)
            print(f"  peer          {name}; seeds: {', '.join(seeds) or '(none)'}; polling "
                  f"every {interval:g}s; peers at {server.url}/v1/agents", file=sys.stderr,
                  flush=True)
            discovery.start()
            why = signals.wait()
            print(f"codetether: {why}: stopping", file=sys.stderr, flush=True)
        finally:
            discovery.stop()
            server.stop("server stopped")
    print("codetether: stopped", file=sys.stderr, flush=True)
    return 0
