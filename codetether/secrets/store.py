"""The local credential store: one JSON file, mode 0600, written by `codetether auth login`.

Shape: ``{"version": 1, "providers": {"openai": {"api_key": "...", "base_url": "..."}}}``.
Like ssh with a private key, a store that other users can read is refused rather than used:
the key may already have leaked, and the user should know. A store that is not valid JSON is
never overwritten: it may hold the only copy of someone's keys.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from codetether.core import paths
from codetether.core.errors import SecretsError
from codetether.core.fsutil import atomic_write_text

FILE_NAME = "credentials.json"
FORMAT_VERSION = 1


def default_path() -> Path:
    return paths.data_dir() / FILE_NAME


class CredentialStore:
    """``get`` / ``set`` / ``delete`` / ``providers`` over the 0600 store file."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()

    # -- reading -------------------------------------------------------------------------------
    def get(self, provider: str) -> dict[str, Any] | None:
        """A copy of the provider's fields, or None when the store has none for it."""
        record = self._load().get(provider)
        return dict(record) if isinstance(record, dict) and record else None

    def providers(self) -> list[str]:
        return sorted(name for name, record in self._load().items() if record)

    # -- writing -------------------------------------------------------------------------------
    def set(self, provider: str, fields: dict[str, Any]) -> None:
        """Replace the provider's record with ``fields`` (empty values dropped)."""
        _check_provider_id(provider)
        record = _clean_fields(provider, fields)
        if not record:
            raise SecretsError(f"nothing to save for {provider}",
                               "give at least an api_key")
        with self._locked():
            data = self._load()
            data[provider] = record
            self._save(data)

    def delete(self, provider: str) -> bool:
        """Remove the provider; False when it was not there (the file is then left untouched)."""
        with self._locked():
            data = self._load()
            if provider not in data:
                return False
            del data[provider]
            self._save(data)
            return True

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise read-modify-write across processes, so two logins never lose one."""
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; writes stay atomic
            yield
            return
        paths.ensure_private_dir(self.path.parent)
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # -- the file ------------------------------------------------------------------------------
    def _load(self) -> dict[str, Any]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise SecretsError(f"cannot read credential store {self.path} "
                               f"({exc.strerror or exc.__class__.__name__})",
                               "check the file's permissions") from None
        self._check_mode(st)
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SecretsError(f"cannot read credential store {self.path} "
                               f"({exc.__class__.__name__})", "check the file") from None
        return self._parse(text)

    def _check_mode(self, st: os.stat_result) -> None:
        """Refuse a store others can read or write, as ssh refuses such a private key."""
        if os.name == "nt":
            return
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            raise SecretsError(
                f"credential store {self.path} is accessible by other users "
                f"(mode {mode:04o}), so it was not used",
                f"run `chmod 600 {self.path}`, and replace the keys in it if others may have "
                "read them")

    def _parse(self, text: str) -> dict[str, Any]:
        fix = ("fix the JSON or move the file away and run `codetether auth login` again "
               "(it is never overwritten while broken)")
        if not text.strip():
            return {}
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SecretsError(f"credential store {self.path} is not valid JSON "
                               f"(line {exc.lineno}, column {exc.colno})", fix) from None
        if data == {}:
            return {}
        providers = data.get("providers") if isinstance(data, dict) else None
        if not isinstance(providers, dict) or not all(
                isinstance(v, dict) for v in providers.values()):
            raise SecretsError(f"credential store {self.path} does not have the expected shape "
                               '({"version": 1, "providers": {"<id>": {...}}})', fix)
        return dict(providers)

    def _save(self, providers: dict[str, Any]) -> None:
        paths.ensure_private_dir(self.path.parent)
        body = {"version": FORMAT_VERSION, "providers": dict(sorted(providers.items()))}
        atomic_write_text(self.path, json.dumps(body, indent=2) + "\n", mode=0o600)


def _check_provider_id(provider: str) -> None:
    if not provider or provider != provider.strip() or "/" in provider or len(provider) > 100:
        raise SecretsError(f"'{provider}' is not a provider id",
                           "use an id from `codetether auth list`, e.g. openai")


def _clean_fields(provider: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Strings stay strings, ``headers`` must be a str->str dict; empty values are dropped."""
    record: dict[str, Any] = {}
    for name, value in fields.items():
        if value is None or value == "" or value == {}:
            continue
        if name == "headers":
            if not isinstance(value, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
                raise SecretsError(f"headers for {provider} must map names to strings",
                                   'e.g. {"X-Org": "acme"}')
            record[name] = dict(value)
        elif isinstance(value, str):
            record[name] = value
        else:
            raise SecretsError(f"field '{name}' for {provider} must be a string",
                               "store numbers and flags as text")
    return record
