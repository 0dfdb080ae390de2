"""In-process agent bus: topic pub/sub between agents, with envelopes, wildcard subscriptions,
bounded per-subscriber queues and a registry of agent cards.

    from codetether.bus import default_bus
    bus = default_bus()
    sub = bus.subscribe("task.#")
    bus.handle("planner").publish_task_update("t1", "working")
    envelope = sub.get(timeout=1)
"""

from codetether.bus.bus import AgentBus, BusHandle, Subscription, default_bus, topic_matches
from codetether.bus.envelope import MESSAGE_KINDS, Envelope, make_message
from codetether.bus.registry import AgentRegistry, local_card, local_url

__all__ = [
    "MESSAGE_KINDS",
    "AgentBus",
    "AgentRegistry",
    "BusHandle",
    "Envelope",
    "Subscription",
    "default_bus",
    "local_card",
    "local_url",
    "make_message",
    "topic_matches",
]
