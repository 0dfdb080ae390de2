"""``codetether serve``: CodeTether as an A2A server (JSON-RPC + SSE, REST, gRPC) for other agents.

Auth is mandatory: ``CODETETHER_AUTH_TOKEN``, or a token generated once into the data dir and
printed on stderr that one time. Where it listens goes to stderr (stdout stays empty: a server
prints no results). It runs until SIGINT or SIGTERM, then stops gracefully: running tasks end
failed, open streams close, gRPC drains.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from codetether.core.errors import UsageError

ENV_GRPC_PORT = "CODETETHER_GRPC_PORT"
DEFAULT_PORT = 4096
DEFAULT_GRPC_PORT = 50051
_OFF = ("off", "none", "no", "false", "-1", "disabled")


def grpc_port(value: Any) -> int | None:
    """``--grpc-port`` (or ``CODETETHER_GRPC_PORT``): a port, 0 for any free one, ``off`` for
    none; unset means 50051."""
    if value is None or value == "":
        value = os.environ.get(ENV_GRPC_PORT) or DEFAULT_GRPC_PORT
    if str(value).strip().lower() in _OFF:
        return None
    return _port(value, "--grpc-port")


def _port(value: Any, flag: str) -> int:
    try:
        port = int(str(value).strip())
    except ValueError:
        raise UsageError(f"{flag} {value!r} is not a port number",
                         "give 0-65535 (0 = any free port)") from None
    if not 0 <= port <= 65535:
        raise UsageError(f"{flag} {port} is out of range", "give 0-65535 (0 = any free port)")
    return port


def options_from(args: argparse.Namespace, **overrides: Any) -> Any:
    from codetether.server.app import BACKENDS, ServerOptions

    backend = getattr(args, "backend", None) or "agent"
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}", f"use one of {', '.join(BACKENDS)}")
    port = getattr(args, "port", None)
    directory = getattr(args, "dir", None)
    options = ServerOptions(
        host=getattr(args, "hostname", None) or "127.0.0.1",
        port=DEFAULT_PORT if port is None else _port(port, "--port"),
        grpc_port=grpc_port(getattr(args, "grpc_port", None)),
        backend=backend,
        allow_private_webhooks=bool(getattr(args, "allow_private_webhooks", False)),
        workspace=Path(directory).resolve() if directory else Path.cwd(),
    )
    for key, value in overrides.items():
        setattr(options, key, value)
    return options


def announce(server: Any, out=None) -> None:
    """Tell the person (stderr) where everything is; tests read the first line's URL."""
    from codetether.security.tokens import ENV_VAR, token_path

    out = out or sys.stderr
    print(f"codetether: listening on {server.url}", file=out)
    print(f"  A2A JSON-RPC  {server.url}/a2a   (also POST /)", file=out)
    print(f"  agent card    {server.url}/.well-known/agent-card.json", file=out)
    if server.grpc_url():
        print(f"  A2A gRPC      {server.grpc_url()}", file=out)
    for note in server.notes:
        print(f"  note: {note}", file=out)
    source = ENV_VAR if os.environ.get(ENV_VAR, "").strip() else str(token_path())
    print(f"  auth          bearer token required (from {source}); only /health is open",
          file=out)
    print(f"  backend       {server.options.backend}; audit log {server.audit.path}", file=out,
          flush=True)


class StopSignals:
    """SIGINT/SIGTERM set an event instead of killing us. Installed *before* the server
    starts, so a signal that arrives while it starts (or just after it said where it
    listens) still leads to a graceful stop."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.received: list[str] = []
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, _frame: Any) -> None:
        self.received.append(signal.Signals(signum).name)
        self.event.set()

    def __enter__(self) -> StopSignals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *_exc: object) -> None:
        for sig, old in self._previous.items():
            signal.signal(sig, old)

    def wait(self) -> str:
        """Block until a signal came; returns its name."""
        while not self.event.wait(0.5):
            pass
        return self.received[0] if self.received else "stop"


def run(args: argparse.Namespace) -> int:
    from codetether.server.app import CodetetherServer

    with StopSignals() as signals:
        server = CodetetherServer(options_from(args)).start()
        try:
            announce(server)
            why = signals.wait()
            print(f"codetether: {why}: stopping (running tasks end failed)", file=sys.stderr,
                  flush=True)
        finally:
            server.stop("server stopped")
    print("codetether: stopped", file=sys.stderr, flush=True)
    return 0
