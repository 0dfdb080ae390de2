"""Keep secrets out of every string that can reach a log, an error or a file.

Providers echo parts of keys back in error bodies ("Incorrect API key provided: sk-ab***yz"), so
error text from the network always goes through ``redact`` with the key in hand.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_KEY_SHAPES = re.compile(
    r"(sk-ant-[A-Za-z0-9_\-]{8,}|sk-[A-Za-z0-9_\-*]{8,}|hvs\.[A-Za-z0-9_\-]{8,}"
    r"|AKIA[0-9A-Z]{12,}|ghp_[A-Za-z0-9]{20,}|gh[ous]_[A-Za-z0-9]{20,}|AIza[0-9A-Za-z_\-]{20,})"
)
MASK = "[redacted]"


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Replace each given secret, and anything shaped like a well-known key, with ``[redacted]``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, MASK)
    return _KEY_SHAPES.sub(MASK, text)
