"""Change one key of a TOML file in place, keeping every other line, comment and blank as it was.

The stdlib reads TOML but cannot write it, and a round-trip through a dict would drop the
user's comments. So we edit text: find the key's table, replace the key's lines (a value may
span several lines) or add it, then re-parse the result and refuse to write unless the file
is valid and reads back the value we set.
"""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any

from codetether.core.errors import ConfigError

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_key(part: str) -> str:
    return part if _BARE_KEY.match(part) else json.dumps(part)


def toml_value(value: Any) -> str:
    """Render a Python value as a TOML value (strings as basic strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise ConfigError(f"cannot store a {type(value).__name__} in TOML", "use a string or number")


def parse_cli_value(raw: str) -> Any:
    """``--set k=VALUE``: a TOML literal if it is one (true, 3, [..], {..}, "x"), else a string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _header_path(line: str) -> list[str] | None:
    """The table path of a ``[a.b]`` header line, or None if the line is not a header."""
    stripped = line.strip()
    if not stripped.startswith("[") or stripped.startswith("[["):
        return None
    try:
        parsed = tomllib.loads(stripped.split("#")[0].strip() + "\n")
    except tomllib.TOMLDecodeError:
        return None
    path: list[str] = []
    node: Any = parsed
    while isinstance(node, dict) and len(node) == 1:
        key = next(iter(node))
        path.append(key)
        node = node[key]
    return path


def _value_end(lines: list[str], start: int) -> int:
    """Index after the last line of the key/value that begins at ``start`` (multi-line aware)."""
    for end in range(start + 1, min(len(lines), start + 500) + 1):
        try:
            tomllib.loads("".join(lines[start:end]))
            return end
        except tomllib.TOMLDecodeError:
            continue
    return start + 1


def set_key(text: str, dotted: list[str], value: Any) -> str:
    """Return ``text`` with ``dotted`` (table path + key) set to ``value``."""
    table, key = dotted[:-1], dotted[-1]
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    new_line = f"{toml_key(key)} = {toml_value(value)}\n"
    key_re = re.compile(rf"^\s*{re.escape(toml_key(key))}\s*=")
    current: list[str] = []
    table_start = 0 if not table else None
    table_end = None
    for index, line in enumerate(lines):
        header = _header_path(line)
        if header is not None:
            if current == table and table_start is not None and table_end is None:
                table_end = index
            current = header
            if header == table:
                table_start, table_end = index + 1, None
            continue
        if current == table and key_re.match(line):
            end = _value_end(lines, index)
            result = "".join(lines[:index] + [new_line] + lines[end:])
            return _verified(result, dotted, value)
    if table_start is None:
        prefix = "".join(lines)
        sep = "\n" if prefix and not prefix.endswith("\n\n") else ""
        header = "[" + ".".join(toml_key(p) for p in table) + "]\n"
        return _verified(prefix + sep + header + new_line, dotted, value)
    insert_at = table_end if table_end is not None else len(lines)
    if not table:  # top-level key: before the first table header
        insert_at = next((i for i, ln in enumerate(lines) if _header_path(ln) is not None),
                         len(lines))
    while insert_at > table_start and not lines[insert_at - 1].strip():
        insert_at -= 1  # keep blank lines between tables below the new key
    result = "".join(lines[:insert_at] + [new_line] + lines[insert_at:])
    return _verified(result, dotted, value)


def _verified(text: str, dotted: list[str], value: Any) -> str:
    try:
        node: Any = tomllib.loads(text)
        for part in dotted:
            node = node[part]
    except (tomllib.TOMLDecodeError, KeyError, TypeError):
        node = object()
    if node != value:
        raise ConfigError(f"could not set {'.'.join(dotted)} without breaking the file's layout",
                          "edit the file by hand (see `codetether config --path`)")
    return text
