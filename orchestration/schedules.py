"""Every schedule: one per campaign with a cron trigger (in the client's time zone), the
journeys' advance pass, and the daily retention purge, A/B results and client reports. Deferred
messages are released by messages_due_sensor when they fall due, not by a schedule."""

from datetime import UTC

import dagster as dg

from herald.campaigns.occurrences import occurrence_name
from herald.config import Deployment
from herald.config.campaigns import ScheduleTrigger
from orchestration.jobs import (
    ADVANCE_JOURNEYS_JOB,
    CHECK_MARTS_JOB,
    SEND_CAMPAIGNS_JOB,
    ab_results_job,
    client_reports_job,
    retention_purge_job,
    staff_digest_job,
)

ADVANCE_JOURNEYS_CRON = "5-59/15 * * * *"
CHECK_MARTS_CRON = "50 * * * *"
RETENTION_PURGE_CRON = "30 3 * * *"
AB_RESULTS_CRON = "0 4 * * *"
CLIENT_REPORTS_CRON = "0 6 * * *"  # after the A/B results (04:00 UTC)


def campaign_schedule_name(client_id: str, campaign: str) -> str:
    return f"{client_id}__{campaign}__schedule"


def build_campaign_schedule(client_id: str, campaign: str, cron: str, time_zone: str, description: str):
    @dg.schedule(
        name=campaign_schedule_name(client_id, campaign),
        cron_schedule=cron,
        execution_timezone=time_zone,
        job_name=SEND_CAMPAIGNS_JOB,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=description,
        tags={"herald/client": client_id, "herald/campaign": campaign},
    )
    def _schedule(context: dg.ScheduleEvaluationContext):
        # the occurrence is the local wall-clock minute: a daily send on a DST change day is
        # one occurrence, and the run key dedupes it even if the cron fired twice
        fire = context.scheduled_execution_time
        occurrence = occurrence_name(fire)
        fired_at = fire.astimezone(UTC).replace(tzinfo=None) if fire.tzinfo else fire
        return dg.RunRequest(
            run_key=f"{client_id}/{campaign}/{occurrence}",
            run_config={
                "ops": {
                    "herald_ops__campaign_occurrences": {
                        "config": {
                            "occurrences": [
                                {
                                    "client_id": client_id,
                                    "campaign": campaign,
                                    "occurrence": occurrence,
                                    "trigger_type": "schedule",
                                    "fired_at": fired_at.isoformat(),
                                }
                            ]
                        }
                    }
                }
            },
            tags={"herald/client": client_id, "herald/campaign": campaign, "herald/occurrence": occurrence},
        )

    return _schedule


def build_campaign_schedules(deployment: Deployment) -> list[dg.ScheduleDefinition]:
    schedules = []
    for client_id, client in sorted(deployment.clients.items()):
        for name, campaign in sorted(client.campaigns.items()):
            if isinstance(campaign.trigger, ScheduleTrigger):
                description = (
                    f"{campaign.describe_trigger(client.time_zone)}: sends {client_id}/{name} ({campaign.status})."
                )
                schedules.append(
                    build_campaign_schedule(client_id, name, campaign.trigger.cron, client.time_zone, description)
                )
    return schedules


def build_digest_schedules(deployment: Deployment) -> list[dg.ScheduleDefinition]:
    """One schedule per client with the staff digest on: daily at its confirmations.digest.send_at,
    in its time zone (the run sends every digest that is due and not sent today)."""
    schedules = []
    for client_id, client in sorted(deployment.clients.items()):
        digest = client.config.confirmations.digest
        if not digest.enabled:
            continue
        hours, minutes = (int(part) for part in digest.send_at.split(":"))
        schedules.append(
            dg.ScheduleDefinition(
                name=f"{client_id}__staff_digest_schedule",
                cron_schedule=f"{minutes} {hours} * * *",
                execution_timezone=client.time_zone,
                job=staff_digest_job,
                default_status=dg.DefaultScheduleStatus.RUNNING,
                description=f"Daily at {digest.send_at} ({client.time_zone}): emails {client_id}'s staff the "
                "next day's unconfirmed appointments.",
            )
        )
    return schedules


advance_journeys_schedule = dg.ScheduleDefinition(
    name="advance_journeys_schedule",
    cron_schedule=ADVANCE_JOURNEYS_CRON,
    job_name=ADVANCE_JOURNEYS_JOB,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every 15 minutes: moves journey enrollments on whose wait, timeout or daily limit is over "
    "(a send pass with nothing newly fired).",
)


@dg.schedule(
    name="check_marts_schedule",
    cron_schedule=CHECK_MARTS_CRON,
    execution_timezone="UTC",
    job_name=CHECK_MARTS_JOB,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Hourly at :50: the dbt tests of the marts that send, delivery, reply and provider-event runs "
    "refresh without their tests (they build only the models, to keep those runs short). Only the tests of "
    "marts that have been built: a new deployment's first hour skips the rest instead of failing on them.",
)
def check_marts_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    checks = ready_mart_checks(context)
    if not checks:
        return dg.SkipReason("no mart the hourly tests cover has been built yet")
    return dg.RunRequest(asset_check_keys=checks, tags={"herald/checks": str(len(checks))})


def ready_mart_checks(context: dg.ScheduleEvaluationContext) -> list[dg.AssetCheckKey]:
    """The check job's checks whose mart has a materialization: a dbt test of a table no run has
    built yet would fail the run with "relation does not exist", not say anything of the data."""
    graph = context.repository_def.get_job(CHECK_MARTS_JOB).asset_layer.asset_graph
    checks = sorted(graph.asset_check_keys, key=lambda c: (c.asset_key.to_user_string(), c.name))
    keys = sorted({c.asset_key for c in checks}, key=lambda k: k.to_user_string())
    built = {key for key, event in context.instance.get_latest_materialization_events(keys).items() if event}
    return [c for c in checks if c.asset_key in built]


retention_purge_schedule = dg.ScheduleDefinition(
    name="retention_purge_schedule",
    cron_schedule=RETENTION_PURGE_CRON,
    execution_timezone="UTC",
    job=retention_purge_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily at 03:30 UTC: purges data past its retention period (consent, opt-outs, message "
    "content, delivery logs).",
)

ab_results_schedule = dg.ScheduleDefinition(
    name="ab_results_schedule",
    cron_schedule=AB_RESULTS_CRON,
    execution_timezone="UTC",
    job=ab_results_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily at 04:00 UTC: recomputes the A/B test results of every campaign step.",
)

client_reports_schedule = dg.ScheduleDefinition(
    name="client_reports_schedule",
    cron_schedule=CLIENT_REPORTS_CRON,
    execution_timezone="UTC",
    job=client_reports_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily at 06:00 UTC: refreshes every client's report (after the A/B results at 04:00).",
)
