"""Server-Sent Events: a parser for streams we read and an encoder for streams we serve.

Follows the WHATWG rules: ``field: value`` lines, ``data`` lines joined by ``\\n``, an empty line
dispatches, lines starting with ``:`` are comments, ``id`` is remembered for ``Last-Event-ID``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass
class SSEEvent:
    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


def parse_sse(lines: Iterable[bytes | str]) -> Iterator[SSEEvent]:
    """Turn raw lines (with or without line endings) into events, as a browser would."""
    data: list[str] = []
    event = ""
    last_id: str | None = None
    retry: int | None = None
    for raw in lines:
        line = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        line = line.rstrip("\r\n")
        if not line:
            if data:
                yield SSEEvent("\n".join(data), event or "message", last_id, retry)
            data, event, retry = [], "", None
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            data.append(value)
        elif field == "event":
            event = value
        elif field == "id" and "\0" not in value:
            last_id = value
        elif field == "retry" and value.isdigit():
            retry = int(value)
    if data:
        yield SSEEvent("\n".join(data), event or "message", last_id, retry)


def encode_sse(data: str, event: str | None = None, id: str | None = None) -> bytes:
    """One event, ready to write; multi-line data becomes several ``data:`` lines."""
    out = []
    if id is not None:
        out.append(f"id: {id}")
    if event:
        out.append(f"event: {event}")
    out.extend(f"data: {line}" for line in data.split("\n"))
    return ("\n".join(out) + "\n\n").encode("utf-8")
