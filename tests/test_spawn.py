"""Two real ``codetether spawn`` peers on loopback find each other, introduce themselves once
(answered with a canned reply: no model is configured, so an LLM call would fail the intro) and
list each other at ``GET /v1/agents``. Waiting is event-driven: each peer's bus stream shows
``agent_ready`` for every card it (re)registers."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator

import pytest

from codetether.core.sse import parse_sse
from codetether.server.peers import PeerDiscovery, seeds_from
from tests.serve_proc import ServeProcess

TOKEN = "spawn-test-token-0123456789"
ENV = {"CODETETHER_AUTH_TOKEN": TOKEN}


def spawn(name: str, *args: str) -> ServeProcess:
    return ServeProcess(*args, env=ENV, token=TOKEN,
                        command=("spawn", "--name", name, "--discovery-interval", "0.2"))


def ready_events(peer: ServeProcess) -> Iterator[dict]:
    """``agent_ready`` messages on the peer's bus, from its recent past onwards."""
    # a read timeout under the 15 s keep-alive: a missing event fails instead of hanging
    conn = http.client.HTTPConnection("127.0.0.1", peer.port, timeout=10)
    conn.request("GET", "/v1/bus/stream?topic=broadcast&recent=500",
                 headers={"Authorization": f"Bearer {TOKEN}"})
    resp = conn.getresponse()
    assert resp.status == 200
    for event in parse_sse(iter(resp.readline, b"")):
        message = json.loads(event.data)["message"]
        if message["kind"] == "agent_ready":
            yield message


def wait_ready(events: Iterator[dict], name: str, times: int = 1) -> None:
    seen = 0
    deadline = time.monotonic() + 30
    for message in events:
        if message["agent_id"] == name:
            seen += 1
            if seen >= times:
                return
        assert time.monotonic() < deadline, f"{name} did not show up {times} times"
    raise AssertionError("the bus stream ended")


@pytest.fixture
def peers():
    started: list[ServeProcess] = []
    yield started
    for proc in started:
        proc.kill()


def test_two_peers_find_and_introduce_themselves(peers):
    alpha = spawn("alpha")
    peers.append(alpha)
    # beta knows alpha; alpha learns beta from beta's intro
    beta = spawn("beta", "--peer", alpha.url)
    peers.append(beta)
    alpha_bus, beta_bus = ready_events(alpha), ready_events(beta)
    wait_ready(beta_bus, "alpha")
    wait_ready(alpha_bus, "beta")
    # a few more polls each (every poll re-registers the card) before counting intros
    wait_ready(beta_bus, "alpha", 3)
    wait_ready(alpha_bus, "beta", 3)

    status, listed = alpha.call("GET", "/v1/agents")
    assert status == 200
    by_name = {a["name"]: a for a in listed["agents"]}
    assert set(by_name) == {"alpha", "beta"}
    assert by_name["beta"]["url"] == beta.url + "/a2a"
    status, listed = beta.call("GET", "/v1/agents")
    assert {a["name"] for a in listed["agents"]} == {"alpha", "beta"}

    # the two peers share the data dir, so one audit log shows both sides
    status, found = alpha.call("POST", "/v1/audit/query", {"action": "a2a.intro*"})
    events = [(e["actor"], e["action"], e["resource"].split()[0], e["outcome"])
              for e in found["events"]]
    assert events.count(("beta", "a2a.intro.sent", "agent:alpha", "answered")) == 1
    assert events.count(("alpha", "a2a.intro.sent", "agent:beta", "answered")) == 1
    assert events.count(("beta", "a2a.intro", "agent:alpha", "answered")) == 1
    assert events.count(("alpha", "a2a.intro", "agent:beta", "answered")) == 1

    assert beta.terminate() == 0 and alpha.terminate() == 0
    assert "Traceback" not in alpha.stderr() + beta.stderr()


def test_a_peer_that_goes_away_is_dropped(peers):
    alpha = spawn("alpha")
    beta = spawn("beta", "--peer", alpha.url)
    peers += [alpha, beta]
    beta_bus = ready_events(beta)
    wait_ready(beta_bus, "alpha")
    assert alpha.terminate() == 0
    # beta notices at its next poll and says so on its bus
    conn = http.client.HTTPConnection("127.0.0.1", beta.port, timeout=10)
    conn.request("GET", "/v1/bus/stream?topic=broadcast&recent=500",
                 headers={"Authorization": f"Bearer {TOKEN}"})
    for event in parse_sse(iter(conn.getresponse().readline, b"")):
        message = json.loads(event.data)["message"]
        if message["kind"] == "agent_shutdown" and message["agent_id"] == "alpha":
            break
    status, listed = beta.call("GET", "/v1/agents")
    assert [a["name"] for a in listed["agents"]] == ["beta"]
    assert beta.terminate() == 0


def test_seeds_come_from_flags_and_env(monkeypatch):
    monkeypatch.setenv("CODETETHER_A2A_PEERS", "http://b:2/, http://c:3")
    assert seeds_from(["http://a:1,http://b:2", "http://a:1"]) == [
        "http://a:1", "http://b:2", "http://c:3"]


def test_discovery_skips_itself_and_bad_cards():
    from codetether.bus import AgentRegistry

    cards = {"http://self:1": {"name": "me"}, "http://odd:2": {"description": "no name"},
             "http://peer:3": {"name": "peer", "supportedInterfaces": [
                 {"url": "http://peer:3/a2a", "protocolBinding": "JSONRPC"}]}}
    sent: list[tuple[str, dict]] = []

    class FakeClient:  # stands in for A2AClient: the unit under test is the bookkeeping
        def __init__(self, url: str, token: str | None) -> None:
            self.url = url

        def card(self, refresh: bool = False) -> dict:
            return cards[self.url]

        def send(self, message, metadata=None, blocking=True) -> dict:
            sent.append((self.url, metadata))
            return {"message": {"parts": [{"text": "hi"}]}}

    registry = AgentRegistry()
    discovery = PeerDiscovery("me", lambda: "http://me:9", registry, "t",
                              ["http://self:1", "http://odd:2", "http://peer:3", "http://me:9"],
                              client_factory=FakeClient)
    assert discovery.seeds() == ["http://self:1", "http://odd:2", "http://peer:3"]
    assert discovery.poll_once() == ["peer"]
    assert discovery.poll_once() == []
    assert registry.names() == ["peer"]
    assert sent == [("http://peer:3", {"codetether.intro": True, "codetether.name": "me",
                                       "codetether.url": "http://me:9"})]
    discovery.on_intro({"codetether.url": "http://new:4/"})
    assert discovery.seeds()[-1] == "http://new:4"


def test_bad_name_is_a_usage_error():
    from tests.cli import run_cli

    result = run_cli("spawn", "--name", "no spaces", env=ENV, timeout=60)
    assert result.returncode == 2 and "bad peer name" in result.stderr
