"""Peer discovery for ``codetether spawn``: poll seed URLs for agent cards, remember the peers,
say hello once to each new one.

Seeds come from ``--peer`` and ``CODETETHER_A2A_PEERS`` (comma-separated base URLs), and from
peers that introduce themselves to us (their intro carries their URL), so two peers find each
other even if only one knows the other. Each poll fetches every seed's card with
``a2a.client.A2AClient`` (tries ``/.well-known/agent-card.json`` then ``agent.json``); a peer
that answers is registered in the ``AgentRegistry`` (and so listed at ``GET /v1/agents``); the
first time a peer is seen it gets one non-blocking intro message with metadata
``{"codetether.intro": true}``, which CodeTether peers answer with a canned reply, no LLM.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger("codetether.peers")

ENV_PEERS = "CODETETHER_A2A_PEERS"
DEFAULT_INTERVAL = 15.0


def seeds_from(values: Iterable[str] | None, env: bool = True) -> list[str]:
    """``--peer a,b --peer c`` plus the env var, normalized, de-duplicated, in order."""
    raw: list[str] = []
    for value in values or ():
        raw += value.split(",")
    if env:
        raw += os.environ.get(ENV_PEERS, "").split(",")
    out: list[str] = []
    for url in raw:
        url = url.strip().rstrip("/")
        if url and url not in out:
            out.append(url)
    return out


class PeerDiscovery:
    """Polls seeds on a thread; ``poll_once`` does one round (tests call it directly)."""

    def __init__(self, name: str, self_url: Callable[[], str], registry: Any, token: str | None,
                 seeds: Iterable[str] = (), interval: float = DEFAULT_INTERVAL,
                 audit: Any = None, client_factory: Callable[..., Any] | None = None) -> None:
        self.name = name
        self.self_url = self_url
        self.registry = registry
        self.token = token
        self.interval = interval
        self.audit = audit
        self._client_factory = client_factory
        self._lock = threading.Lock()
        self._seeds: list[str] = []
        self._introduced: set[str] = set()  # peer names we have said hello to
        self._peer_of_seed: dict[str, str] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.polls = 0
        for seed in seeds:
            self.add_seed(seed)

    # -- seeds -------------------------------------------------------------------------------
    def add_seed(self, url: str, poll_now: bool = False) -> bool:
        """Remember a seed (True if new); ``poll_now`` wakes the poller for it."""
        url = str(url).strip().rstrip("/")
        if not url.startswith(("http://", "https://")) or url == self.self_url().rstrip("/"):
            return False
        with self._lock:
            if url in self._seeds:
                return False
            self._seeds.append(url)
        if poll_now:
            self._wake.set()
        return True

    def seeds(self) -> list[str]:
        with self._lock:
            return list(self._seeds)

    def on_intro(self, metadata: dict[str, Any]) -> None:
        """An intro reached us: its sender becomes a seed, polled right away."""
        url = metadata.get("codetether.url")
        if isinstance(url, str):
            self.add_seed(url, poll_now=True)

    # -- polling -----------------------------------------------------------------------------
    def start(self) -> PeerDiscovery:
        self._thread = threading.Thread(target=self._loop, name="a2a-peers", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:
                log.exception("peer poll failed")
            self._wake.wait(self.interval)
            self._wake.clear()

    def poll_once(self) -> list[str]:
        """Fetch every seed's card; returns the names of peers seen for the first time."""
        fresh: list[str] = []
        for seed in self.seeds():
            if self._stop.is_set():
                break
            name = self._poll(seed)
            if name is not None:
                fresh.append(name)
        self.polls += 1
        return fresh

    def _client(self, url: str) -> Any:
        if self._client_factory is not None:
            return self._client_factory(url, self.token)
        from codetether.a2a.client import A2AClient

        return A2AClient(url, self.token, timeout=10.0)

    def _poll(self, seed: str) -> str | None:
        from codetether.core.errors import CodetetherError

        client = self._client(seed)
        try:
            card = client.card(refresh=True)
        except CodetetherError as exc:
            self._gone(seed, exc.one_line())
            return None
        name = card.get("name") if isinstance(card, dict) else None
        if not isinstance(name, str) or not name.strip() or name == self.name:
            return None  # a nameless card, or ourselves under another address
        is_new = name not in self.registry
        self.registry.register(card)
        self.registry.touch(name)
        with self._lock:
            self._peer_of_seed[seed] = name
            first = name not in self._introduced
            self._introduced.add(name)
        if first:
            self._introduce(client, name, seed)
        return name if is_new else None

    def _gone(self, seed: str, why: str) -> None:
        """A seed stopped answering: drop the peer it stood for (it may come back)."""
        with self._lock:
            name = self._peer_of_seed.pop(seed, None)
        if name is not None:
            log.info("peer %s at %s is gone: %s", name, seed, why)
            self.registry.unregister(name, "unreachable")
        else:
            log.debug("seed %s not reachable: %s", seed, why)

    def _introduce(self, client: Any, name: str, seed: str) -> None:
        from codetether.core.errors import CodetetherError

        metadata = {"codetether.intro": True, "codetether.name": self.name,
                    "codetether.url": self.self_url()}
        message = {"role": "ROLE_USER", "metadata": metadata,
                   "parts": [{"text": f"Hello {name}, this is {self.name} at {self.self_url()}."
                                      " I am a CodeTether agent; send me tasks over A2A."}]}
        try:
            reply = client.send(message, metadata=metadata, blocking=False)
            outcome = "answered" if "message" in reply else "task"
        except CodetetherError as exc:
            log.info("intro to %s failed: %s", name, exc.one_line())
            outcome = "failed"
            with self._lock:
                self._introduced.discard(name)  # try again at the next poll
        if self.audit is not None:
            self.audit.record(actor=self.name, action="a2a.intro.sent",
                              resource=f"agent:{name} {seed}", outcome=outcome)
