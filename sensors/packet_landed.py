"""packet_landed_sensor: packets landed since the last transform → one dbt build for all of them."""

import dagster as dg

from assets.ingest.packets import PACKET_ROWS
from sensors.pacing import CHAINED_SENSOR_INTERVAL_SECONDS

# targeted by name: the job is defined in orchestration/jobs.py, the layer above the sensors
TRANSFORM_PACKETS_JOB = "transform_packets_job"


@dg.sensor(
    job_name=TRANSFORM_PACKETS_JOB,
    minimum_interval_seconds=CHAINED_SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After packets land, requests one dbt build that maps, cleans and dedupes them into the marts.",
)
def packet_landed_sensor(context: dg.SensorEvaluationContext):
    # One build serves every packet landed since the last one: dbt's fixed cost is paid once
    # per batch, not once per packet. The cursor is the last materialization storage id seen.
    after = int(context.cursor) if context.cursor else 0
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=PACKET_ROWS, after_storage_id=after), limit=10_000, ascending=True
    ).records
    if not records:
        return dg.SkipReason("no packets landed since the last transform")
    last = max(r.storage_id for r in records)
    context.update_cursor(str(last))
    landed = [
        r
        for r in records
        if (
            r.asset_materialization
            and r.asset_materialization.metadata.get("status", dg.TextMetadataValue("")).value == "landed"
        )
    ]
    if not landed:
        return dg.SkipReason(f"{len(records)} packets processed since the last transform, none landed rows")
    partitions = sorted({r.partition_key for r in landed if r.partition_key})
    return dg.RunRequest(
        run_key=f"transform:{last}",
        tags={"herald/packets": ",".join(partitions)[:1000]},
    )
