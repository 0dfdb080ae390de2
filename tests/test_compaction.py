"""Compaction decisions with the chars/4 estimate and a small window."""

from __future__ import annotations

from codetether.agent import compaction
from codetether.agent.session import Session, StoredMessage
from codetether.providers.base import TextPart, ToolCallPart, ToolResultPart

BUDGET = compaction.Budget(window=8000, max_output=16000)


def user(text: str) -> StoredMessage:
    return StoredMessage("user", [TextPart(text)])


def assistant_call(call_id: str) -> StoredMessage:
    return StoredMessage("assistant", [ToolCallPart(call_id, "read", "{}")])


def tool(call_id: str, size: int) -> StoredMessage:
    return StoredMessage("tool", [ToolResultPart(call_id, "x" * size)])


def test_budget_numbers():
    assert BUDGET.reserved == 2000 and BUDGET.usable == 6000 and BUDGET.threshold == 5200


def test_prune_skips_the_two_newest_user_turns():
    s = Session("/w", messages=[user("q1"), assistant_call("a"), tool("a", 20000),
                                user("q2"), assistant_call("b"), tool("b", 20000)])
    assert compaction.prune(s, BUDGET) == []  # both outputs are within the last two turns
    s.messages.append(user("q3"))
    assert [m.id for m in compaction.prune(s, BUDGET)] == [s.messages[2].id]


def test_prune_needs_a_real_gain():
    s = Session("/w", messages=[user("q1"), assistant_call("a"), tool("a", 400),
                                user("q2"), user("q3")])
    assert compaction.prune(s, BUDGET) == []


def test_split_keeps_tail_from_a_user_prompt():
    s = Session("/w", messages=[user("A" * 24000), StoredMessage("assistant", [TextPart("a1")]),
                                user("B" * 8000), assistant_call("c"), tool("c", 100)])
    older, covers = compaction.split_for_summary(s, BUDGET)
    assert [m.role for m in older] == ["user", "assistant"] and covers == s.messages[1].id


def test_no_split_when_only_the_tail_exists():
    s = Session("/w", messages=[user("A" * 24000), StoredMessage("assistant", [TextPart("a")])])
    assert compaction.split_for_summary(s, BUDGET) is None


def test_summary_stands_for_covered_messages():
    s = Session("/w", messages=[user("old"), StoredMessage("assistant", [TextPart("a1")]),
                                user("new")])
    s.messages.append(compaction.summary_message("facts", s.messages[1].id))
    view = s.context_messages()
    assert [m.text() for m in view][1:] == ["new"]
    assert view[0].meta["summary"] and "facts" in view[0].text()


def test_serialise_cuts_long_tool_results():
    text = compaction.serialise([tool("a", 5000)], limit=100)
    assert "[4900 chars cut]" in text
