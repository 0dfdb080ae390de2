"""Kernel pieces: SSE framing, cancellation, redaction, Retry-After, atomic writes."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from codetether.core.cancel import CancelToken
from codetether.core.fsutil import atomic_write_text
from codetether.core.redact import redact
from codetether.core.sse import encode_sse, parse_sse
from codetether.providers.http import parse_retry_after


def test_sse_parse_multiline_comments_ids_and_crlf():
    raw = [b": keep-alive\r\n", b"event: update\r\n", b"id: 7\r\n", b"data: a\r\n", b"data: b\r\n",
           b"\r\n", b"data:no-space\n", b"\n", b"data: tail-without-blank-line\n"]
    events = list(parse_sse(raw))
    assert [(e.event, e.data, e.id) for e in events] == [
        ("update", "a\nb", "7"), ("message", "no-space", "7"),
        ("message", "tail-without-blank-line", "7")]


def test_sse_encode_roundtrip():
    wire = encode_sse("line1\nline2", event="x", id="3") + encode_sse("{}")
    events = list(parse_sse(wire.decode().splitlines(keepends=True)))
    assert [(e.event, e.data, e.id) for e in events] == [("x", "line1\nline2", "3"),
                                                         ("message", "{}", "3")]


def test_cancel_runs_callbacks_once_and_late_registration_runs_now():
    token = CancelToken()
    calls = []
    unregister = token.on_cancel(lambda: calls.append("a"))
    token.on_cancel(lambda: calls.append("b"))
    unregister()
    token.cancel()
    token.cancel()
    assert calls == ["b"]
    token.on_cancel(lambda: calls.append("late"))
    assert calls == ["b", "late"]


def test_cancel_wakes_a_waiting_thread():
    token = CancelToken()
    woke = threading.Event()

    def waiter():
        if token.wait(30):
            woke.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    token.cancel()
    thread.join(5)
    assert woke.is_set()


def test_redact_known_secret_and_key_shapes():
    text = "bad key sk-proj-abcdefghijklmnop and hvs.CAESIabcdefgh and mine: hunter2hunter2"
    out = redact(text, ["hunter2hunter2"])
    assert "abcdefghijklmnop" not in out and "CAESI" not in out and "hunter2" not in out
    assert out.count("[redacted]") == 3


@pytest.mark.parametrize("value,expected", [("3", 3.0), ("0", 0.0), ("1.5", 1.5), (None, None),
                                            ("soon", None)])
def test_retry_after_seconds(value, expected):
    assert parse_retry_after(value) == expected


def test_retry_after_http_date_in_the_past_is_zero():
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_atomic_write_sets_mode_before_content(tmp_path):
    path = tmp_path / "sub" / "secret.json"
    atomic_write_text(path, "{}", mode=0o600)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "{}"
    assert [p.name for p in path.parent.iterdir()] == ["secret.json"]  # no temp file left


def test_atomic_write_failure_leaves_old_file(tmp_path, monkeypatch):
    (tmp_path / "d").mkdir()
    path = tmp_path / "d" / "f.txt"
    path.write_text("old")

    def boom(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in path.parent.iterdir()] == ["f.txt"]
