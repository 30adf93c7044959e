"""The claim's consent re-check: a marketing text whose consent was revoked, or has expired,
since the plan chose it is not sent.

The plan judged consent when it was built; a revocation recorded afterwards (an ingest API
``revoke``, a carrier STOP, an opt-out that reached Herald another way) or an expiry passing
meanwhile must still win. Inside the claim's transaction, for each claimed marketing SMS, the
latest consent event covering it — this client's or every client's (``'*'``), SMS or every
channel, its message type or ``all``, the same rule as the plan — is read: when it revokes, or
grants with an ``expires_at`` not after the claim, the message becomes ``suppressed`` with the
reason. A message with no consent event at all is left to the plan's decision (the client's
packet said so: ``sms_consent``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from herald.compliance.consent import CONSENT_EVENTS
from herald.delivery.outbox import OUTBOX
from herald.warehouse.connection import Session


def consent_lapsed(s: Session, rows: Sequence[Any], now: datetime) -> dict[str, str]:
    """message key → why its consent no longer holds, for the marketing texts of ``rows``."""
    keys = [r.message_key for r in rows if r.channel == "sms"]
    if not keys:
        return {}
    _, found = s.query(
        f"""select message_key, kind, source, occurred_at, expires_at from (
                select outbox.message_key, ev.kind, ev.source, ev.occurred_at, ev.expires_at,
                       row_number() over (
                           partition by outbox.message_key
                           order by ev.occurred_at desc, ev.recorded_at desc, ev.event_id desc
                       ) as recency
                from {OUTBOX} as outbox
                join {CONSENT_EVENTS} as ev
                  on ev.address = outbox.to_address
                 and ev.client_id in (outbox.client_id, '*') and ev.channel in ('sms', '*')
                 and ev.scope in (outbox.message_type, 'all')
                where outbox.message_key = any(?::varchar[]) and outbox.category = 'marketing'
            ) as latest
            where recency = 1""",
        [keys],
    )
    reasons: dict[str, str] = {}
    for key, kind, source, occurred_at, expires in found:
        if kind in ("opt_out", "revoke"):
            reasons[key] = f"no consent: revoked ({kind} via {source} at {occurred_at:%Y-%m-%d %H:%M} UTC)"
        elif expires is not None and expires <= now:
            reasons[key] = f"no consent: express written consent expired on {expires:%Y-%m-%d}"
    return reasons
