"""inbound_events_sensor: replies waiting to be applied → one apply_replies_job run.

Embedded (DuckDB): replies wait as files under $HERALD_HOME/landing/inbound; the run key names
the set of waiting files. PostgreSQL: the web service inserts into herald_raw.inbound_messages
directly; a read-only count of rows with no inbound_processing row decides, and the run key
names the newest landing time and the count."""

import hashlib

import dagster as dg

from herald.compliance.landing import INBOUND_TABLE, inbound_dir, pending_files
from herald.events.apply import unprocessed
from herald.warehouse.schema import OPS_SCHEMA
from resources import HeraldSettingsResource, WarehouseResource

# targeted by name: the job is defined in orchestration/jobs.py, the layer above the sensors
APPLY_REPLIES_JOB = "apply_replies_job"

INBOUND_PROCESSING = f"{OPS_SCHEMA}.inbound_processing"


def pending_run_key(names: list[str]) -> str:
    """Names what a run processes: the sorted names of the files waiting."""
    return "inbound:" + hashlib.sha256("\n".join(sorted(names)).encode("utf-8")).hexdigest()[:32]


@dg.sensor(
    job_name=APPLY_REPLIES_JOB,
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="When inbound replies wait to be applied — files under $HERALD_HOME/landing/inbound (from "
    "`herald inbound` or the webhook), or unprocessed rows of herald_raw.inbound_messages on PostgreSQL — "
    "requests one apply_replies_job run that loads and applies them all.",
)
def inbound_events_sensor(
    context: dg.SensorEvaluationContext, herald_settings: HeraldSettingsResource, warehouse: WarehouseResource
):
    settings = herald_settings.get()
    home = settings.home
    # files wait in every mode (`herald inbound`, the demo, polling on a host without the database)
    names = [p.name for p in pending_files(home)]
    if names:
        return dg.RunRequest(run_key=pending_run_key(names), tags={"herald/inbound_files": str(len(names))})
    if settings.warehouse.engine == "postgres":
        with warehouse.get_reader().session(read_only=True) as session:
            waiting = unprocessed(session, INBOUND_TABLE, INBOUND_PROCESSING, "inbound_id")
        if not waiting.count:
            return dg.SkipReason(f"no unprocessed rows in {INBOUND_TABLE}")
        return dg.RunRequest(
            run_key=f"inbound:{waiting.run_key_part}", tags={"herald/inbound_rows": str(waiting.count)}
        )
    return dg.SkipReason(f"no inbound replies waiting in {inbound_dir(home)}")
