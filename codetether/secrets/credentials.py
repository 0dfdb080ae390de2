"""The result of looking up a provider's secrets, whichever source answered."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Source = Literal["vault", "store", "env"]


@dataclass
class Credentials:
    provider: str
    source: Source
    where: str  # human-readable origin, e.g. "vault secret/codetether/providers/openai"
    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    organization: str | None = None
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    extras: dict[str, str] = field(default_factory=dict, repr=False)

    def secret_values(self) -> tuple[str, ...]:
        """Every secret string held here, for redaction of error text."""
        values = [self.api_key or ""] + list(self.extras.values()) + list(self.headers.values())
        return tuple(v for v in values if isinstance(v, str) and len(v) >= 8)
