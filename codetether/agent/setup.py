"""Assemble an agent from config, the session store and the command line.

Every front end (``run``, the TUI, the A2A server, ACP) needs the same composition — resolve
the model, open or create the session, build the permission engine and budget — so it lives
here once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codetether.agent.compaction import Budget
from codetether.agent.events import Event, EventSink, ignore
from codetether.agent.loop import Agent, Runtime
from codetether.agent.permissions import ApprovalRequest, Approver, PermissionEngine
from codetether.agent.profiles import get_profile
from codetether.agent.session import Session
from codetether.core import paths
from codetether.core.config import Config, load_config
from codetether.core.errors import UsageError
from codetether.providers import catalog
from codetether.providers.resolve import get_provider

DEFAULT_WINDOW = 128_000
DEFAULT_MAX_OUTPUT = 8_192


def open_session(workspace: Path, continue_latest: bool = False, session_id: str | None = None
                 ) -> tuple[Session | None, Any, Config]:
    """The session to continue (``-c`` / ``-s``), or None for a new one; plus store and config."""
    from codetether.agent.store import SessionStore

    cfg = load_config(workspace)
    store = SessionStore()
    session = None
    if session_id:
        session = store.load(session_id)
    elif continue_latest:
        session = store.latest(str(workspace))
        if session is None:
            raise UsageError(f"no session to continue in {workspace}",
                             'start one with codetether run "..."')
    return session, store, cfg


def build_runtime(*, session: Session | None, store: Any, cfg: Config, workspace: Path,
                  model: str | None = None, agent_name: str | None = None,
                  access_mode: str | None = None, max_steps: int | None = None,
                  max_tokens: int | None = None, on_event: EventSink = ignore,
                  approver: Approver | None = None, ask_user: Any = None,
                  bus: Any = None) -> Agent:
    if cfg.get("mcp.servers"):  # external MCP servers' tools join the registry (lazy start)
        from codetether.mcp.bridge import attach_configured_servers

        attach_configured_servers(cfg, workspace)
    provider, resolved = get_provider(model or (session.model if session else None), cfg)
    profile = get_profile(agent_name or (session.agent if session else None)
                          or cfg.get("default.agent") or "build")
    if session is None:
        session = store.create(str(workspace), resolved.ref, profile.name)
    elif (session.model, session.agent) != (resolved.ref, profile.name):
        session.model, session.agent = resolved.ref, profile.name
        store.save_header(session)
    if bus is not None:
        on_event = _also_on_bus(on_event, bus, session.id)
    rules = {k: v for k, v in (cfg.get("permissions") or {}).items() if k != "access_mode"}

    def announce(request: ApprovalRequest) -> None:
        on_event(Event("approval.requested", {"call_id": request.call_id, "tool": request.tool,
                                              "subject": request.subject, "args": request.args,
                                              "reason": request.reason}))

    permissions = PermissionEngine(rules, access_mode or cfg.get("permissions.access_mode", "ask"),
                                   workspace, paths.data_dir(), approver,
                                   read_only_agent=profile.read_only, on_request=announce)
    info = catalog.lookup(resolved.spec.id, resolved.model)
    window = cfg.get("session.context_window") or (info.context_window if info else None)
    budget = Budget(window or DEFAULT_WINDOW,
                    (info.max_output if info and info.max_output else None) or DEFAULT_MAX_OUTPUT)
    runtime = Runtime(
        provider=provider, model=resolved.model, model_ref=resolved.ref, store=store,
        workspace=workspace, data_dir=paths.data_dir(), permissions=permissions,
        profile=profile, budget=budget, model_info=info,
        max_steps=max_steps or profile.max_steps or cfg.get("session.max_steps") or 50,
        on_event=on_event, ask_user=ask_user, config=cfg, max_tokens=max_tokens)
    return Agent(runtime, session)


def _also_on_bus(on_event: EventSink, bus: Any, agent_id: str) -> EventSink:
    """Forward every event to ``agent.{session id}.events`` as well, so bus subscribers
    (``/v1/bus/stream``, ``mcp serve --bus-url``) can watch agents work."""
    handle = bus.handle(agent_id, inbox=False)

    def forward(event: Event) -> None:
        on_event(event)
        handle.publish_event(event.type, event.data)
    return forward
