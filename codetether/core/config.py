"""Configuration: built-in defaults, then the user file, then a *trusted* project file, then
``CODETETHER_*`` env vars; later layers win key by key.

Why the trust step: a repository's ``.codetether/config.toml`` could point a provider's
``base_url`` at a server that collects keys, so it is applied only after the user ran
``codetether config project trust`` for that directory.

Validation: an unknown key is a warning (a typo should not stop work), a wrong type is an error
(the program would misbehave), and a TOML syntax error names the file, line and column.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codetether.core import paths
from codetether.core.errors import ConfigError
from codetether.core.fsutil import atomic_write_text

ACTIONS = ("allow", "ask", "deny")
THEMES = ("marketing", "dark", "light", "solarized-dark", "solarized-light")
WIRES = ("openai_chat", "anthropic", "bedrock")


@dataclass(frozen=True)
class KeySpec:
    """Type of one config key: a Python type, or allowed string values, or a free-form table."""

    kind: type | tuple[type, ...]
    choices: tuple[str, ...] = ()
    help: str = ""

    def check(self, dotted: str, value: Any) -> None:
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        ok = isinstance(value, kinds) and not (bool not in kinds and isinstance(value, bool))
        if not ok:
            names = " or ".join(_type_name(k) for k in kinds)
            raise ConfigError(f"config key {dotted} must be {names}, not {_type_name(type(value))} "
                              f"({value!r})", f"fix it with `codetether config --set {dotted}=...`")
        if self.choices and value not in self.choices:
            raise ConfigError(f"config key {dotted} is {value!r}, which is not one of "
                              f"{', '.join(self.choices)}", "pick one of those values")


def _type_name(kind: type) -> str:
    return {str: "a string", bool: "true/false", int: "an integer", float: "a number",
            dict: "a table", list: "a list"}.get(kind, kind.__name__)


# section -> key -> spec. "*" in a section means "any key, this spec" (tables keyed by name).
SCHEMA: dict[str, dict[str, KeySpec]] = {
    "default": {
        "provider": KeySpec(str, help="provider used when a model has no provider/ prefix"),
        "model": KeySpec(str, help="provider/model used when -m is not given"),
        "agent": KeySpec(str, ("build", "plan", "explore"), help="agent profile"),
    },
    "ui": {"theme": KeySpec(str, THEMES, help="TUI colour theme")},
    "session": {
        "auto_save": KeySpec(bool, help="save sessions after every step"),
        "max_steps": KeySpec(int, help="tool-loop steps per prompt"),
        "context_window": KeySpec(int, help="override the model's context window (tokens)"),
    },
    "web": {"search_url": KeySpec(str, help="websearch endpoint (DuckDuckGo HTML by default)")},
    "permissions": {
        "access_mode": KeySpec(str, ("ask", "approve", "full"), help="default access mode"),
        "*": KeySpec((str, dict), help="allow/ask/deny for a tool, or a table of patterns"),
    },
    "lsp": {"servers": KeySpec(dict), "linters": KeySpec(dict)},
    "mcp": {"servers": KeySpec(dict)},
}

PROVIDER_KEYS: dict[str, KeySpec] = {
    "base_url": KeySpec(str, help="endpoint, overrides the built-in one"),
    "headers": KeySpec(dict, help="extra HTTP headers"),
    "timeout": KeySpec((int, float), help="seconds to wait between two reads of a response"),
    "max_retries": KeySpec(int, help="retries on 429/5xx/connection errors"),
    "wire": KeySpec(str, WIRES, help="wire format of a custom provider"),
    "default_model": KeySpec(str, help="model used when only the provider is named"),
}

DEFAULTS: dict[str, Any] = {
    "default": {"agent": "build"},
    "ui": {"theme": "marketing"},
    "session": {"auto_save": True, "max_steps": 50},
    "permissions": {"access_mode": "ask"},
}

# Env vars that map onto keys: CODETETHER_<SECTION>_<KEY> for the scalar keys above.
ENV_PREFIX = "CODETETHER_"


def env_var_for(section: str, key: str) -> str:
    return f"{ENV_PREFIX}{section.upper()}_{key.upper()}"


@dataclass
class Config:
    """The merged configuration and where it came from."""

    data: dict[str, Any]
    sources: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    ignored_project_file: Path | None = None

    def get(self, dotted: str, default: Any = None) -> Any:
        node: Any = self.data
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def provider_settings(self, provider_id: str) -> dict[str, Any]:
        value = self.get("providers", {}).get(provider_id, {})
        return value if isinstance(value, dict) else {}


# ---- reading -------------------------------------------------------------------------------

_TOML_POS = re.compile(r"^(?P<msg>.*?)\s*\(at line (?P<line>\d+), column (?P<col>\d+)\)$")


def read_toml(path: Path) -> dict[str, Any]:
    """Parse one TOML file; a syntax error names the file, line and column."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path} ({exc})",
                          "check the file's permissions and encoding (UTF-8)") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = _TOML_POS.match(str(exc))
        if match:
            what = f"line {match['line']}, column {match['col']}: {match['msg']}"
        else:  # e.g. "(at end of document)": point at the last line
            what = f"line {text.count(chr(10)) + 1}: {exc}"
        raise ConfigError(f"invalid TOML in {path} at {what}",
                          "fix the file, or move it aside and run `codetether config --init`"
                          ) from None


def validate(data: dict[str, Any], origin: str) -> list[str]:
    """Raise on a wrong type; return warnings for unknown keys."""
    warnings: list[str] = []
    for section, value in data.items():
        if section == "providers":
            warnings += _validate_providers(value, origin)
            continue
        spec = SCHEMA.get(section)
        if spec is None:
            warnings.append(f"{origin}: unknown section [{section}] (ignored)")
            continue
        if not isinstance(value, dict):
            raise ConfigError(f"{origin}: [{section}] must be a table", f"write it as [{section}]")
        for key, item in value.items():
            key_spec = spec.get(key) or spec.get("*")
            if key_spec is None:
                warnings.append(f"{origin}: unknown key {section}.{key} (ignored)")
                continue
            key_spec.check(f"{section}.{key}", item)
            if section == "permissions" and key != "access_mode":
                check_permission_rule(f"{section}.{key}", item)
    return warnings


def _validate_providers(value: Any, origin: str) -> list[str]:
    if not isinstance(value, dict):
        raise ConfigError(f"{origin}: [providers] must be a table of [providers.<id>] tables",
                          "write e.g. [providers.openai] base_url = \"...\"")
    warnings = []
    for provider_id, settings in value.items():
        if not isinstance(settings, dict):
            raise ConfigError(f"{origin}: providers.{provider_id} must be a table",
                              f"write it as [providers.{provider_id}]")
        for key, item in settings.items():
            spec = PROVIDER_KEYS.get(key)
            if spec is None:
                warnings.append(f"{origin}: unknown key providers.{provider_id}.{key} (ignored)")
                continue
            spec.check(f"providers.{provider_id}.{key}", item)
    return warnings


def check_permission_rule(dotted: str, value: Any) -> None:
    rules = value if isinstance(value, dict) else {"": value}
    for pattern, action in rules.items():
        if action not in ACTIONS:
            name = f"{dotted}.{pattern}" if pattern else dotted
            raise ConfigError(f"config key {name} is {action!r}, not one of allow, ask, deny",
                              "use allow, ask or deny")


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Deep merge: tables merge key by key, anything else is replaced."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def env_layer(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """``CODETETHER_<SECTION>_<KEY>`` values, typed by the schema."""
    environ = os.environ if environ is None else environ
    layer: dict[str, Any] = {}
    for section, keys in SCHEMA.items():
        for key, spec in keys.items():
            if key == "*" or spec.kind is dict:
                continue
            raw = environ.get(env_var_for(section, key))
            if raw is None:
                continue
            value = _coerce_env(raw, spec, env_var_for(section, key))
            spec.check(env_var_for(section, key), value)
            layer.setdefault(section, {})[key] = value
    return layer


def _coerce_env(raw: str, spec: KeySpec, name: str) -> Any:
    kinds = spec.kind if isinstance(spec.kind, tuple) else (spec.kind,)
    if bool in kinds:
        low = raw.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{name}={raw!r} is not a boolean", "use 1/0, true/false or yes/no")
    if int in kinds:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not an integer", "use a whole number") from None
    return raw


def load_config(workspace: Path | None = None, *, warn: bool = True) -> Config:
    """Merge every layer for ``workspace`` (default: the current directory)."""
    workspace = (workspace or Path.cwd()).resolve()
    data = json.loads(json.dumps(DEFAULTS))
    cfg = Config(data, sources=["defaults"])
    user_path = paths.user_config_path()
    user = read_toml(user_path)
    if user:
        cfg.warnings += validate(user, str(user_path))
        cfg.data = merge(cfg.data, user)
        cfg.sources.append(str(user_path))
    project_path = paths.project_config_path(workspace)
    if project_path.is_file():
        if is_trusted(workspace):
            project = read_toml(project_path)
            cfg.warnings += validate(project, str(project_path))
            cfg.data = merge(cfg.data, project)
            cfg.sources.append(str(project_path))
        else:
            cfg.ignored_project_file = project_path
    env = env_layer()
    if env:
        cfg.data = merge(cfg.data, env)
        cfg.sources.append("environment")
    if warn:
        for line in cfg.warnings:
            print(f"warning: {line}", file=sys.stderr)
    return cfg


# ---- project trust -------------------------------------------------------------------------

def _trust_file() -> Path:
    return paths.data_dir() / "trusted_projects.json"


def _read_trust() -> dict[str, Any]:
    try:
        data = json.loads(_trust_file().read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        raise ConfigError(f"cannot read {_trust_file()}",
                          "delete it and trust your projects again") from None
    return data if isinstance(data, dict) else {}


def is_trusted(workspace: Path) -> bool:
    return str(workspace.resolve()) in _read_trust()


def set_trusted(workspace: Path, trusted: bool) -> None:
    data = _read_trust()
    key = str(workspace.resolve())
    if trusted:
        data[key] = {"trusted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    else:
        data.pop(key, None)
    paths.ensure_private_dir(_trust_file().parent)
    atomic_write_text(_trust_file(), json.dumps(data, indent=2) + "\n", mode=0o600)
