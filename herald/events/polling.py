"""The polling fallback: for a deployment that cannot expose webhooks (a small contractor's
server behind a home router, say), list Twilio messages through the real SDK and turn them into
what the webhooks would have delivered — inbound replies (:class:`InboundMessage`) and status events
(:class:`ProviderEvent`, kind ``sms_status``, id ``<MessageSid>:<status>``, exactly the webhook's
id, so a message seen by both is stored once).

A message's status changes after its ``date_sent`` (sent → delivered minutes later), so each
poll looks back :data:`LOOKBACK` before the cursor's watermark and leaves out what the previous
polls already reported (the cursor keeps those ids while they are inside the look-back). One
account's cursor is JSON: ``{"date_sent": "<latest date_sent, ISO>", "seen": [...]}``.

A deployment with a second Twilio account (``twilio_secondary``, a client's failover provider)
polls it too when ``TWILIO_SECONDARY_ACCOUNT_SID`` and ``TWILIO_SECONDARY_AUTH_TOKEN`` are set:
each account has its own cursor (:class:`AccountCursors`), and what it lists is labelled with
the account (``provider`` of a reply, ``source`` of a status event), as its webhooks would be.
One account failing to answer does not hold back the other's replies — a STOP sent to the
secondary number while the primary account is down still lands.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from herald.compliance.landing import InboundMessage
from herald.events.landing import ProviderEvent
from herald.settings import ENV_TWILIO_SECONDARY_SID, ENV_TWILIO_SECONDARY_TOKEN, ENV_TWILIO_SID, ENV_TWILIO_TOKEN

LOOKBACK = timedelta(hours=1)
ENV_POLLING = "HERALD_TWILIO_POLLING"
LIST_LIMIT = 1000  # messages per poll; the next poll continues from the watermark
PRIMARY = "twilio"
SECONDARY = "twilio_secondary"
# provider account → its credentials' variables (account SID, auth token)
ACCOUNT_VARIABLES: dict[str, tuple[str, str]] = {
    PRIMARY: (ENV_TWILIO_SID, ENV_TWILIO_TOKEN),
    SECONDARY: (ENV_TWILIO_SECONDARY_SID, ENV_TWILIO_SECONDARY_TOKEN),
}


def polling_enabled(env: Mapping[str, str] | None = None) -> bool:
    return ((os.environ if env is None else env).get(ENV_POLLING) or "").strip() == "1"


def _naive_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


@dataclass(frozen=True)
class PollCursor:
    """What the polls have seen: the latest ``date_sent`` and the ids reported within the look-back."""

    date_sent: datetime | None = None  # naive UTC
    seen: frozenset[str] = field(default_factory=frozenset)

    def to_json(self) -> str:
        return json.dumps({"date_sent": self.date_sent.isoformat() if self.date_sent else None,
                           "seen": sorted(self.seen)})  # fmt: skip

    @classmethod
    def from_json(cls, text: str | None) -> PollCursor:
        if not text:
            return cls()
        data = json.loads(text)
        when = data.get("date_sent")
        return cls(datetime.fromisoformat(when) if when else None, frozenset(data.get("seen") or ()))


@dataclass(frozen=True)
class AccountCursors:
    """One :class:`PollCursor` per Twilio account. JSON ``{"accounts": {"twilio": {...},
    "twilio_secondary": {...}}}``; a cursor stored before there were two accounts (one
    :class:`PollCursor`) reads as the primary's."""

    accounts: Mapping[str, PollCursor] = field(default_factory=dict)

    def get(self, provider: str) -> PollCursor:
        return self.accounts.get(provider) or PollCursor()

    def to_json(self) -> str:
        return json.dumps({"accounts": {name: json.loads(c.to_json()) for name, c in sorted(self.accounts.items())}})

    @classmethod
    def from_json(cls, text: str | None) -> AccountCursors:
        if not text:
            return cls()
        data = json.loads(text)
        if "accounts" not in data:
            return cls({PRIMARY: PollCursor.from_json(text)})
        return cls({name: PollCursor.from_json(json.dumps(c)) for name, c in data["accounts"].items()})


class PollResult(NamedTuple):
    """``(inbound, events, cursor)``: unpacks as the tuple the sensor needs."""

    inbound: list[InboundMessage]
    events: list[ProviderEvent]
    cursor: PollCursor


def _event_or_inbound(message: Any, now: datetime, provider: str) -> InboundMessage | ProviderEvent | None:
    sid = str(message.sid)
    sent = _naive_utc(message.date_sent)
    direction = str(message.direction or "")
    if direction == "inbound":
        return InboundMessage(
            inbound_id=sid, from_address=str(message.from_), to_address=str(message.to), body=str(message.body or ""),
            received_at=sent or now, channel="sms", provider=provider,
        )  # fmt: skip
    status = str(message.status or "")
    if not direction.startswith("outbound") or not status:
        return None
    payload = {"MessageSid": sid, "MessageStatus": status, "To": message.to, "From": message.from_, "via": "polling"}
    if message.error_code:
        payload["ErrorCode"] = str(message.error_code)
    when = _naive_utc(getattr(message, "date_updated", None)) or sent or now
    return ProviderEvent(f"{sid}:{status}", provider, "sms_status", payload, when, sid)


def poll_twilio(
    client: Any, since: PollCursor | datetime | None, now: datetime | None = None, provider: str = PRIMARY
) -> PollResult:
    """Lists the account's messages sent since the cursor (minus the look-back) with
    ``client.messages.list(date_sent_after=...)`` (a ``twilio.rest.Client``); returns the
    inbound messages and status events not reported before (labelled ``provider``, the
    account's name), and the next cursor."""
    now = now or datetime.now(UTC).replace(tzinfo=None)
    cursor = since if isinstance(since, PollCursor) else PollCursor(_naive_utc(since))
    kwargs: dict[str, Any] = {"limit": LIST_LIMIT}
    if cursor.date_sent is not None:
        kwargs["date_sent_after"] = (cursor.date_sent - LOOKBACK).replace(tzinfo=UTC)
    inbound: list[InboundMessage] = []
    events: list[ProviderEvent] = []
    latest = cursor.date_sent
    reported: dict[str, datetime] = {}
    for message in client.messages.list(**kwargs):
        sent = _naive_utc(message.date_sent)
        if sent is None:  # queued, not sent yet: a later poll sees it
            continue
        latest = max(latest, sent) if latest else sent
        found = _event_or_inbound(message, now, provider)
        if found is None:
            continue
        key = found.inbound_id if isinstance(found, InboundMessage) else found.event_id
        reported[key] = sent
        if key in cursor.seen:
            continue
        (inbound if isinstance(found, InboundMessage) else events).append(found)  # type: ignore[arg-type]
    horizon = (latest - LOOKBACK) if latest else None
    # keep an id only while a later poll can list it again
    seen = frozenset(k for k, sent in reported.items() if horizon is None or sent >= horizon)
    inbound.sort(key=lambda m: (m.received_at, m.inbound_id))
    events.sort(key=lambda e: (e.received_at, e.event_id))
    return PollResult(inbound, events, PollCursor(latest, seen))


class AccountsPollResult(NamedTuple):
    """What :func:`poll_accounts` found in every account that answered, the next cursors, and
    ``{account: error}`` for those that did not (their cursors unchanged: the next poll retries)."""

    inbound: list[InboundMessage]
    events: list[ProviderEvent]
    cursors: AccountCursors
    errors: dict[str, str]


def poll_accounts(
    clients: Mapping[str, Any], cursors: AccountCursors, now: datetime | None = None
) -> AccountsPollResult:
    """:func:`poll_twilio` for each account in ``clients`` (``{"twilio": Client, ...}``). An
    account whose listing fails is left out and named in ``errors``; when every account fails,
    the first error is raised (nothing was polled)."""
    import requests
    from twilio.base.exceptions import TwilioException

    inbound: list[InboundMessage] = []
    events: list[ProviderEvent] = []
    next_cursors = dict(cursors.accounts)
    errors: dict[str, str] = {}
    first_error: Exception | None = None
    for provider, client in clients.items():
        try:
            found = poll_twilio(client, cursors.get(provider), now, provider=provider)
        except (TwilioException, requests.RequestException) as exc:
            errors[provider] = f"{type(exc).__name__}: {exc}"
            first_error = first_error or exc
            continue
        inbound += found.inbound
        events += found.events
        next_cursors[provider] = found.cursor
    if clients and len(errors) == len(clients) and first_error is not None:
        raise first_error
    inbound.sort(key=lambda m: (m.received_at, m.inbound_id))
    events.sort(key=lambda e: (e.received_at, e.event_id))
    return AccountsPollResult(inbound, events, AccountCursors(next_cursors), errors)


def twilio_client_from_env(env: Mapping[str, str] | None = None, provider: str = PRIMARY) -> Any:
    """A ``twilio.rest.Client`` for one account (``twilio``: TWILIO_ACCOUNT_SID /
    TWILIO_AUTH_TOKEN and HERALD_TWILIO_BASE_URL for an emulator; ``twilio_secondary``: the
    ``TWILIO_SECONDARY_*`` and ``HERALD_TWILIO_SECONDARY_BASE_URL``), read at run time."""
    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client

    from herald.providers.factory import ENV_TWILIO_BASE_URL, ENV_TWILIO_SECONDARY_BASE_URL
    from herald.providers.twilio_sms import RewritingTwilioHttpClient
    from herald.settings import require

    env = os.environ if env is None else env
    sid, token = require(env, ACCOUNT_VARIABLES[provider], f"{ENV_POLLING}=1")
    url_variable = ENV_TWILIO_SECONDARY_BASE_URL if provider == SECONDARY else ENV_TWILIO_BASE_URL
    base_url = (env.get(url_variable) or "").strip()
    http_client = RewritingTwilioHttpClient(base_url, timeout=30) if base_url else TwilioHttpClient(timeout=30)
    return Client(sid, token, http_client=http_client)


def twilio_clients_from_env(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The accounts to poll: the primary (its credentials are required) and the secondary when
    either of its variables is set (then both are required: a half-set account is an error
    naming the missing variable, not an account silently left unpolled)."""
    env = os.environ if env is None else env
    clients = {PRIMARY: twilio_client_from_env(env, PRIMARY)}
    if any((env.get(v) or "").strip() for v in ACCOUNT_VARIABLES[SECONDARY]):
        clients[SECONDARY] = twilio_client_from_env(env, SECONDARY)
    return clients


def event_ids(items: Iterable[InboundMessage | ProviderEvent]) -> list[str]:
    return [i.inbound_id if isinstance(i, InboundMessage) else i.event_id for i in items]
