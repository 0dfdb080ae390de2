"""A release mirror for installer tests: a real HTTP server on 127.0.0.1 serving a directory of
artifacts plus their SHA256SUMS, recording every path requested (to prove cache hits)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from pathlib import Path


def fake_artifact(version: str) -> str:
    """A stand-in for the real binary: a tiny sh script that answers like codetether does."""
    return f"""#!/bin/sh
if [ "$1" = "--version" ]; then echo "codetether {version}"; exit 0; fi
if [ "$1" = "exit" ]; then exit "$2"; fi
printf 'fake-codetether {version}'
for a in "$@"; do printf ' [%s]' "$a"; done
echo
"""


def write_sums(directory: Path, corrupt: str | None = None) -> None:
    """SHA256SUMS for every codetether-* file; ``corrupt`` names one to list a wrong hash for."""
    lines = []
    for path in sorted(directory.glob("codetether-*")):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if path.name == corrupt:
            digest = hashlib.sha256(b"something else").hexdigest()
        lines.append(f"{digest}  {path.name}\n")
    (directory / "SHA256SUMS").write_text("".join(lines))


class ReleaseServer:
    """``with ReleaseServer(dir) as srv: srv.url``; ``srv.requests`` lists the paths asked for."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.requests: list[str] = []
        handler = functools.partial(_Handler, self, directory=str(directory))
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> ReleaseServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)


class _Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, server_state: ReleaseServer, *args, **kwargs):
        self._state = server_state
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        self._state.requests.append(self.path)
        super().do_GET()

    def log_message(self, format: str, *args) -> None:  # keep test output clean
        pass
