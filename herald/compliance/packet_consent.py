"""Consent events from packets: a load map's ``sms_consent`` column, with the client's stated source.

The transform keeps the column as the contact attribute ``sms_consent`` (marts.contact_attributes,
with the packet and line it came from). Before each plan, :func:`record_packet_consent` turns
every such value into ``herald_ops.consent_events`` for the contact's phone: a yes is an
``opt_in`` of level ``express_written``, scope ``all``, source ``packet``, its evidence the packet,
line, column and the load map's ``consent_source`` (what the client says the consent is); a no
after a yes from a packet is a ``revoke``. The event's time is the packet's arrival, its id a
digest of the packet and line, so a re-run records nothing twice. The client's
``consent.expires_after`` applies as to every grant.
"""

from __future__ import annotations

from datetime import datetime

from herald.compliance.audit import audit
from herald.compliance.consent import CONSENT_EVENTS, consent_event_id, expires_at
from herald.config.models import Deployment
from herald.warehouse.connection import Session
from herald.warehouse.schema import MARTS_SCHEMA, OPS_SCHEMA, column_names

SOURCE = "packet"
ACTOR = "packet_consent"


def _built(s: Session, table: str) -> bool:
    return bool(
        s.scalar(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [MARTS_SCHEMA, table],
        )
    )


def record_packet_consent(s: Session, deployment: Deployment, now: datetime) -> int:
    """Records the consent events the packets' ``sms_consent`` columns state; returns how many are new."""
    if not (_built(s, "contact_attributes") and _built(s, "contacts")):
        return 0
    stated: dict[tuple[str, str], tuple[str, str | None]] = {}
    for client in deployment.clients.values():
        for load_map in client.load_maps.values():
            column = load_map.column_for("sms_consent")
            if column is not None:
                stated[(client.client_id, load_map.packet_type)] = (column, load_map.consent_source)
    if not stated:
        return 0
    # set-based: the packets' events already recorded are read once, the new ones inserted at once
    _, known = s.query(f"select event_id, client_id, address, kind from {CONSENT_EVENTS} where source = ?", [SOURCE])
    recorded = {r[0] for r in known}
    granted = {(r[1], r[2]) for r in known if r[3] == "opt_in"}
    _, rows = s.query(
        f"""select a.client_id, a.contact_id, c.phone_e164, a.boolean_value, a.packet_id, a.line_number,
                   p.packet_type, coalesce(a.updated_at, p.received_at)
            from {MARTS_SCHEMA}.contact_attributes as a
            join {MARTS_SCHEMA}.contacts as c on c.client_id = a.client_id and c.contact_id = a.contact_id
            join {OPS_SCHEMA}.packets as p on p.packet_id = a.packet_id
            where a.attribute_name = 'sms_consent' and a.is_parsed and a.boolean_value is not null
              and c.is_phone_valid and c.phone_e164 is not null
            order by a.client_id, c.phone_e164, a.packet_id, a.line_number"""
    )
    new: list[tuple] = []
    for client_id, contact_id, phone, value, packet_id, line, packet_type, at in rows:
        if (client_id, packet_type) not in stated:
            continue
        if not value and (client_id, phone) not in granted:
            continue  # a no that never was a yes changes nothing
        kind = "opt_in" if value else "revoke"
        source_key = f"packet:{packet_id}:{line}"
        event_id = consent_event_id(source_key, client_id, "sms", phone, kind, "all", contact_id)
        if event_id in recorded:
            continue
        column, source = stated[(client_id, packet_type)]
        evidence = f"packet {packet_id} line {line}, column '{column}': {'yes' if value else 'no'}; " + (
            f"the client's stated source: {source}" if source else "the client stated no source"
        )
        values = {
            "event_id": event_id, "client_id": client_id, "contact_id": contact_id, "channel": "sms",
            "address": phone, "kind": kind, "scope": "all", "consent_level": "express_written" if value else None,
            "source": SOURCE, "evidence": evidence, "occurred_at": at, "recorded_at": now,
            "expires_at": expires_at(deployment.clients.get(client_id), "all", at) if value else None,
            "wording_sha256": None,
        }  # fmt: skip
        new.append(tuple(values[c] for c in column_names(CONSENT_EVENTS)))
        recorded.add(event_id)
        if value:
            granted.add((client_id, phone))
    if new:
        s.insert_rows(CONSENT_EVENTS, column_names(CONSENT_EVENTS), new, ignore_existing=True)
        by_client: dict[str, int] = {}
        for row in new:
            by_client[row[1]] = by_client.get(row[1], 0) + 1
        for client_id, count in sorted(by_client.items()):
            audit(s, ACTOR, "consent_change", client_id, None, CONSENT_EVENTS,
                  f"{count} consent event(s) from packets' sms_consent columns", {"events": count}, now=now)  # fmt: skip
    return len(new)
