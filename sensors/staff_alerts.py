"""staff_alerts_sensor: what sends or updates messages ran → one staff-alert check, at most every
five minutes.

Failed and held messages, delivery receipts and provider attempts only change when a run
materializes the outbox, the delivery attempts or the provider events (and messages_due_sensor
requests a delivery run whenever a message or a retry falls due), so the trigger is a new materialization of one of
those since the sensor's cursor; the sensor never opens the warehouse (an embedded DuckDB has one
writer). The run key names the newest materialization, so a repeated tick never checks twice for
the same change; the check itself alerts once per crossing (herald/alerts)."""

import dagster as dg

from assets.delivery.campaigns import DELIVERY_KEY, OUTBOX_KEY
from assets.events.provider_events import PROVIDER_EVENT_PROCESSING_KEY

# targeted by name: the job is defined in orchestration/jobs.py, the layer above the sensors
STAFF_ALERTS_JOB = "staff_alerts_job"
WATCHED = (OUTBOX_KEY, DELIVERY_KEY, PROVIDER_EVENT_PROCESSING_KEY)
CHECK_EVERY_SECONDS = 300


def newest_change(instance: dg.DagsterInstance, after: int) -> int | None:
    """The newest storage id of a watched materialization after ``after`` (None: nothing new)."""
    newest = None
    for key in WATCHED:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, after_storage_id=after), limit=1, ascending=False
        ).records
        if records:
            newest = max(newest or 0, records[0].storage_id)
    return newest


@dg.sensor(
    name="staff_alerts_sensor",
    job_name=STAFF_ALERTS_JOB,
    minimum_interval_seconds=CHECK_EVERY_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every 5 minutes, when the outbox, delivery attempts or provider events changed, requests one "
    "staff_alerts_job run: failed or held messages, low delivery rates and provider outages, alerted once per "
    "crossing.",
)
def staff_alerts_sensor(context: dg.SensorEvaluationContext):
    after = int(context.cursor) if context.cursor else 0
    newest = newest_change(context.instance, after)
    if newest is None:
        return dg.SkipReason("no outbox, delivery or provider-event change since the last staff-alert check")
    context.update_cursor(str(newest))
    return dg.RunRequest(run_key=f"staff_alerts-after:{newest}")
