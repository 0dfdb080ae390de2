"""The CLI's contract: fast paths import only the stdlib; errors are one line with an exit code."""

from __future__ import annotations

import re
import subprocess
import sys

from codetether import __version__
from tests.cli import ROOT, run_cli


def _imported_modules(*args: str) -> set[str]:
    """Top-level modules imported by ``python -X importtime <args>``."""
    proc = subprocess.run([sys.executable, "-X", "importtime", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = set()
    for line in proc.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+\d+ \|\s*(\S+)", line)
        if match:
            names.add(match.group(1).split(".")[0])
    return names


def _third_party(names: set[str]) -> set[str]:
    stdlib = set(sys.stdlib_module_names) | {"codetether", "__main__", "_distutils_hack",
                                             "sitecustomize", "usercustomize"}
    return {n for n in names if n not in stdlib and not n.startswith("_")}


def test_version_prints_version():
    proc = run_cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"codetether {__version__}"


def test_version_and_help_import_no_third_party_package():
    # whatever the interpreter loads on its own (a site .pth may import certifi) is not ours
    baseline = _imported_modules("-c", "pass")
    for args in (("--version",), ("--help",)):
        names = _imported_modules("-m", "codetether", *args)
        assert "codetether" in names  # the parse really happened
        assert _third_party(names - baseline) == set(), args


def test_help_lists_commands():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for command in ("run", "models", "auth", "config"):
        assert re.search(rf"^\s+{command}\s", proc.stdout, re.M), command


def test_unknown_command_is_usage_error():
    proc = run_cli("frobnicate")
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_run_without_provider_says_how_to_add_one():
    proc = run_cli("run", "hello")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: no provider configured")
    assert "codetether auth login" in lines[0] and "OPENAI_API_KEY" in lines[0]
    assert proc.stdout == ""


def test_raise_errors_env_keeps_traceback_for_debugging():
    proc = run_cli("run", "hello", env={"CODETETHER_RAISE_ERRORS": "1"})
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr and "MissingCredentialsError" in proc.stderr
