"""Ingesting one packet from a drop zone: land, validate, then archive or quarantine.

The Dagster asset that ingests a packet is a thin adapter over :func:`ingest_packet`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from herald.config.models import Deployment
from herald.dropzone.base import DropZone, PendingPacket, UnreadableFile, safe_name
from herald.packets.landing import (
    PACKETS_TABLE,
    REJECTS_TABLE,
    ROWS_TABLE,
    LandingResult,
    PacketFile,
    land_packet,
    record_step,
    utcnow,
)
from herald.packets.validation import CHECK_MANIFEST, CheckOutcome, validate_packet
from herald.reports.receipts import write_receipts
from herald.warehouse.connection import Warehouse

CHECK_ACCOUNTED = "every_row_accounted_for"
# A failed blocking check fails the packet: its rows are kept for inspection but never mapped.
BLOCKING_CHECKS = (CHECK_ACCOUNTED, CHECK_MANIFEST)


@dataclass
class IngestOutcome:
    landing: LandingResult
    checks: list[CheckOutcome] = field(default_factory=list)
    filed_at: str = ""  # where the file went: archive or quarantine path in the zone
    receipts: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.landing.status


def account_for_rows(warehouse: Warehouse, packet_id: str) -> CheckOutcome:
    """Counts what the warehouse really holds for the packet against its recorded row count."""
    with warehouse.session(read_only=True) as s:
        in_file = s.scalar(f"select rows_in_file from {PACKETS_TABLE} where packet_id = ?", [packet_id]) or 0
        landed = s.scalar(f"select count(*) from {ROWS_TABLE} where packet_id = ?", [packet_id])
        rejected = s.scalar(f"select count(*) from {REJECTS_TABLE} where packet_id = ?", [packet_id])
    passed = in_file == landed + rejected
    return CheckOutcome(
        CHECK_ACCOUNTED,
        passed,
        f"{in_file} rows in file = {landed} landed + {rejected} rejected"
        if passed
        else f"{in_file} rows in file but {landed} landed + {rejected} rejected = {landed + rejected}",
        {"rows_in_file": in_file, "rows_landed": landed, "rows_rejected": rejected},
    )


def ingest_packet(
    warehouse: Warehouse,
    dropzone: DropZone,
    deployment: Deployment,
    pending: PendingPacket,
    log: Callable[[str], None] = lambda _msg: None,
) -> IngestOutcome:
    """Land ``pending``, run its checks, and file it away. Safe to run again for the same packet."""
    packet_id = pending.packet_id
    zone_path = pending.zone_path
    try:
        zone_path = dropzone.locate(pending.zone_path, packet_id)
        if pending.problem:  # refused for its name, sidecar or content: quarantined unread, with why
            landing = land_packet(warehouse, deployment, _packet_file(pending, Path()), log)
        else:
            with dropzone.fetch(zone_path) as local_path:
                landing = land_packet(warehouse, deployment, _packet_file(pending, local_path), log)
    except UnreadableFile as exc:  # this file alone (no permission, a link swapped in): rejected
        refused = replace(pending, problem=str(exc))
        landing = land_packet(warehouse, deployment, _packet_file(refused, Path()), log)
    outcome = IngestOutcome(landing, checks=[account_for_rows(warehouse, packet_id)])

    if landing.status == "landed":
        started = time.perf_counter()
        client = deployment.clients[pending.client_id]
        load_map = client.load_maps[pending.packet_type]
        outcome.checks += validate_packet(
            warehouse, packet_id, load_map, client.default_region, landing.rows_rejected, pending.manifest_rows
        )
        failed = [c for c in outcome.checks if not c.passed and c.name in BLOCKING_CHECKS]
        detail = "; ".join(f"{c.name}: {'passed' if c.passed else 'FAILED'}" for c in outcome.checks)
        record_step(warehouse, packet_id, "validated", detail, int((time.perf_counter() - started) * 1000))
        if failed:
            reason = "; ".join(f"{c.name} failed: {c.summary}" for c in failed)
            _fail_packet(warehouse, packet_id, reason)
            landing.status, landing.reason = "failed", reason
            log(f"packet {packet_id} failed its checks: {reason}")

    if landing.status in ("landed", "duplicate"):
        outcome.filed_at = dropzone.archive(zone_path, packet_id)
    else:
        try:
            outcome.filed_at = dropzone.quarantine(zone_path, packet_id, landing.reason or landing.status)
        except UnreadableFile as exc:  # a link swapped in is never moved through: left, and said
            outcome.filed_at = f"left in place: {exc}"
            log(f"packet {packet_id} was not quarantined: {exc}")
    record_step(
        warehouse,
        packet_id,
        "archived" if landing.status in ("landed", "duplicate") else "quarantined",
        outcome.filed_at,
    )
    if landing.status != "landed":  # a landed packet's receipt waits for its contact counts (dbt)
        outcome.receipts = write_receipts(dropzone, warehouse, [packet_id])
    return outcome


def _packet_file(pending: PendingPacket, local_path: Path) -> PacketFile:
    return PacketFile(
        packet_id=pending.packet_id,
        client_id=pending.client_id,
        packet_type=pending.packet_type,
        # as text the warehouse can store (an odd name's bytes are shown as U+FFFD)
        file_name=safe_name(pending.file_name),
        zone_path=safe_name(pending.zone_path),
        local_path=local_path,
        received_at=pending.modified_at,
        expected_sha256=pending.sha256 if pending.checksum_source == "sidecar-sha256" else None,
        expected_md5=pending.md5 if pending.checksum_source == "sidecar-md5" else None,
        manifest_rows=pending.manifest_rows,
        problem=pending.problem,
    )


def _fail_packet(warehouse: Warehouse, packet_id: str, reason: str) -> None:
    with warehouse.session() as s:
        s.execute(
            f"update {PACKETS_TABLE} set status = 'failed', status_reason = ?, updated_at = ? where packet_id = ?",
            [reason, utcnow(), packet_id],
        )
