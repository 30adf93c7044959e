"""``herald_ops.consent_events``: the append-only consent history, and the state it implies.

An event is never updated or deleted: the current consent for an address is the latest event
that covers the scope asked about (latest wins; ``opt_in``/``confirm`` grant, ``opt_out``/``revoke``
revoke). Event ids are deterministic (md5 of the source key and content), so recording the
same event twice — a re-applied reply, a re-loaded packet — adds nothing.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from herald.warehouse.connection import Session
from herald.warehouse.schema import OPS_SCHEMA, column_names

CONSENT_EVENTS = f"{OPS_SCHEMA}.consent_events"
_COLUMNS = column_names(CONSENT_EVENTS)

KINDS = ("opt_in", "opt_out", "revoke", "confirm")
GRANTED, REVOKED = "granted", "revoked"
STATE_OF_KIND = {"opt_in": GRANTED, "confirm": GRANTED, "opt_out": REVOKED, "revoke": REVOKED}


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
) -> str:
    """Appends one consent event (insert or ignore by its deterministic id); returns the id.

    ``source_key`` identifies what the event comes from (an inbound message id, a packet and
    line, a page request): the same key and content is the same event."""
    if kind not in KINDS:
        raise ValueError(f"unknown consent event kind {kind!r}; expected one of {', '.join(KINDS)}")
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
    }
    exists = session.scalar(f"select count(*) from {CONSENT_EVENTS} where event_id = ?", [event_id])
    if not exists:
        session.execute(
            f"insert into {CONSENT_EVENTS} ({', '.join(_COLUMNS)}) values ({', '.join('?' * len(_COLUMNS))})",
            [values[c] for c in _COLUMNS],
        )
    return event_id


def current_consent(session: Session, client_id: str, channel: str, address: str, scope: str = "all") -> str | None:
    """``granted``, ``revoked`` or None (no event) for an address under ``scope``: the latest
    event of the client (or of every client, ``'*'``) on the channel (or ``'*'``) whose scope
    is ``scope`` or ``'all'``."""
    _, rows = session.query(
        f"""select kind from {CONSENT_EVENTS}
            where client_id in (?, '*') and channel in (?, '*') and address = ? and scope in (?, 'all')
            order by occurred_at desc, recorded_at desc, event_id desc
            limit 1""",
        [client_id, channel, address, scope],
    )
    return STATE_OF_KIND.get(rows[0][0]) if rows else None
