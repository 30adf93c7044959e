"""``herald_ops.outbox``: one row per rendered message, keyed by its deterministic message key.

Enqueueing is idempotent: a row whose key is already there is left as it is (insert or
ignore), so re-running a plan, a crashed enqueue or a second run of the same occurrence adds
nothing. Statuses:

- ``queued``     — rendered, waiting for ``send_after`` (and ``next_attempt_at`` after a retry)
- ``held``       — will not be sent without a person: the template failed for this contact, or
                   an SMS's outcome was unknown after a crash and the provider could not confirm it
- ``sending``    — claimed by a delivery run (``claim_token``, ``claimed_at``)
- ``sent``       — the provider accepted it (``provider_message_id``)
- ``failed``     — the provider refused it permanently, or transient errors outlasted the retries
- ``suppressed`` — the recipient was suppressed when the message was claimed
- ``cancelled``  — withdrawn before sending (an opt-out for its scope, a paused campaign)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from herald.warehouse.connection import Session, Warehouse
from herald.warehouse.schema import OPS_SCHEMA, column_names

OUTBOX = f"{OPS_SCHEMA}.outbox"
ATTEMPTS = f"{OPS_SCHEMA}.delivery_attempts"
SUPPRESSIONS = f"{OPS_SCHEMA}.suppressions"

STATUSES = ("queued", "held", "sending", "sent", "failed", "suppressed", "cancelled")
FINAL_STATUSES = frozenset({"sent", "failed", "suppressed", "cancelled"})


@dataclass(frozen=True)
class OutboxMessage:
    """A rendered message ready to enqueue (status ``queued``) or held with its reason."""

    message_key: str
    client_id: str
    campaign: str
    step: str
    variant: str
    occurrence: str
    contact_id: str
    message_type: str
    category: str
    channel: str
    to_address: str
    sender: str | None
    send_after: datetime  # naive UTC
    template: str | None = None
    subject: str | None = None
    body_text: str | None = None
    body_html: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    sms_segments: int | None = None
    sms_encoding: str | None = None
    status: str = "queued"
    status_reason: str | None = None

    def row(self, now: datetime) -> tuple:
        values = {
            **{name: getattr(self, name, None) for name in column_names(OUTBOX)},
            "headers": json.dumps(dict(self.headers)) if self.headers else None,
            "attempts": 0,
            "next_attempt_at": None,
            "claim_token": None,
            "claimed_at": None,
            "provider": None,
            "provider_message_id": None,
            "enqueued_at": now,
            "sent_at": None,
            "updated_at": now,
        }
        return tuple(values[name] for name in column_names(OUTBOX))


def enqueue(session: Session, messages: Iterable[OutboxMessage], now: datetime) -> int:
    """Insert ``messages`` whose key is not in the outbox yet; returns how many were new."""
    rows = [m.row(now) for m in messages]
    if not rows:
        return 0
    before = session.scalar(f"select count(*) from {OUTBOX}")
    session.insert_rows(OUTBOX, column_names(OUTBOX), rows, ignore_existing=True)
    return int(session.scalar(f"select count(*) from {OUTBOX}")) - int(before)


def status_counts(warehouse: Warehouse, client_id: str | None = None) -> dict[str, int]:
    """Messages per outbox status (optionally for one client)."""
    where, params = ("where client_id = ?", [client_id]) if client_id else ("", [])
    with warehouse.session(read_only=True) as s:
        _, rows = s.query(f"select status, count(*) from {OUTBOX} {where} group by status", params)
    return {status: int(n) for status, n in rows}


CANCELLABLE = ("queued", "held")  # a message already `sending` is stopped by the claim's re-checks


def cancel_messages(session: Session, where: str, params: list[Any], reason: str, now: datetime) -> list[str]:
    """Cancels the queued and held outbox messages matching ``where`` (SQL over the outbox's
    columns, with ``?`` parameters); returns their keys. The one way Herald withdraws messages
    (an opt-out, an exited journey): the caller audits what it cancelled and why."""
    statuses = ", ".join("?" * len(CANCELLABLE))
    _, rows = session.query(
        f"select message_key from {OUTBOX} where ({where}) and status in ({statuses}) order by message_key",
        [*params, *CANCELLABLE],
    )
    keys = [r[0] for r in rows]
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        session.execute(
            f"update {OUTBOX} set status = 'cancelled', status_reason = ?, updated_at = ? "
            f"where message_key in ({', '.join('?' * len(chunk))}) and status in ({statuses})",
            [reason, now, *chunk, *CANCELLABLE],
        )
    return keys
