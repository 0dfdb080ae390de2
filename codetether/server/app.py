"""The ``serve`` composition: one HTTP App (A2A JSON-RPC + REST + card, audit, bus stream,
agents, health), optionally a gRPC server, all over one ``A2AService``.

Security is not optional here: every route but ``GET /health`` needs the bearer token, whatever
a binding asked for when it registered its routes (``build_app`` enforces it last), and every
request, task and tool execution is written to the audit log.

    server = CodetetherServer(ServerOptions(port=0, backend="echo")).start()
    print(server.url)        # http://127.0.0.1:PORT
    server.stop()            # running tasks end failed; streams close; gRPC drains
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codetether.core.errors import CodetetherError, UsageError
from codetether.core.httpserver import DEFAULT_MAX_BODY, App, Request, TokenAuth

log = logging.getLogger("codetether.server")

PUBLIC_ROUTES = frozenset({("GET", "/health")})
PRINCIPAL = "bearer"  # who the server token belongs to, as the audit log names it
BACKENDS = ("agent", "echo")
GRPC_GRACE = 2.0


@dataclass
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 4096
    grpc_port: int | None = None  # None: no gRPC; 0: any free port
    backend: str = "agent"
    allow_private_webhooks: bool = False
    name: str = "CodeTether"  # the agent's name on its card and in the registry
    description: str | None = None
    workspace: Path | None = None
    store_path: Path | None = None  # the task database (default: the data dir's)
    max_body: int = DEFAULT_MAX_BODY
    executor: Any = None  # tests may bring their own
    extra_tokens: dict[str, str] = field(default_factory=dict)  # more token -> principal


def audit_request(audit: Any):
    """The App's ``on_request`` hook: one ``http.request`` line per request, 401s included."""

    def hook(request: Request, status: int, seconds: float) -> None:
        audit.record(actor=request.principal or "anonymous", action="http.request",
                     resource=f"{request.method} {request.path}", outcome=status,
                     duration_ms=seconds * 1000.0,
                     session_id=request.context.get("session_id"),
                     task_id=request.context.get("task_id"))

    return hook


def enforce_auth_policy(app: App) -> None:
    """Only ``/health`` is public, even if a binding registered its routes as public (A2A's
    card usually is; CodeTether's issue says every route but /health needs the token)."""
    for route in app.routes:
        route.public = (route.method, route.pattern) in PUBLIC_ROUTES


def build_app(*, token: str, audit: Any, bus: Any, registry: Any, service: Any = None,
              grpc_url: Any = None, info: dict[str, Any] | None = None,
              max_body: int = DEFAULT_MAX_BODY, extra_tokens: dict[str, str] | None = None
              ) -> tuple[App, list[str]]:
    """The App with every route mounted; also the notes on what could not be mounted."""
    from codetether.server import routes

    app = App(TokenAuth({token: PRINCIPAL, **(extra_tokens or {})}), max_body=max_body,
              on_request=audit_request(audit))
    routes.mount_health(app, info or {})
    routes.mount_audit(app, audit)
    routes.mount_bus_stream(app, bus)
    routes.mount_agents(app, registry)
    notes: list[str] = []
    if service is not None:
        notes += mount_a2a(app, service, grpc_url)
    enforce_auth_policy(app)
    return app, notes


def mount_a2a(app: App, service: Any, grpc_url: Any = None) -> list[str]:
    """JSON-RPC (``/`` and ``/a2a``), REST and the card, from whichever bindings exist."""
    notes: list[str] = []
    grpc_fn = (lambda _r: grpc_url()) if grpc_url else None
    try:
        from codetether.a2a.jsonrpc_binding import mount_jsonrpc
    except ImportError as exc:
        notes.append(f"A2A JSON-RPC binding unavailable ({exc})")
    else:
        mount_jsonrpc(app, service, grpc_url_fn=grpc_fn)
    try:
        from codetether.a2a.rest_binding import mount_rest
    except ImportError as exc:
        notes.append(f"A2A REST binding unavailable ({exc})")
    else:
        mount_rest(app, service, grpc_url_fn=grpc_fn)
    if not any(r.pattern == "/.well-known/agent-card.json" for r in app.routes):
        from codetether.a2a.card import mount_card

        mount_card(app, service, grpc_url_fn=grpc_fn)
    return notes


class _AuditedRun:
    """A ``TaskRun`` seen through a lens that writes each finished tool call to the audit log.

    The agent executor reports tool activity as working-status updates whose metadata says
    ``event: tool.started|tool.finished``; everything else passes straight through."""

    def __init__(self, run: Any, audit: Any) -> None:
        self._run = run
        self._audit = audit
        self._started: dict[str, float] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._run, name)

    def status(self, state: str, text: str | None = None,
               metadata: dict[str, Any] | None = None) -> bool:
        event = (metadata or {}).get("event")
        if event == "tool.started":
            self._started[str(metadata.get("callId"))] = time.monotonic()
        elif event == "tool.finished":
            self._record(metadata)
        return self._run.status(state, text, metadata)

    def _record(self, metadata: dict[str, Any]) -> None:
        began = self._started.pop(str(metadata.get("callId")), None)
        session_id = None
        try:
            session_id = self._run.store.session_for(self._run.context_id)
        except Exception:  # the store's API is the service's business; the line matters more
            pass
        self._audit.record(
            actor=self._run.principal or "anonymous", action="tool.execute",
            resource=f"tool:{metadata.get('tool', '')}",
            outcome="success" if str(metadata.get("success")) == "True" else "failure",
            duration_ms=None if began is None else (time.monotonic() - began) * 1000.0,
            session_id=session_id, task_id=self._run.task_id,
            context_id=self._run.context_id, call_id=metadata.get("callId"))


class ServingExecutor:
    """Wraps the backend: intros get a canned reply (no LLM call), tool calls get audited."""

    def __init__(self, inner: Any, audit: Any, name: str,
                 on_intro: Any = None) -> None:
        self.inner = inner
        self.audit = audit
        self.name = name
        self.on_intro = on_intro  # (metadata) -> None: spawn learns peers from intros

    def respond(self, message: dict[str, Any]) -> dict[str, Any] | None:
        metadata = message.get("metadata") if isinstance(message.get("metadata"), dict) else {}
        if metadata.get("codetether.intro") is True:
            return self._intro_reply(metadata)
        respond = getattr(self.inner, "respond", None)
        return respond(message) if respond is not None else None

    def _intro_reply(self, metadata: dict[str, Any]) -> dict[str, Any]:
        sender = metadata.get("codetether.name") or "peer"
        self.audit.record(actor=str(sender), action="a2a.intro", resource=f"agent:{self.name}",
                          outcome="answered")
        if self.on_intro is not None:
            try:
                self.on_intro(metadata)
            except Exception:
                log.exception("intro hook failed")
        return {"role": "ROLE_AGENT",
                "parts": [{"text": f"Hello {sender}, this is {self.name}. Send me a task "
                                   "whenever you like."}],
                "metadata": {"codetether.intro": True, "codetether.reply": True,
                             "codetether.name": self.name}}

    def execute(self, run: Any) -> None:
        self.inner.execute(_AuditedRun(run, self.audit))


def make_backend(options: ServerOptions, bus: Any = None) -> Any:
    if options.executor is not None:
        return options.executor
    from codetether.a2a.executors import AgentExecutor, EchoExecutor

    if options.backend == "echo":
        return EchoExecutor()
    if options.backend == "agent":
        return AgentExecutor(workspace=options.workspace, bus=bus)
    raise UsageError(f"unknown backend {options.backend!r}", f"use one of {', '.join(BACKENDS)}")


class CodetetherServer:
    """Everything ``serve`` and ``spawn`` run, with one start and one stop."""

    def __init__(self, options: ServerOptions, *, token: str | None = None, audit: Any = None,
                 bus: Any = None, registry: Any = None, on_intro: Any = None) -> None:
        from codetether.bus import AgentRegistry, default_bus
        from codetether.security import default_audit, server_token

        self.options = options
        self.token = token or server_token()
        self.audit = audit or default_audit()
        self.bus = bus or default_bus()
        self.registry = registry or AgentRegistry(self.bus)
        self.on_intro = on_intro
        self.notes: list[str] = []
        self.service: Any = None
        self.http: Any = None
        self.grpc: Any = None
        self.grpc_port: int | None = None
        self._stopped = threading.Event()

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> CodetetherServer:
        try:
            self.service = self._build_service()
            app, notes = build_app(
                token=self.token, audit=self.audit, bus=self.bus, registry=self.registry,
                service=self.service, grpc_url=self.grpc_url,
                info={"name": self.options.name}, max_body=self.options.max_body,
                extra_tokens=self.options.extra_tokens)
            self.notes += notes
            self.http = _bind_http(app, self.options.host, self.options.port)
            if self.options.grpc_port is not None:
                self._start_grpc()  # before HTTP serves, so every card names it
            self.http.start()
            self.registry.register(self.card())
        except BaseException:
            self.stop()
            raise
        self.audit.record(actor="system", action="server.start", resource=self.url,
                          outcome="ok")
        return self

    def stop(self, reason: str = "server stopped") -> None:
        """Stop accepting, end running tasks (failed), close streams, drain gRPC."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self.service is not None:
            try:  # first, so task streams deliver the final "failed" before they close
                self.service.shutdown()
            except Exception:
                log.exception("A2A service shutdown failed")
        if self.http is not None:
            self.http.app.stopping.set()  # the other streams (bus) end at their next tick
        if self.grpc is not None:
            try:
                self.grpc.stop(GRPC_GRACE)
            except Exception:
                log.exception("gRPC shutdown failed")
        if self.http is not None:
            self.http.stop()
            self.audit.record(actor="system", action="server.stop", resource=self.url,
                              outcome=reason)
        if self.service is not None:
            try:
                self.service.store.close()
            except Exception:
                pass
        try:
            self.registry.unregister(self.options.name, reason)
        except Exception:
            pass

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    # -- addresses ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.http.url if self.http is not None else ""

    def grpc_url(self) -> str | None:
        if self.grpc_port is None:
            return None
        host = self.options.host if self.options.host not in ("0.0.0.0", "") else "127.0.0.1"
        return f"{host}:{self.grpc_port}"

    def card(self) -> dict[str, Any]:
        return self.service.agent_card(self.url, self.grpc_url())

    # -- pieces ------------------------------------------------------------------------------
    def _build_service(self) -> Any:
        from codetether.a2a.push import PushSender
        from codetether.a2a.service import A2AService, CardInfo
        from codetether.a2a.store import TaskStore

        backend = ServingExecutor(make_backend(self.options, self.bus), self.audit,
                                  self.options.name,
                                  self.on_intro)
        card = CardInfo(name=self.options.name)
        if self.options.description:
            card.description = self.options.description
        store = TaskStore(self.options.store_path)
        return A2AService(store, backend, card,
                          PushSender(allow_private=self.options.allow_private_webhooks),
                          bus=self.bus, audit=self.audit.record)

    def _start_grpc(self) -> None:
        """gRPC over the same service; skipped (with a note) when the binding or its generated
        stubs are missing, fatal when the port cannot be bound."""
        try:
            from codetether.a2a.grpc_binding import load_stubs, serve_grpc

            load_stubs()
        except (ImportError, CodetetherError) as exc:
            detail = exc.one_line() if isinstance(exc, CodetetherError) else str(exc)
            self.notes.append(f"gRPC not served: {detail}")
            return
        auth = TokenAuth({self.token: PRINCIPAL, **self.options.extra_tokens})
        try:
            self.grpc = serve_grpc(self.service, self.options.host, self.options.grpc_port, auth,
                                   base_url=self.url)
        except CodetetherError:
            raise
        except Exception as exc:  # grpcio reports some bind failures as RuntimeError
            raise CodetetherError(
                f"cannot serve gRPC on {self.options.host}:{self.options.grpc_port}: {exc}",
                "pick another --grpc-port (0 = any free port), or --grpc-port off") from None
        self.grpc_port = int(self.grpc.port)


def _bind_http(app: App, host: str, port: int) -> Any:
    try:
        return app.serve(host, port)
    except OSError as exc:
        raise CodetetherError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                              "pick another --port (0 = any free port) or stop the other "
                              "server") from None
