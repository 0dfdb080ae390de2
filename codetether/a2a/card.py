"""The agent card: how other agents discover what CodeTether is and where to reach it.

The v1.0 card lists every interface (JSON-RPC, HTTP+JSON, gRPC when it runs) in preference
order, the streaming / push / extended-card capabilities and the bearer security scheme. It is
served at ``/.well-known/agent-card.json``; ``/.well-known/agent.json`` (what v0.2/0.3-era
clients fetch) and any card request with ``A2A-Version: 0.3`` get the v0.3 shape instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

JSONRPC_PATH = "/a2a"
PROTOCOL_VERSION = "1.0"

DEFAULT_SKILLS: list[dict[str, Any]] = [
    {"id": "code", "name": "Write and fix code",
     "description": "Reads, edits and runs code in its workspace to implement a change or fix "
                    "a bug, and reports what it did.",
     "tags": ["coding", "debugging", "refactoring"],
     "examples": ["Fix the failing test in tests/test_calc.py", "Add a --json flag to the CLI"]},
    {"id": "explain", "name": "Explain and review code",
     "description": "Answers questions about a code base and reviews changes, without editing.",
     "tags": ["code-review", "explanation", "search"],
     "examples": ["Where is the config file parsed?", "Review the last commit"]},
]

EXTENDED_SKILLS: list[dict[str, Any]] = [
    {"id": "shell", "name": "Run commands",
     "description": "Runs shell commands in the workspace (subject to its permission rules).",
     "tags": ["shell", "automation"], "examples": ["Run the test suite and summarise failures"]},
]


def build_card(info: Any, base_url: str, grpc_url: str | None = None,
               extended: bool = False, rest_url: str | None = None) -> dict[str, Any]:
    """The v1.0 AgentCard JSON for ``info`` (a ``service.CardInfo``) served at ``base_url``."""
    from codetether import __version__

    base = base_url.rstrip("/")
    interfaces = [
        {"url": base + JSONRPC_PATH, "protocolBinding": "JSONRPC",
         "protocolVersion": PROTOCOL_VERSION},
        {"url": rest_url or base, "protocolBinding": "HTTP+JSON",
         "protocolVersion": PROTOCOL_VERSION},
    ]
    if grpc_url:
        interfaces.append({"url": grpc_url, "protocolBinding": "GRPC",
                           "protocolVersion": PROTOCOL_VERSION})
    skills = list(info.skills or DEFAULT_SKILLS)
    if extended:
        skills += list(info.extended_skills or EXTENDED_SKILLS)
    card: dict[str, Any] = {
        "name": info.name,
        "description": info.description,
        "version": info.version or __version__,
        "supportedInterfaces": interfaces,
        "provider": info.provider or {"organization": "CodeTether",
                                      "url": "https://codetether.run"},
        "capabilities": {"streaming": bool(info.streaming),
                         "pushNotifications": bool(info.push_notifications),
                         "extendedAgentCard": bool(info.extended_card)},
        "defaultInputModes": list(info.input_modes),
        "defaultOutputModes": list(info.output_modes),
        "skills": skills,
    }
    if info.bearer_auth:
        card["securitySchemes"] = {"bearer": {"httpAuthSecurityScheme": {
            "scheme": "Bearer", "description": "The server's token (CODETETHER_AUTH_TOKEN)"}}}
        card["securityRequirements"] = [{"schemes": {"bearer": {"list": []}}}]
    return card


def card_v03(card: dict[str, Any]) -> dict[str, Any]:
    """The v0.3 shape of a v1.0 card: every interface, announced as 0.3 (one endpoint serves
    both dialects)."""
    from codetether.a2a import dialects

    return dialects.to_v03_card(card)


def request_base_url(request: Any) -> str:
    """``http://<Host header>``: the address the caller used to reach us."""
    host = request.header("host") or "127.0.0.1"
    scheme = request.header("x-forwarded-proto") or "http"
    return f"{scheme}://{host}"


def mount_card(app: Any, service: Any, base_url_fn: Callable[[Any], str] | None = None,
               grpc_url_fn: Callable[[Any], str | None] | None = None) -> None:
    """Public card routes. ``base_url_fn(request)`` gives the HTTP base URL (default: from the
    Host header), ``grpc_url_fn(request)`` the gRPC address when gRPC runs."""
    from codetether.core.httpserver import Response

    def current(request: Any) -> dict[str, Any]:
        base = (base_url_fn or request_base_url)(request)
        grpc_url = grpc_url_fn(request) if grpc_url_fn else None
        return service.agent_card(base, grpc_url)

    def new_card(request: Any) -> Response:
        card = current(request)
        if (request.header("a2a-version") or "").strip().startswith("0."):
            card = card_v03(card)
        return Response.json(card, headers={"Cache-Control": "no-cache"})

    def old_card(request: Any) -> Response:
        return Response.json(card_v03(current(request)), headers={"Cache-Control": "no-cache"})

    app.add("GET", "/.well-known/agent-card.json", new_card, public=True)
    app.add("GET", "/.well-known/agent.json", old_card, public=True)
