"""messages_due_sensor: a queued message's time has come → one deliver_messages_job run.

Keyed on the outbox's next due moment (:mod:`herald.delivery.due`): a message deferred to its
recipient's send window, a retry whose backoff is over, a message an opt-out kept waiting, or one
a dead run left in ``sending`` past its lease is delivered by the first evaluation after its time
(every 15 s under the daemon, every `herald tick`), not at the next slot of a timer. The run key
names what is due, so a repeated evaluation requests nothing new.

The due state is one read-only query. An embedded DuckDB file has one writer and dbt does not wait
for its lock, so there the sensor reads only while no run is executing (it tries the file once and
skips rather than wait). That costs no latency: a delivery run could not write before the executing
run frees the warehouse pool's one slot anyway. A run only queued or starting is seconds (a process
start, a run's set-up) away from opening the file, against milliseconds for the read. On
PostgreSQL it reads at every evaluation."""

import dagster as dg

from herald.clock import utcnow
from herald.delivery.due import outbox_due
from herald.providers.factory import delivery_options_from_env
from herald.warehouse.connection import WarehouseError
from resources import HeraldSettingsResource, WarehouseResource

# targeted by name: the job is defined in orchestration/jobs.py, the layer above the sensors
DELIVER_MESSAGES_JOB = "deliver_messages_job"
EVERY_SECONDS = 15
EXECUTING = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


@dg.sensor(
    name="messages_due_sensor",
    job_name=DELIVER_MESSAGES_JOB,
    minimum_interval_seconds=EVERY_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="When an outbox message falls due — its send window opened, its retry backoff or opt-out wait is "
    "over, or a dead run left it in sending past its lease — requests one deliver_messages_job run (run key: what "
    "is due). On an embedded DuckDB warehouse it looks only while no run is executing.",
)
def messages_due_sensor(
    context: dg.SensorEvaluationContext, herald_settings: HeraldSettingsResource, warehouse: WarehouseResource
):
    if herald_settings.get().warehouse.engine == "duckdb":
        busy = context.instance.get_run_records(dg.RunsFilter(statuses=EXECUTING), limit=1)
        if busy:
            run = busy[0].dagster_run
            return dg.SkipReason(
                f"run {run.run_id} ({run.job_name}) is executing and may hold the embedded warehouse: "
                "the outbox is read once no run is"
            )
    try:
        # DuckDB: one try; a writer holding the file now is a command, left alone (the next look reads)
        with warehouse.get_reader().session(read_only=True, lock_wait_seconds=0) as s:
            state = outbox_due(s, utcnow(), delivery_options_from_env().lease_seconds)
    except WarehouseError as exc:
        return dg.SkipReason(f"the outbox cannot be read now: {exc}")
    key = state.run_key()
    if key is None:
        return dg.SkipReason(state.describe())
    return dg.RunRequest(
        run_key=key,
        tags={"herald/messages_due": str(state.due), "herald/stale_claims": str(state.stale)},
    )
