"""PII retention: a contact's personal data — its packet rows and the contact marts built from
them — purged ``contact_days`` after the person opted out or after their last activity (the
latest packet row, message or reply), per client (client.yaml ``retention.contact_days``, else
herald.yaml's). Run by the retention asset beside the other retention rules, in its transaction.

A purged packet row keeps its line (``row_data`` becomes ``{}``: dbt makes no contact of it), so
every packet still accounts for every line; suppressions, consent and messages follow their own
retention rules (herald/compliance/retention.py), so an opt-out keeps blocking.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta

from herald.compliance.audit import audit
from herald.warehouse.connection import Session
from herald.warehouse.schema import MARTS_SCHEMA, OPS_SCHEMA, RAW_SCHEMA

ACTOR = "retention"
PACKET_ROWS = f"{RAW_SCHEMA}.packet_rows"
CHUNK = 500
EPOCH = "cast('1900-01-01' as timestamp)"

# contacts whose opt-out or last activity is before the cutoff (one ``?`` each: client, cutoff,
# cutoff): last activity is the latest of the contact's packet rows, messages and replies
_DUE = f"""
    select contacts.contact_id
    from {MARTS_SCHEMA}.contacts as contacts
    left join (
        select contact_id, max(coalesce(sent_at, enqueued_at)) as last_message_at
        from {OPS_SCHEMA}.outbox where client_id = ? group by contact_id
    ) as messages on messages.contact_id = contacts.contact_id
    left join (
        select contact_id, max(processed_at) as last_reply_at
        from {OPS_SCHEMA}.inbound_processing where client_id = ? group by contact_id
    ) as replies on replies.contact_id = contacts.contact_id
    where contacts.client_id = ?
      and (
        greatest(
            coalesce(contacts.updated_at, {EPOCH}),
            coalesce(messages.last_message_at, {EPOCH}),
            coalesce(replies.last_reply_at, {EPOCH})
        ) < ?
        or exists (
            select 1 from {OPS_SCHEMA}.suppressions as s
            where s.reason = 'opt_out' and s.client_id in (contacts.client_id, '*') and s.created_at < ?
              and s.address in (contacts.phone_e164, lower(contacts.email))
        )
      )
    order by contacts.contact_id
"""


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def _contact_tables(session: Session) -> list[str]:
    """The marts built from packet rows that name contacts: marts.contacts, contact_* and the
    segment snapshots."""
    _, rows = session.query(
        "select t.table_name from information_schema.tables as t where t.table_schema = ? "
        "and t.table_type = 'BASE TABLE' and (t.table_name = 'contacts' or t.table_name like 'contact\\_%' escape '\\' "
        "or t.table_name = 'segment_members') order by t.table_name",
        [MARTS_SCHEMA],
    )
    return [f"{MARTS_SCHEMA}.{r[0]}" for r in rows]


def purge_contacts(
    session: Session, contact_days: Mapping[str, int], default_days: int, now: datetime
) -> dict[str, int]:
    """Purges every client's contacts past retention at ``now`` (naive UTC): ``contact_days`` per
    client id, ``default_days`` for the others. Returns rows per table (``contacts`` = contacts
    purged), and writes one audit row per client it purged anything of."""
    tables = _contact_tables(session)
    if f"{MARTS_SCHEMA}.contacts" not in tables:
        return {"contacts": 0, PACKET_ROWS: 0}
    has_sources = f"{MARTS_SCHEMA}.contact_sources" in tables
    counts: dict[str, int] = {"contacts": 0, PACKET_ROWS: 0}
    _, clients = session.query(f"select distinct client_id from {MARTS_SCHEMA}.contacts order by client_id")
    for (client_id,) in clients:
        days = contact_days.get(client_id, default_days)
        before = now - timedelta(days=days)
        _, due = session.query(_DUE, [client_id, client_id, client_id, before, before])
        ids = [r[0] for r in due]
        if not ids:
            continue
        mine: dict[str, int] = {"contacts": len(ids), PACKET_ROWS: 0}
        for part in _chunks(ids):
            marks = ", ".join("?" * len(part))
            if has_sources:
                where = (
                    f"client_id = ? and row_data::varchar <> '{{}}' and exists "
                    f"(select 1 from {MARTS_SCHEMA}.contact_sources as cs where cs.packet_id = packet_rows.packet_id "
                    f"and cs.line_number = packet_rows.line_number and cs.contact_id in ({marks}))"
                )
                n = int(session.scalar(f"select count(*) from {PACKET_ROWS} where {where}", [client_id, *part]) or 0)
                session.execute(f"update {PACKET_ROWS} set row_data = '{{}}' where {where}", [client_id, *part])
                mine[PACKET_ROWS] += n
            for table in tables:
                if table == f"{MARTS_SCHEMA}.contacts" or (has_sources and table == f"{MARTS_SCHEMA}.contact_sources"):
                    continue
                mine[table] = mine.get(table, 0) + _delete(session, table, part)
        # the rows that lead to the contacts last, since the packet rows were found through them
        for part in _chunks(ids):
            for table in (f"{MARTS_SCHEMA}.contact_sources", f"{MARTS_SCHEMA}.contacts"):
                if table in tables:
                    mine[table] = mine.get(table, 0) + _delete(session, table, part)
        mine.pop(f"{MARTS_SCHEMA}.contacts", None)
        for table, n in mine.items():
            counts[table] = counts.get(table, 0) + n
        audit(session, ACTOR, "purge", client_id, None, "contacts", "personal data past retention",
              {"rows": mine, "contact_days": days, "cutoff": before.isoformat()}, now=now)  # fmt: skip
    return counts


def _delete(session: Session, table: str, ids: Sequence[str]) -> int:
    marks = ", ".join("?" * len(ids))
    n = int(session.scalar(f"select count(*) from {table} where contact_id in ({marks})", list(ids)) or 0)
    if n:
        session.execute(f"delete from {table} where contact_id in ({marks})", list(ids))
    return n
