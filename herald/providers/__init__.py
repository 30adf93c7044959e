"""Delivery providers: one interface (:class:`Provider`), three implementations."""

from herald.providers.base import (
    OutboundMessage,
    PermanentProviderError,
    Provider,
    ProviderError,
    QuotaExceededError,
    SendResult,
    TransientProviderError,
)
from herald.providers.sandbox import SandboxEmailProvider, SandboxSmsProvider

__all__ = [
    "OutboundMessage",
    "PermanentProviderError",
    "Provider",
    "ProviderError",
    "QuotaExceededError",
    "SandboxEmailProvider",
    "SandboxSmsProvider",
    "SendResult",
    "TransientProviderError",
]
