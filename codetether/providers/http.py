"""The HTTP transport every wire format uses: ``http.client`` with retries and cancellation.

Why not ``requests``: streaming needs a socket we can shut from another thread (that is how a
cancel unblocks a read), and the stdlib client costs no import time on the CLI's fast paths.

``HttpClient.send`` retries what is safe to retry — connection failures before any response,
429 and 5xx — honouring ``Retry-After`` and otherwise backing off with full jitter, a bounded
number of times. Anything else, or the last failure, becomes a ``ProviderError``.
"""

from __future__ import annotations

import email.utils
import http.client
import random
import socket
import ssl
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

from codetether.core.cancel import CancelToken
from codetether.providers.errors import CallContext, cancelled, connection_failed, from_status

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 529})


@dataclass
class RetryPolicy:
    max_attempts: int = 4  # first try + 3 retries
    base_delay: float = 0.5
    max_delay: float = 30.0  # cap on one wait, ours or a Retry-After we accept
    connect_timeout: float = 15.0
    read_timeout: float = 300.0  # between two reads of a stream, not the whole response

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff (AWS architecture blog): uniform in [0, base*2^n]."""
        return random.uniform(0, min(self.max_delay, self.base_delay * (2 ** attempt)))


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Response:
    """A response whose body is read lazily; ``close()`` releases the connection."""

    def __init__(self, conn: http.client.HTTPConnection, raw: http.client.HTTPResponse,
                 unregister_cancel) -> None:
        self._conn = conn
        self._raw = raw
        self._unregister = unregister_cancel
        self.status = raw.status
        self.headers = {k.lower(): v for k, v in raw.getheaders()}

    def iter_lines(self) -> Iterator[bytes]:
        """Yield body lines as they arrive (SSE); ends at end of body."""
        while True:
            line = self._raw.readline()
            if not line:
                return
            yield line

    def read(self, size: int = -1) -> bytes:
        return self._raw.read(size) if size >= 0 else self._raw.read()

    def read1(self, size: int = 65536) -> bytes:
        """Whatever bytes are available now, at most ``size`` (binary streams like Bedrock's)."""
        return self._raw.read1(size)

    def text(self) -> str:
        return self.read().decode("utf-8", "replace")

    def close(self) -> None:
        self._unregister()
        try:
            self._raw.close()
        finally:
            self._conn.close()

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _connection_for(url: urllib.parse.SplitResult, timeout: float) -> tuple[
        http.client.HTTPConnection, str]:
    """A connection for ``url`` (through HTTPS_PROXY/HTTP_PROXY unless NO_PROXY says not)."""
    host = url.hostname or ""
    port = url.port or (443 if url.scheme == "https" else 80)
    path = url.path or "/"
    if url.query:
        path += "?" + url.query
    proxies = urllib.request.getproxies()
    proxy = proxies.get(url.scheme)
    loopback = host in ("127.0.0.1", "localhost", "::1")
    if proxy and not loopback and not urllib.request.proxy_bypass(host):
        p = urllib.parse.urlsplit(proxy if "://" in proxy else "http://" + proxy)
        if url.scheme == "https":
            conn = http.client.HTTPSConnection(p.hostname, p.port or 8080, timeout=timeout,
                                               context=ssl.create_default_context())
            conn.set_tunnel(host, port)
            return conn, path
        return http.client.HTTPConnection(p.hostname, p.port or 8080, timeout=timeout), url.geturl()
    if url.scheme == "https":
        return http.client.HTTPSConnection(host, port, timeout=timeout,
                                           context=ssl.create_default_context()), path
    return http.client.HTTPConnection(host, port, timeout=timeout), path


def _shutdown(conn: http.client.HTTPConnection, opened: list[socket.socket]) -> None:
    # A "Connection: close" response takes the socket from ``conn`` (conn.sock is None then),
    # so fall back to the socket remembered when the request went out.
    sock = conn.sock or (opened[0] if opened else None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class HttpClient:
    def __init__(self, ctx: CallContext, policy: RetryPolicy | None = None) -> None:
        self.ctx = ctx
        self.policy = policy or RetryPolicy()

    def send(self, method: str, url: str, headers: dict[str, str], body: bytes | None = None,
             cancel: CancelToken | None = None) -> Response:
        """Send and return a response with a 2xx status, retrying what is retryable."""
        cancel = cancel or CancelToken()
        attempt = 0
        while True:
            if cancel.cancelled:
                raise cancelled(self.ctx)
            try:
                response = self._send_once(method, url, headers, body, cancel)
            except (OSError, http.client.HTTPException) as exc:
                if cancel.cancelled:
                    raise cancelled(self.ctx) from None
                attempt += 1
                if attempt >= self.policy.max_attempts:
                    raise connection_failed(self.ctx, url, _describe(exc)) from None
                if cancel.wait(self.policy.backoff(attempt)):
                    raise cancelled(self.ctx) from None
                continue
            if response.status < 400:
                return response
            body_text = response.text()
            response.close()
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            attempt += 1
            retryable = response.status in RETRYABLE_STATUSES and attempt < self.policy.max_attempts
            if retry_after is not None and retry_after > self.policy.max_delay:
                retryable = False  # the server wants a longer pause than we will hold a turn
            if not retryable:
                raise from_status(self.ctx, response.status, body_text, retry_after)
            delay = retry_after if retry_after is not None else self.policy.backoff(attempt)
            if cancel.wait(delay):
                raise cancelled(self.ctx)

    def _send_once(self, method: str, url: str, headers: dict[str, str], body: bytes | None,
                   cancel: CancelToken) -> Response:
        parts = urllib.parse.urlsplit(url)
        conn, target = _connection_for(parts, self.policy.connect_timeout)
        opened: list[socket.socket] = []
        unregister = cancel.on_cancel(lambda: _shutdown(conn, opened))
        try:
            conn.request(method, target, body=body, headers=headers)
            if conn.sock is not None:
                opened.append(conn.sock)
                conn.sock.settimeout(self.policy.read_timeout)
            raw = conn.getresponse()
        except BaseException:
            unregister()
            conn.close()
            raise
        return Response(conn, raw, unregister)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    text = str(exc) or type(exc).__name__
    return text
