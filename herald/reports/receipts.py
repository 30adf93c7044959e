"""Client receipts: after a packet is processed, a small JSON and text file beside it in the
client's own area of the drop zone (rows in, landed, rejected with the first reasons, contacts
created and updated) — the client's answer to "did my upload get in?".

Packets that land get theirs after the dbt build (contacts are counted then); packets refused
or recognized as duplicates get theirs at once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from herald.dropzone.base import ARCHIVE, INCOMING, QUARANTINE, DropZone, filed_name, split_zone_path
from herald.reports.packets import PacketReport, packet_reports
from herald.warehouse.connection import Warehouse

FILED_AREA = {"landed": ARCHIVE, "duplicate": ARCHIVE}  # everything else is quarantined


def receipt_path(report: PacketReport, zone_path: str) -> str:
    """``<client>/<archive|quarantine>/<type>/<packet_id>__<file>.receipt`` (suffix added by caller)."""
    client_id, area, packet_type, name = split_zone_path(zone_path)
    if area == INCOMING:
        area = FILED_AREA.get(report.status, QUARANTINE)
    else:
        name = name.split("__", 1)[-1]
    return f"{client_id}/{area}/{packet_type}/{filed_name(report.packet_id, name)}.receipt"


def receipt_json(report: PacketReport) -> str:
    return json.dumps(
        {
            "packet_id": report.packet_id,
            "client_id": report.client_id,
            "packet_type": report.packet_type,
            "file_name": report.file_name,
            "status": report.status,
            "reason": report.status_reason,
            "rows_in_file": report.rows_in_file,
            "rows_landed": report.rows_landed,
            "rows_rejected": report.rows_rejected,
            "first_rejects": [{"line": line, "reason": reason} for line, reason in report.first_rejects],
            "contacts_created": report.contacts_created,
            "contacts_updated": report.contacts_updated,
        },
        indent=2,
    )


def receipt_text(report: PacketReport) -> str:
    lines = [f"Packet {report.file_name} ({report.packet_type}) — {report.status.upper()}"]
    if report.status_reason and report.status != "landed":
        lines.append(f"Why: {report.status_reason}")
    lines.append(f"Rows in the file: {report.rows_in_file}")
    lines.append(f"Rows loaded:      {report.rows_landed}")
    lines.append(f"Rows rejected:    {report.rows_rejected}")
    for line, reason in report.first_rejects:
        lines.append(f"  line {line}: {reason}")
    if report.rows_rejected > len(report.first_rejects):
        lines.append(f"  … and {report.rows_rejected - len(report.first_rejects)} more")
    if report.contacts_created is not None:
        lines.append(f"Contacts created: {report.contacts_created}")
        lines.append(f"Contacts updated: {report.contacts_updated}")
    lines.append(f"Reference: {report.packet_id}")
    return "\n".join(lines) + "\n"


def write_receipts(zone: DropZone, warehouse: Warehouse, packet_ids: Sequence[str]) -> list[str]:
    """Write the receipts of these packets; returns where they went."""
    if not packet_ids:
        return []
    reports = packet_reports(warehouse, list(packet_ids))
    with warehouse.session(read_only=True) as s:
        _, rows = s.query("select packet_id, file_path from herald_ops.packets")
    zone_paths = dict(rows)  # packet_id → file path
    written = []
    for report in reports:
        base = receipt_path(report, zone_paths[report.packet_id])
        zone.write_text(base + ".json", receipt_json(report))
        zone.write_text(base + ".txt", receipt_text(report))
        written.append(base + ".txt")
    return written
