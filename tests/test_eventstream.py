"""AWS event-stream framing: our encoder against botocore's decoder, our decoder against
frames we did not build (botocore's published test vectors), chunking, and corruption."""

from __future__ import annotations

import random
import struct
import uuid
import zlib

import pytest
from botocore.eventstream import EventStreamBuffer

from codetether.providers.eventstream import (
    ChecksumMismatchError,
    EventMessage,
    EventStreamDecoder,
    EventStreamError,
    encode_message,
)

# Frames from botocore's own event-stream tests (tests/unit/test_eventstream.py), built by AWS,
# not by us: they pin the decoder to the real wire format, including every header type.
EMPTY_MESSAGE = b"\x00\x00\x00\x10\x00\x00\x00\x00\x05\xc2H\xeb}\x98\xc8\xff"
INT8_HEADER = b"\x00\x00\x00\x17\x00\x00\x00\x07)\x86\x01X\x04byte\x02\xff\xc2\xf8i\xdc"
PAYLOAD_ONE_STR_HEADER = (
    b"\x00\x00\x00=\x00\x00\x00 \x07\xfd\x83\x96\x0ccontent-type\x07\x00\x10"
    b"application/json{'foo':'bar'}\x8d\x9c\x08\xb1")
ALL_HEADER_TYPES = (
    b"\x00\x00\x00\x62\x00\x00\x00\x52\x03\xb5\xcb\x9c"
    b"\x010\x00\x011\x01\x012\x02\x02\x013\x03\x00\x03"
    b"\x014\x04\x00\x00\x00\x04\x015\x05\x00\x00\x00\x00\x00\x00\x00\x05"
    b"\x016\x06\x00\x05bytes\x017\x07\x00\x04utf8"
    b"\x018\x08\x00\x00\x00\x00\x00\x00\x00\x08\x019\x090123456789abcdef"
    b"\x63\x35\x36\x71")
ERROR_MESSAGE = (
    b"\x00\x00\x00\x52\x00\x00\x00\x42\xbf\x23\x63\x7e"
    b"\x0d:message-type\x07\x00\x05error"
    b"\x0b:error-code\x07\x00\x04code"
    b"\x0e:error-message\x07\x00\x07message"
    b"\x6b\x6c\xea\x3d")

BEDROCK_HEADERS = {":event-type": "contentBlockDelta", ":content-type": "application/json",
                   ":message-type": "event"}


def _botocore_decode(data: bytes) -> list[tuple[dict, bytes]]:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return [(m.headers, m.payload) for m in buffer]


def _ours(data: bytes) -> list[tuple[dict, bytes]]:
    return [(m.headers, m.payload) for m in EventStreamDecoder().feed(data)]


# -- our encoder, botocore's decoder ---------------------------------------------------------


@pytest.mark.parametrize("headers, payload", [
    ({}, b""),
    (BEDROCK_HEADERS, b'{"contentBlockIndex":0,"delta":{"text":"Hello"},"p":"abc"}'),
    ({"unicode-hdr": "héllo wörld ✓", "x": ""}, bytes(range(256)) * 40),  # binary, 10 KiB
    ({"n" * 255: "v" * 32767}, b"max-size header name and value"),
])
def test_botocore_decodes_what_we_encode(headers, payload):
    frame = encode_message(headers, payload)
    assert _botocore_decode(frame) == [(headers, payload)]


def test_botocore_decodes_a_run_of_our_frames():
    frames = [encode_message({**BEDROCK_HEADERS, "n": str(i)}, f'{{"i":{i}}}'.encode())
              for i in range(20)]
    decoded = _botocore_decode(b"".join(frames))
    assert [payload for _, payload in decoded] == [f'{{"i":{i}}}'.encode() for i in range(20)]
    assert decoded[7][0]["n"] == "7"


def test_encoder_refuses_headers_the_format_cannot_carry():
    with pytest.raises(EventStreamError):
        encode_message({"n" * 256: "v"}, b"")
    with pytest.raises(EventStreamError):
        encode_message({"n": "v" * 32768}, b"")
    with pytest.raises(EventStreamError):
        encode_message({"": "v"}, b"")


# -- frames we did not build, our decoder ----------------------------------------------------


def test_decodes_the_published_vectors():
    assert _ours(EMPTY_MESSAGE) == [({}, b"")]
    assert _ours(INT8_HEADER) == [({"byte": -1}, b"")]
    assert _ours(PAYLOAD_ONE_STR_HEADER) == [({"content-type": "application/json"},
                                              b"{'foo':'bar'}")]
    assert _ours(ERROR_MESSAGE) == [({":message-type": "error", ":error-code": "code",
                                      ":error-message": "message"}, b"")]


def test_decodes_every_header_type():
    [message] = EventStreamDecoder().feed(ALL_HEADER_TYPES)
    assert message.headers == {
        "0": True, "1": False, "2": 2, "3": 3, "4": 4, "5": 5, "6": b"bytes", "7": "utf8",
        "8": 8,  # timestamp: epoch milliseconds
        "9": uuid.UUID(bytes=b"0123456789abcdef"),
    }
    assert type(message.headers["0"]) is bool and type(message.headers["1"]) is bool
    assert message.payload == b""


def test_negative_numbers_and_wide_values_round_trip_through_a_hand_built_frame():
    # short -2, int -3, long -(2**40), timestamp 1700000000123 ms: beyond what one byte holds
    raw_headers = (b"\x01s\x03" + struct.pack("!h", -2) + b"\x01i\x04" + struct.pack("!i", -3)
                   + b"\x01l\x05" + struct.pack("!q", -(2 ** 40))
                   + b"\x01t\x08" + struct.pack("!q", 1700000000123))
    frame = _frame(raw_headers, b"payload")
    expected = {"s": -2, "i": -3, "l": -(2 ** 40), "t": 1700000000123}
    assert _ours(frame) == [(expected, b"payload")]
    assert _botocore_decode(frame) == [(expected, b"payload")]  # the frame itself is valid


def _frame(raw_headers: bytes, payload: bytes, total: int | None = None) -> bytes:
    """A frame with correct CRCs around whatever lengths we claim."""
    total = 16 + len(raw_headers) + len(payload) if total is None else total
    prelude = struct.pack("!II", total, len(raw_headers))
    prelude += struct.pack("!I", zlib.crc32(prelude))
    body = prelude + raw_headers + payload
    return body + struct.pack("!I", zlib.crc32(body))


# -- chunking --------------------------------------------------------------------------------


def _stream() -> tuple[bytes, list[tuple[dict, bytes]]]:
    frames = [EMPTY_MESSAGE, ALL_HEADER_TYPES, PAYLOAD_ONE_STR_HEADER]
    frames += [encode_message(BEDROCK_HEADERS, f'{{"delta":{{"text":"t{i}"}}}}'.encode())
               for i in range(5)]
    data = b"".join(frames)
    return data, _ours(data)


def test_feeding_byte_by_byte_yields_each_message_once_when_complete():
    data, expected = _stream()
    assert len(expected) == 8
    decoder = EventStreamDecoder()
    got: list[EventMessage] = []
    for i in range(len(data)):
        got += decoder.feed(data[i:i + 1])
    assert [(m.headers, m.payload) for m in got] == expected
    assert decoder.pending == 0


def test_random_splits_and_merges_give_the_same_messages():
    data, expected = _stream()
    rng = random.Random(7)
    for _ in range(50):
        cuts = sorted(rng.sample(range(1, len(data)), rng.randint(1, 12)))
        decoder = EventStreamDecoder()
        got: list[EventMessage] = []
        for start, end in zip([0] + cuts, cuts + [len(data)], strict=True):
            got += decoder.feed(data[start:end])
        assert [(m.headers, m.payload) for m in got] == expected


def test_a_partial_message_is_held_until_the_rest_arrives():
    frame = encode_message(BEDROCK_HEADERS, b'{"x":1}')
    decoder = EventStreamDecoder()
    assert decoder.feed(frame[:-1]) == []
    assert decoder.pending == len(frame) - 1
    [message] = decoder.feed(frame[-1:])
    assert message.payload == b'{"x":1}' and decoder.pending == 0


# -- corruption ------------------------------------------------------------------------------


def test_payload_corruption_fails_the_message_crc():
    frame = bytearray(encode_message(BEDROCK_HEADERS, b'{"text":"hello"}'))
    frame[-6] ^= 0x01  # a payload byte
    with pytest.raises(ChecksumMismatchError, match="message CRC"):
        EventStreamDecoder().feed(bytes(frame))


def test_prelude_corruption_fails_before_the_length_is_trusted():
    frame = bytearray(encode_message(BEDROCK_HEADERS, b"{}"))
    frame[1] ^= 0x40  # total length now claims ~4 MiB more
    decoder = EventStreamDecoder()
    with pytest.raises(ChecksumMismatchError, match="prelude CRC"):
        decoder.feed(bytes(frame[:12]))  # detected from the prelude alone


def test_crc_errors_are_value_errors_and_botocore_agrees_the_frame_is_bad():
    frame = bytearray(PAYLOAD_ONE_STR_HEADER)
    frame[20] = ord("+")  # "content-type" -> "content+type" (botocore's CORRUPTED_HEADERS)
    with pytest.raises(ValueError):
        EventStreamDecoder().feed(bytes(frame))
    with pytest.raises(Exception, match="Checksum"):
        _botocore_decode(bytes(frame))


def test_impossible_lengths_are_rejected_even_with_good_crcs():
    with pytest.raises(EventStreamError, match="smaller than its headers"):
        EventStreamDecoder().feed(_frame(b"\x01a\x07\x00\x01b", b"", total=16))
    with pytest.raises(EventStreamError, match="too large"):
        EventStreamDecoder().feed(_frame(b"", b"", total=16 + 25 * 1024 * 1024))


@pytest.mark.parametrize("raw_headers, error", [
    (b"\x01a\x0a", "unknown header value type 10"),
    (b"\x01a\x07\x00\x09abc", "runs past the end"),
    (b"\x04test\x07\x00\x04asdf\x04test\x07\x00\x04asdf", "duplicate header"),
    (b"\x01a\x07\x00\x02\xff\xfe", "not valid UTF-8"),
])
def test_malformed_headers_are_errors(raw_headers, error):
    with pytest.raises(EventStreamError, match=error):
        EventStreamDecoder().feed(_frame(raw_headers, b""))
