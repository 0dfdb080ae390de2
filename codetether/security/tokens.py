"""The server's bearer token: auth is mandatory, so there is always one.

``CODETETHER_AUTH_TOKEN`` wins. Otherwise the token lives in ``server-token`` (0600) in the
data dir; the first server to need it generates it and prints it once on stderr, so the user can
copy it. It is never printed or logged again: later starts only say where the file is.

Creation is race-free for several servers sharing a data dir (``spawn`` peers): the token is
written to a temp file and hard-linked into place, which fails if another process got there
first — then that process's token is used.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from pathlib import Path
from typing import TextIO

from codetether.core import paths
from codetether.core.errors import ConfigError

ENV_VAR = "CODETETHER_AUTH_TOKEN"
FILE_NAME = "server-token"
MIN_LENGTH = 16


def token_path() -> Path:
    return paths.data_dir() / FILE_NAME


def server_token(announce: TextIO | None = None) -> str:
    """The token every route but ``/health`` requires (see the module docstring)."""
    from_env = os.environ.get(ENV_VAR, "").strip()
    if from_env:
        if len(from_env) < MIN_LENGTH:
            raise ConfigError(f"{ENV_VAR} is too short ({len(from_env)} characters)",
                              f"use at least {MIN_LENGTH} random characters, or unset it to "
                              "have one generated")
        return from_env
    path = token_path()
    existing = _read(path)
    if existing:
        return existing
    token, created = _create(path)
    if created:
        out = announce if announce is not None else sys.stderr
        print(f"codetether: generated an API token (saved 0600 in {path}; shown only now):\n"
              f"  {token}", file=out, flush=True)
    return token


def _read(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read the server token {path}: {exc.strerror}",
                          f"fix its permissions, or set {ENV_VAR}") from None
    if (path.stat().st_mode & 0o077) != 0:
        os.chmod(path, 0o600)  # written by hand with a loose umask: close it now
    return text or None


def _create(path: Path) -> tuple[str, bool]:
    """(token, True) when we created it; (their token, False) when another process won."""
    paths.ensure_private_dir(path.parent)
    token = secrets.token_urlsafe(32)
    fd, tmp = tempfile.mkstemp(prefix=f".{FILE_NAME}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(token + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            theirs = _read(path)
            if theirs:
                return theirs, False
            os.replace(tmp, path)  # an empty file was there: ours replaces it
            tmp = ""
    finally:
        if tmp:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
    return token, True
