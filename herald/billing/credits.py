"""``herald_ops.credit_ledger``: every credit a client bought and spent; its balance is the sum.

Rules (Herald's promise: never send past the balance):

- **Who is metered.** A client is metered once it has any ledger row (its first
  ``herald credits add``); a client without one is unmetered, so deployments that do not sell
  credits are unaffected. ``billing_enabled: false`` in ``herald.yaml`` turns metering off for all
  (the caller passes ``pricing=None`` to the delivery engine, see :func:`delivery_pricing`).
- **Price.** An SMS costs ``pricing.sms_segment`` per segment (an unknown segment count counts as
  one), an email ``pricing.email``.
- **Reservation at claim time.** The delivery claim, in its own transaction, debits each claimed
  message of a metered client in claim order while it fits in the balance; one that does not fit
  becomes ``held`` with ``insufficient credits (balance X, needs Y)`` and is not sent. A cheaper
  message later in the claim may still fit. A purchase (``herald credits add``) puts the client's
  messages held for insufficient credits back to ``queued`` in its transaction, audited
  (``requeue``); the next claim checks the balance again.
- **Once per message.** A debit's ``entry_id`` is ``debit:<message_key>`` (the primary key), so a
  message claimed again (a retry, a requeue after a crash) is never charged twice, and one that
  is already paid for needs no credit to be sent.
- **Refund.** A message that ends ``failed`` (the provider refused it, or retries ran out) gets a
  ``release:<message_key>`` row refunding its debit at once; one that ends ``cancelled`` or
  ``suppressed`` after it was paid for (an opt-out that arrived between the claim and the send,
  a journey's exit) is refunded by the next delivery or reply run (:func:`release_unsent`). A
  message whose outcome is unknown stays charged (it may have been sent).
- **Concurrency.** On PostgreSQL the reservation takes a transaction-scoped advisory lock per
  metered client (sorted, so two claims never deadlock) before it reads the balance: two delivery
  runs at once queue on the lock and the second sees the first's debits. DuckDB has one writer.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from herald.compliance.audit import audit
from herald.config.models import HeraldConfig, Pricing
from herald.warehouse.connection import Session
from herald.warehouse.schema import OPS_SCHEMA, column_names

CREDIT_LEDGER = f"{OPS_SCHEMA}.credit_ledger"
LEDGER_COLUMNS = column_names(CREDIT_LEDGER)
KINDS = ("purchase", "debit", "reservation", "release", "adjustment")
DELIVERY_ACTOR = "delivery"
INSUFFICIENT_CREDITS = "insufficient credits"
# first key of PostgreSQL's two-key advisory lock: Herald's credit locks, apart from any other
ADVISORY_LOCK_CLASS = 7207
_OUTBOX = f"{OPS_SCHEMA}.outbox"
_PLACES = Decimal("0.0001")


class CreditError(ValueError):
    """A credit change that cannot be made (the message says why)."""


@dataclass(frozen=True)
class Balance:
    """A client's credits: ``balance`` = purchased + adjusted - spent (net of refunds)."""

    client_id: str
    balance: Decimal
    purchased: Decimal
    spent: Decimal  # debits net of releases, as a positive number
    last_purchase_entry_id: str | None
    last_purchase_amount: Decimal | None
    last_purchase_at: datetime | None


@dataclass(frozen=True)
class Claimed:
    """What the reservation needs to know of one claimed message."""

    message_key: str
    client_id: str
    channel: str


def credits(value: Any) -> Decimal:
    """A number of credits as the ledger stores it (4 decimal places)."""
    return Decimal(str(value)).quantize(_PLACES)


def show(value: Decimal) -> str:
    """Credits for people: no trailing zeros (``12.5``, ``3``)."""
    text = f"{value.normalize():f}"
    return "0" if text in ("-0", "") else text


def price(channel: str, sms_segments: int | None, pricing: Pricing) -> Decimal:
    """One message's price: an SMS per segment (unknown: 1), an email per message."""
    if channel == "sms":
        return credits(Decimal(str(pricing.sms_segment)) * max(1, int(sms_segments or 1)))
    return credits(pricing.email)


def delivery_pricing(herald: HeraldConfig) -> Pricing | None:
    """The pricing a delivery run meters with, or ``None`` when billing is off (``herald.yaml``)."""
    return herald.pricing if herald.billing_enabled else None


def _placeholders(n: int) -> str:
    return ", ".join("?" * n)


def _entry(entry_id: str, client_id: str, kind: str, amount: Decimal, message_key: str | None,
           note: str | None, actor: str, now: datetime) -> tuple:  # fmt: skip
    values = {"entry_id": entry_id, "client_id": client_id, "kind": kind, "amount": amount,
              "message_key": message_key, "note": note, "actor": actor, "created_at": now}  # fmt: skip
    return tuple(values[c] for c in LEDGER_COLUMNS)


def add_credits(
    session: Session,
    client_id: str,
    amount: Any,
    note: str | None,
    actor: str,
    now: datetime,
    *,
    kind: str = "purchase",
) -> str:
    """Records a purchase (amount > 0) or an adjustment (any non-zero amount), audited in the
    same transaction; returns the entry id."""
    if kind not in ("purchase", "adjustment"):
        raise CreditError(f"kind must be purchase or adjustment, got {kind!r}")
    try:
        value = credits(amount)
    except ArithmeticError:
        value = Decimal("NaN")
    if not value.is_finite():
        raise CreditError(f"amount must be a number of credits, got {amount!r}")
    if kind == "purchase" and value <= 0:
        raise CreditError(f"a purchase must add credits (amount > 0), got {show(value)}")
    if value == 0:
        raise CreditError("an adjustment of 0 credits changes nothing")
    entry_id = f"{kind}:{uuid.uuid4().hex}"
    session.insert_rows(
        CREDIT_LEDGER, LEDGER_COLUMNS, [_entry(entry_id, client_id, kind, value, None, note, actor, now)]
    )
    audit(session, actor, f"credit_{kind}", client_id, None, CREDIT_LEDGER, note,
          {"entry_id": entry_id, "amount": show(value)}, now=now)  # fmt: skip
    if kind == "purchase":
        requeue_held_for_credits(session, client_id, entry_id, actor, now)
    return entry_id


def requeue_held_for_credits(session: Session, client_id: str, entry_id: str, actor: str, now: datetime) -> int:
    """After a purchase: every message of the client held for insufficient credits goes back to
    ``queued`` (the claim re-checks the balance), audited; returns how many."""
    where = f"client_id = ? and status = 'held' and status_reason like '{INSUFFICIENT_CREDITS}%'"
    _, found = session.query(f"select count(*) from {_OUTBOX} where {where}", [client_id])
    count = int(found[0][0])
    if count:
        session.execute(
            f"update {_OUTBOX} set status = 'queued', status_reason = null, next_attempt_at = null, updated_at = ? "
            f"where {where}",
            [now, client_id],
        )
        audit(session, actor, "requeue", client_id, None, _OUTBOX, f"{INSUFFICIENT_CREDITS}: credits purchased",
              {"requeued": count, "entry_id": entry_id}, now=now)  # fmt: skip
    return count


def balances(session: Session, client_id: str | None = None) -> dict[str, Balance]:
    """Every metered client's balance (or one client's; empty when it has no ledger row)."""
    where, params = ("where client_id = ?", [client_id]) if client_id else ("", [])
    _, totals = session.query(
        f"""select client_id, sum(amount),
                   coalesce(sum(case when kind = 'purchase' then amount end), 0),
                   coalesce(-sum(case when kind in ('debit', 'reservation', 'release') then amount end), 0)
            from {CREDIT_LEDGER} {where} group by client_id order by client_id""",
        params,
    )
    _, purchases = session.query(
        f"""select client_id, entry_id, amount, created_at from {CREDIT_LEDGER}
            {where + (" and" if where else "where")} kind = 'purchase'
            order by client_id, created_at, entry_id""",
        params,
    )
    last = {client: (entry_id, credits(amount), at) for client, entry_id, amount, at in purchases}
    result = {}
    for client, balance, purchased, spent in totals:
        entry_id, amount, at = last.get(client, (None, None, None))
        result[client] = Balance(client, credits(balance), credits(purchased), credits(spent), entry_id, amount, at)
    return result


def _lock(session: Session, client_ids: Sequence[str]) -> None:
    """Serializes reservations per client on PostgreSQL until this transaction ends."""
    if session.engine != "postgres":
        return
    for client in sorted(client_ids):  # one order for every claim: no deadlock
        session.execute("select pg_advisory_xact_lock(?, hashtext(?))", [ADVISORY_LOCK_CLASS, client])


def reserve_credits(
    session: Session, claimed: Sequence[Claimed], pricing: Pricing, now: datetime, *, actor: str = DELIVERY_ACTOR
) -> set[str]:
    """Debits the claimed messages of metered clients in claim order while each fits in the
    balance; marks those that do not fit ``held`` (still in this transaction) and returns their
    keys. Messages of unmetered clients, and messages already paid for, are left as they are."""
    if not claimed:
        return set()
    clients = sorted({m.client_id for m in claimed})
    _, found = session.query(
        f"select distinct client_id from {CREDIT_LEDGER} where client_id in ({_placeholders(len(clients))})", clients
    )
    metered = sorted(c for (c,) in found)
    if not metered:
        return set()
    _lock(session, metered)
    billed = [m for m in claimed if m.client_id in metered]
    keys = [m.message_key for m in billed]
    _, paid_rows = session.query(
        f"select message_key from {CREDIT_LEDGER} where entry_id in ({_placeholders(len(keys))})",
        [f"debit:{k}" for k in keys],
    )
    paid = {k for (k,) in paid_rows}
    _, segment_rows = session.query(
        f"select message_key, sms_segments from {_OUTBOX} where message_key in ({_placeholders(len(keys))})", keys
    )
    segments = dict(segment_rows)
    _, balance_rows = session.query(
        f"select client_id, sum(amount) from {CREDIT_LEDGER} where client_id in ({_placeholders(len(metered))}) "
        "group by client_id",
        metered,
    )
    available = {client: credits(total) for client, total in balance_rows}
    debits: list[tuple] = []
    held: dict[str, list[str]] = {}  # reason → keys
    held_by_client: dict[str, int] = {}
    for m in billed:
        if m.message_key in paid:
            continue
        cost = price(m.channel, segments.get(m.message_key), pricing)
        if cost <= available[m.client_id]:
            available[m.client_id] -= cost
            note = (
                f"{m.channel}, {int(segments.get(m.message_key) or 1)} segment(s)" if m.channel == "sms" else m.channel
            )
            debits.append(
                _entry(f"debit:{m.message_key}", m.client_id, "debit", -cost, m.message_key, note, actor, now)
            )
            continue
        reason = f"{INSUFFICIENT_CREDITS} (balance {show(available[m.client_id])}, needs {show(cost)})"
        held.setdefault(reason, []).append(m.message_key)
        held_by_client[m.client_id] = held_by_client.get(m.client_id, 0) + 1
    session.insert_rows(CREDIT_LEDGER, LEDGER_COLUMNS, debits, ignore_existing=True)
    for reason, held_keys in held.items():
        session.execute(
            f"update {_OUTBOX} set status = 'held', status_reason = ?, updated_at = ? "
            f"where message_key in ({_placeholders(len(held_keys))}) and status = 'queued'",
            [reason, now, *held_keys],
        )
    for client, count in held_by_client.items():
        audit(session, actor, "hold", client, None, _OUTBOX, INSUFFICIENT_CREDITS,
              {"held": count, "balance": show(available[client])}, now=now)  # fmt: skip
    return {k for keys_ in held.values() for k in keys_}


# statuses a debited message can end in without having gone out, with the refund's note
UNSENT_REFUNDS = {
    "failed": "refund: the message failed",
    "cancelled": "refund: the message was withdrawn before it was sent",
    "suppressed": "refund: the recipient opted out before it was sent",
}


def release_unsent(session: Session, now: datetime, *, actor: str = DELIVERY_ACTOR) -> int:
    """Refunds, once each, every debited message that ended without going out: ``failed``,
    ``cancelled`` (an opt-out that arrived after the claim, a journey's exit) or ``suppressed``.
    Set-based over the whole ledger, so whichever path ended the message, the next delivery run
    (or reply run) gives its credits back. Returns how many were refunded."""
    statuses = list(UNSENT_REFUNDS)
    _, debits = session.query(
        f"""select ledger.client_id, ledger.amount, ledger.message_key, outbox.status
            from {CREDIT_LEDGER} as ledger
            join {_OUTBOX} as outbox on outbox.message_key = ledger.message_key
            where ledger.kind = 'debit' and outbox.status in ({_placeholders(len(statuses))})
              and not exists (select 1 from {CREDIT_LEDGER} as refund
                              where refund.entry_id = 'release:' || ledger.message_key)""",
        statuses,
    )
    rows = [_entry(f"release:{key}", client, "release", -credits(amount), key, UNSENT_REFUNDS[status], actor, now)
            for client, amount, key, status in debits]  # fmt: skip
    session.insert_rows(CREDIT_LEDGER, LEDGER_COLUMNS, rows, ignore_existing=True)
    return len(rows)


def release_failed(session: Session, message_keys: Sequence[str], now: datetime, *, actor: str = DELIVERY_ACTOR) -> int:
    """Refunds the debit of each message that is now ``failed`` (once: ``release:<key>``);
    returns how many were refunded."""
    if not message_keys:
        return 0
    keys = list(message_keys)
    _, debits = session.query(
        f"""select ledger.client_id, ledger.amount, ledger.message_key
            from {CREDIT_LEDGER} as ledger
            join {_OUTBOX} as outbox on outbox.message_key = ledger.message_key
            where ledger.entry_id in ({_placeholders(len(keys))}) and outbox.status = 'failed'""",
        [f"debit:{k}" for k in keys],
    )
    rows = [_entry(f"release:{key}", client, "release", -credits(amount), key, "refund: the message failed", actor, now)
            for client, amount, key in debits]  # fmt: skip
    session.insert_rows(CREDIT_LEDGER, LEDGER_COLUMNS, rows, ignore_existing=True)
    return len(rows)
