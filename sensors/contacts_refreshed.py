"""contacts_refreshed_sensor: a successful dbt transform → one refresh of every segment."""

import dagster as dg

from orchestration.jobs import refresh_segments_job, transform_packets_job


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[transform_packets_job],
    request_job=refresh_segments_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="When the marts have been rebuilt, re-evaluates every segment so membership (and its "
    "entered/exited events) follows the new contacts.",
)
def contacts_refreshed_sensor(context: dg.RunStatusSensorContext):
    # one refresh per successful transform run: its run id is the run key
    return dg.RunRequest(run_key=f"segments-after:{context.dagster_run.run_id}")
