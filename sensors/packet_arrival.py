"""packet_arrival_sensor: a new file in a client's incoming area → one ingest run."""


import json

import dagster as dg

from herald.dropzone import DropZoneError
from orchestration.jobs import ingest_packet_job
from orchestration.partitions import packets_partitions
from assets.ingest.packets import packet_run_config
from resources import DropZoneResource


@dg.sensor(
    job=ingest_packet_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Lists every client's incoming area; each new or changed file gets a packet partition and one ingest run.",
)
def packet_arrival_sensor(context: dg.SensorEvaluationContext, dropzone: DropZoneResource):
    # The cursor maps each waiting file to the size:mtime seen, so a file is requested once and
    # its checksum computed once; the run key (client, path, checksum, mtime) guards the rest.
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    try:
        pending = dropzone.get().list_pending(known=seen)
    except DropZoneError as exc:
        return dg.SkipReason(f"cannot list the drop zone: {exc}")
    new = [p for p in pending if seen.get(p.zone_path) != p.fingerprint]
    context.update_cursor(json.dumps({p.zone_path: p.fingerprint for p in pending}, sort_keys=True))
    if not new:
        return dg.SkipReason(f"no new packets ({len(pending)} waiting, all already requested)")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=p.run_key,
                partition_key=p.packet_id,
                run_config=packet_run_config(p),
                tags={"herald/client": p.client_id, "herald/packet_type": p.packet_type, "herald/file": p.file_name},
            )
            for p in new
        ],
        dynamic_partitions_requests=[packets_partitions.build_add_request([p.packet_id for p in new])],
    )
