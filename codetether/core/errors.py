"""The one error tree of CodeTether.

Every error a user can cause or fix carries a message saying *what* went wrong and a ``hint``
saying *how to fix it*; the CLI prints ``error: <message>`` plus the hint on one line and exits
with ``exit_code``. Anything that is not a ``CodetetherError`` is a bug and keeps its traceback
(only when ``CODETETHER_RAISE_ERRORS=1`` do user errors keep theirs, for debugging).

    CodetetherError
    ├── UsageError                  bad command-line use (exit 2)
    ├── ConfigError                 bad config file / value
    ├── SecretsError                where keys come from
    │   ├── VaultError              Vault unreachable, denied, malformed
    │   └── MissingCredentialsError no key anywhere for a provider
    └── ProviderError               talking to an LLM
        ├── ProviderAuthError       key rejected (401/403)
        ├── ContextLengthError      prompt larger than the model's window
        ├── RateLimitError          429 after the retries ran out
        ├── ProviderUnavailableError 5xx / connection failures after retries
        ├── ProviderStreamError     stream broke off or was malformed mid-way
        ├── ProviderRequestError    other 4xx (bad model id, bad request)
        └── CancelledError          cancelled from another thread
"""

from __future__ import annotations


class CodetetherError(Exception):
    """Base of every error meant for a user: message + optional fix + exit code."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        """The single line the CLI prints: what happened, then how to fix it."""
        return f"{self.message}: {self.hint}" if self.hint else self.message


class UsageError(CodetetherError):
    exit_code = 2


class ConfigError(CodetetherError):
    pass


class SecretsError(CodetetherError):
    pass


class VaultError(SecretsError):
    pass


class MissingCredentialsError(SecretsError):
    pass


class ProviderError(CodetetherError):
    """A failure talking to a provider; always says which provider and model."""

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        provider: str = "",
        model: str = "",
        status: int | None = None,
    ) -> None:
        super().__init__(message, hint)
        self.provider = provider
        self.model = model
        self.status = status


class ProviderAuthError(ProviderError):
    pass


class ContextLengthError(ProviderError):
    pass


class RateLimitError(ProviderError):
    pass


class ProviderUnavailableError(ProviderError):
    pass


class ProviderStreamError(ProviderError):
    pass


class ProviderRequestError(ProviderError):
    pass


class CancelledError(ProviderError):
    exit_code = 130
