"""Where CodeTether keeps its files; every location can be moved by an env var (tests do)."""

from __future__ import annotations

import os
from pathlib import Path

CONFIG_DIR_NAME = "codetether-agent"
DATA_DIR_NAME = "codetether"


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / CONFIG_DIR_NAME


def user_config_path() -> Path:
    """`CODETETHER_CONFIG`, else `~/.config/codetether-agent/config.toml`."""
    explicit = os.environ.get("CODETETHER_CONFIG")
    return Path(explicit).expanduser() if explicit else config_dir() / "config.toml"


def data_dir() -> Path:
    """`CODETETHER_DATA_DIR`, else `$XDG_DATA_HOME/codetether` (sessions, credentials, caches)."""
    explicit = os.environ.get("CODETETHER_DATA_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / DATA_DIR_NAME


def project_config_path(workspace: Path) -> Path:
    return workspace / ".codetether" / "config.toml"


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) readable by the owner only; data dirs hold secrets."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path
