"""The server's own HTTP routes (besides the A2A bindings): health, audit, bus stream, agents.

Each ``mount_*`` adds routes to a ``core.httpserver.App``; ``server/app.py`` composes them.
Only ``/health`` is public; everything else goes through the App's bearer check.
"""

from __future__ import annotations

import json
import time
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from codetether.core.errors import CodetetherError
from codetether.core.httpserver import App, HttpError, Request, Response
from codetether.core.sse import encode_sse

if TYPE_CHECKING:
    from codetether.bus import AgentBus, AgentRegistry
    from codetether.security.audit import AuditLog

BUS_KEEPALIVE = 15.0  # seconds between keep-alive comments on an idle bus stream
QUERY_KEYS = frozenset({"actor", "action", "resource", "since", "until", "limit", "outcome",
                        "task_id", "session_id"})


def mount_health(app: App, info: dict[str, Any]) -> None:
    """``GET /health``: public, so it says nothing a stranger should not know."""
    from codetether import __version__

    body = {"status": "ok", "version": __version__, **info}
    app.add("GET", "/health", lambda _r: Response.json(body), public=True)


def mount_audit(app: App, audit: AuditLog) -> None:
    """``GET /v1/audit/events`` (query-string filters) and ``POST /v1/audit/query`` (JSON)."""

    def events(request: Request) -> Response:
        unknown = sorted(set(request.query) - QUERY_KEYS)
        if unknown:
            raise HttpError(400, f"unknown filter {', '.join(unknown)}; use "
                                 f"{', '.join(sorted(QUERY_KEYS))}")
        filters = {key: request.arg(key) for key in QUERY_KEYS if request.arg(key) is not None}
        return _run_query(audit, filters)

    def query(request: Request) -> Response:
        body = request.json()
        if not isinstance(body, dict):
            raise HttpError(400, "the query must be a JSON object")
        unknown = sorted(set(body) - QUERY_KEYS)
        if unknown:
            raise HttpError(400, f"unknown filter {', '.join(unknown)}; use "
                                 f"{', '.join(sorted(QUERY_KEYS))}")
        for key in ("actor", "action", "resource", "task_id", "session_id"):
            if body.get(key) is not None and not isinstance(body[key], str):
                raise HttpError(400, f"{key} must be a string")
        return _run_query(audit, {k: v for k, v in body.items() if v is not None})

    app.add("GET", "/v1/audit/events", events)
    app.add("POST", "/v1/audit/query", query)


def _run_query(audit: AuditLog, filters: dict[str, Any]) -> Response:
    try:
        found = audit.query(**filters)
    except CodetetherError as exc:
        raise HttpError(400, exc.one_line()) from None
    return Response.json({"events": found, "count": len(found)})


def mount_bus_stream(app: App, bus: AgentBus, keepalive: float = BUS_KEEPALIVE) -> None:
    """``GET /v1/bus/stream[?topic=pattern][&recent=N]``: the bus as SSE (event ``bus``, data the
    envelope JSON, id the envelope id). The subscription exists before the response headers
    go out, so a client that has the headers misses nothing published afterwards."""

    def stream(request: Request) -> Response:
        pattern = request.arg("topic") or "#"
        try:
            recent = int(request.arg("recent") or 0)
            sub = bus.subscribe(pattern, maxsize=4096)
        except ValueError:
            raise HttpError(400, "recent must be a whole number") from None
        except CodetetherError as exc:
            raise HttpError(400, exc.one_line()) from None
        backlog = bus.recent(pattern, min(max(recent, 0), 1000)) if recent > 0 else []
        events = _bus_events(app, sub, backlog, keepalive)
        weakref.finalize(events, sub.close)  # even if the headers never reach the client
        return Response.sse(events)

    app.add("GET", "/v1/bus/stream", stream)


def _bus_events(app: App, sub: Any, backlog: list, keepalive: float) -> Iterator[bytes]:
    try:
        yield b": connected\n\n"
        for envelope in backlog:
            yield _bus_event(envelope)
        idle_since = time.monotonic()
        while not app.stopping.is_set() and not sub.closed:
            envelope = sub.get(timeout=min(0.5, keepalive))
            if envelope is not None:
                yield _bus_event(envelope)
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since >= keepalive:
                yield b": keep-alive\n\n"  # also how a vanished client gets noticed
                idle_since = time.monotonic()
    finally:
        sub.close()


def _bus_event(envelope: Any) -> bytes:
    return encode_sse(json.dumps(envelope.to_json(), ensure_ascii=False, default=str),
                      event="bus", id=envelope.id)


def mount_agents(app: App, registry: AgentRegistry) -> None:
    """``GET /v1/agents``: the agents this server knows (itself and discovered peers)."""

    def agents(_request: Request) -> Response:
        return Response.json({"agents": [entry.to_json() for entry in registry.list()]})

    app.add("GET", "/v1/agents", agents)
