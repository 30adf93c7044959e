"""SMS through Twilio's real SDK (the synchronous client only).

The async client retries POSTs on HTTP 500 and can send the same SMS twice, and Twilio's
message creation has no idempotency key, so this provider never retries by itself: it classifies
the failure and lets the caller decide. A timeout after the request was sent is reported as
transient with ``outcome_unknown`` set, since Twilio may have accepted the message: the
delivery engine then looks the message up (:meth:`TwilioSmsProvider.lookup`) instead of resending.

``base_url`` (tests, emulators) points the SDK at another server: a ``TwilioHttpClient``
subclass rewrites every ``*.twilio.com`` URL to it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from herald.providers.base import (
    OutboundMessage,
    OutcomeUnknownError,
    PermanentProviderError,
    Provider,
    SendResult,
    TransientProviderError,
)

PERMANENT_CODES = {
    21211: "invalid 'To' phone number",
    21612: "cannot route to this number",
    21610: "recipient has unsubscribed (STOP) or cannot receive",
    21614: "'To' number is not a mobile number",
}
RATE_LIMIT_CODES = {20429, 429}
LOOKUP_LIMIT = 200  # messages listed per lookup (one recipient since one day: plenty)


class RewritingTwilioHttpClient(TwilioHttpClient):
    """Sends every request meant for ``*.twilio.com`` to ``base_url`` instead."""

    def __init__(self, base_url: str, **kwargs) -> None:
        super().__init__(**kwargs)
        target = urlsplit(base_url)
        if not target.scheme or not target.netloc:
            raise ValueError(f"base_url must be absolute, got {base_url!r}")
        self._target = target

    def rewrite(self, url: str) -> str:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if host != "twilio.com" and not host.endswith(".twilio.com"):
            return url
        path = self._target.path.rstrip("/") + parts.path
        return urlunsplit((self._target.scheme, self._target.netloc, path, parts.query, ""))

    def request(self, method, url, *args, **kwargs):
        return super().request(method, self.rewrite(url), *args, **kwargs)


def classify_twilio_error(exc: TwilioRestException, provider: str) -> Exception:
    """The taxonomy error for one ``TwilioRestException`` (a pure function, table-tested)."""
    code, status = exc.code, exc.status
    reason = str(exc.msg or f"HTTP {status}")
    if code in PERMANENT_CODES:
        return PermanentProviderError(reason, provider=provider, code=code)
    if code in RATE_LIMIT_CODES or status == 429:
        return TransientProviderError(reason, provider=provider, code=code or 429)
    if status >= 500:
        return TransientProviderError(reason, provider=provider, code=code or status)
    # Other 4xx: the request itself is wrong (bad parameters, credentials): retrying won't help.
    return PermanentProviderError(reason, provider=provider, code=code or status)


class TwilioSmsProvider(Provider):
    name = "twilio"
    channel = "sms"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        messaging_service_sid: str | None = None,
        base_url: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        http_client = (
            RewritingTwilioHttpClient(base_url, timeout=timeout) if base_url else TwilioHttpClient(timeout=timeout)
        )
        self.client = Client(account_sid, auth_token, http_client=http_client)
        self.messaging_service_sid = messaging_service_sid

    def send(self, message: OutboundMessage) -> SendResult:
        self._check_channel(message)
        kwargs = {"to": message.to, "body": message.body}
        if self.messaging_service_sid:
            kwargs["messaging_service_sid"] = self.messaging_service_sid
        elif message.sender:
            kwargs["from_"] = message.sender
        else:
            raise ValueError(f"{message.message_key}: no sender and no messaging service")
        try:
            created = self.client.messages.create(**kwargs)
        except TwilioRestException as exc:
            raise classify_twilio_error(exc, self.name) from exc
        except requests.Timeout as exc:
            # A read timeout leaves the outcome unknown: Twilio may have accepted the message.
            raise TransientProviderError(
                f"timeout: {exc}",
                provider=self.name,
                outcome_unknown=not isinstance(exc, requests.ConnectTimeout),
            ) from exc
        except requests.ConnectionError as exc:
            raise TransientProviderError(f"connection failed: {exc}", provider=self.name) from exc
        return SendResult(self.name, created.sid, str(created.status or "queued"))

    def __repr__(self) -> str:  # never the auth token
        return f"TwilioSmsProvider(account_sid={self.client.username!r})"

    def lookup(self, message: OutboundMessage, *, since: datetime) -> SendResult | None:
        """The message Twilio lists to this recipient (from this sender) with this body, sent on
        or after ``since``'s day. Twilio only filters ``DateSent`` by day and lists a message
        that is still queued without one, so "not listed" is never proof it was not accepted:
        that case raises :class:`OutcomeUnknownError` rather than returning ``None``."""
        self._check_channel(message)
        kwargs: dict = {
            "to": message.to,
            "date_sent_after": datetime(since.year, since.month, since.day) - timedelta(days=1),
            "limit": LOOKUP_LIMIT,
        }
        if message.sender and not self.messaging_service_sid:
            kwargs["from_"] = message.sender
        try:
            listed = self.client.messages.list(**kwargs)
        except (TwilioRestException, requests.RequestException) as exc:
            raise OutcomeUnknownError(f"listing messages failed: {exc}", provider=self.name) from exc
        for found in listed:
            if found.body == message.body:
                return SendResult(self.name, found.sid, str(found.status or "queued"))
        raise OutcomeUnknownError(
            f"no message to this recipient with this body listed since {since:%Y-%m-%d}",
            provider=self.name,
        )
