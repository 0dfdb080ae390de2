"""The in-process agent bus: wildcards, envelopes, per-subscriber order, drops, ring buffer,
handles and the agent registry."""

from __future__ import annotations

import threading

import pytest

from codetether.bus import (
    AgentBus,
    AgentRegistry,
    Envelope,
    default_bus,
    local_card,
    make_message,
    topic_matches,
)
from codetether.bus.registry import card_url, local_name
from codetether.core.errors import UsageError


@pytest.mark.parametrize("pattern,topic,expected", [
    ("agent.*", "agent.a", True),
    ("agent.*", "agent.a.events", False),
    ("agent.*.events", "agent.a.events", True),
    ("task.#", "task", True),
    ("task.#", "task.1", True),
    ("task.#", "task.1.artifacts", True),
    ("task.#", "tasks.1", False),
    ("#", "broadcast", True),
    ("#", "a.b.c", True),
    ("#.events", "agent.a.events", True),
    ("#.events", "agent.a.event", False),
    ("a.#.z", "a.z", True),
    ("a.#.z", "a.b.c.z", True),
    ("a.#.z", "a.b.c", False),
    ("*", "a.b", False),
    ("broadcast", "broadcast", True),
    ("results.x+y", "results.x+y", True),   # regex characters are literal
    ("results.x+y", "results.xxy", False),
])
def test_topic_patterns(pattern, topic, expected):
    assert topic_matches(pattern, topic) is expected


@pytest.mark.parametrize("pattern", ["", "a..b", "agent.a*", "task.#x", "."])
def test_bad_patterns_are_usage_errors(pattern):
    with pytest.raises(UsageError):
        AgentBus().subscribe(pattern)


@pytest.mark.parametrize("topic", ["", "agent.*", "task.#", "a..b"])
def test_bad_topics_are_refused(topic):
    with pytest.raises(UsageError):
        AgentBus().publish(topic, {"kind": "heartbeat"}, "me")


def test_message_needs_a_kind():
    bus = AgentBus()
    for bad in ({}, {"kind": ""}, {"kind": 3}, "text", None):
        with pytest.raises(UsageError):
            bus.publish("broadcast", bad, "me")


def test_envelope_fields_and_json_round_trip():
    bus = AgentBus()
    sub = bus.subscribe("agent.*")
    sent = bus.publish("agent.b", make_message("agent_message", from_="a", to="b",
                                               parts=[{"text": "hi"}]), "a", "corr-1")
    got = sub.get(timeout=1)
    assert got is sent
    data = got.to_json()
    assert set(data) == {"id", "topic", "sender_id", "correlation_id", "timestamp", "message"}
    assert data["message"] == {"kind": "agent_message", "from": "a", "to": "b",
                               "parts": [{"text": "hi"}]}
    assert data["correlation_id"] == "corr-1" and data["id"].startswith("env_")
    assert data["timestamp"].endswith("Z") and "T" in data["timestamp"]
    assert Envelope.from_json(data) == got
    with pytest.raises(UsageError):
        Envelope.from_json({"topic": "x", "message": {}})


def test_only_matching_subscribers_receive():
    bus = AgentBus()
    tasks, agents, everything = bus.subscribe("task.#"), bus.subscribe("agent.*"), bus.subscribe()
    bus.publish("task.1", {"kind": "task_update", "task_id": "1", "state": "working"}, "x")
    bus.publish("agent.a", {"kind": "heartbeat"}, "x")
    bus.publish("agent.a.events", {"kind": "agent_event"}, "x")
    assert [e.topic for e in _drain(tasks)] == ["task.1"]
    assert [e.topic for e in _drain(agents)] == ["agent.a"]
    assert [e.topic for e in _drain(everything)] == ["task.1", "agent.a", "agent.a.events"]


def test_full_queue_drops_for_that_subscriber_only_and_counts():
    bus = AgentBus()
    slow = bus.subscribe("#", maxsize=3)
    fast = bus.subscribe("#", maxsize=100)
    for i in range(10):
        bus.publish("broadcast", {"kind": "heartbeat", "n": i}, "x")  # never blocks
    assert slow.dropped == 7 and slow.delivered == 3
    assert [e.message["n"] for e in _drain(slow)] == [0, 1, 2]
    assert fast.dropped == 0 and len(_drain(fast)) == 10
    assert bus.stats()["dropped"] == 7
    bus.publish("broadcast", {"kind": "heartbeat", "n": 10}, "x")  # room again
    assert slow.get(timeout=1).message["n"] == 10


def test_concurrent_publishers_every_subscriber_sees_the_same_order():
    bus = AgentBus(ring_size=10_000)
    subs = [bus.subscribe("work.#", maxsize=10_000) for _ in range(3)]
    start = threading.Barrier(8)

    def publisher(p: int) -> None:
        start.wait()
        for i in range(500):
            bus.publish(f"work.{p}", {"kind": "agent_message", "p": p, "i": i}, f"p{p}")

    threads = [threading.Thread(target=publisher, args=(p,)) for p in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    orders = [[e.id for e in _drain(s)] for s in subs]
    assert len(orders[0]) == 4000 and orders[0] == orders[1] == orders[2]
    assert orders[0] == [e.id for e in bus.recent("#", 10_000)]
    received = _by_publisher(bus.recent("#", 10_000))
    assert all(seq == list(range(500)) for seq in received.values())  # per-publisher FIFO
    assert all(s.dropped == 0 for s in subs)


def test_get_times_out_and_close_wakes_a_blocked_reader():
    bus = AgentBus()
    sub = bus.subscribe("x")
    assert sub.get(timeout=0.01) is None
    got: list[object] = []
    started = threading.Event()

    def reader() -> None:
        started.set()
        got.extend(sub)  # iteration ends when closed

    t = threading.Thread(target=reader)
    t.start()
    started.wait(5)
    bus.publish("x", {"kind": "heartbeat"}, "me")
    sub.close()
    t.join(timeout=5)
    assert not t.is_alive()
    assert sub.get(timeout=0.01) is None and sub.closed
    bus.publish("x", {"kind": "heartbeat"}, "me")  # no longer delivered
    assert bus.stats()["subscribers"] == 0


def test_close_on_a_full_queue_still_wakes_readers():
    bus = AgentBus()
    sub = bus.subscribe("x", maxsize=1)
    bus.publish("x", {"kind": "heartbeat"}, "me")
    sub.close()
    assert list(sub) == []


def test_ring_buffer_keeps_the_last_envelopes():
    bus = AgentBus(ring_size=5)
    for i in range(8):
        bus.publish(f"task.{i % 2}", {"kind": "task_update", "i": i}, "x")
    assert [e.message["i"] for e in bus.recent()] == [3, 4, 5, 6, 7]
    assert [e.message["i"] for e in bus.recent("task.0")] == [4, 6]
    assert [e.message["i"] for e in bus.recent("#", 2)] == [6, 7]
    assert bus.recent("#", 0) == []


def test_handle_sends_to_inboxes_and_typed_topics():
    bus = AgentBus()
    alice, bob = bus.handle("alice", inbox=False), bus.handle("bob")
    alice.send_to("bob", "early")  # bob's inbox exists from bus.handle on
    assert bob.inbox.get(timeout=1).message["parts"] == [{"text": "early"}]
    inbox = bob.inbox
    watch = bus.subscribe("#")
    alice.send_to("bob", "hello", correlation_id="c1")
    alice.publish_task_update("t1", "working", progress=0.5)
    alice.publish_artifact("t1", {"artifactId": "a", "parts": [{"text": "x"}]})
    alice.share_result("answer", 42, ["math"])
    alice.publish_event("text.delta", {"text": "hi"})
    alice.announce_ready()
    msg = inbox.get(timeout=1)
    assert msg.topic == "agent.bob" and msg.sender_id == "alice" and msg.correlation_id == "c1"
    assert msg.message == {"kind": "agent_message", "from": "alice", "to": "bob",
                           "parts": [{"text": "hello"}]}
    seen = [(e.topic, e.kind) for e in _drain(watch)]
    assert seen == [("agent.bob", "agent_message"), ("task.t1", "task_update"),
                    ("task.t1", "artifact_update"), ("results.answer", "shared_result"),
                    ("agent.alice.events", "agent_event"), ("broadcast", "agent_ready")]
    assert bus.recent("task.t1", 1)[0].message["artifact"]["artifactId"] == "a"
    bob.close("done")
    assert bus.recent("broadcast", 1)[0].message == {"kind": "agent_shutdown",
                                                     "agent_id": "bob", "reason": "done"}
    assert inbox.closed
    with pytest.raises(UsageError):
        bus.handle("a.b")


def test_default_bus_is_one_per_process():
    assert default_bus() is default_bus()


def test_registry_register_get_list_unregister_and_announcements():
    bus = AgentBus()
    watch = bus.subscribe("broadcast")
    reg = AgentRegistry(bus)
    entry = reg.register_local("explorer", "reads code", [{"id": "read", "name": "read",
                                                          "description": "", "tags": []}])
    assert entry.url == "bus://local/explorer" and entry.local
    assert local_name(entry.url) == "explorer" and local_name("http://x") is None
    remote = {"name": "peer", "description": "", "version": "1",
              "supportedInterfaces": [{"url": "http://10.0.0.1:4096/",
                                       "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}]}
    reg.register(remote)
    assert reg.names() == ["explorer", "peer"] and len(reg) == 2 and "peer" in reg
    assert reg.get("peer") is remote and reg.get("nobody") is None
    assert reg.find_by_url("http://10.0.0.1:4096/").name == "peer"
    assert card_url({"url": "http://legacy/"}) == "http://legacy/"
    first = reg.entry("peer").registered_at
    reg.register({**remote, "version": "2"})
    assert reg.get("peer")["version"] == "2" and reg.entry("peer").registered_at == first
    assert reg.unregister("peer", "bye") and not reg.unregister("peer")
    kinds = [(e.kind, e.message["agent_id"]) for e in _drain(watch)]
    assert kinds == [("agent_ready", "explorer"), ("agent_ready", "peer"),
                     ("agent_ready", "peer"), ("agent_shutdown", "peer")]
    with pytest.raises(UsageError):
        reg.register({"description": "no name"})


def test_registry_is_thread_safe():
    reg = AgentRegistry()
    barrier = threading.Barrier(8)

    def worker(w: int) -> None:
        barrier.wait()
        for i in range(100):
            reg.register(local_card(f"a{w}-{i}"))
            if i % 2:
                reg.unregister(f"a{w}-{i}")

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(reg) == 400


def _drain(sub):
    out = []
    while (envelope := sub.get(timeout=0)) is not None:
        out.append(envelope)
    return out


def _by_publisher(envelopes):
    seqs: dict[int, list[int]] = {}
    for e in envelopes:
        seqs.setdefault(e.message["p"], []).append(e.message["i"])
    return seqs
