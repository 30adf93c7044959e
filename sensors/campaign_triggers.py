"""campaign_triggers_sensor: segments refreshed → one send run that looks for new packets,
segment entries and funnel events that trigger campaigns."""

import dagster as dg
from dagster._core.definitions.target import ExecutableDefinition  # a job or an asset job; not exported publicly

from resources import HeraldConfigResource
from sensors.pacing import CHAINED_SENSOR_INTERVAL_SECONDS

EVENT_TRIGGERS = frozenset({"packet_arrival", "segment_entry", "funnel_event"})


def build_campaign_triggers_sensor(
    refresh_segments_job: ExecutableDefinition, send_campaigns_job: ExecutableDefinition
) -> dg.RunStatusSensorDefinition:
    """A run status sensor names the jobs it watches and requests as definitions (Dagster has no
    by-name form for them), so orchestration builds it with its jobs."""

    @dg.run_status_sensor(
        name="campaign_triggers_sensor",
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[refresh_segments_job],
        request_job=send_campaigns_job,
        minimum_interval_seconds=CHAINED_SENSOR_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="After the segments are re-evaluated, starts a send run for event-triggered campaigns: "
        "one occurrence per newly loaded packet (packet_arrival), and one per campaign with new segment "
        "entries (segment_entry) or funnel events (funnel_event).",
    )
    def campaign_triggers_sensor(context: dg.RunStatusSensorContext, herald_config: HeraldConfigResource):
        deployment = herald_config.load()
        triggered = [
            f"{client_id}/{name}"
            for client_id, client in deployment.clients.items()
            for name, campaign in client.campaigns.items()
            if campaign.trigger.type in EVENT_TRIGGERS
        ]
        if not triggered:
            return dg.SkipReason("no campaign is triggered by packets, segment entries or funnel events")
        return dg.RunRequest(
            run_key=f"triggers-after:{context.dagster_run.run_id}",
            run_config={"ops": {"herald_ops__campaign_occurrences": {"config": {"detect_triggered": True}}}},
        )

    return campaign_triggers_sensor
