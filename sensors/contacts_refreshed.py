"""contacts_refreshed_sensor: a successful dbt transform → one refresh of every segment, and one
build of the dbt models the transform left (the analytics marts)."""

import dagster as dg
from dagster._core.definitions.target import ExecutableDefinition  # a job or an asset job; not exported publicly

from sensors.pacing import CHAINED_SENSOR_INTERVAL_SECONDS


def build_contacts_refreshed_sensor(
    transform_packets_job: ExecutableDefinition,
    refresh_segments_job: ExecutableDefinition,
    refresh_analytics_job: ExecutableDefinition,
) -> dg.RunStatusSensorDefinition:
    """A run status sensor names the jobs it watches and requests as definitions (Dagster has no
    by-name form for them), so orchestration builds it with its jobs."""

    @dg.run_status_sensor(
        name="contacts_refreshed_sensor",
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[transform_packets_job],
        request_jobs=[refresh_segments_job, refresh_analytics_job],
        minimum_interval_seconds=CHAINED_SENSOR_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="When the contact marts have been rebuilt, re-evaluates every segment so membership (and its "
        "entered/exited events) follows the new contacts, and builds the dbt models the transform left (the "
        "analytics marts).",
    )
    def contacts_refreshed_sensor(context: dg.RunStatusSensorContext):
        # one of each per successful transform run: its run id is in the run keys
        run_id = context.dagster_run.run_id
        yield dg.RunRequest(run_key=f"segments-after:{run_id}", job_name=refresh_segments_job.name)
        yield dg.RunRequest(run_key=f"analytics-after:{run_id}", job_name=refresh_analytics_job.name)

    return contacts_refreshed_sensor
