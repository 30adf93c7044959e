"""Providers that send nothing: deterministic provider-like ids and Twilio-style magic failures.

SMS ids are ``SM`` + 32 hex digits, email ids a UUID, both derived from the message key, so a
retried message gets the same id. Magic recipients fail permanently:

- ``+15005550001`` → 21211, invalid 'To' number
- ``+15005550002`` → 21612, cannot route to this number
- ``+15005550009`` → 21610, recipient blocked / cannot receive
- ``bounce@<any domain>`` and ``<anyone>@invalid.example`` → code ``bounce``, hard bounce

Everything "sent" is kept in ``sent`` (in order) for tests.
"""

from __future__ import annotations

import hashlib
import threading
import uuid

from herald.providers.base import (
    OutboundMessage,
    PermanentProviderError,
    Provider,
    SendResult,
)

MAGIC_SMS_FAILURES: dict[str, tuple[int, str]] = {
    "+15005550001": (21211, "invalid 'To' phone number"),
    "+15005550002": (21612, "cannot route to this number"),
    "+15005550009": (21610, "recipient is blocked or cannot receive messages"),
}
_EMAIL_NAMESPACE = uuid.UUID("6f1c1d2e-8f0b-4a52-9a53-1f3f6d1c0e11")


def sandbox_sms_id(message_key: str) -> str:
    return "SM" + hashlib.sha256(f"sms:{message_key}".encode()).hexdigest()[:32]


def sandbox_email_id(message_key: str) -> str:
    return str(uuid.uuid5(_EMAIL_NAMESPACE, message_key))


def _email_bounces(address: str) -> bool:
    local, _, domain = address.strip().lower().rpartition("@")
    return local == "bounce" or domain == "invalid.example"


class _SandboxProvider(Provider):
    def __init__(self) -> None:
        self.sent: list[OutboundMessage] = []
        self._lock = threading.Lock()

    def _record(self, message: OutboundMessage) -> None:
        with self._lock:
            self.sent.append(message)


class SandboxSmsProvider(_SandboxProvider):
    name = "sandbox_sms"
    channel = "sms"

    def send(self, message: OutboundMessage) -> SendResult:
        self._check_channel(message)
        failure = MAGIC_SMS_FAILURES.get(message.to.strip())
        if failure:
            code, reason = failure
            raise PermanentProviderError(reason, provider=self.name, code=code)
        self._record(message)
        return SendResult(self.name, sandbox_sms_id(message.message_key), "queued")


class SandboxEmailProvider(_SandboxProvider):
    name = "sandbox_email"
    channel = "email"

    def send(self, message: OutboundMessage) -> SendResult:
        self._check_channel(message)
        if _email_bounces(message.to):
            raise PermanentProviderError("hard bounce", provider=self.name, code="bounce")
        self._record(message)
        return SendResult(self.name, sandbox_email_id(message.message_key), "sent")
