"""External MCP servers as configured in ``[mcp.servers.<name>]`` of the user's config file.

    [mcp.servers.time]                      [mcp.servers.docs]
    command = "uvx"                         url = "https://example.com/mcp"
    args = ["mcp-server-time"]              headers = { Authorization = "Bearer ..." }
    env = { TZ = "UTC" }                    timeout = 30

A server is stdio (``command``) or streamable HTTP (``url``). Problems with an entry are
``McpConfigError``s (fix the config); problems reaching a server are ``McpConnectionError``s
(``codetether.mcp.client``) — the two are told apart in every message.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from codetether.core import paths
from codetether.core.errors import ConfigError, UsageError
from codetether.core.fsutil import atomic_write_text

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
DEFAULT_TIMEOUT = 60.0
KNOWN_KEYS = {"command", "args", "env", "cwd", "url", "headers", "timeout", "enabled", "type"}


class McpConfigError(ConfigError):
    """A server entry that cannot work as written (no command, bad URL, wrong types)."""


@dataclass
class ServerSpec:
    name: str
    type: str  # "stdio" | "http"
    command: str = ""
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT
    enabled: bool = True

    def target(self) -> str:
        """How the server is shown: its command line or URL (never header or env values)."""
        if self.type == "http":
            return self.url
        return " ".join([self.command, *self.args])

    def fingerprint(self) -> str:
        """Changes whenever anything that could change the server's tools changes."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]

    def to_table(self) -> dict[str, Any]:
        """The TOML table that ``parse_server`` reads back as this spec."""
        table: dict[str, Any] = {}
        if self.type == "http":
            table["url"] = self.url
            if self.headers:
                table["headers"] = dict(self.headers)
        else:
            table["command"] = self.command
            table["args"] = list(self.args)
            if self.env:
                table["env"] = dict(self.env)
            if self.cwd:
                table["cwd"] = self.cwd
        if self.timeout != DEFAULT_TIMEOUT:
            table["timeout"] = self.timeout
        if not self.enabled:
            table["enabled"] = False
        return table


def check_name(name: str) -> str:
    if not NAME_RE.match(name or ""):
        raise UsageError(f"invalid MCP server name {name!r}",
                         "use up to 32 letters, digits, '-' or '_', starting with a letter or "
                         "digit")
    return name


def parse_server(name: str, table: Any) -> ServerSpec:
    """One ``[mcp.servers.<name>]`` table as a spec; ``McpConfigError`` says what is wrong."""
    where = f"mcp server '{name}' (config [mcp.servers.{name}])"
    if not isinstance(table, dict):
        raise McpConfigError(f"{where} must be a table", "write it as [mcp.servers.NAME]")
    command, url = table.get("command"), table.get("url")
    if bool(command) == bool(url):
        raise McpConfigError(f"{where} needs exactly one of command or url",
                             "run `codetether mcp remove NAME` and add it again")
    timeout = table.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise McpConfigError(f"{where}: timeout must be a positive number of seconds")
    enabled = table.get("enabled", True)
    if not isinstance(enabled, bool):
        raise McpConfigError(f"{where}: enabled must be true or false")
    if url:
        if not isinstance(url, str) or not re.match(r"^https?://[^/\s]+", url):
            raise McpConfigError(f"{where}: url {url!r} is not an http(s) URL",
                                 "use e.g. http://127.0.0.1:3001/mcp")
        headers = _str_table(table.get("headers", {}), f"{where}: headers")
        return ServerSpec(name, "http", url=url, headers=headers, timeout=float(timeout),
                          enabled=enabled)
    if not isinstance(command, str):
        raise McpConfigError(f"{where}: command must be a string")
    args = table.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise McpConfigError(f"{where}: args must be a list of strings")
    cwd = table.get("cwd")
    if cwd is not None and not isinstance(cwd, str):
        raise McpConfigError(f"{where}: cwd must be a string")
    env = _str_table(table.get("env", {}), f"{where}: env")
    return ServerSpec(name, "stdio", command=command, args=list(args), env=env, cwd=cwd,
                      timeout=float(timeout), enabled=enabled)


def _str_table(value: Any, what: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              for k, v in value.items()):
        raise McpConfigError(f"{what} must be a table of strings", 'write e.g. { KEY = "value" }')
    return dict(value)


def load_servers(cfg: Any) -> tuple[dict[str, ServerSpec], dict[str, str]]:
    """Every configured server: (valid specs by name, config error text by name)."""
    raw = cfg.get("mcp.servers") or {}
    specs: dict[str, ServerSpec] = {}
    errors: dict[str, str] = {}
    if not isinstance(raw, dict):
        return specs, {"*": "[mcp] servers must be a table of [mcp.servers.NAME] tables"}
    for name, table in raw.items():
        try:
            specs[name] = parse_server(name, table)
        except McpConfigError as exc:
            errors[name] = exc.one_line()
    return specs, errors


# ---- editing the user's config file ----------------------------------------------------------

def add_server(spec: ServerSpec, path: Path | None = None) -> Path:
    """Write ``[mcp.servers.<name>]`` into the user config, keeping everything else as it was."""
    from codetether.core.toml_edit import set_key

    path = path or paths.user_config_path()
    text = _read(path)
    if spec.name in (_parse(text, path).get("mcp", {}).get("servers") or {}):
        raise UsageError(f"an MCP server named '{spec.name}' already exists in {path}",
                         f"remove it first: codetether mcp remove {spec.name}")
    for key, value in spec.to_table().items():
        text = set_key(text, ["mcp", "servers", spec.name, key], value)
    _write(path, text)
    return path


def remove_server(name: str, path: Path | None = None) -> Path:
    """Delete the server's table (or inline entry) from the user config."""
    path = path or paths.user_config_path()
    text = _read(path)
    if name not in (_parse(text, path).get("mcp", {}).get("servers") or {}):
        raise UsageError(f"no MCP server named '{name}' in {path}",
                         "see the configured ones with `codetether mcp list`")
    edited = _remove_tables(text, ["mcp", "servers", name])
    edited = _remove_inline(edited, ["mcp", "servers"], name)
    if name in (_parse(edited, path).get("mcp", {}).get("servers") or {}):
        raise ConfigError(f"could not remove mcp server '{name}' from {path} automatically",
                          "delete its entry by hand (see `codetether config --path`)")
    _write(path, edited)
    return path


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", "check its permissions") from None


def _parse(text: str, path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc})", "fix the file first") from None


def _write(path: Path, text: str) -> None:
    paths.ensure_private_dir(path.parent)
    atomic_write_text(path, text, mode=0o600)


def _remove_tables(text: str, table: list[str]) -> str:
    """Drop ``[a.b.name]`` and its sub-tables with their keys, up to the next other header."""
    from codetether.core.toml_edit import _header_path

    out: list[str] = []
    skipping = False
    for line in text.splitlines(keepends=True):
        header = _header_path(line)
        if header is not None:
            skipping = header[:len(table)] == table
        if not skipping:
            out.append(line)
    return "".join(out)


def _remove_inline(text: str, table: list[str], key: str) -> str:
    """Drop ``key = {...}`` written inline inside ``[a.b]``."""
    from codetether.core.toml_edit import _header_path, _value_end, toml_key

    lines = text.splitlines(keepends=True)
    key_re = re.compile(rf"^\s*{re.escape(toml_key(key))}\s*=")
    current: list[str] = []
    for index, line in enumerate(lines):
        header = _header_path(line)
        if header is not None:
            current = header
        elif current == table and key_re.match(line):
            return "".join(lines[:index] + lines[_value_end(lines, index):])
    return text
