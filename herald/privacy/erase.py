"""Erasure: the subject's personal data removed or irreversibly masked in every table, in one
transaction of the warehouse (DuckDB or PostgreSQL), so nothing is ever half-applied.

What stays: rows the accounting needs (a packet's line, an outbox key, a ledger entry) with the
personal values masked, contact ids replaced by their salted hash; a hashed suppression per
erased address (``reason = 'erased'``, ``address = 'erased:' + sha256(salt + address)``), which
the message plan checks, so the person is never messaged again; one ``herald_ops.audit_log`` row
and one ``herald_ops.privacy_requests`` row with counts only. The marts lose the subject's rows
at once; dbt rebuilds them from the masked sources without the person.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from herald.billing.credits import release_unsent
from herald.compliance.audit import audit
from herald.privacy.selections import selections
from herald.privacy.subject import (
    REQUESTS,
    PrivacyError,
    Subject,
    already_erased,
    hashed,
    resolve,
    salt,
    subject_hashes,
)
from herald.warehouse.connection import Session
from herald.warehouse.schema import OPS_SCHEMA, column_names

ACTION = "erase"
ERASED_REASON = "erased"
SUPPRESSIONS = f"{OPS_SCHEMA}.suppressions"


@dataclass(frozen=True)
class Erasure:
    request_id: str
    status: str  # done | dry_run | already_erased
    counts: dict[str, int]
    contacts: int
    message: str


def record_request(
    session: Session, client_id: str, kind: str, subject_hash: str, actor: str, source: str, status: str,
    now: datetime, counts: dict[str, int] | None, message: str,
) -> str:  # fmt: skip
    request_id = uuid.uuid4().hex
    values = {
        "request_id": request_id, "client_id": client_id, "kind": kind, "subject_hash": subject_hash,
        "requested_by": actor, "source": source, "status": status, "requested_at": now, "completed_at": now,
        "counts": json.dumps(counts or {}, sort_keys=True), "message": message,
    }  # fmt: skip
    columns = column_names(REQUESTS)
    session.execute(
        f"insert into {REQUESTS} ({', '.join(columns)}) values ({', '.join('?' * len(columns))})",
        [values[c] for c in columns],
    )
    return request_id


def _hashed_copies(session: Session, subject: Subject, salt_value: str) -> list[tuple]:
    """The subject's current suppressions (the client's and the deployment-wide ones) as hashed
    copies: same client, channel, scope, reason and source, the address hashed, no note."""
    addresses = list(subject.addresses)
    if not addresses:
        return []
    _, rows = session.query(
        f"select client_id, channel, address, scope, reason, source, created_at from {SUPPRESSIONS} "
        f"where client_id in (?, '*') and address in ({', '.join('?' * len(addresses))})",
        [subject.client_id, *addresses],
    )
    return [(c, ch, hashed(salt_value, a), sc, r, s, None, at) for c, ch, a, sc, r, s, at in rows]


def _statement(sql: str, where: str) -> str:
    return f"{sql} {where}" if sql.endswith(" and") else f"{sql} where {where}"


def count_rows(session: Session, subject: Subject, salt_value: str) -> dict[str, int]:
    """Rows per table the erasure would change (tables with none left out)."""
    counts: dict[str, int] = {}
    for sel in selections(session, subject, salt_value):
        n = int(session.scalar(f"select count(*) from {sel.table} where {sel.where}", sel.params) or 0)
        if n:
            counts[sel.table] = counts.get(sel.table, 0) + n
    return counts


def erase(
    session: Session,
    client_id: str,
    identifier: str,
    default_region: str,
    actor: str,
    now: datetime,
    *,
    source: str = "cli",
    dry_run: bool = False,
) -> Erasure:
    """Erases the person ``identifier`` names (contact id, phone or email) from the client's data
    in ``session``'s transaction. A person erased before is a no-op (status ``already_erased``);
    one Herald never knew raises :class:`PrivacyError` and changes nothing."""
    subject = resolve(session, client_id, identifier, default_region)
    if subject is None:
        when = already_erased(session, client_id, identifier, default_region)
        if when is not None:
            return Erasure("", "already_erased", {}, 0,
                           f"already erased on {when:%Y-%m-%d %H:%M} UTC: nothing left to erase")  # fmt: skip
        raise PrivacyError(
            f"no contact of client {client_id!r} has that contact id, phone or email: nothing was changed"
        )
    salt_value = salt(session, create=not dry_run)
    if dry_run:
        counts = count_rows(session, subject, salt_value or "dry-run")
        return Erasure("", "dry_run", counts, len(subject.contact_ids),
                       f"would erase {len(subject.contact_ids)} contact(s): {sum(counts.values())} rows")  # fmt: skip
    counts: dict[str, int] = {}
    cancelled = int(
        session.scalar(
            f"select count(*) from {OPS_SCHEMA}.outbox where client_id = ? and status in ('queued', 'held') and "
            f"(contact_id in ({', '.join('?' * len(subject.contact_ids))}) or to_address in "
            f"({', '.join('?' * len(subject.addresses)) or 'null'}))",
            [client_id, *subject.contact_ids, *subject.addresses],
        )
        or 0
    )
    kept = _hashed_copies(session, subject, salt_value)
    for sel in selections(session, subject, salt_value, now):
        n = int(session.scalar(f"select count(*) from {sel.table} where {sel.where}", sel.params) or 0)
        if not n:
            continue
        counts[sel.table] = counts.get(sel.table, 0) + n
        for sql, params in sel.erase:
            session.execute(_statement(sql, sel.where), [*params, *sel.params])
    erased = [
        (client_id, channel, hashed(salt_value, address), "all", ERASED_REASON, "privacy", "erased on request", now)
        for channel, addresses in (("sms", subject.phones), ("email", subject.emails))
        for address in addresses
    ]
    for row in [*kept, *erased]:
        session.execute(
            f"insert into {SUPPRESSIONS} (client_id, channel, address, scope, reason, source, note, contact_id, "
            "created_at) values (?, ?, ?, ?, ?, ?, ?, null, ?) on conflict do nothing",
            list(row),
        )
    counts["hashed_suppressions"] = len(erased) + len(kept)
    if cancelled:
        counts["messages_cancelled"] = cancelled
        release_unsent(session, now, actor=actor)  # a paid message that will not go out is refunded
    message = f"erased {len(subject.contact_ids)} contact(s): {sum(counts.values())} rows changed"
    request_id = record_request(
        session, client_id, ACTION, " ".join(subject_hashes(salt_value, subject)), actor, source, "done",
        now, counts, message,
    )  # fmt: skip
    audit(session, actor, ACTION, client_id, None, f"privacy request {request_id}", "erasure requested",
          {"contacts": len(subject.contact_ids), "rows": counts, "source": source}, now=now)  # fmt: skip
    return Erasure(request_id, "done", counts, len(subject.contact_ids), message)
