"""Keep a long session inside the model's window without losing the transcript.

Two steps, cheapest first (techniques.md §5, after opencode):
1. **Prune**: old tool outputs — beyond the newest ones, outside the last two user turns — are
   marked ``meta["pruned"]`` and shown to the model as a one-line placeholder.
2. **Summarise**: if that is not enough, the older history is rewritten by the model into a
   fixed template (``prompts/compaction.md``) and appended as a summary message that stands for
   everything up to ``covers_until``; the recent tail stays verbatim.
Neither step rewrites a stored message: the full transcript stays on disk.

Token counts are estimated as characters / 4, the same for every model, so behaviour is
predictable and testable with a small window.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from codetether.agent.session import Session, StoredMessage
from codetether.providers.base import (
    ChatRequest,
    Message,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
    collect,
)

PRUNED_PLACEHOLDER = "[Old tool result content cleared]"
SUMMARY_PREFIX = ("Summary of the earlier part of this session (the full transcript is kept on "
                  "disk):\n\n")
CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class Budget:
    window: int
    max_output: int

    @property
    def reserved(self) -> int:
        return min(self.max_output, 20_000, self.window // 4)

    @property
    def usable(self) -> int:
        return self.window - self.reserved

    @property
    def threshold(self) -> int:
        """Compact when the prompt reaches the window minus reserved output minus a buffer."""
        return self.usable - min(self.reserved, self.window // 10)

    @property
    def keep_tool_output(self) -> int:
        return min(40_000, self.usable // 4)

    @property
    def min_prune_gain(self) -> int:
        return min(20_000, self.usable // 20)

    @property
    def tail(self) -> int:
        return min(15_000, self.usable // 4)


def estimate_text(text: str) -> int:
    return len(text) // CHARS_PER_TOKEN + 1


def estimate_message(message: StoredMessage) -> int:
    total = 4
    for part in message.parts:
        if isinstance(part, ToolResultPart):
            text = PRUNED_PLACEHOLDER if message.meta.get("pruned") else part.content
            total += estimate_text(text)
        elif isinstance(part, ToolCallPart):
            total += estimate_text(part.name + part.arguments)
        elif isinstance(part, (TextPart, ThinkingPart)):
            total += estimate_text(part.text)
        else:
            total += 400  # an image or file: a rough, fixed cost
    return total


def estimate(messages: Iterable[StoredMessage], extra_text: str = "") -> int:
    return sum(estimate_message(m) for m in messages) + estimate_text(extra_text)


def prune(session: Session, budget: Budget) -> list[StoredMessage]:
    """Tool-result messages to mark pruned: outside the two newest user turns, older than the
    newest ``keep_tool_output`` tokens of tool output; nothing unless enough is freed."""
    context = session.context_messages()
    user_turns = 0
    kept = 0
    candidates: list[StoredMessage] = []
    freed = 0
    for message in reversed(context):
        if message.role == "user":
            user_turns += 1
        if user_turns < 2 or message.role != "tool" or message.meta.get("pruned"):
            continue
        size = estimate_message(message)
        if kept + size <= budget.keep_tool_output:
            kept += size
            continue
        candidates.append(message)
        freed += size - estimate_text(PRUNED_PLACEHOLDER)
    return candidates if freed >= budget.min_prune_gain else []


def split_for_summary(session: Session, budget: Budget) -> tuple[list[StoredMessage], str] | None:
    """(messages to summarise, id of the last one) — the tail of at least ``budget.tail``
    tokens starting at a user prompt stays out; None if nothing older than the tail exists."""
    context = session.context_messages()
    tokens = 0
    cut = len(context)
    for index in range(len(context) - 1, -1, -1):
        tokens += estimate_message(context[index])
        cut = index
        if tokens >= budget.tail:
            break
    while cut > 0 and not (context[cut].role == "user" and not context[cut].meta.get("summary")):
        cut -= 1  # never split a tool call from its result: start the tail at a user prompt
    if cut <= 0:
        return None
    older = context[:cut]
    return older, older[-1].id


def serialise(messages: list[StoredMessage], limit: int = 2000) -> str:
    """The older history as plain lines for the summariser (tool results cut)."""
    lines = []
    for message in messages:
        if message.meta.get("summary"):
            lines.append(f"[Previous summary]:\n{message.text()}")
            continue
        for part in message.parts:
            if isinstance(part, TextPart) and part.text.strip():
                who = "User" if message.role == "user" else "Assistant"
                lines.append(f"[{who}]: {part.text}")
            elif isinstance(part, ToolCallPart):
                lines.append(f"[Tool call]: {part.name} {part.arguments[:limit]}")
            elif isinstance(part, ToolResultPart):
                content = part.content if len(part.content) <= limit else \
                    part.content[:limit] + f"… [{len(part.content) - limit} chars cut]"
                lines.append(f"[Tool result]: {content}")
    return "\n".join(lines)


def summarise(provider, model: str, messages: list[StoredMessage], system: str,
              cancel=None) -> str:
    """Ask the model for the template summary of ``messages``."""
    request = ChatRequest(
        model=model, system=system, max_tokens=4096, cancel=cancel,
        messages=[Message.user("Conversation so far:\n\n" + serialise(messages)
                               + "\n\nWrite the summary now, in the template.")])
    return collect(provider.stream(request)).text.strip()


def summary_message(text: str, covers_until: str) -> StoredMessage:
    return StoredMessage("user", [TextPart(SUMMARY_PREFIX + text)],
                         meta={"summary": True, "covers_until": covers_until})


def tool_args_preview(arguments: str, limit: int = 200) -> str:
    """A one-line view of tool arguments for events and logs."""
    try:
        text = json.dumps(json.loads(arguments or "{}"), ensure_ascii=False)
    except ValueError:
        text = arguments
    return text if len(text) <= limit else text[:limit] + "…"
