"""Push notifications: POST task events to the webhooks clients registered.

Delivery is at-least-once: each notification is retried with exponential backoff (bounded tries)
until the receiver answers 2xx, on one background thread so a slow webhook never delays the
task that produced the event; notifications leave in the order the task produced them.

A webhook is a request the server makes on a client's behalf, so URLs that resolve to loopback,
private, link-local or otherwise internal addresses are refused (SSRF) unless the operator
allows them (``--allow-private-webhooks``); redirects are not followed for the same reason.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import queue
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("codetether.a2a.push")

V1_CONTENT_TYPE = "application/a2a+json"


@dataclass
class _Job:
    config: dict[str, Any]
    body: bytes
    content_type: str
    attempt: int = 0


@dataclass
class PushStats:
    delivered: int = 0
    failed: int = 0
    retried: int = 0
    refused: int = 0
    last_error: str = ""
    by_url: dict[str, int] = field(default_factory=dict)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102
        return None


class PushSender:
    """Queue and deliver webhook POSTs; ``deliver`` never blocks on the network."""

    def __init__(self, allow_private: bool = False, timeout: float = 10.0, retries: int = 4,
                 backoff: float = 0.5, max_backoff: float = 10.0, max_queue: int = 10_000
                 ) -> None:
        self.allow_private = allow_private
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.stats = PushStats()
        self._queue: queue.Queue[_Job | None] = queue.Queue(max_queue)
        self._stop = threading.Event()
        self._idle = threading.Condition()
        self._pending = 0
        self._opener = urllib.request.build_opener(_NoRedirect())
        self._thread = threading.Thread(target=self._work, name="a2a-push", daemon=True)
        self._thread.start()

    # -- checking ----------------------------------------------------------------------------
    def check_url(self, url: str) -> str | None:
        """Why this webhook URL is refused, or None when it is acceptable."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return f"push notification url {url!r} must be an absolute http(s) URL"
        if self.allow_private:
            return None
        try:
            infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            return f"push notification url {url!r}: cannot resolve host {parts.hostname!r}"
        for info in infos:
            address = ipaddress.ip_address(info[4][0].split("%")[0])
            if _internal(address):
                return (f"push notification url {url!r} points at {address}, a private or "
                        "loopback address; the server refuses those unless started with "
                        "--allow-private-webhooks")
        return None

    # -- delivering --------------------------------------------------------------------------
    def deliver(self, configs: list[dict[str, Any]], event: dict[str, Any],
                task: dict[str, Any]) -> None:
        """Queue one notification per config: v1.0 configs get the StreamResponse, configs
        registered over v0.3 get the Task (as v0.3 senders do)."""
        for config in configs:
            if config.get("_dialect") == "0.3":
                from codetether.a2a import dialects

                body = json.dumps(dialects.to_v03_task(task)).encode("utf-8")
                content_type = "application/json"
            else:
                body = json.dumps(event).encode("utf-8")
                content_type = V1_CONTENT_TYPE
            with self._idle:
                self._pending += 1
            try:
                self._queue.put_nowait(_Job(config, body, content_type))
            except queue.Full:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()
                self.stats.failed += 1
                log.warning("push queue full; dropped a notification for %s", config.get("url"))

    def _work(self) -> None:
        while not self._stop.is_set():
            job = self._queue.get()
            if job is None:
                return
            try:
                self._attempt(job)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _attempt(self, job: _Job) -> None:
        url = job.config["url"]
        problem = self.check_url(url)  # again: DNS may have changed since the config was made
        if problem:
            self.stats.refused += 1
            log.warning("push refused: %s", problem)
            return
        delay = self.backoff
        while True:
            error = self._post(url, job)
            if error is None:
                self.stats.delivered += 1
                self.stats.by_url[url] = self.stats.by_url.get(url, 0) + 1
                return
            job.attempt += 1
            self.stats.last_error = error
            if job.attempt > self.retries or self._stop.is_set():
                self.stats.failed += 1
                log.warning("push to %s failed after %d tries: %s", url, job.attempt, error)
                return
            self.stats.retried += 1
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, self.max_backoff)

    def _post(self, url: str, job: _Job) -> str | None:
        headers = {"Content-Type": job.content_type, "User-Agent": "codetether-a2a-push"}
        auth = job.config.get("authentication")
        if isinstance(auth, dict) and auth.get("credentials"):
            scheme = auth.get("scheme") or "Bearer"
            headers["Authorization"] = f"{scheme} {auth['credentials']}"
        if job.config.get("token"):
            headers["X-A2A-Notification-Token"] = str(job.config["token"])
        request = urllib.request.Request(url, data=job.body, headers=headers, method="POST")
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                response.read()
                if 200 <= response.status < 300:
                    return None
                return f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code}"
        except (OSError, ValueError) as exc:
            return f"{type(exc).__name__}: {exc}"

    # -- lifecycle ---------------------------------------------------------------------------
    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every queued notification was delivered or given up (tests, shutdown)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float = 2.0) -> None:
        self.wait_idle(timeout)
        self._stop.set()
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass
        self._thread.join(timeout)


def _internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (address.is_private or address.is_loopback or address.is_link_local
            or address.is_reserved or address.is_multicast or address.is_unspecified)
