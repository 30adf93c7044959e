"""webhooks_sensor: every minute, one webhooks_job run (a bounded dispatch of client events to
the clients' webhook endpoints) — when any client subscribes to webhooks and no such run is
already queued or running. It never opens the warehouse."""

import dagster as dg

# targeted by name: the job is defined in orchestration/jobs.py, the layer above the sensors
WEBHOOKS_JOB = "webhooks_job"
EVERY_SECONDS = 60
IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
             dg.DagsterRunStatus.STARTED]  # fmt: skip


def build_webhooks_sensor(subscriptions: int) -> dg.SensorDefinition:
    """The sensor, told how many subscriptions the configuration has (none: it always skips)."""

    @dg.sensor(
        name="webhooks_sensor",
        job_name=WEBHOOKS_JOB,
        minimum_interval_seconds=EVERY_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Every minute, when clients subscribe to webhooks: one webhooks_job run (new client events "
        "enqueued, due deliveries sent and signed, retries on their backoff), never two at once.",
    )
    def webhooks_sensor(context: dg.SensorEvaluationContext):
        if not subscriptions:
            return dg.SkipReason("no client subscribes to webhooks (client.yaml `webhooks`)")
        running = context.instance.get_run_records(dg.RunsFilter(job_name=WEBHOOKS_JOB, statuses=IN_FLIGHT), limit=1)
        if running:
            return dg.SkipReason(f"webhooks_job run {running[0].dagster_run.run_id} is still in flight")
        return dg.RunRequest()

    return webhooks_sensor
