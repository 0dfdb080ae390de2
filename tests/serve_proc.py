"""A real ``codetether serve`` / ``spawn`` process for tests: started with the test's isolated
environment, its stderr read on a thread so tests can wait for lines with a bound."""

from __future__ import annotations

import http.client
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import urllib.parse

from tests.cli import ROOT


class ServeProcess:
    """``codetether serve`` (or ``spawn``) in a subprocess; stderr is read on a thread."""

    def __init__(self, *args: str, env: dict[str, str] | None = None,
                 command: tuple[str, ...] = ("serve", "--port", "0", "--backend", "echo"),
                 token: str | None = None) -> None:
        full_env = dict(os.environ)
        full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
        full_env.update(env or {})
        self.token = token or full_env.get("CODETETHER_AUTH_TOKEN")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "codetether", *command, *args], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()
        self.url = self.wait_for(r"listening on (http://\S+)").group(1)
        self.port = urllib.parse.urlsplit(self.url).port

    def _pump(self) -> None:
        for line in self.proc.stderr:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match:
        for line in self.seen:
            if found := re.search(pattern, line):
                return found
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {pattern!r} on stderr; saw {self.seen}") from None
            if line is None:
                raise AssertionError(f"serve exited ({self.proc.wait()}); stderr {self.seen}")
            self.seen.append(line)
            if found := re.search(pattern, line):
                return found

    def stderr(self) -> str:
        while True:
            try:
                line = self.lines.get(timeout=10)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
        return "".join(self.seen)

    def call(self, method: str, path: str, body=None, token: str | None = ""):
        """One request; ``token`` "" means this process's token, None none at all."""
        token = self.token if token == "" else token
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, json.loads(data) if data else None

    def terminate(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
