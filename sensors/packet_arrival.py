"""packet_arrival_sensor: a complete new file in a client's incoming area → one ingest run."""

import json

import dagster as dg

from assets.ingest.packets import packet_run_config
from assets.partitions import packets_partitions
from herald.config import ConfigError
from herald.dropzone import DropZoneError
from herald.dropzone.readiness import sort_pending
from resources import DropZoneResource, HeraldConfigResource
from sensors.pacing import DROPZONE_LISTING_INTERVAL_SECONDS

# targeted by name: the job is defined in orchestration/jobs.py, the layer above the sensors
INGEST_PACKET_JOB = "ingest_packet_job"


def _cursor(raw: str | None) -> tuple[dict[str, str], dict[str, str]]:
    data = json.loads(raw) if raw else {}
    if data and "requested" not in data:  # the first cursor format: {zone_path: fingerprint}
        return data, {}
    return data.get("requested", {}), data.get("seen", {})


@dg.sensor(
    job_name=INGEST_PACKET_JOB,
    minimum_interval_seconds=DROPZONE_LISTING_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Lists every client's incoming area; each complete new or changed file gets a packet "
    "partition and one ingest run. Files still being uploaded wait (client.yaml dropzone.ready_when).",
)
def packet_arrival_sensor(
    context: dg.SensorEvaluationContext, dropzone: DropZoneResource, herald_config: HeraldConfigResource
):
    # The cursor records what was seen: files already requested (so each is requested once and
    # hashed once) and files seen last tick while still uploading (stable across two ticks →
    # complete). The run key (client, path, checksum, mtime) guards the rest.
    requested, seen = _cursor(context.cursor)
    try:
        policies = {cid: c.config.dropzone.ready_when for cid, c in herald_config.load().clients.items()}
        zone = dropzone.get()
        try:
            pending = zone.list_pending(known=requested)
        finally:
            zone.close()
        for refusal in zone.refused:
            context.log.warning(f"refused {refusal}")
    except (DropZoneError, ConfigError) as exc:
        return dg.SkipReason(f"cannot list the drop zone: {exc}")
    sorted_ = sort_pending(pending, requested, seen, policies)
    new_requested = {p.zone_path: p.fingerprint for p in pending if requested.get(p.zone_path) == p.fingerprint}
    new_requested.update({p.zone_path: p.fingerprint for p in sorted_.ready})
    context.update_cursor(
        json.dumps(
            {"requested": new_requested, "seen": {p.zone_path: p.fingerprint for p in sorted_.waiting}},
            sort_keys=True,
        )
    )
    for p in sorted_.waiting:
        context.log.info(f"{p.zone_path}: waiting for the upload to finish ({p.size_bytes} bytes so far)")
    if not sorted_.ready:
        return dg.SkipReason(
            f"no new complete packets ({sorted_.already_requested} already requested, "
            f"{len(sorted_.waiting)} still uploading)"
        )
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=p.run_key,
                partition_key=p.packet_id,
                run_config=packet_run_config(p),
                tags={"herald/client": p.client_id, "herald/packet_type": p.packet_type, "herald/file": p.file_name},
            )
            for p in sorted_.ready
        ],
        dynamic_partitions_requests=[packets_partitions.build_add_request([p.packet_id for p in sorted_.ready])],
    )
