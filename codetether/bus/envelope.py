"""What travels on the bus: an ``Envelope`` around a ``message`` tagged by ``kind``.

    Envelope{id, topic, sender_id, correlation_id, timestamp, message{kind, ...}}

The kinds (reference 002, codetether-agent.md §7) and the fields each usually carries:

    agent_ready      {agent_id, card?}            agent_shutdown {agent_id, reason?}
    agent_message    {from, to, parts}            task_update    {task_id, state, ...}
    artifact_update  {task_id, artifact, ...}     shared_result  {key, value, tags}
    tool_request     {tool, args, request_id}     tool_response  {request_id, output, success}
    heartbeat        {agent_id, status?}          agent_speech   {act, ...}
    ralph_learning / ralph_handoff / ralph_progress {...}
    agent_thinking   {agent_id, text}             user_prompt    {text, ...}
    agent_event      {agent_id, type, data}       (an agent-loop event, see agent/events.py)

A kind outside this list is carried as is (the bus is a transport, not a schema check), but a
message without a string ``kind`` is refused, because every consumer dispatches on it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from codetether.core.errors import UsageError
from codetether.core.ids import new_id

MESSAGE_KINDS = frozenset({
    "agent_ready", "agent_shutdown", "agent_message", "task_update", "artifact_update",
    "shared_result", "tool_request", "tool_response", "heartbeat", "agent_speech",
    "ralph_learning", "ralph_handoff", "ralph_progress", "agent_thinking", "user_prompt",
    "agent_event",
})

SPEECH_ACTS = frozenset({"request", "inform", "propose", "accept", "reject", "claim",
                         "blocked", "done"})


def now_iso() -> str:
    """UTC, millisecond precision, ``Z`` suffix: sortable and what A2A timestamps look like."""
    stamp = datetime.fromtimestamp(time.time(), tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def make_message(kind: str, **fields: Any) -> dict[str, Any]:
    """``{"kind": kind, **fields}``; ``from_`` becomes ``from`` (a Python keyword)."""
    if "from_" in fields:
        fields["from"] = fields.pop("from_")
    return {"kind": kind, **fields}


def check_message(message: Any) -> dict[str, Any]:
    if not isinstance(message, dict) or not isinstance(message.get("kind"), str) \
            or not message["kind"]:
        raise UsageError("bus message must be an object with a string 'kind'",
                         f"use one of: {', '.join(sorted(MESSAGE_KINDS))}")
    return message


@dataclass(frozen=True)
class Envelope:
    topic: str
    sender_id: str
    message: dict[str, Any]
    correlation_id: str | None = None
    id: str = field(default_factory=lambda: new_id("env"))
    timestamp: str = field(default_factory=now_iso)

    @property
    def kind(self) -> str:
        return str(self.message.get("kind", ""))

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "topic": self.topic, "sender_id": self.sender_id,
                "correlation_id": self.correlation_id, "timestamp": self.timestamp,
                "message": self.message}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Envelope:
        """Inverse of ``to_json`` (for bridges and SSE readers); bad shapes are a UsageError."""
        if not isinstance(data, dict) or not isinstance(data.get("topic"), str):
            raise UsageError("bus envelope must be an object with a string 'topic'")
        return cls(topic=data["topic"], sender_id=str(data.get("sender_id") or ""),
                   message=check_message(data.get("message")),
                   correlation_id=data.get("correlation_id"),
                   id=str(data.get("id") or new_id("env")),
                   timestamp=str(data.get("timestamp") or now_iso()))
