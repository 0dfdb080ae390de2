"""Identifiers that sort by creation time (so ``ORDER BY id`` is chronological) and carry a
prefix saying what they name: ``ses_…`` sessions, ``msg_…`` messages, ``call_…`` tool calls."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(number: int, width: int) -> str:
    out = []
    for _ in range(width):
        number, digit = divmod(number, 36)
        out.append(_ALPHABET[digit])
    return "".join(reversed(out))


def new_id(prefix: str) -> str:
    """``<prefix>_`` + 10 chars of milliseconds + 10 random chars (about 52 bits)."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(7), "big")
    return f"{prefix}_{_base36(millis, 10)}{_base36(rand, 10)}"
