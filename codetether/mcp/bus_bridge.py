"""``mcp serve --bus-url URL``: a CodeTether server's agent bus, readable by an MCP client.

A background thread keeps one SSE connection to ``{URL}/v1/bus/stream`` (bearer token) and
keeps the last envelopes in a bounded ring buffer, with counters. The MCP server offers them as

    tools      bus_events {topic?, limit?, since?}    bus_status {}
    resources  codetether://bus/events                codetether://bus/status

Why a buffer and not a live subscription: MCP clients poll (a model calls a tool when it wants
to know), so the bridge remembers what happened in between; ``since`` lets a poller continue
where it stopped without repeats.

Connection rules: each read has a timeout (the server sends a keep-alive comment every 15 s,
so silence for ``read_timeout`` means a dead link); failures reconnect with bounded,
jittered exponential backoff; ``Last-Event-ID`` is sent when the server gave ids, and each
connect also asks for the server's recent backlog (``recent=N``), de-duplicated by envelope id,
so a reconnect does not lose what was published meanwhile. A refused token or an unreachable
server is a state in ``bus_status`` plus one line on stderr per change, never an exception;
the token never appears in either.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import sys
import threading
import time
import urllib.parse
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

STREAM_PATH = "/v1/bus/stream"
EVENTS_URI = "codetether://bus/events"
STATUS_URI = "codetether://bus/status"
TOOL_NAMES = ("bus_events", "bus_status")
TOKEN_ENVS = ("CODETETHER_BUS_TOKEN", "CODETETHER_AUTH_TOKEN")
DEFAULT_LIMIT = 50
MAX_LINE = 4 * 1024 * 1024  # one SSE line (one envelope); longer means a broken stream
MAX_TOPICS = 500  # distinct topics counted in the status; the rest are counted together
RESPONSE_BUDGET = 256 * 1024  # bytes of envelopes in one bus_events answer


class BusStreamError(Exception):
    """Why one connection ended; the message is what ``bus_status`` shows as ``last_error``."""


@dataclass
class BridgeOptions:
    buffer_size: int = 1000
    backlog: int = 200  # recent envelopes asked for on each connect (server caps at 1000)
    connect_timeout: float = 10.0
    read_timeout: float = 45.0
    backoff_min: float = 0.5
    backoff_max: float = 30.0


def resolve_token(flag: str | None, env: dict[str, str] | Any) -> tuple[str | None, str]:
    """The token and where it came from: ``--bus-token``, else the env vars in order."""
    if flag:
        return flag, "--bus-token"
    for name in TOKEN_ENVS:
        value = (env.get(name) or "").strip()
        if value:
            return value, name
    return None, "none"


def stream_url(url: str) -> str:
    """``{URL}/v1/bus/stream`` (URL may already name the stream); a UsageError if not http(s)."""
    from codetether.core.errors import UsageError

    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--bus-url {url!r} is not an http(s) URL",
                         "pass the URL `codetether serve` prints, e.g. http://127.0.0.1:4096")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise UsageError(f"--bus-url {url!r} has a bad port", "use e.g. :4096") from None
    path = parts.path.rstrip("/")
    if not path.endswith(STREAM_PATH):
        path += STREAM_PATH
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _stderr_line(text: str) -> None:
    print(f"codetether mcp serve: {text}", file=sys.stderr, flush=True)


class BusBridge:
    """The SSE reader thread plus the ring buffer it fills. ``start()`` / ``stop()``."""

    def __init__(self, url: str, token: str | None = None, options: BridgeOptions | None = None,
                 log: Callable[[str], None] = _stderr_line, token_source: str = "") -> None:
        self.url = stream_url(url)
        self.token = token
        self.token_source = token_source or ("given" if token else "none")
        self.options = options or BridgeOptions()
        self.log = log
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: http.client.HTTPConnection | None = None
        # the socket itself: http.client hands a close-delimited body to the response and
        # forgets ``conn.sock``, but stop() must still be able to shut it down
        self._sock: socket.socket | None = None
        self._buffer: deque[dict[str, Any]] = deque(maxlen=self.options.buffer_size)
        self._seen: OrderedDict[str, None] = OrderedDict()  # ids, for de-duplication
        self._topics: Counter[str] = Counter()
        self._changed = threading.Condition(self._lock)
        self.state = "idle"
        self.last_error: str | None = None
        self.last_error_at: str | None = None
        self.connected_since: str | None = None
        self.last_event_id: str | None = None
        self.last_event_at: str | None = None
        self.counters = Counter(received=0, duplicates=0, malformed=0, evicted=0, connects=0,
                                failures=0, other_topics=0)
        self._logged: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> BusBridge:
        self.state = "connecting"
        self._thread = threading.Thread(target=self._run, name="mcp-bus-bridge", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Ends the thread promptly: the open socket is shut down, so a blocked read returns."""
        self._stop.set()
        with self._lock:
            sock = self._sock
            self.state = "stopped"
            self._changed.notify_all()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def connected(self) -> bool:
        return self.state == "connected"

    # -- the reader thread -------------------------------------------------------------------
    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            connects = self.counters["connects"]
            try:
                self._connect_and_read()
                error = "the server closed the bus stream"
            except BusStreamError as exc:
                error = str(exc)
            except (OSError, http.client.HTTPException) as exc:
                error = _describe(exc)
            except Exception as exc:  # a bug here must not kill the MCP server
                error = f"bus reader failed: {type(exc).__name__}: {exc}"
            finally:
                self._close_conn()
            if self._stop.is_set():
                break
            # a link that worked starts over at the shortest wait; failing ones back off
            failures = 1 if self.counters["connects"] > connects else failures + 1
            delay = self._backoff(failures)
            self._failed(error, delay)
            self._stop.wait(delay)

    def _backoff(self, failures: int) -> float:
        base = min(self.options.backoff_max, self.options.backoff_min * 2 ** max(failures - 1, 0))
        return min(self.options.backoff_max, base * random.uniform(0.8, 1.2))

    def _connect_and_read(self) -> None:
        parts = urllib.parse.urlsplit(self.url)
        conn_class = (http.client.HTTPSConnection if parts.scheme == "https"
                      else http.client.HTTPConnection)
        conn = conn_class(parts.hostname, parts.port, timeout=self.options.connect_timeout)
        with self._lock:
            if self._stop.is_set():
                return
            self._conn = conn
        query = urllib.parse.urlencode({"recent": self.options.backlog})
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.last_event_id:
            headers["Last-Event-ID"] = self.last_event_id
        conn.request("GET", f"{parts.path}?{query}", headers=headers)
        sock = conn.sock
        with self._lock:
            self._sock = sock
        if self._stop.is_set():
            return
        response = conn.getresponse()
        try:
            self._check(response)
            if sock is not None:
                sock.settimeout(self.options.read_timeout)
            self._connected()
            self._read(response)
        finally:
            response.close()

    def _read(self, response: http.client.HTTPResponse) -> None:
        from codetether.core.sse import parse_sse

        for event in parse_sse(self._lines(response)):
            if self._stop.is_set():
                return
            if event.event in ("bus", "message") and event.data.strip():
                self._accept(event.data, event.id)

    def _check(self, response: http.client.HTTPResponse) -> None:
        status = response.status
        if status == 200:
            kind = (response.getheader("Content-Type") or "").split(";")[0].strip().lower()
            if kind != "text/event-stream":
                raise BusStreamError(f"{self.url} is not a bus stream (Content-Type {kind!r}); "
                                     "is --bus-url a `codetether serve` URL?")
            return
        body = response.read(2000).decode("utf-8", "replace").strip()
        detail = _error_detail(body) or response.reason
        if status in (401, 403):
            hint = ("no token was given: pass --bus-token or set CODETETHER_BUS_TOKEN"
                    if not self.token else
                    f"the token from {self.token_source} is wrong: pass the server's token "
                    "(--bus-token or CODETETHER_BUS_TOKEN)")
            raise BusStreamError(f"HTTP {status} from {self.url} ({detail}): {hint}")
        if status == 404:
            raise BusStreamError(f"HTTP 404 from {self.url}: no bus stream there; "
                                 "is --bus-url a `codetether serve` URL?")
        raise BusStreamError(f"HTTP {status} from {self.url}: {detail}")

    def _lines(self, response: http.client.HTTPResponse) -> Iterator[bytes]:
        while not self._stop.is_set():
            try:
                line = response.readline(MAX_LINE + 1)
            except TimeoutError:
                raise BusStreamError(f"no data from {self.url} for "
                                     f"{self.options.read_timeout:g} s (not even keep-alives)"
                                     ) from None
            if not line:
                return
            if len(line) > MAX_LINE:
                raise BusStreamError(f"a line over {MAX_LINE} bytes on the bus stream")
            yield line

    def _close_conn(self) -> None:
        with self._lock:
            conn, self._conn, self._sock = self._conn, None, None
        if conn is not None:
            conn.close()

    # -- state -------------------------------------------------------------------------------
    def _connected(self) -> None:
        with self._lock:
            self.state = "connected"
            self.connected_since = _now()
            self.counters["connects"] += 1
            self._changed.notify_all()
        if self._logged is not None or self.counters["connects"] == 1:
            self.log(f"bus connected: {self.url}")
        self._logged = None

    def _failed(self, error: str, delay: float) -> None:
        with self._lock:
            if self._stop.is_set():
                return
            self.state = "retrying"
            self.last_error = error
            self.last_error_at = _now()
            self.counters["failures"] += 1
            self._changed.notify_all()
        if error != self._logged:  # one line per new problem, not one per retry
            self.log(f"bus: {error} (retrying, backoff up to {self.options.backoff_max:g} s)")
            self._logged = error

    def _accept(self, data: str, event_id: str | None) -> None:
        from codetether.bus import Envelope
        from codetether.core.errors import CodetetherError

        try:
            envelope = Envelope.from_json(json.loads(data)).to_json()
        except (ValueError, CodetetherError):
            with self._lock:
                self.counters["malformed"] += 1
            return
        with self._lock:
            if event_id:
                self.last_event_id = event_id
            if envelope["id"] in self._seen:
                self.counters["duplicates"] += 1
                return
            self._seen[envelope["id"]] = None
            while len(self._seen) > 4 * self.options.buffer_size:
                self._seen.popitem(last=False)
            if len(self._buffer) == self._buffer.maxlen:
                self.counters["evicted"] += 1
            self._buffer.append(envelope)
            self.counters["received"] += 1
            self.last_event_at = _now()
            topic = envelope["topic"]
            if topic in self._topics or len(self._topics) < MAX_TOPICS:
                self._topics[topic] += 1
            else:
                self.counters["other_topics"] += 1
            self._changed.notify_all()

    # -- what MCP sees -----------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        with self._lock:
            return {
                "url": self.url, "connected": self.state == "connected", "state": self.state,
                "token": self.token_source, "last_error": self.last_error,
                "last_error_at": self.last_error_at, "connected_since": self.connected_since,
                "last_event_id": self.last_event_id, "last_event_at": self.last_event_at,
                "received": self.counters["received"], "buffered": len(self._buffer),
                "buffer_size": self._buffer.maxlen, "evicted": self.counters["evicted"],
                "duplicates": self.counters["duplicates"],
                "malformed": self.counters["malformed"], "connects": self.counters["connects"],
                "failures": self.counters["failures"],
                "topics": dict(sorted(self._topics.items())),
                "other_topics": self.counters["other_topics"],
            }

    def events(self, topic: str | None = None, limit: int = DEFAULT_LIMIT,
               since: str | None = None) -> dict[str, Any]:
        """Envelopes in arrival order. Without ``since``: the newest ``limit``. With it: the
        first ``limit`` after that id (``more`` says whether a next call has more), so a
        poller pages forward without gaps. ``since_found`` is false when the id has left the
        buffer (or never was in it): then everything buffered counts as new."""
        from codetether.bus import topic_matches

        if topic:
            topic_matches(topic, "x")  # a bad pattern is a UsageError before anything else
        with self._lock:
            items = list(self._buffer)
        since_found = None
        if since:
            ids = [e["id"] for e in items]
            since_found = since in ids
            if since_found:
                items = items[ids.index(since) + 1:]
        if topic:
            items = [e for e in items if topic_matches(topic, e["topic"])]
        chosen = _within_budget(items[:limit] if since else items[-limit:], forward=bool(since))
        more = len(chosen) < len(items)
        result: dict[str, Any] = {"events": chosen, "count": len(chosen), "more": more,
                                  "last_id": chosen[-1]["id"] if chosen else since,
                                  "connected": self.connected}
        if since:
            result["since_found"] = since_found
        return result

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """For tests and callers that want a state: bounded, woken by each change."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True


def _within_budget(items: list[dict[str, Any]], forward: bool) -> list[dict[str, Any]]:
    """Trim an answer to ``RESPONSE_BUDGET`` bytes: from the end when paging forward (the rest
    comes next call), from the start when showing the newest."""
    total = 0
    kept: list[dict[str, Any]] = []
    for item in items if forward else reversed(items):
        total += len(json.dumps(item, ensure_ascii=False, default=str))
        if kept and total > RESPONSE_BUDGET:
            break
        kept.append(item)
    return kept if forward else kept[::-1]


def _error_detail(body: str) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body[:200]
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict):
            return str(err.get("message") or "")[:200]
        if isinstance(err, str):
            return err[:200]
    return body[:200]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is `codetether serve` running at --bus-url?)"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host ({exc.strerror or exc})"
    if isinstance(exc, TimeoutError):
        return "timed out waiting for the server"
    if isinstance(exc, http.client.RemoteDisconnected | ConnectionResetError):
        return "the server dropped the connection"
    if isinstance(exc, http.client.IncompleteRead):
        return "the bus stream broke off mid-event"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f"connection failed: {text}"


def _now() -> str:
    from codetether.bus.envelope import now_iso

    return now_iso()


# ---- the MCP face: tool specs, calls and resources, used by McpServer --------------------------

def tool_specs() -> list[dict[str, Any]]:
    read_only = {"readOnlyHint": True, "destructiveHint": False, "openWorldHint": False}
    return [
        {"name": "bus_events",
         "description": ("Recent envelopes from the CodeTether server's agent bus (task "
                         "updates, agent messages, results), oldest first. Pass `since` (the "
                         "`last_id` of your previous call) to get only what came after it."),
         "inputSchema": {"type": "object", "properties": {
             "topic": {"type": "string",
                       "description": ("topic pattern: dot-separated, '*' one segment, '#' "
                                       "any number (e.g. task.#, agent.*.events)")},
             "limit": {"type": "integer", "minimum": 1, "default": DEFAULT_LIMIT,
                       "description": "most envelopes to return"},
             "since": {"type": "string", "description": "an envelope id: only later ones"}},
             "additionalProperties": False},
         "annotations": read_only},
        {"name": "bus_status",
         "description": ("The bus connection: URL, connected or not, the last error, how "
                         "many envelopes arrived and the topics seen."),
         "inputSchema": {"type": "object", "properties": {}, "additionalProperties": False},
         "annotations": read_only},
    ]


def call_tool(bridge: BusBridge, name: str, args: dict[str, Any]) -> dict[str, Any]:
    """A ``tools/call`` result; bad arguments are an ``isError`` result the model can read."""
    from codetether.core.errors import CodetetherError

    try:
        if name == "bus_status":
            data = bridge.status()
        else:
            data = bridge.events(_topic(args.get("topic")), _limit(args.get("limit"), bridge),
                                 _since(args.get("since")))
    except CodetetherError as exc:
        return {"content": [{"type": "text", "text": exc.one_line()}], "isError": True}
    text = json.dumps(data, indent=1, ensure_ascii=False, default=str)
    return {"content": [{"type": "text", "text": text}], "structuredContent": data,
            "isError": False}


def _topic(raw: Any) -> str | None:
    from codetether.core.errors import UsageError

    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise UsageError("topic must be a string", "e.g. task.# or agent.*")
    return raw.strip()


def _limit(raw: Any, bridge: BusBridge) -> int:
    from codetether.core.errors import UsageError

    if raw is None:
        return DEFAULT_LIMIT
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw != int(raw) or raw < 1:
        raise UsageError(f"limit must be a whole number >= 1, not {raw!r}", "e.g. 20")
    return min(int(raw), bridge.options.buffer_size)


def _since(raw: Any) -> str | None:
    from codetether.core.errors import UsageError

    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise UsageError("since must be an envelope id (a string)", "use last_id from a call")
    return raw


def resource_list() -> list[dict[str, Any]]:
    return [{"uri": EVENTS_URI, "name": "bus events", "mimeType": "application/json",
             "description": "recent envelopes from the CodeTether server's agent bus"},
            {"uri": STATUS_URI, "name": "bus status", "mimeType": "application/json",
             "description": "the bus connection: state, last error, counters, topics"}]


def read_resource(bridge: BusBridge, uri: str) -> dict[str, Any] | None:
    """The resource's contents item, or None when ``uri`` is not one of ours."""
    if uri == EVENTS_URI:
        data = bridge.events(limit=bridge.options.buffer_size)
    elif uri == STATUS_URI:
        data = bridge.status()
    else:
        return None
    return {"uri": uri, "mimeType": "application/json",
            "text": json.dumps(data, indent=1, ensure_ascii=False, default=str)}
