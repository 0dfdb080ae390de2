"""``AgentBus``: topic pub/sub between agents of one process.

Topics are dot-separated (``agent.{id}``, ``agent.{id}.events``, ``task.{id}``, ``swarm.{id}``,
``broadcast``, ``results.{key}``, ``tools.{name}``). Subscription patterns use the AMQP topic
rules, chosen over fnmatch because fnmatch's ``agent.*`` would also match ``agent.a.events``:

    *   exactly one segment       agent.*        matches agent.a, not agent.a.events
    #   zero or more segments     task.#         matches task, task.1, task.1.artifacts
    literal segments match themselves; ``#`` alone matches every topic.

Delivery: each subscriber owns a bounded ``queue.Queue``. ``publish`` never blocks: when a
subscriber's queue is full the envelope is dropped *for that subscriber* and counted in
``Subscription.dropped``. Envelopes are handed out under one lock, so every subscriber sees
them in the same order (the order of ``recent()``). A ring buffer keeps the last envelopes for
late readers.
"""

from __future__ import annotations

import queue
import re
import threading
from collections import deque
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from codetether.bus.envelope import Envelope, check_message, make_message
from codetether.core.errors import UsageError

_CLOSED = object()


@lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str]:
    """A regex matched against ``"." + topic``: each segment brings its own leading dot, so
    ``#`` (any number of ``.seg``) can also stand for no segment at all."""
    segments = pattern.split(".")
    if not pattern or any(not seg for seg in segments):
        raise UsageError(f"bad bus topic pattern {pattern!r}",
                         "use dot-separated segments, '*' for one segment, '#' for any number")
    parts: list[str] = []
    for seg in segments:
        if seg == "#":
            parts.append(r"(?:\.[^.]+)*")
        elif seg == "*":
            parts.append(r"\.[^.]+")
        elif "*" in seg or "#" in seg:
            raise UsageError(f"bad bus topic pattern {pattern!r}",
                             "'*' and '#' must be whole segments (e.g. agent.*, task.#)")
        else:
            parts.append(r"\." + re.escape(seg))
    return re.compile("".join(parts) + r"\Z")


def topic_matches(pattern: str, topic: str) -> bool:
    """Does ``topic`` match the subscription ``pattern`` (``*`` one segment, ``#`` any)?"""
    return _compile(pattern).match("." + topic) is not None


def _check_topic(topic: str) -> None:
    if not isinstance(topic, str) or not topic or "*" in topic or "#" in topic \
            or any(not seg for seg in topic.split(".")):
        raise UsageError(f"bad bus topic {topic!r}",
                         "publish to a concrete dot-separated topic such as agent.<id>")


class Subscription:
    """One subscriber's queue. Iterate it (ends when closed) or call ``get(timeout)``."""

    def __init__(self, bus: AgentBus, pattern: str, maxsize: int) -> None:
        self.pattern = pattern
        self._regex = _compile(pattern)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=maxsize)
        self._bus = bus
        self.dropped = 0
        self.delivered = 0
        self.closed = False

    def matches(self, topic: str) -> bool:
        return self._regex.match("." + topic) is not None

    def _offer(self, envelope: Envelope) -> None:
        """Called by the bus under its lock: never blocks."""
        try:
            self._queue.put_nowait(envelope)
            self.delivered += 1
        except queue.Full:
            self.dropped += 1

    def get(self, timeout: float | None = None) -> Envelope | None:
        """The next envelope; None when ``timeout`` passes first or the subscription is closed."""
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if item is _CLOSED:
            self._queue.put_nowait(_CLOSED)  # keep later get() calls from blocking
            return None
        return item

    def get_nowait(self) -> Envelope | None:
        return self.get(timeout=0) if not self._queue.empty() else None

    def pending(self) -> int:
        return self._queue.qsize()

    def __iter__(self) -> Iterator[Envelope]:
        while True:
            item = self.get()
            if item is None:
                return
            yield item

    def close(self) -> None:
        """Stop receiving; wakes any thread blocked in ``get`` or iteration."""
        if self.closed:
            return
        self.closed = True
        self._bus._remove(self)
        while True:
            try:
                self._queue.put_nowait(_CLOSED)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()  # closed: what was pending no longer matters
                except queue.Empty:
                    pass

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class AgentBus:
    """Thread-safe topic pub/sub with a ring buffer of recent envelopes."""

    def __init__(self, ring_size: int = 512) -> None:
        self._lock = threading.Lock()
        self._subs: list[Subscription] = []
        self._ring: deque[Envelope] = deque(maxlen=ring_size)
        self.published = 0

    def publish(self, topic: str, message: dict[str, Any], sender_id: str,
                correlation_id: str | None = None) -> Envelope:
        """Wrap ``message`` in an envelope and hand it to every matching subscriber."""
        _check_topic(topic)
        envelope = Envelope(topic=topic, sender_id=sender_id, message=check_message(message),
                            correlation_id=correlation_id)
        self.deliver(envelope)
        return envelope

    def deliver(self, envelope: Envelope) -> None:
        """Hand an existing envelope out (a bridge uses this for envelopes from elsewhere)."""
        with self._lock:
            self.published += 1
            self._ring.append(envelope)
            for sub in self._subs:
                if sub.matches(envelope.topic):
                    sub._offer(envelope)

    def subscribe(self, pattern: str = "#", maxsize: int = 1024) -> Subscription:
        if maxsize < 1:
            raise UsageError("subscription queue size must be at least 1")
        sub = Subscription(self, pattern, maxsize)
        with self._lock:
            self._subs.append(sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def recent(self, pattern: str = "#", n: int = 100) -> list[Envelope]:
        """The last ``n`` envelopes whose topic matches, oldest first."""
        regex = _compile(pattern)
        with self._lock:
            matching = [e for e in self._ring if regex.match("." + e.topic)]
        return matching[-n:] if n > 0 else []

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"published": self.published, "subscribers": len(self._subs),
                    "dropped": sum(s.dropped for s in self._subs),
                    "recent": len(self._ring)}

    def handle(self, agent_id: str, inbox: bool = True) -> BusHandle:
        """An agent's handle; its inbox subscribes now (so nothing sent to it from here on is
        missed) unless ``inbox=False`` (a publisher that never reads)."""
        handle = BusHandle(self, agent_id)
        if inbox:
            _ = handle.inbox
        return handle

    def close(self) -> None:
        """Close every subscription (their readers wake up and stop)."""
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            sub.close()


class BusHandle:
    """One agent's view of the bus: its inbox (``agent.{id}``) and typed publishers."""

    def __init__(self, bus: AgentBus, agent_id: str) -> None:
        if not agent_id or "." in agent_id or "*" in agent_id or "#" in agent_id:
            raise UsageError(f"bad agent id {agent_id!r}",
                             "agent ids may not contain '.', '*' or '#'")
        self.bus = bus
        self.agent_id = agent_id
        self._inbox: Subscription | None = None
        self._lock = threading.Lock()

    @property
    def inbox(self) -> Subscription:
        """Subscription on ``agent.{id}`` (created on first use if the handle was made
        without one; envelopes published before that are only in ``recent()``)."""
        with self._lock:
            if self._inbox is None or self._inbox.closed:
                self._inbox = self.bus.subscribe(f"agent.{self.agent_id}")
            return self._inbox

    def publish(self, topic: str, message: dict[str, Any],
                correlation_id: str | None = None) -> Envelope:
        return self.bus.publish(topic, message, self.agent_id, correlation_id)

    def send_to(self, agent_id: str, content: str | list[dict[str, Any]],
                correlation_id: str | None = None) -> Envelope:
        """An ``agent_message`` to another agent's inbox; text becomes one text part."""
        parts = [{"text": content}] if isinstance(content, str) else content
        message = make_message("agent_message", from_=self.agent_id, to=agent_id, parts=parts)
        return self.publish(f"agent.{agent_id}", message, correlation_id)

    def broadcast(self, message: dict[str, Any]) -> Envelope:
        return self.publish("broadcast", message)

    def publish_task_update(self, task_id: str, state: str, **fields: Any) -> Envelope:
        message = make_message("task_update", task_id=task_id, state=state, **fields)
        return self.publish(f"task.{task_id}", message)

    def publish_artifact(self, task_id: str, artifact: dict[str, Any], **fields: Any) -> Envelope:
        message = make_message("artifact_update", task_id=task_id, artifact=artifact, **fields)
        return self.publish(f"task.{task_id}", message)

    def share_result(self, key: str, value: Any, tags: list[str] | None = None) -> Envelope:
        message = make_message("shared_result", key=key, value=value, tags=tags or [])
        return self.publish(f"results.{key}", message)

    def publish_event(self, event_type: str, data: dict[str, Any]) -> Envelope:
        """An agent-loop event (agent/events.py) on ``agent.{id}.events``."""
        message = make_message("agent_event", agent_id=self.agent_id, type=event_type, data=data)
        return self.publish(f"agent.{self.agent_id}.events", message)

    def announce_ready(self, card: dict[str, Any] | None = None) -> Envelope:
        return self.broadcast(make_message("agent_ready", agent_id=self.agent_id, card=card))

    def heartbeat(self, status: str = "idle") -> Envelope:
        return self.broadcast(make_message("heartbeat", agent_id=self.agent_id, status=status))

    def close(self, reason: str = "") -> None:
        """Say goodbye on ``broadcast`` and stop the inbox."""
        self.broadcast(make_message("agent_shutdown", agent_id=self.agent_id, reason=reason))
        with self._lock:
            if self._inbox is not None:
                self._inbox.close()


_default: AgentBus | None = None
_default_lock = threading.Lock()


def default_bus() -> AgentBus:
    """The process-wide bus (created on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = AgentBus()
        return _default
