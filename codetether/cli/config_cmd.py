"""``codetether config``: show, initialise and change the configuration; trust projects."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from codetether.core import config as cfgmod
from codetether.core import paths
from codetether.core.errors import ConfigError, UsageError
from codetether.core.fsutil import atomic_write_text
from codetether.core.toml_edit import parse_cli_value, set_key, toml_key, toml_value

STARTER = """\
# CodeTether configuration. Keys are never stored here: use Vault,
# `codetether auth login <provider>`, or the provider's env var.

[default]
# provider = "anthropic"
# model = "anthropic/claude-sonnet-4-20250514"
agent = "build"

[ui]
theme = "marketing"  # marketing, dark, light, solarized-dark, solarized-light

[session]
auto_save = true

[permissions]
access_mode = "ask"  # ask (read-only), approve (workspace writes), full
# bash = { "git status*" = "allow", "rm -rf*" = "deny" }

# [providers.local]
# base_url = "http://127.0.0.1:11434/v1"   # Ollama, llama.cpp, vLLM, LM Studio
# timeout = 300

[lsp]
[lsp.linters]
ruff = { enabled = true }
"""

_SECRET_HEADER_WORDS = ("authorization", "key", "token", "secret", "cookie")


def run(args: argparse.Namespace) -> int:
    if args.config_action == "project":
        return _project(args)
    if args.init:
        return _init(args.force)
    if args.set:
        return _set(args.set, args.json)
    if args.path:
        print(paths.user_config_path())
        return 0
    return _show(args.json)


def _show(as_json: bool) -> int:
    cfg = cfgmod.load_config()
    data = _mask_headers(cfg.data)
    if as_json:
        out: dict[str, Any] = {"config": data, "sources": cfg.sources, "warnings": cfg.warnings,
                               "path": str(paths.user_config_path())}
        if cfg.ignored_project_file:
            out["ignored_project_file"] = str(cfg.ignored_project_file)
        print(json.dumps(out, indent=2))
        return 0
    print(f"# sources: {', '.join(cfg.sources)}")
    if cfg.ignored_project_file:
        print(f"# ignored (untrusted): {cfg.ignored_project_file} "
              "- run `codetether config project trust`")
    print(_render(data), end="")
    return 0


def _render(data: dict[str, Any], prefix: tuple[str, ...] = ()) -> str:
    """The merged config as TOML: scalars first, then one [table] per nested table."""
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    out = []
    if prefix and (scalars or not tables):
        out.append("\n[" + ".".join(toml_key(p) for p in prefix) + "]\n")
    out += [f"{toml_key(k)} = {toml_value(v)}\n" for k, v in scalars.items()]
    for key, value in tables.items():
        out.append(_render(value, prefix + (key,)))
    return "".join(out)


def _mask_headers(data: dict[str, Any]) -> dict[str, Any]:
    """Header values that look like credentials are shown as ``[hidden]``."""
    providers = data.get("providers")
    if not isinstance(providers, dict):
        return data
    masked = dict(data)
    masked["providers"] = {}
    for pid, settings in providers.items():
        settings = dict(settings)
        headers = settings.get("headers")
        if isinstance(headers, dict):
            settings["headers"] = {
                k: "[hidden]" if any(w in k.lower() for w in _SECRET_HEADER_WORDS) else v
                for k, v in headers.items()}
        masked["providers"][pid] = settings
    return masked


def _init(force: bool) -> int:
    path = paths.user_config_path()
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists", "use --set to change keys, or --init --force")
    atomic_write_text(path, STARTER)
    print(f"wrote {path}", file=sys.stderr)
    return 0


def _set(assignments: list[str], as_json: bool) -> int:
    path = paths.user_config_path()
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    cfgmod.read_toml(path)  # a broken file is reported, never edited
    changed = {}
    for assignment in assignments:
        dotted, value = _parse_assignment(assignment)
        value, warning = _check_key(dotted, value)
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
        text = set_key(text, dotted, value)
        changed[".".join(dotted)] = value
    atomic_write_text(path, text)
    if as_json:
        print(json.dumps({"path": str(path), "set": changed}))
    else:
        for key, value in changed.items():
            print(f"{key} = {toml_value(value)}", file=sys.stderr)
    return 0


def _parse_assignment(assignment: str) -> tuple[list[str], Any]:
    key, sep, raw = assignment.partition("=")
    dotted = [p.strip() for p in key.strip().split(".")]
    if not sep or len(dotted) < 2 or not all(dotted):
        raise UsageError(f"--set expects SECTION.KEY=VALUE, got {assignment!r}",
                         "e.g. --set default.model=openai/gpt-4o")
    return dotted, parse_cli_value(raw.strip())


def _check_key(dotted: list[str], value: Any) -> tuple[Any, str | None]:
    """Validate one key like the loader would: the value to store, and a warning if the key is
    unknown (stored anyway: it may belong to a newer version)."""
    section = dotted[0]
    if section == "providers":
        if len(dotted) != 3:
            raise UsageError("provider keys are providers.<id>.<key>",
                             "e.g. --set providers.local.base_url=http://127.0.0.1:11434/v1")
        spec = cfgmod.PROVIDER_KEYS.get(dotted[2])
        if spec is None:
            return value, f"unknown key {'.'.join(dotted)}"
        value = _coerce_for(spec, value)
        spec.check(".".join(dotted), value)
        return value, None
    sub = cfgmod.SCHEMA.get(section)
    if sub is None:
        return value, f"unknown section [{section}]"
    spec = sub.get(dotted[1]) or sub.get("*")
    if spec is None or len(dotted) > 2 and spec.kind is not dict:
        return value, f"unknown key {'.'.join(dotted)}"
    if len(dotted) == 2:
        value = _coerce_for(spec, value)
        spec.check(".".join(dotted), value)
        if section == "permissions" and dotted[1] != "access_mode":
            cfgmod.check_permission_rule(".".join(dotted), value)
    return value, None


def _coerce_for(spec: cfgmod.KeySpec, value: Any) -> Any:
    # `--set default.model=4` parses as an int; a string key still means the string "4".
    kinds = spec.kind if isinstance(spec.kind, tuple) else (spec.kind,)
    if str in kinds and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


def _project(args: argparse.Namespace) -> int:
    directory = Path(args.directory).resolve()
    if not directory.is_dir():
        raise UsageError(f"{directory} is not a directory", "pass a project directory")
    project_file = paths.project_config_path(directory)
    if args.project_action == "trust":
        if project_file.exists():
            cfgmod.validate(cfgmod.read_toml(project_file), str(project_file))
        cfgmod.set_trusted(directory, True)
    elif args.project_action == "untrust":
        cfgmod.set_trusted(directory, False)
    trusted = cfgmod.is_trusted(directory)
    if args.json:
        print(json.dumps({"project": str(directory), "trusted": trusted,
                          "config_file": str(project_file), "exists": project_file.exists()}))
    else:
        state = "trusted" if trusted else "not trusted"
        print(f"{directory}: {state} ({project_file}"
              f"{'' if project_file.exists() else ', not present'})")
    return 0
