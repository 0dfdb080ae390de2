"""Run the real ``codetether`` CLI in a subprocess, with the test's isolated environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, input: str | None = None, cwd: Path | None = None,
            env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    if env:
        full_env.update(env)
    return subprocess.run([sys.executable, "-m", "codetether", *args], input=input,
                          capture_output=True, text=True, cwd=cwd, env=full_env,
                          timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)
