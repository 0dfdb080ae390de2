"""``AgentRegistry``: the agents this process knows, each described by an A2A AgentCard
(v1.0 JSON shape, see a2a/dialects.py).

An in-process sub-agent has no network address; its card points at ``bus://local/{name}`` with
protocol binding ``BUS``, which a sender turns into a publish on ``agent.{name}``. Remote peers
keep their real interfaces. When the registry is given a bus it announces arrivals and departures
on ``broadcast`` (``agent_ready`` / ``agent_shutdown``) so other agents can follow along.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from codetether.bus.envelope import make_message
from codetether.core.errors import UsageError

if TYPE_CHECKING:
    from codetether.bus.bus import AgentBus

LOCAL_PREFIX = "bus://local/"
BUS_BINDING = "BUS"


def local_url(name: str) -> str:
    return LOCAL_PREFIX + name


def local_name(url: str) -> str | None:
    """The agent name of a ``bus://local/{name}`` URL, else None."""
    return (url[len(LOCAL_PREFIX):] or None) if url.startswith(LOCAL_PREFIX) else None


def local_card(name: str, description: str = "", skills: Iterable[dict[str, Any]] = (),
               version: str = "0.1.0") -> dict[str, Any]:
    """A v1.0 AgentCard for an ephemeral in-process agent."""
    return {
        "name": name,
        "description": description or f"in-process agent {name}",
        "version": version,
        "supportedInterfaces": [{"url": local_url(name), "protocolBinding": BUS_BINDING,
                                 "protocolVersion": "1.0"}],
        "capabilities": {"streaming": True, "pushNotifications": False},
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain"],
        "skills": list(skills),
    }


def card_url(card: dict[str, Any]) -> str:
    """The preferred interface URL of a card (v1.0 ``supportedInterfaces`` or v0.3 ``url``)."""
    interfaces = card.get("supportedInterfaces") or []
    if interfaces and isinstance(interfaces[0], dict):
        return str(interfaces[0].get("url", ""))
    return str(card.get("url", ""))


@dataclass
class RegisteredAgent:
    name: str
    card: dict[str, Any]
    registered_at: float = field(default_factory=time.time)
    last_seen: float = field(default_factory=time.time)

    @property
    def url(self) -> str:
        return card_url(self.card)

    @property
    def local(self) -> bool:
        return self.url.startswith(LOCAL_PREFIX)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "local": self.local,
                "registered_at": self.registered_at, "last_seen": self.last_seen,
                "card": self.card}


class AgentRegistry:
    """Name -> AgentCard, thread-safe; re-registering a name replaces its card."""

    def __init__(self, bus: AgentBus | None = None) -> None:
        self._lock = threading.Lock()
        self._agents: dict[str, RegisteredAgent] = {}
        self._bus = bus

    def register(self, card: dict[str, Any]) -> RegisteredAgent:
        name = card.get("name") if isinstance(card, dict) else None
        if not isinstance(name, str) or not name.strip():
            raise UsageError("agent card needs a non-empty 'name'")
        with self._lock:
            entry = RegisteredAgent(name, card)
            previous = self._agents.get(name)
            if previous is not None:
                entry.registered_at = previous.registered_at
            self._agents[name] = entry
        if self._bus is not None:
            self._bus.publish("broadcast", make_message("agent_ready", agent_id=name, card=card),
                              sender_id=name)
        return entry

    def register_local(self, name: str, description: str = "",
                       skills: Iterable[dict[str, Any]] = ()) -> RegisteredAgent:
        """An ephemeral sub-agent reachable over the bus at ``bus://local/{name}``."""
        return self.register(local_card(name, description, skills))

    def unregister(self, name: str, reason: str = "") -> bool:
        with self._lock:
            removed = self._agents.pop(name, None) is not None
        if removed and self._bus is not None:
            self._bus.publish("broadcast",
                              make_message("agent_shutdown", agent_id=name, reason=reason),
                              sender_id=name)
        return removed

    def touch(self, name: str) -> None:
        """Record that the agent was heard from (heartbeat, message)."""
        with self._lock:
            if name in self._agents:
                self._agents[name].last_seen = time.time()

    def get(self, name: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._agents.get(name)
            return entry.card if entry else None

    def entry(self, name: str) -> RegisteredAgent | None:
        with self._lock:
            return self._agents.get(name)

    def find_by_url(self, url: str) -> RegisteredAgent | None:
        with self._lock:
            return next((a for a in self._agents.values() if a.url == url), None)

    def list(self) -> list[RegisteredAgent]:
        with self._lock:
            return sorted(self._agents.values(), key=lambda a: a.name)

    def names(self) -> list[str]:
        return [a.name for a in self.list()]

    def __contains__(self, name: object) -> bool:
        with self._lock:
            return name in self._agents

    def __len__(self) -> int:
        with self._lock:
            return len(self._agents)
