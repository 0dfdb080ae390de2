"""A JSON-RPC 2.0 endpoint over a pair of byte streams, one message per line (MCP and ACP stdio).

Why threads and this shape (after python-lsp-server's ``JsonRpcStreamReader/Writer`` +
``Endpoint``): one reader thread parses lines and routes them; requests run on a
``ThreadPoolExecutor`` so a slow tool call never blocks a ``ping`` or a cancel; the few
methods that must act at once (cancel notifications) run inline on the reader thread. Both
sides may send requests: ``request()`` returns when the peer's response arrives, with a
timeout, and a dead peer fails every pending request instead of hanging it. One lock guards
the writer and every line is flushed, so messages from many threads never interleave.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from codetether.core import jsonrpc
from codetether.core.cancel import CancelToken
from codetether.core.errors import CodetetherError
from codetether.core.jsonrpc import Dispatcher, JsonRpcError

log = logging.getLogger("codetether.jsonrpc_stream")

MAX_LINE = 32 * 1024 * 1024


class StreamClosedError(CodetetherError):
    """The peer went away (EOF, broken pipe) before answering."""


class RequestTimeoutError(CodetetherError):
    """The peer did not answer a request in time."""


class RequestCancelledError(CodetetherError):
    """Our own side gave up on a request (its cancel token was tripped)."""


@dataclass
class RequestContext:
    """What a handler gets besides the params: who asked, and a token tripped on cancel."""

    stream: JsonRpcStream
    id: Any
    method: str
    cancel: CancelToken = field(default_factory=CancelToken)
    meta: dict[str, Any] = field(default_factory=dict)

    def notify(self, method: str, params: Any = None) -> None:
        self.stream.notify(method, params)


# builds the notification telling the peer we gave up on request ``id`` (None: send nothing)
CancelNotice = Callable[[Any, str], dict[str, Any] | None]


class JsonRpcStream:
    def __init__(self, reader: BinaryIO, writer: BinaryIO, dispatcher: Dispatcher | None = None,
                 *, name: str = "jsonrpc", max_workers: int = 8, inline: Iterable[str] = (),
                 cancel_notice: CancelNotice | None = None, drop_cancelled: bool = False,
                 on_close: Callable[[], None] | None = None) -> None:
        self.name = name
        self.dispatcher = dispatcher or Dispatcher()
        self._reader = reader
        self._writer = writer
        self._inline = frozenset(inline)
        self._cancel_notice = cancel_notice
        self._drop_cancelled = drop_cancelled  # MCP: no response to a cancelled request
        self._on_close = on_close
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=name)
        self._write_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._pending: dict[Any, Future] = {}
        self._active: dict[Any, RequestContext] = {}
        self._ids = itertools.count(1)
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self.close_reason = ""

    # -- life cycle --------------------------------------------------------------------------
    def start(self) -> JsonRpcStream:
        self._thread = threading.Thread(target=self._read_loop, name=f"{self.name}-reader",
                                        daemon=True)
        self._thread.start()
        return self

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def wait_closed(self, timeout: float | None = None) -> bool:
        return self._closed.wait(timeout)

    def close(self, reason: str = "closed") -> None:
        """Stop: fail pending requests, cancel running handlers, close our writer."""
        self._shutdown(reason)
        try:
            self._writer.close()
        except (OSError, ValueError):
            pass

    def drain(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for running handlers to finish; True if they did."""
        self._pool.shutdown(wait=False)
        done = threading.Event()

        def waiter() -> None:
            self._pool.shutdown(wait=True)
            done.set()

        threading.Thread(target=waiter, daemon=True).start()
        return done.wait(timeout)

    def _shutdown(self, reason: str) -> None:
        with self._state_lock:
            if self._closed.is_set():
                return
            self.close_reason = reason
            self._closed.set()
            pending, self._pending = self._pending, {}
            active = list(self._active.values())
        for future in pending.values():
            _settle(future, error=StreamClosedError(f"{self.name}: {reason}"))
        for ctx in active:
            ctx.cancel.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._on_close:
            try:
                self._on_close()
            except Exception:  # a close hook must not break the reader thread's exit
                log.exception("on_close hook failed")

    # -- reading -----------------------------------------------------------------------------
    def _read_loop(self) -> None:
        reason = "the peer closed the stream"
        try:
            while not self._closed.is_set():
                line = self._reader.readline(MAX_LINE + 1)
                if not line:
                    break
                if len(line) > MAX_LINE and not line.endswith(b"\n"):
                    self._skip_rest_of_line()
                    self._send(jsonrpc.error_response(None, JsonRpcError(
                        jsonrpc.INVALID_REQUEST, f"message longer than {MAX_LINE} bytes")))
                    continue
                line = line.strip()
                if line:
                    self._handle_line(line)
        except (OSError, ValueError) as exc:
            reason = f"read failed: {exc}"
        self._shutdown(reason)

    def _skip_rest_of_line(self) -> None:
        while True:
            chunk = self._reader.readline(MAX_LINE)
            if not chunk or chunk.endswith(b"\n"):
                return

    def _handle_line(self, line: bytes) -> None:
        try:
            message = jsonrpc.decode(line)
        except JsonRpcError as exc:
            log.warning("%s: malformed frame: %s", self.name, exc.message)
            self._send(jsonrpc.error_response(None, exc))
            return
        if isinstance(message, list):  # batches (MCP 2025-03-26 only): handle one by one
            if not message:
                self._send(jsonrpc.error_response(None, JsonRpcError(
                    jsonrpc.INVALID_REQUEST, "invalid request: empty batch")))
            for item in message:
                self._route(item)
            return
        self._route(message)

    def _route(self, message: Any) -> None:
        if jsonrpc.is_response(message):
            self._resolve(message)
            return
        if not isinstance(message, dict) or "method" not in message:
            self._send(jsonrpc.error_response(
                message.get("id") if isinstance(message, dict) else None,
                JsonRpcError(jsonrpc.INVALID_REQUEST, "invalid request: no method")))
            return
        if message.get("method") in self._inline:
            self._run(message)
            return
        try:
            self._pool.submit(self._run, message)
        except RuntimeError:  # pool shut down: we are closing
            pass

    def _resolve(self, message: dict[str, Any]) -> None:
        with self._state_lock:
            future = self._pending.pop(message.get("id"), None)
        if future is None:
            log.debug("%s: response to unknown request %r", self.name, message.get("id"))
            return
        if "error" in message:
            error = message["error"] if isinstance(message["error"], dict) else {}
            code = error.get("code")
            _settle(future, error=JsonRpcError(code if isinstance(code, int)
                                               else jsonrpc.INTERNAL_ERROR,
                                               str(error.get("message", "error")),
                                               error.get("data")))
        else:
            _settle(future, result=message.get("result"))

    def _run(self, message: dict[str, Any]) -> None:
        request_id = message.get("id")
        params = message.get("params")
        meta = params.get("_meta") if isinstance(params, dict) else None
        ctx = RequestContext(self, request_id, str(message.get("method")),
                             meta=meta if isinstance(meta, dict) else {})
        tracked = "id" in message
        if tracked:
            with self._state_lock:
                self._active[request_id] = ctx
        try:
            response = self.dispatcher.dispatch(message, ctx)
        finally:
            if tracked:
                with self._state_lock:
                    self._active.pop(request_id, None)
        if response is None or self._drop_cancelled and ctx.cancel.cancelled:
            return
        self._send(response)

    # -- cancelling what the peer asked ------------------------------------------------------
    def cancel_incoming(self, request_id: Any) -> bool:
        """Trip the cancel token of a running request (from a cancel notification)."""
        with self._state_lock:
            ctx = self._active.get(request_id)
        if ctx is None:
            return False
        ctx.cancel.cancel()
        return True

    # -- writing -----------------------------------------------------------------------------
    def _send(self, message: dict[str, Any]) -> bool:
        data = (jsonrpc.encode(message) + "\n").encode("utf-8")
        with self._write_lock:
            try:
                self._writer.write(data)
                self._writer.flush()
                return True
            except (OSError, ValueError) as exc:
                log.debug("%s: write failed: %s", self.name, exc)
        self._shutdown("the peer stopped reading")
        return False

    def notify(self, method: str, params: Any = None) -> None:
        if not self._closed.is_set():
            self._send(jsonrpc.notification(method, params))

    def request_future(self, method: str, params: Any = None) -> tuple[int, Future]:
        """Send a request; its id and a Future for the result (JsonRpcError on an error)."""
        request_id = next(self._ids)
        future: Future = Future()
        with self._state_lock:
            if self._closed.is_set():
                _settle(future, error=StreamClosedError(f"{self.name}: {self.close_reason}"))
                return request_id, future
            self._pending[request_id] = future
        if not self._send(jsonrpc.request(request_id, method, params)):
            with self._state_lock:
                self._pending.pop(request_id, None)
            _settle(future, error=StreamClosedError(f"{self.name}: {self.close_reason}"))
        return request_id, future

    def request(self, method: str, params: Any = None, timeout: float | None = 30.0,
                cancel: CancelToken | None = None) -> Any:
        """Send a request and wait for its result. Raises ``JsonRpcError`` (the peer's error),
        ``RequestTimeoutError``, ``RequestCancelledError`` or ``StreamClosedError``."""
        request_id, future = self.request_future(method, params)
        unregister = (cancel.on_cancel(lambda: _settle(
            future, error=RequestCancelledError(f"{method} cancelled"))) if cancel
            else (lambda: None))
        try:
            return future.result(timeout)
        except FutureTimeout:
            self._give_up(request_id, future, "timed out")
            raise RequestTimeoutError(f"{self.name}: no answer to {method} within {timeout:g} s",
                                      "the peer may be stuck; check its logs") from None
        except RequestCancelledError:
            self._give_up(request_id, future, "cancelled")
            raise
        finally:
            unregister()

    def _give_up(self, request_id: int, future: Future, reason: str) -> None:
        with self._state_lock:
            self._pending.pop(request_id, None)
        if self._cancel_notice is not None and not self._closed.is_set():
            notice = self._cancel_notice(request_id, reason)
            if notice is not None:
                self._send(notice)


def _settle(future: Future, *, result: Any = None, error: BaseException | None = None) -> None:
    """Complete a future once; a second setter (reader vs. timeout vs. cancel) loses quietly."""
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    except InvalidStateError:
        pass
