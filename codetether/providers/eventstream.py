"""AWS event-stream framing (``application/vnd.amazon.eventstream``), encoder and decoder.

Bedrock's ConverseStream answers with this binary framing instead of SSE, so we need it without
botocore. One message on the wire is::

    [total length u32][headers length u32][prelude crc32 u32][headers][payload][message crc32 u32]

The prelude CRC covers the first 8 bytes, the message CRC everything before it. A header is
``[name length u8][name][type u8][value]`` with ten value types (see ``_decode_value``).

The decoder is incremental because HTTP hands us arbitrary slices of the stream: a chunk may
hold half a message or three of them. It checks both CRCs before trusting a length or a byte,
so a corrupted or truncated stream fails loudly (``ChecksumMismatchError``) instead of yielding
garbage events.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Union

HeaderValue = Union[bool, int, bytes, str, uuid.UUID]

_PRELUDE = struct.Struct("!III")
_PRELUDE_LENGTH = _PRELUDE.size  # 12
_CRC_LENGTH = 4
_MIN_MESSAGE = _PRELUDE_LENGTH + _CRC_LENGTH  # 16: a message with no headers and no payload
# The service's own limits (botocore uses the same): anything larger is corruption, not data.
_MAX_HEADERS_LENGTH = 128 * 1024
_MAX_PAYLOAD_LENGTH = 24 * 1024 * 1024

_STRING_TYPE = 7
_FIXED = {2: struct.Struct("!b"), 3: struct.Struct("!h"), 4: struct.Struct("!i"),
          5: struct.Struct("!q"), 8: struct.Struct("!q")}  # 8 = timestamp, epoch milliseconds
_U16 = struct.Struct("!H")


class EventStreamError(ValueError):
    """The bytes are not a valid event stream (bad lengths, bad header, truncated)."""


class ChecksumMismatchError(EventStreamError):
    """A prelude or message CRC32 does not match: the stream was corrupted in transit."""


@dataclass
class EventMessage:
    """One decoded message. Header values keep their wire type: ``bool``, ``int`` (byte, short,
    int, long and timestamp in epoch milliseconds), ``bytes``, ``str`` or ``uuid.UUID``."""

    headers: dict[str, HeaderValue] = field(default_factory=dict)
    payload: bytes = b""


def _crc(data: bytes | bytearray | memoryview, start: int = 0) -> int:
    return zlib.crc32(data, start) & 0xFFFFFFFF


def _encode_headers(headers: dict[str, str]) -> bytes:
    out = bytearray()
    for name, value in headers.items():
        raw_name = name.encode("utf-8")
        raw_value = value.encode("utf-8")
        if not 0 < len(raw_name) <= 255:
            raise EventStreamError(f"header name {name!r} must be 1..255 bytes")
        if len(raw_value) > 32767:
            raise EventStreamError(f"header {name!r} value is longer than 32767 bytes")
        out += bytes([len(raw_name)]) + raw_name + bytes([_STRING_TYPE])
        out += _U16.pack(len(raw_value)) + raw_value
    return bytes(out)


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One framed message with string (type 7) headers: what a Bedrock server sends."""
    raw_headers = _encode_headers(headers)
    total = _MIN_MESSAGE + len(raw_headers) + len(payload)
    prelude = struct.pack("!II", total, len(raw_headers))
    prelude += struct.pack("!I", _crc(prelude))
    body = prelude + raw_headers + payload
    return body + struct.pack("!I", _crc(body))


def _decode_value(kind: int, data: bytes, pos: int) -> tuple[HeaderValue, int]:
    """The value of header type ``kind`` at ``data[pos:]`` and the position after it."""
    if kind == 0:
        return True, pos
    if kind == 1:
        return False, pos
    if kind in _FIXED:
        fmt = _FIXED[kind]
        _need(data, pos, fmt.size)
        return fmt.unpack_from(data, pos)[0], pos + fmt.size
    if kind in (6, 7):
        _need(data, pos, 2)
        length = _U16.unpack_from(data, pos)[0]
        _need(data, pos + 2, length)
        raw = data[pos + 2:pos + 2 + length]
        if kind == 6:
            return raw, pos + 2 + length
        try:
            return raw.decode("utf-8"), pos + 2 + length
        except UnicodeDecodeError:
            raise EventStreamError("a string header is not valid UTF-8") from None
    if kind == 9:
        _need(data, pos, 16)
        return uuid.UUID(bytes=data[pos:pos + 16]), pos + 16
    raise EventStreamError(f"unknown header value type {kind}")


def _need(data: bytes, pos: int, size: int) -> None:
    if pos + size > len(data):
        raise EventStreamError("a header runs past the end of the headers section")


def decode_headers(data: bytes) -> dict[str, HeaderValue]:
    """Parse a complete headers section (duplicate names are an error, as in the spec)."""
    headers: dict[str, HeaderValue] = {}
    pos = 0
    while pos < len(data):
        name_length = data[pos]
        _need(data, pos + 1, name_length + 1)
        try:
            name = data[pos + 1:pos + 1 + name_length].decode("utf-8")
        except UnicodeDecodeError:
            raise EventStreamError("a header name is not valid UTF-8") from None
        pos += 1 + name_length
        value, pos = _decode_value(data[pos], data, pos + 1)
        if name in headers:
            raise EventStreamError(f"duplicate header {name!r}")
        headers[name] = value
    return headers


class EventStreamDecoder:
    """Feed bytes as they arrive; get back every message they complete."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held that do not yet make a whole message (non-zero at EOF = truncated)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[EventMessage]:
        self._buffer += data
        messages: list[EventMessage] = []
        start = 0
        while True:
            message, consumed = self._next_message(start)
            if message is None:
                break
            messages.append(message)
            start += consumed
        if start:
            del self._buffer[:start]
        return messages

    def _next_message(self, start: int) -> tuple[EventMessage | None, int]:
        buf = self._buffer
        if len(buf) - start < _PRELUDE_LENGTH:
            return None, 0
        total, headers_length, prelude_crc = _PRELUDE.unpack_from(buf, start)
        actual = _crc(memoryview(buf)[start:start + 8])
        if actual != prelude_crc:
            raise ChecksumMismatchError(
                f"event-stream prelude CRC mismatch (expected {prelude_crc:#010x}, "
                f"computed {actual:#010x})")
        _check_lengths(total, headers_length)
        if len(buf) - start < total:
            return None, 0
        end = start + total
        message_crc = struct.unpack_from("!I", buf, end - _CRC_LENGTH)[0]
        actual = _crc(memoryview(buf)[start:end - _CRC_LENGTH])
        if actual != message_crc:
            raise ChecksumMismatchError(
                f"event-stream message CRC mismatch (expected {message_crc:#010x}, "
                f"computed {actual:#010x})")
        headers_start = start + _PRELUDE_LENGTH
        headers = decode_headers(bytes(buf[headers_start:headers_start + headers_length]))
        payload = bytes(buf[headers_start + headers_length:end - _CRC_LENGTH])
        return EventMessage(headers, payload), total


def _check_lengths(total: int, headers_length: int) -> None:
    if headers_length > _MAX_HEADERS_LENGTH:
        raise EventStreamError(f"event-stream headers length {headers_length} is too large")
    payload_length = total - _MIN_MESSAGE - headers_length
    if payload_length < 0:
        raise EventStreamError(
            f"event-stream total length {total} is smaller than its headers ({headers_length})")
    if payload_length > _MAX_PAYLOAD_LENGTH:
        raise EventStreamError(f"event-stream payload length {payload_length} is too large")
