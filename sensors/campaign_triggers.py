"""campaign_triggers_sensor: segments refreshed → one send run that looks for new packets,
segment entries and funnel events that trigger campaigns."""

import dagster as dg

from herald.config import load_deployment
from herald.settings import Settings
from orchestration.jobs import refresh_segments_job, send_campaigns_job

EVENT_TRIGGERS = frozenset({"packet_arrival", "segment_entry", "funnel_event"})


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[refresh_segments_job],
    request_job=send_campaigns_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After the segments are re-evaluated, starts a send run for event-triggered campaigns: "
    "one occurrence per newly loaded packet (packet_arrival), and one per campaign with new segment "
    "entries (segment_entry) or funnel events (funnel_event).",
)
def campaign_triggers_sensor(context: dg.RunStatusSensorContext):
    deployment = load_deployment(Settings.from_env().config_dir)
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
