"""The one interface every delivery provider implements, and the errors it may raise.

A provider turns one :class:`OutboundMessage` into one :class:`SendResult` or raises:

- :class:`TransientProviderError` — try again later (HTTP 429, 5xx, timeouts, refused
  connections); carries ``retry_after`` (seconds) when the provider said so.
- :class:`PermanentProviderError` — never retry this message (invalid or unroutable number,
  validation error, exhausted quota); carries the provider's ``code`` and a ``reason``.

Implementations: :mod:`herald.providers.sandbox` (sends nothing),
:mod:`herald.providers.twilio_sms` and :mod:`herald.providers.resend_email`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Channel = Literal["sms", "email"]
CHANNELS: tuple[Channel, ...] = ("sms", "email")


@dataclass(frozen=True)
class OutboundMessage:
    """One message to one recipient. ``message_key`` is stable across retries of the same
    message (it becomes the idempotency key where the provider supports one)."""

    message_key: str
    channel: Channel
    to: str
    sender: str | None = None
    body: str | None = None  # sms
    subject: str | None = None  # email
    html: str | None = None
    text: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise ValueError(f"channel must be one of {CHANNELS}, got {self.channel!r}")
        if not self.message_key:
            raise ValueError("message_key must not be empty")
        if self.channel == "sms" and not self.body:
            raise ValueError("an sms needs a body")
        if self.channel == "email" and not (self.html or self.text):
            raise ValueError("an email needs html or text")


@dataclass(frozen=True)
class SendResult:
    provider: str
    provider_message_id: str
    status: str


class ProviderError(Exception):
    """Base of the taxonomy; ``provider`` names who raised it."""

    def __init__(self, reason: str, *, provider: str, code: int | str | None = None) -> None:
        super().__init__(f"{provider}: {reason}" + (f" (code {code})" if code is not None else ""))
        self.reason = reason
        self.provider = provider
        self.code = code


class TransientProviderError(ProviderError):
    """Retry later: rate limited, provider error, timeout, connection refused."""

    def __init__(
        self,
        reason: str,
        *,
        provider: str,
        code: int | str | None = None,
        retry_after: float | None = None,
        outcome_unknown: bool = False,
    ) -> None:
        super().__init__(reason, provider=provider, code=code)
        self.retry_after = retry_after
        # True when the request may have reached the provider (a read timeout): without an
        # idempotency key a retry could deliver the message twice.
        self.outcome_unknown = outcome_unknown


class PermanentProviderError(ProviderError):
    """Do not retry: the message itself (or the account's quota) is the problem."""


class OutcomeUnknownError(Exception):
    """A provider cannot tell whether it accepted a message (see :meth:`Provider.lookup`)."""

    def __init__(self, reason: str, *, provider: str) -> None:
        super().__init__(f"{provider}: {reason}")
        self.reason = reason
        self.provider = provider


class QuotaExceededError(PermanentProviderError):
    """The account's daily/monthly quota is used up: retrying now only burns requests.
    Permanent for this attempt; a scheduler may pause the channel until the quota resets."""


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header given as a number (HTTP dates are ignored)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


BatchItemResult = SendResult | PermanentProviderError


class Provider(ABC):
    """A delivery provider for one channel.

    ``max_batch_size`` > 1 means :meth:`send_batch` hands that many messages to the provider
    in one request. ``rate_per_second`` is the request rate the delivery engine keeps to per
    provider and sender (0 = no limit); the factory sets it from the environment.
    """

    name: str
    channel: Channel
    max_batch_size: int = 1
    rate_per_second: float = 0.0

    @abstractmethod
    def send(self, message: OutboundMessage) -> SendResult:
        """Hand one message to the provider; raise a :class:`ProviderError` on failure."""

    def send_batch(self, messages: Sequence[OutboundMessage]) -> list[BatchItemResult]:
        """Send several messages in one request: one result per message, in order (a
        :class:`PermanentProviderError` for a message the provider refused). A failure of the
        whole request raises, like :meth:`send`. Without a batch API: one :meth:`send` each."""
        results: list[BatchItemResult] = []
        for message in messages:
            try:
                results.append(self.send(message))
            except PermanentProviderError as exc:
                results.append(exc)
        return results

    @contextmanager
    def group_commit(self) -> Iterator[None]:
        """The sends made inside this block are made durable together when it ends (one
        journal fsync for the block instead of one per send, where the provider keeps a journal).

        The delivery engine wraps each claimed batch's sends in it and records the batch's
        outcomes only after the block has ended, so an outcome in the outbox is always durable
        at the provider first. Real providers keep their own records: nothing to do (default)."""
        yield

    def lookup(self, message: OutboundMessage, *, since: datetime) -> SendResult | None:
        """Did the provider accept ``message`` (sent at or after ``since``, naive UTC)?

        A :class:`SendResult` if it did, ``None`` if it certainly did not; raises
        :class:`OutcomeUnknownError` when it cannot tell (the default).
        """
        raise OutcomeUnknownError("this provider cannot look up past sends", provider=self.name)

    def _check_channel(self, message: OutboundMessage) -> None:
        if message.channel != self.channel:
            raise ValueError(f"{self.name} sends {self.channel}, not {message.channel} ({message.message_key})")
