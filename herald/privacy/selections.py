"""Every table's rows that belong to a privacy request's subject, and what an erasure does to
them. The export reads the same selections the erasure changes, so what one shows is what the
other removes.

The order matters for the erasure: rows found through others (delivery attempts and provider
events through the person's messages, packet rows through ``marts.contact_sources``) come
before what they are found through is masked or deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from herald.privacy.subject import Subject, hashed
from herald.warehouse.connection import Session
from herald.warehouse.schema import ANALYTICS_SCHEMA, MARTS_SCHEMA, OPS_SCHEMA, RAW_SCHEMA, TABLES

ERASED = "erased"
ERASED_BODY = "[erased]"
ERASED_PAYLOAD = '{"erased": true}'
ERASED_EXIT = "the contact was erased on request"
ENROLLMENTS = f"{OPS_SCHEMA}.enrollments"
AUDIT_LOG = f"{OPS_SCHEMA}.audit_log"
# the marts and analytics tables dbt rebuilds from the masked sources; base tables only
REBUILT_SCHEMAS = (MARTS_SCHEMA, ANALYTICS_SCHEMA, "intermediate")
ADDRESS_COLUMNS = ("address", "to_address", "from_address", "phone_e164", "phone", "email")
# tables with their own rule below; every other Herald table with a contact_id is re-keyed
SPECIAL = {
    f"{RAW_SCHEMA}.packet_rows", f"{RAW_SCHEMA}.packet_rejects", f"{OPS_SCHEMA}.outbox",
    f"{OPS_SCHEMA}.delivery_attempts", f"{RAW_SCHEMA}.provider_events", f"{RAW_SCHEMA}.link_clicks",
    f"{RAW_SCHEMA}.inbound_messages", f"{OPS_SCHEMA}.consent_events", f"{OPS_SCHEMA}.suppressions",
    f"{MARTS_SCHEMA}.segment_members", f"{OPS_SCHEMA}.consent_requests",
}  # fmt: skip


def marks(values: Sequence[Any]) -> str:
    """``?, ?, ?`` for ``values`` (``null`` for none: ``x in (null)`` matches nothing)."""
    return ", ".join("?" * len(values)) or "null"


@dataclass
class Selection:
    """One table's rows of the subject (``where`` with ``params``) and the erasure's statements
    (each ``(sql, params)``; the where clause is appended to updates and deletes by the caller)."""

    table: str
    where: str
    params: list[Any]
    erase: list[tuple[str, list[Any]]] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return self.table.replace(".", "__")


def _contact_token(subject: Subject, salt_value: str) -> tuple[str, list[Any]]:
    """An SQL expression giving each of the subject's contact ids its salted hash ('erased'
    for any other id on a matched row)."""
    cases = " ".join("when ? then ?" for _ in subject.contact_ids)
    params: list[Any] = []
    for contact_id in subject.contact_ids:
        params += [contact_id, hashed(salt_value, contact_id)]
    return f"coalesce(case contact_id {cases} end, '{ERASED}')", params


def _rebuilt_tables(session: Session) -> list[tuple[str, list[str]]]:
    """(schema.table, columns) of every base table dbt rebuilds that names a contact or an address."""
    _, rows = session.query(
        "select c.table_schema, c.table_name, c.column_name from information_schema.columns as c "
        "join information_schema.tables as t on t.table_schema = c.table_schema and t.table_name = c.table_name "
        f"where c.table_schema in ({marks(REBUILT_SCHEMAS)}) and t.table_type = 'BASE TABLE' "
        "order by c.table_schema, c.table_name",
        list(REBUILT_SCHEMAS),
    )
    tables: dict[str, list[str]] = {}
    for schema, table, column in rows:
        tables.setdefault(f"{schema}.{table}", []).append(column.lower())
    return [
        (t, cols)
        for t, cols in tables.items()
        if t not in SPECIAL and ("contact_id" in cols or any(c in cols for c in ADDRESS_COLUMNS))
    ]


def selections(
    session: Session, subject: Subject, salt_value: str, now: datetime | None = None, *, with_rebuilt: bool = True
) -> list[Selection]:
    """The subject's rows, table by table, in the order an erasure must change them."""
    c = subject.client_id
    ids = list(subject.contact_ids)
    addresses = list(subject.addresses)
    phones = list(subject.phones)
    token, token_params = _contact_token(subject, salt_value)
    messages = (
        f"select message_key from {OPS_SCHEMA}.outbox where client_id = ? "
        f"and (contact_id in ({marks(ids)}) or to_address in ({marks(addresses)}))"
    )
    messages_params: list[Any] = [c, *ids, *addresses]
    out: list[Selection] = []
    # the packet rows the person's contacts and funnel events were made from (packet and line)
    _, found = session.query(
        "select table_name from information_schema.columns where table_schema = ? "
        "and table_name in ('contact_sources', 'funnel_events') "
        "and column_name in ('packet_id', 'line_number', 'contact_id') "
        "group by table_name having count(*) = 3 order by table_name",
        [MARTS_SCHEMA],
    )
    traced = [
        f"exists (select 1 from {MARTS_SCHEMA}.{name} as src where src.packet_id = packet_rows.packet_id "
        f"and src.line_number = packet_rows.line_number and src.contact_id in ({marks(ids)}))"
        for (name,) in found
    ]
    if traced:
        out.append(
            Selection(
                f"{RAW_SCHEMA}.packet_rows",
                f"client_id = ? and ({' or '.join(traced)})",
                [c, *ids * len(traced)],
                # an empty object has no cells: dbt makes no contact (nor event) of it, so the next
                # build cannot bring the person back; the row itself stays, so every line is
                # accounted for
                [("update herald_raw.packet_rows set row_data = '{}'", [])],
            )
        )
    digit_terms = " or ".join(
        "regexp_replace(raw_text, '[^0-9]', '', 'g') like ?" for _ in phones
    )  # a rejected line holding the phone in any format
    email_terms = " or ".join("lower(raw_text) like ?" for _ in subject.emails)
    terms = " or ".join(t for t in (digit_terms, email_terms) if t) or "false"
    out.append(
        Selection(
            f"{RAW_SCHEMA}.packet_rejects",
            f"client_id = ? and raw_text is not null and ({terms})",
            [c, *[f"%{p.lstrip('+')[-10:]}%" for p in phones], *[f"%{e}%" for e in subject.emails]],
            [("update herald_raw.packet_rejects set raw_text = null", [])],
        )
    )
    out.append(
        Selection(
            f"{OPS_SCHEMA}.delivery_attempts",
            f"message_key in ({messages})",
            list(messages_params),
            [(f"update {OPS_SCHEMA}.delivery_attempts set error_reason = null", [])],
        )
    )
    payload_terms = " or ".join("payload like ?" for _ in [*addresses, *ids])
    out.append(
        Selection(
            f"{RAW_SCHEMA}.provider_events",
            f"(provider_message_id in (select provider_message_id from {OPS_SCHEMA}.outbox where "
            f"message_key in ({messages}) and provider_message_id is not null) or {payload_terms})",
            [*messages_params, *[f"%{v}%" for v in [*addresses, *ids]]],
            [(f"update {RAW_SCHEMA}.provider_events set payload = ?", [ERASED_PAYLOAD])],
        )
    )
    out.append(
        Selection(
            f"{RAW_SCHEMA}.link_clicks",
            f"(message_key in ({messages}) or contact_id in ({marks(ids)}))",
            [*messages_params, *ids],
            [(f"update {RAW_SCHEMA}.link_clicks set user_agent = null, contact_id = {token}", token_params)],
        )
    )
    out.append(
        Selection(
            f"{RAW_SCHEMA}.inbound_messages",
            f"from_address in ({marks(phones)}) and inbound_id in "
            f"(select inbound_id from {OPS_SCHEMA}.inbound_processing where client_id = ?)",
            [*phones, c],
            [(f"update {RAW_SCHEMA}.inbound_messages set from_address = ?, body = ?", [ERASED, ERASED_BODY])],
        )
    )
    # the portal Inbox's notes and replies about the person (before the outbox is re-keyed)
    _, threads = session.query(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = 'conversations'",
        [MARTS_SCHEMA],
    )
    in_threads = (
        f" or conversation_id in (select conversation_id from {MARTS_SCHEMA}.conversations where client_id = ? "
        f"and contact_id in ({marks(ids)}))"
        if threads[0][0]
        else ""
    )
    out.append(
        Selection(
            f"{OPS_SCHEMA}.inbox_entries",
            f"client_id = ? and (message_key in ({messages}){in_threads})",
            [c, *messages_params, *([c, *ids] if in_threads else [])],
            [(f"update {OPS_SCHEMA}.inbox_entries set body = ?", [ERASED_BODY])],
        )
    )
    out.append(
        Selection(
            f"{OPS_SCHEMA}.outbox",
            f"client_id = ? and (contact_id in ({marks(ids)}) or to_address in ({marks(addresses)}))",
            [c, *ids, *addresses],
            [
                (
                    f"update {OPS_SCHEMA}.outbox set status = 'cancelled', "
                    "status_reason = 'the recipient was erased on request' where status in ('queued', 'held') and",
                    [],
                ),
                (
                    f"update {OPS_SCHEMA}.outbox set to_address = '{ERASED}', subject = null, body_text = null, "
                    f"body_html = null, headers = null, delivery_error = null, contact_id = {token}",
                    token_params,
                ),
            ],
        )
    )
    out.append(
        Selection(
            f"{OPS_SCHEMA}.consent_events",
            f"client_id = ? and (contact_id in ({marks(ids)}) or address in ({marks(addresses)}))",
            [c, *ids, *addresses],
            [(f"delete from {OPS_SCHEMA}.consent_events", [])],
        )
    )
    out.append(
        Selection(
            # double opt-ins (the hosted form): the address, IP and user agent are the person's
            f"{OPS_SCHEMA}.consent_requests",
            f"client_id = ? and address in ({marks(addresses)})",
            [c, *addresses],
            [(f"delete from {OPS_SCHEMA}.consent_requests", [])],
        )
    )
    out.append(
        Selection(
            # the client's suppressions and the deployment-wide ones ('*') of the person's
            # addresses: the erasure puts a hashed copy of each in its place (same client, channel,
            # scope and reason), so they block exactly what they blocked before
            f"{OPS_SCHEMA}.suppressions",
            f"client_id in (?, '*') and (contact_id in ({marks(ids)}) or address in ({marks(addresses)}))",
            [c, *ids, *addresses],
            [(f"delete from {OPS_SCHEMA}.suppressions", [])],
        )
    )
    for table, columns, _ in TABLES:
        names = [n for n, _ in columns]
        if table in SPECIAL or "contact_id" not in names:
            continue
        scoped = "client_id = ? and " if "client_id" in names else ""
        where = f"{scoped}contact_id in ({marks(ids)})"
        params = list(ids)
        statements = [(f"update {table} set contact_id = {token}", token_params)]
        if table == AUDIT_LOG:  # the log keeps its records; contact ids in their detail (JSON) are re-keyed too
            where = f"{scoped}(contact_id in ({marks(ids)}) or {' or '.join('detail like ?' for _ in ids)})"
            params += [f"%{i}%" for i in ids]
            for contact_id in subject.contact_ids:
                statements.append(
                    (f"update {AUDIT_LOG} set detail = replace(detail, ?, ?) where detail like ? and",
                     [contact_id, hashed(salt_value, contact_id), f"%{contact_id}%"])
                )  # fmt: skip
        if table == ENROLLMENTS:  # a journey under way ends here: nobody is left to walk it
            statements.insert(0, (
                f"update {ENROLLMENTS} set status = 'exited', exit_reason = ?, step = null, next_at = null, "
                "wait_reason = null, ended_at = ?, updated_at = ? where status in ('active', 'waiting') and",
                [ERASED_EXIT, now, now],
            ))  # fmt: skip
        out.append(Selection(table, where, [c, *params] if scoped else params, statements))
    out.append(
        Selection(
            f"{MARTS_SCHEMA}.segment_members",
            f"client_id = ? and contact_id in ({marks(ids)})",
            [c, *ids],
            [(f"delete from {MARTS_SCHEMA}.segment_members", [])],
        )
    )
    out.append(
        Selection(
            f"{RAW_SCHEMA}.phone_numbers",
            f"phone_e164 in ({marks(phones)})",
            list(phones),
            [(f"delete from {RAW_SCHEMA}.phone_numbers", [])],
        )
    )
    out.append(
        Selection(
            f"{RAW_SCHEMA}.address_regions",
            f"kind = 'phone' and address_value in ({marks(phones)})",
            list(phones),
            [(f"delete from {RAW_SCHEMA}.address_regions", [])],
        )
    )
    if with_rebuilt:
        for table, cols in _rebuilt_tables(session):
            terms_sql: list[str] = []
            params: list[Any] = []
            if "contact_id" in cols:
                terms_sql.append(f"contact_id in ({marks(ids)})")
                params += ids
            for column in ADDRESS_COLUMNS:
                if column in cols:
                    terms_sql.append(f"cast({column} as varchar) in ({marks(addresses)})")
                    params += addresses
            scoped = "client_id = ? and " if "client_id" in cols else ""
            out.append(
                Selection(
                    table,
                    f"{scoped}({' or '.join(terms_sql)})",
                    [c, *params] if scoped else params,
                    [(f"delete from {table}", [])],
                )
            )
    return out
