"""Landing packets: one dynamic partition per packet, every row accounted for."""

import dataclasses

import dagster as dg

from assets.partitions import WAREHOUSE_POOL, packets_partitions
from herald.dropzone import PendingPacket
from herald.packets.ingest import BLOCKING_CHECKS, CHECK_ACCOUNTED, ingest_packet
from herald.packets.validation import VALIDATION_CHECKS
from resources import DropZoneResource, HeraldConfigResource, WarehouseResource

PACKET_ROWS = dg.AssetKey(["herald_raw", "packet_rows"])
PACKET_REJECTS = dg.AssetKey(["herald_raw", "packet_rejects"])
PHONE_NUMBERS = dg.AssetKey(["herald_raw", "phone_numbers"])
PACKETS = dg.AssetKey(["herald_ops", "packets"])

CHECK_DESCRIPTIONS = {
    CHECK_ACCOUNTED: "Rows in the file = rows landed + rows rejected, counted in the warehouse. Fails the packet.",
    "required_fields_present": "Great Expectations: every landed row has the load map's required fields.",
    "phones_mostly_valid": "Great Expectations: the share of valid phone numbers reaches the load map's minimum.",
    "emails_mostly_valid": "Great Expectations: the share of well-formed emails reaches the load map's minimum.",
    "row_count_matches_manifest": "Great Expectations: the row count matches the client's manifest, when sent. Fails the packet.",
}


class PacketConfig(dg.Config):
    """The packet as the drop zone listed it (filled in by ``packet_arrival_sensor``).

    Leave empty to ingest the partition's packet as it is found in the drop zone now.
    """

    client_id: str = ""
    packet_type: str = ""
    file_name: str = ""
    zone_path: str = ""
    size_bytes: int = 0
    mtime_us: int = 0
    sha256: str | None = None
    md5: str | None = None
    checksum_source: str = "computed"
    manifest_rows: int | None = None
    problem: str | None = None


def packet_run_config(pending: PendingPacket) -> dict:
    """Run config for ``ingest_packet_job`` that ingests ``pending``."""
    return {"ops": {"packet_rows": {"config": dataclasses.asdict(pending)}}}


def _pending(config: PacketConfig, packet_id: str, dropzone: DropZoneResource) -> PendingPacket:
    if config.zone_path:
        return PendingPacket(**config.model_dump())
    for pending in dropzone.get().list_pending():
        if pending.packet_id == packet_id:
            return pending
    raise dg.Failure(
        f"packet {packet_id} is not waiting in the drop zone; re-execute the run that first ingested it instead",
    )


def _markdown_table(rows: list[dict[str, str]]) -> str:
    if not rows:
        return "_none_"
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r.get(c, "")).replace("|", "\\|") for c in columns) + " |" for r in rows]
    return "\n".join(lines)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            PACKET_ROWS,
            description="One row per landed packet row: the raw cells as JSON, with packet and line number.",
            deps=[dg.AssetKey(["herald_ops", "load_maps"])],
        ),
        dg.AssetSpec(PACKET_REJECTS, description="One row per rejected packet row: line number, reason and raw text."),
        dg.AssetSpec(
            PHONE_NUMBERS,
            description="One row per distinct raw phone text and region: E.164 and validity (libphonenumber).",
        ),
        dg.AssetSpec(
            PACKETS, description="One row per packet: file, checksum, status and rows in / landed / rejected."
        ),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            name,
            asset=PACKET_ROWS,
            description=CHECK_DESCRIPTIONS[name],
            blocking=name in BLOCKING_CHECKS,
        )
        for name in (CHECK_ACCOUNTED, *VALIDATION_CHECKS)
    ],
    partitions_def=packets_partitions,
    group_name="ingest",
    pool=WAREHOUSE_POOL,
    can_subset=False,
)
def packet_rows(
    context: dg.AssetExecutionContext,
    config: PacketConfig,
    warehouse: WarehouseResource,
    dropzone: DropZoneResource,
    herald_config: HeraldConfigResource,
):
    """Verifies one packet's checksum, lands every row or rejects it with its line and reason,
    validates it with Great Expectations, then archives it (or quarantines it with the reason)."""
    pending = _pending(config, context.partition_key, dropzone)
    zone = dropzone.get()
    try:
        outcome = ingest_packet(warehouse.get(), zone, herald_config.load(), pending, context.log.info)
    finally:
        zone.close()
    landing = outcome.landing
    top_reasons = [{"reason": r, "rows": str(n)} for r, n in landing.reject_reasons.most_common(5)]
    first_rejects = [{"line": str(line), "reason": reason} for line, reason, _raw in landing.first_rejects[:10]]
    metadata = {
        "status": landing.status,
        "status_reason": landing.reason or "",
        "client_id": landing.client_id,
        "packet_type": landing.packet_type,
        "rows_in_file": dg.MetadataValue.int(landing.rows_in_file),
        "rows_landed": dg.MetadataValue.int(landing.rows_landed),
        "rows_rejected": dg.MetadataValue.int(landing.rows_rejected),
        "encoding": landing.encoding or "",
        "sha256": landing.sha256 or "",
        "filed_at": outcome.filed_at,
        "top_reject_reasons": dg.MetadataValue.md(_markdown_table(top_reasons)),
        "first_rejects": dg.MetadataValue.md(_markdown_table(first_rejects)),
        "preview": dg.MetadataValue.md(_markdown_table(landing.preview)),
        "missing_optional_columns": ", ".join(landing.missing_columns),
        "step_ms": dg.MetadataValue.json(landing.step_ms),
    }
    context.log.info(
        f"packet {landing.packet_id}: {landing.status}; {landing.rows_in_file} rows in file, "
        f"{landing.rows_landed} landed, {landing.rows_rejected} rejected"
    )
    yield dg.MaterializeResult(asset_key=PACKET_ROWS, metadata=metadata)
    yield dg.MaterializeResult(asset_key=PACKET_REJECTS, metadata={"rows": dg.MetadataValue.int(landing.rows_rejected)})
    yield dg.MaterializeResult(asset_key=PHONE_NUMBERS)
    yield dg.MaterializeResult(asset_key=PACKETS, metadata={"status": landing.status})
    by_name = {c.name: c for c in outcome.checks}
    for name in (CHECK_ACCOUNTED, *VALIDATION_CHECKS):
        check = by_name.get(name)
        if check is None:  # nothing landed (rejected or duplicate packet): nothing to validate
            yield dg.AssetCheckResult(
                asset_key=PACKET_ROWS,
                check_name=name,
                passed=True,
                description=f"not run: packet {landing.status} ({landing.reason or 'nothing landed'})",
                metadata={"packet_id": landing.packet_id, "skipped": True},
            )
            continue
        yield dg.AssetCheckResult(
            asset_key=PACKET_ROWS,
            check_name=name,
            passed=check.passed,
            severity=dg.AssetCheckSeverity.ERROR if name in BLOCKING_CHECKS else dg.AssetCheckSeverity.WARN,
            description=check.summary,
            # check results are per run, not per partition: name the packet they judged
            metadata={"packet_id": landing.packet_id, **check.metadata},
        )
