"""The newline-delimited JSON-RPC endpoint shared by MCP and ACP: routing, concurrency, cancel,
malformed frames and dead peers — over real OS pipes, with a raw peer on the other end."""

from __future__ import annotations

import json
import os
import queue
import threading

import pytest

from codetether.core.cancel import CancelToken
from codetether.core.jsonrpc import Dispatcher, JsonRpcError
from codetether.core.jsonrpc_stream import (
    JsonRpcStream,
    RequestCancelledError,
    RequestTimeoutError,
    StreamClosedError,
)

WAIT = 10.0


class RawPeer:
    """The other end of the pipes: writes raw lines, reads decoded lines with a timeout."""

    def __init__(self) -> None:
        ours_r, theirs_w = os.pipe()
        theirs_r, ours_w = os.pipe()
        self.stream_in = os.fdopen(ours_r, "rb")
        self.stream_out = os.fdopen(ours_w, "wb")
        self._out = os.fdopen(theirs_w, "wb")
        self._in = os.fdopen(theirs_r, "rb")
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in iter(self._in.readline, b""):
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def send(self, data: bytes | dict) -> None:
        raw = data if isinstance(data, bytes) else json.dumps(data).encode() + b"\n"
        self._out.write(raw)
        self._out.flush()

    def recv(self) -> dict:
        return self.lines.get(timeout=WAIT)

    def hang_up(self) -> None:
        self._out.close()


def make(dispatcher: Dispatcher | None = None, **kwargs) -> tuple[JsonRpcStream, RawPeer]:
    peer = RawPeer()
    stream = JsonRpcStream(peer.stream_in, peer.stream_out, dispatcher, **kwargs).start()
    return stream, peer


def test_requests_are_answered_and_errors_are_json_rpc_errors():
    d = Dispatcher()
    d.register("add", lambda p, ctx: p["a"] + p["b"])
    d.register("boom", lambda p, ctx: 1 / 0)
    stream, peer = make(d)
    peer.send({"jsonrpc": "2.0", "id": 1, "method": "add", "params": {"a": 2, "b": 3}})
    assert peer.recv() == {"jsonrpc": "2.0", "id": 1, "result": 5}
    peer.send({"jsonrpc": "2.0", "id": "x", "method": "nope"})
    assert peer.recv()["error"]["code"] == -32601
    peer.send({"jsonrpc": "2.0", "id": 2, "method": "boom"})
    reply = peer.recv()
    assert reply["error"] == {"code": -32603, "message": "internal error"}  # no traceback leaks
    stream.close()


def test_malformed_frames_get_errors_and_the_stream_keeps_working():
    d = Dispatcher()
    d.register("ping", lambda p, ctx: {})
    stream, peer = make(d)
    peer.send(b"{not json\n")
    assert peer.recv()["error"]["code"] == -32700
    peer.send({"jsonrpc": "2.0", "id": 7})  # neither request nor response
    assert peer.recv()["error"]["code"] == -32600
    peer.send(b"[]\n")
    assert peer.recv()["error"]["code"] == -32600
    peer.send(b"\n   \n")  # blank lines are ignored
    peer.send(json.dumps([{"jsonrpc": "2.0", "id": 8, "method": "ping"}]).encode() + b"\n")
    assert peer.recv() == {"jsonrpc": "2.0", "id": 8, "result": {}}
    peer.send({"jsonrpc": "2.0", "method": "ping"})  # a notification gets no answer
    peer.send({"jsonrpc": "2.0", "id": 9, "method": "ping"})
    assert peer.recv()["id"] == 9
    stream.close()


def test_a_slow_request_does_not_block_others():
    release = threading.Event()
    d = Dispatcher()
    d.register("slow", lambda p, ctx: release.wait(WAIT) and "slow done")
    d.register("ping", lambda p, ctx: "pong")
    stream, peer = make(d)
    peer.send({"jsonrpc": "2.0", "id": 1, "method": "slow"})
    peer.send({"jsonrpc": "2.0", "id": 2, "method": "ping"})
    assert peer.recv() == {"jsonrpc": "2.0", "id": 2, "result": "pong"}
    release.set()
    assert peer.recv() == {"jsonrpc": "2.0", "id": 1, "result": "slow done"}
    stream.close()


def test_inline_cancel_trips_the_running_request_and_can_drop_its_response():
    started = threading.Event()
    saw_cancel = threading.Event()
    d = Dispatcher()

    def work(params, ctx):
        started.set()
        if ctx.cancel.wait(WAIT):
            saw_cancel.set()
        return "finished"

    d.register("work", work)
    d.register("cancel", lambda p, ctx: ctx.stream.cancel_incoming(p["id"]))
    d.register("ping", lambda p, ctx: "pong")
    stream, peer = make(d, inline=("cancel",), drop_cancelled=True)
    peer.send({"jsonrpc": "2.0", "id": 1, "method": "work"})
    assert started.wait(WAIT)
    peer.send({"jsonrpc": "2.0", "method": "cancel", "params": {"id": 1}})
    assert saw_cancel.wait(WAIT)
    peer.send({"jsonrpc": "2.0", "id": 2, "method": "ping"})
    assert peer.recv()["id"] == 2  # and no response for the cancelled request 1 came first
    stream.close()


def test_outgoing_requests_get_results_errors_and_fail_when_the_peer_dies():
    stream, peer = make()
    results: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: results.put(stream.request("ask", {"q": 1}))).start()
    asked = peer.recv()
    assert asked["method"] == "ask" and asked["params"] == {"q": 1}
    peer.send({"jsonrpc": "2.0", "id": asked["id"], "result": "answer"})
    assert results.get(timeout=WAIT) == "answer"

    def failing():
        try:
            stream.request("ask")
        except JsonRpcError as exc:
            results.put(exc)

    threading.Thread(target=failing).start()
    asked = peer.recv()
    peer.send({"jsonrpc": "2.0", "id": asked["id"], "error": {"code": -32000, "message": "no"}})
    error = results.get(timeout=WAIT)
    assert isinstance(error, JsonRpcError) and error.code == -32000 and error.message == "no"

    def dying():
        try:
            stream.request("ask", timeout=WAIT * 3)
        except StreamClosedError as exc:
            results.put(exc)

    threading.Thread(target=dying).start()
    peer.recv()
    peer.hang_up()  # EOF: the pending request fails at once, no timeout needed
    assert isinstance(results.get(timeout=WAIT), StreamClosedError)
    assert stream.wait_closed(WAIT)
    with pytest.raises(StreamClosedError):
        stream.request("ask")


def test_timeouts_and_cancelled_requests_send_a_cancel_notice():
    notices = []
    stream, peer = make(cancel_notice=lambda rid, why: notices.append(why) or {
        "jsonrpc": "2.0", "method": "cancelled", "params": {"id": rid, "reason": why}})
    with pytest.raises(RequestTimeoutError):
        stream.request("never", timeout=0.2)
    sent = peer.recv()
    notice = peer.recv()
    assert notice == {"jsonrpc": "2.0", "method": "cancelled",
                      "params": {"id": sent["id"], "reason": "timed out"}}
    token = CancelToken()
    errors: queue.Queue = queue.Queue()

    def cancellable():
        try:
            stream.request("never", timeout=WAIT, cancel=token)
        except RequestCancelledError as exc:
            errors.put(exc)

    threading.Thread(target=cancellable).start()
    sent = peer.recv()
    token.cancel()
    assert isinstance(errors.get(timeout=WAIT), RequestCancelledError)
    assert peer.recv()["params"] == {"id": sent["id"], "reason": "cancelled"}
    # a late answer to a request we gave up on is ignored
    peer.send({"jsonrpc": "2.0", "id": sent["id"], "result": "late"})
    stream.close()


def test_closing_cancels_running_handlers_and_calls_the_hook():
    closed = threading.Event()
    started = threading.Event()
    cancelled = threading.Event()
    d = Dispatcher()
    d.register("work", lambda p, ctx: started.set() or ctx.cancel.wait(WAIT) and cancelled.set())
    stream, peer = make(d, on_close=closed.set)
    peer.send({"jsonrpc": "2.0", "id": 1, "method": "work"})
    assert started.wait(WAIT)
    peer.hang_up()
    assert closed.wait(WAIT) and cancelled.wait(WAIT)
    assert stream.drain(WAIT)


def test_writes_from_many_threads_never_interleave():
    stream, peer = make()
    payload = "x" * 50_000
    threads = [threading.Thread(target=stream.notify, args=("n", {"i": i, "p": payload}))
               for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = sorted(peer.recv()["params"]["i"] for _ in range(20))
    assert got == list(range(20))
    stream.close()
