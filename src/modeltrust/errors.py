"""One error base for everything a user can cause; the CLI catches only this."""

from __future__ import annotations


class ModelTrustError(Exception):
    """An error with a one-line message and, where possible, a hint at the fix."""

    retryable = False
    """True where the same request may succeed later (a timeout, a 5xx or 429
    answer); set by the subclass that raises it, read by callers that retry."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class RulesError(ModelTrustError):
    """A rules file is missing, not YAML, or does not follow the rules schema."""


class SourceError(ModelTrustError):
    """An input path or remote target cannot be read."""


class ConfigError(ModelTrustError):
    """Options that do not fit together."""


class SignatureError(ModelTrustError):
    """A signature cannot be made or checked: a key, certificate or trust file
    is unusable, or keyless signing cannot reach sigstore."""


class AttestationError(ModelTrustError):
    """An attestation cannot be made or read (a verification failure is a result, not this)."""
