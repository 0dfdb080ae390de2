"""``config --set`` edits text: every other line survives and the result is valid TOML."""

from __future__ import annotations

import tomllib

import pytest

from codetether.core.errors import ConfigError
from codetether.core.toml_edit import parse_cli_value, set_key

ORIGINAL = """\
# my settings
[default]
model = "openai/gpt-4o"  # the usual

[ui]
theme = "dark"

[permissions]
bash = { "git status*" = "allow" }
"""


def test_replaces_existing_key_and_keeps_comments():
    out = set_key(ORIGINAL, ["default", "model"], "anthropic/claude")
    assert tomllib.loads(out)["default"]["model"] == "anthropic/claude"
    assert "# my settings" in out and 'theme = "dark"' in out
    assert out.count("model =") == 1


def test_adds_key_to_existing_table_before_next_table():
    out = set_key(ORIGINAL, ["ui", "compact"], True)
    data = tomllib.loads(out)
    assert data["ui"] == {"theme": "dark", "compact": True}
    assert out.index("compact = true") < out.index("[permissions]")


def test_adds_new_nested_table_at_end():
    out = set_key(ORIGINAL, ["providers", "local", "base_url"], "http://127.0.0.1:11434/v1")
    data = tomllib.loads(out)
    assert data["providers"]["local"]["base_url"] == "http://127.0.0.1:11434/v1"
    assert out.startswith(ORIGINAL)


def test_replaces_multiline_value_whole():
    text = '[lsp]\nservers = [\n  "a",\n  "b",\n]\nother = 1\n'
    out = set_key(text, ["lsp", "servers"], ["c"])
    assert tomllib.loads(out)["lsp"] == {"servers": ["c"], "other": 1}


def test_quoted_keys_and_values_with_quotes():
    out = set_key("", ["permissions", "bash", "rm -rf*"], "deny")
    assert tomllib.loads(out)["permissions"]["bash"]["rm -rf*"] == "deny"
    out = set_key("", ["default", "model"], 'we"ird\\')
    assert tomllib.loads(out)["default"]["model"] == 'we"ird\\'


def test_key_under_inline_table_cannot_be_set_safely():
    with pytest.raises(ConfigError):
        set_key(ORIGINAL, ["permissions", "bash", "ls*"], "allow")


@pytest.mark.parametrize("raw,expected", [("true", True), ("3", 3), ("1.5", 1.5),
                                          ('"x y"', "x y"), ("plain text", "plain text"),
                                          ("[1, 2]", [1, 2]), ("{a = 1}", {"a": 1}),
                                          ("openai/gpt-4o", "openai/gpt-4o")])
def test_parse_cli_value(raw, expected):
    assert parse_cli_value(raw) == expected
