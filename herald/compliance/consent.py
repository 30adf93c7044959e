"""``herald_ops.consent_events``: the append-only consent history, and the state it implies.

An event is never updated or deleted: the current consent for an address is the latest event
that covers the scope asked about (latest wins; ``opt_in``/``confirm`` grant, ``opt_out``/``revoke``
revoke). Event ids are deterministic (md5 of the source key and content), so recording the
same event twice — a re-applied reply, a re-loaded packet — adds nothing.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from herald.warehouse.connection import Session
from herald.warehouse.schema import OPS_SCHEMA, column_names

CONSENT_EVENTS = f"{OPS_SCHEMA}.consent_events"
_COLUMNS = column_names(CONSENT_EVENTS)

KINDS = ("opt_in", "opt_out", "revoke", "confirm")
GRANTED, REVOKED, EXPIRED = "granted", "revoked", "expired"
STATE_OF_KIND = {"opt_in": GRANTED, "confirm": GRANTED, "opt_out": REVOKED, "revoke": REVOKED}
CHANNELS = ("sms", "email")
LEVELS = ("express_written", "prior_express")


class ConsentError(ValueError):
    """A consent event Herald cannot record (unknown scope, kind, channel or level): the
    message names the field and the value."""


def check_event(channel: str, kind: str, scope: str, consent_level: str | None = None) -> None:
    """Raises :class:`ConsentError` naming what is wrong with an event's vocabulary."""
    from herald.config.models import CONSENT_SCOPES, MESSAGE_TYPES

    if kind not in KINDS:
        raise ConsentError(f"unknown consent event kind {kind!r}; expected one of {', '.join(KINDS)}")
    if channel not in CHANNELS and channel != "*":
        raise ConsentError(f"unknown channel {channel!r}; expected sms or email")
    if scope not in CONSENT_SCOPES:
        raise ConsentError(
            f"unknown consent scope {scope!r}; expected 'all' or a message type ({', '.join(MESSAGE_TYPES)})"
        )
    if consent_level is not None and consent_level not in LEVELS:
        raise ConsentError(f"unknown consent level {consent_level!r}; expected one of {', '.join(LEVELS)}")


def expires_at(client: Any, scope: str, granted_at: datetime) -> datetime | None:
    """When a grant for ``scope`` given at ``granted_at`` stops counting: the client's
    ``consent.expires_after`` for the scope (else for 'all'); None when it does not expire."""
    if client is None:
        return None
    lasts: timedelta | None = client.config.consent.expiry(scope)
    return granted_at + lasts if lasts else None


def wording_hash(text: str) -> str:
    """The sha256 of a disclosure's exact wording (its version): what the person agreed to."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def consent_event_id(
    source_key: str, client_id: str, channel: str, address: str, kind: str, scope: str, contact_id: str | None
) -> str:
    text = "|".join([source_key, client_id, channel, address, kind, scope, contact_id or ""])
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def record_consent(
    session: Session,
    *,
    client_id: str,
    channel: str,
    address: str,
    kind: str,
    scope: str,
    source: str,
    source_key: str,
    occurred_at: datetime,
    recorded_at: datetime,
    contact_id: str | None = None,
    consent_level: str | None = None,
    evidence: str | None = None,
    expires_at: datetime | None = None,
    wording_sha256: str | None = None,
) -> str:
    """Appends one consent event (insert or ignore by its deterministic id); returns the id.

    ``source_key`` identifies what the event comes from (an inbound message id, a packet and
    line, a page request): the same key and content is the same event."""
    if kind not in KINDS:  # the scope is checked where events come from outside (check_event)
        raise ConsentError(f"unknown consent event kind {kind!r}; expected one of {', '.join(KINDS)}")
    event_id = consent_event_id(source_key, client_id, channel, address, kind, scope, contact_id)
    values = {
        "event_id": event_id,
        "client_id": client_id,
        "contact_id": contact_id,
        "channel": channel,
        "address": address,
        "kind": kind,
        "scope": scope,
        "consent_level": consent_level,
        "source": source,
        "evidence": evidence,
        "occurred_at": occurred_at,
        "recorded_at": recorded_at,
        "expires_at": expires_at if STATE_OF_KIND[kind] == GRANTED else None,
        "wording_sha256": wording_sha256,
    }
    exists = session.scalar(f"select count(*) from {CONSENT_EVENTS} where event_id = ?", [event_id])
    if not exists:
        session.execute(
            f"insert into {CONSENT_EVENTS} ({', '.join(_COLUMNS)}) values ({', '.join('?' * len(_COLUMNS))})",
            [values[c] for c in _COLUMNS],
        )
    return event_id


def current_consent(
    session: Session, client_id: str, channel: str, address: str, scope: str = "all", now: datetime | None = None
) -> str | None:
    """``granted``, ``revoked``, ``expired`` (a grant whose ``expires_at`` is not after ``now``)
    or None (no event) for an address under ``scope``: the latest event of the client (or of
    every client, ``'*'``) on the channel (or ``'*'``) whose scope is ``scope`` or ``'all'``."""
    _, rows = session.query(
        f"""select kind, expires_at from {CONSENT_EVENTS}
            where client_id in (?, '*') and channel in (?, '*') and address = ? and scope in (?, 'all')
            order by occurred_at desc, recorded_at desc, event_id desc
            limit 1""",
        [client_id, channel, address, scope],
    )
    if not rows:
        return None
    state = STATE_OF_KIND.get(rows[0][0])
    if state == GRANTED and now is not None and rows[0][1] is not None and rows[0][1] <= now:
        return EXPIRED
    return state
