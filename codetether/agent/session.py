"""A session: an append-only transcript of messages, plus what it cost.

Messages are never rewritten. Compaction adds a summary message (``meta["summary"]``) that
the loop uses in place of what came before it; undo marks messages ``meta["reverted"]``; the
full record stays on disk either way.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from codetether.core.ids import new_id
from codetether.providers.base import (
    ImagePart,
    Message,
    Part,
    Role,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
    Usage,
)

_PART_TYPES = {"text": TextPart, "thinking": ThinkingPart, "tool_call": ToolCallPart,
               "tool_result": ToolResultPart, "image": ImagePart}


def part_to_dict(part: Part) -> dict[str, Any]:
    return asdict(part)


def part_from_dict(data: dict[str, Any]) -> Part:
    """Rebuild a part; unknown types or fields are a ``ValueError`` (imports validate with it)."""
    if not isinstance(data, dict):
        raise ValueError(f"a message part must be an object, not {type(data).__name__}")
    kind = data.get("type")
    cls = _PART_TYPES.get(kind)
    if cls is None:
        raise ValueError(f"unknown message part type {kind!r}")
    fields = {k: v for k, v in data.items() if k != "type"}
    try:
        return cls(**fields)
    except TypeError as exc:
        raise ValueError(f"bad {kind} part: {exc}") from None


@dataclass
class StoredMessage:
    role: Role
    parts: list[Part]
    id: str = field(default_factory=lambda: new_id("msg"))
    created_at: float = field(default_factory=time.time)
    # summary: bool, reverted: bool, snapshot: str, usage: dict, model: str, error: str,
    # cancelled: bool ...
    meta: dict[str, Any] = field(default_factory=dict)

    def as_message(self) -> Message:
        return Message(self.role, list(self.parts))

    def text(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))

    def tool_calls(self) -> list[ToolCallPart]:
        return [p for p in self.parts if isinstance(p, ToolCallPart)]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "role": self.role, "created_at": self.created_at,
                "parts": [part_to_dict(p) for p in self.parts], "meta": self.meta}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StoredMessage:
        if not isinstance(data, dict):
            raise ValueError("a message must be an object")
        role = data.get("role")
        if role not in ("user", "assistant", "tool"):
            raise ValueError(f"bad message role {role!r}")
        parts = data.get("parts")
        if not isinstance(parts, list):
            raise ValueError("message parts must be a list")
        meta = data.get("meta") or {}
        if not isinstance(meta, dict):
            raise ValueError("message meta must be an object")
        return cls(role, [part_from_dict(p) for p in parts], str(data.get("id") or new_id("msg")),
                   float(data.get("created_at") or time.time()), meta)


@dataclass
class Session:
    directory: str
    model: str = ""
    agent: str = "build"
    title: str = ""
    id: str = field(default_factory=lambda: new_id("ses"))
    parent_id: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0
    messages: list[StoredMessage] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)

    def context_messages(self) -> list[StoredMessage]:
        """What the model sees: the latest summary (which stands for everything up to its
        ``covers_until`` message), then every later message; reverted messages never."""
        live = [m for m in self.messages if not m.meta.get("reverted")]
        summary = next((m for m in reversed(live) if m.meta.get("summary")), None)
        if summary is None:
            return live
        ids = [m.id for m in live]
        covered = summary.meta.get("covers_until")
        start = ids.index(covered) + 1 if covered in ids else ids.index(summary.id)
        return [summary] + [m for m in live[start:] if m is not summary
                            and not m.meta.get("summary")]

    def last_assistant_text(self) -> str:
        for message in reversed(self.messages):
            if message.role == "assistant" and not message.meta.get("reverted") and message.text():
                return message.text()
        return ""

    def to_dict(self) -> dict[str, Any]:
        """The complete, self-contained record (``session export``)."""
        usage = asdict(self.usage)
        usage.pop("type", None)
        return {"id": self.id, "title": self.title, "directory": self.directory,
                "model": self.model, "agent": self.agent, "parent_id": self.parent_id,
                "created_at": self.created_at, "updated_at": self.updated_at, "usage": usage,
                "cost": self.cost, "metadata": self.metadata,
                "messages": [m.to_dict() for m in self.messages]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Session:
        if not isinstance(data, dict):
            raise ValueError("a session must be a JSON object")
        for key in ("id", "directory"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise ValueError(f"session field {key!r} must be a non-empty string")
        messages = data.get("messages", [])
        if not isinstance(messages, list):
            raise ValueError("session messages must be a list")
        usage = data.get("usage") or {}
        try:
            usage_obj = Usage(**{k: int(v) for k, v in usage.items() if k != "type"})
        except (TypeError, ValueError):
            raise ValueError("session usage has unknown or non-integer fields") from None
        return cls(directory=data["directory"], model=str(data.get("model") or ""),
                   agent=str(data.get("agent") or "build"), title=str(data.get("title") or ""),
                   id=data["id"], parent_id=data.get("parent_id"),
                   created_at=float(data.get("created_at") or time.time()),
                   updated_at=float(data.get("updated_at") or time.time()),
                   usage=usage_obj, cost=float(data.get("cost") or 0.0),
                   messages=[StoredMessage.from_dict(m) for m in messages],
                   metadata=dict(data.get("metadata") or {}))


def title_from_prompt(prompt: str, limit: int = 60) -> str:
    """A session title from its first prompt: first line, whitespace collapsed, cut at a word."""
    line = " ".join(prompt.strip().split("\n")[0].split())
    if len(line) <= limit:
        return line or "untitled"
    cut = line[:limit].rsplit(" ", 1)[0]
    return (cut or line[:limit]) + "…"
