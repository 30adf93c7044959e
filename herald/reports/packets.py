"""The per-packet report: what happened to every row, and how long each step took."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from herald.warehouse.connection import Warehouse

STEP_ORDER = ("verified", "landed", "phones_checked", "validated", "archived", "quarantined", "mapped", "cleaned")


@dataclass
class PacketReport:
    packet_id: str
    client_id: str
    packet_type: str
    file_name: str
    status: str
    status_reason: str | None
    rows_in_file: int
    rows_landed: int
    rows_rejected: int
    top_reject_reasons: list[tuple[str, int]] = field(default_factory=list)
    first_rejects: list[tuple[int, str]] = field(default_factory=list)
    contacts_created: int | None = None
    contacts_updated: int | None = None
    step_ms: dict[str, int] = field(default_factory=dict)


def _has_table(s, schema: str, table: str) -> bool:
    return bool(
        s.scalar(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?", [schema, table]
        )
    )


def packet_reports(warehouse: Warehouse, packet_ids: Sequence[str] | None = None) -> list[PacketReport]:
    """Reports for the given packets (all packets when None), oldest first."""
    with warehouse.session(read_only=True) as s:
        _, rows = s.query(
            "select packet_id, client_id, packet_type, file_name, status, status_reason, "
            "coalesce(rows_in_file, 0), coalesce(rows_landed, 0), coalesce(rows_rejected, 0) "
            "from herald_ops.packets order by received_at, packet_id"
        )
        reports = [PacketReport(*r) for r in rows if packet_ids is None or r[0] in packet_ids]
        by_id = {r.packet_id: r for r in reports}
        _, reasons = s.query(
            "select packet_id, reason, count(*), min(line_number) from herald_raw.packet_rejects "
            "group by packet_id, reason order by packet_id, count(*) desc, min(line_number)"
        )
        for packet_id, reason, count, _first in reasons:
            if packet_id in by_id:
                by_id[packet_id].top_reject_reasons.append((reason, int(count)))
        _, firsts = s.query(
            "select packet_id, line_number, reason from herald_raw.packet_rejects order by packet_id, line_number"
        )
        for packet_id, line, reason in firsts:
            if packet_id in by_id and len(by_id[packet_id].first_rejects) < 5:
                by_id[packet_id].first_rejects.append((int(line), reason))
        _, steps = s.query(
            "select packet_id, step, sum(coalesce(duration_ms, 0)) from herald_ops.packet_events group by packet_id, step"
        )
        for packet_id, step, ms in steps:
            if packet_id in by_id and step != "received":
                by_id[packet_id].step_ms[step] = int(ms)
        if _has_table(s, "marts", "contact_sources") and _has_table(s, "marts", "contacts"):
            _, counts = s.query(
                "select src.packet_id, "
                "count(distinct case when c.first_packet_id = src.packet_id then c.contact_id end), "
                "count(distinct case when c.first_packet_id <> src.packet_id then c.contact_id end) "
                "from marts.contact_sources src join marts.contacts c on c.contact_id = src.contact_id "
                "group by src.packet_id"
            )
            for packet_id, created, updated in counts:
                if packet_id in by_id:
                    by_id[packet_id].contacts_created, by_id[packet_id].contacts_updated = int(created), int(updated)
            for report in reports:
                if report.contacts_created is None and report.status in ("landed", "duplicate", "rejected", "failed"):
                    report.contacts_created = report.contacts_updated = 0
    for report in reports:
        report.step_ms = {k: report.step_ms[k] for k in STEP_ORDER if k in report.step_ms}
    return reports
