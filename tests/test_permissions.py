"""The permission engine's order of decisions, remembered answers and the external guard."""

from __future__ import annotations

from pathlib import Path

import pytest

from codetether.agent.permissions import ApprovalRequest, PermissionDenied, PermissionEngine
from codetether.tools.base import Tool


class FakeTool(Tool):
    def __init__(self, name: str, read_only: bool = False) -> None:
        self.name = name
        self.read_only = read_only


READ = FakeTool("read", read_only=True)
EDIT = FakeTool("edit")
BASH = FakeTool("bash")


def engine(tmp_path: Path, mode: str = "ask", rules=None, approver=None, **kw) -> PermissionEngine:
    return PermissionEngine(rules or {}, mode, tmp_path / "ws", tmp_path / "data", approver, **kw)


@pytest.mark.parametrize("mode,tool,args,expected", [
    ("ask", READ, {"path": "a"}, "allow"),
    ("ask", EDIT, {"path": "a"}, "ask"),
    ("ask", BASH, {"command": "git status"}, "allow"),  # read-only command
    ("ask", BASH, {"command": "rm -rf build"}, "ask"),
    ("approve", EDIT, {"path": "a"}, "allow"),
    ("approve", BASH, {"command": "make"}, "ask"),
    ("full", BASH, {"command": "make"}, "allow"),
])
def test_access_modes(tmp_path, mode, tool, args, expected):
    assert engine(tmp_path, mode).decide(tool, args)[0] == expected


def test_most_specific_rule_wins_and_deny_beats_full(tmp_path):
    rules = {"bash": {"git *": "allow", "git push*": "deny", "*": "ask"}}
    e = engine(tmp_path, "full", rules)
    assert e.decide(BASH, {"command": "git commit -m x"})[0] == "allow"
    assert e.decide(BASH, {"command": "git push origin"})[0] == "deny"
    assert e.decide(BASH, {"command": "make"})[0] == "ask"


def test_path_rules_match_relative_and_absolute(tmp_path):
    e = engine(tmp_path, "full", {"edit": {"secrets/*": "deny"}})
    assert e.decide(EDIT, {"path": "secrets/key.txt"})[0] == "deny"
    assert e.decide(EDIT, {"path": str(tmp_path / "ws" / "secrets" / "k")})[0] == "deny"
    assert e.decide(EDIT, {"path": "src/app.py"})[0] == "allow"


def test_tool_level_rule(tmp_path):
    assert engine(tmp_path, "full", {"edit": "ask"}).decide(EDIT, {"path": "a"})[0] == "ask"


def test_read_only_agent_denies_changes_whatever_the_mode(tmp_path):
    e = engine(tmp_path, "full", read_only_agent=True)
    assert e.decide(EDIT, {"path": "a"})[0] == "deny"
    assert e.decide(BASH, {"command": "ls"})[0] == "allow"


def test_no_approver_means_denied_with_how_to_allow(tmp_path):
    with pytest.raises(PermissionDenied, match="--access-mode"):
        engine(tmp_path).check(EDIT, {"path": "a"})


def test_always_answer_is_remembered_per_project(tmp_path):
    asked: list[ApprovalRequest] = []

    def approver(request):
        asked.append(request)
        return "always"

    e = engine(tmp_path, approver=approver)
    e.check(BASH, {"command": "make test"})
    e.check(BASH, {"command": "make test"})
    assert len(asked) == 1
    assert engine(tmp_path).decide(BASH, {"command": "make test"})[0] == "allow"
    assert engine(tmp_path).decide(BASH, {"command": "make clean"})[0] == "ask"
    other = PermissionEngine({}, "ask", tmp_path / "other", tmp_path / "data")
    assert other.decide(BASH, {"command": "make test"})[0] == "ask"


def test_reject_and_once(tmp_path):
    with pytest.raises(PermissionDenied, match="rejected"):
        engine(tmp_path, approver=lambda r: "reject").check(EDIT, {"path": "a"})
    e = engine(tmp_path, approver=lambda r: "once")
    e.check(EDIT, {"path": "a"})
    assert e.decide(EDIT, {"path": "a"})[0] == "ask"  # once is not remembered


def test_external_directory_guard(tmp_path):
    outside = tmp_path / "elsewhere" / "f.txt"
    with pytest.raises(PermissionDenied, match="outside the workspace"):
        engine(tmp_path).check_external(outside, False)
    engine(tmp_path, "full").check_external(outside, True)
    engine(tmp_path, rules={"external_directory": {str(tmp_path / "elsewhere") + "/*": "allow"}}
           ).check_external(outside, False)
    with pytest.raises(PermissionDenied):
        denying = engine(tmp_path, "full", rules={"external_directory": "deny"})
        denying.check_external(outside, False)


def test_unknown_access_mode_is_a_config_error(tmp_path):
    from codetether.core.errors import ConfigError

    with pytest.raises(ConfigError):
        engine(tmp_path, "sometimes")
