"""provider_events_sensor: provider events waiting to be applied → one apply_provider_events_job run.

Embedded (DuckDB): the web service writes files under $HERALD_HOME/landing/events; the run key
names the set of waiting files. PostgreSQL: the web service inserts into
herald_raw.provider_events directly; a read-only count of rows with no processing row decides,
and the run key names the newest landing time and the count."""

import hashlib

import dagster as dg

from herald.campaigns.tracking import CLICKS_TABLE, pending_click_files, unapplied_clicks
from herald.events.apply import PROCESSING, PROVIDER_EVENTS, unprocessed
from herald.events.landing import events_dir, pending_event_files
from resources import HeraldSettingsResource, WarehouseResource

# targeted by name: the job is defined in orchestration/jobs.py, the layer above the sensors
APPLY_PROVIDER_EVENTS_JOB = "apply_provider_events_job"


def pending_run_key(names: list[str]) -> str:
    """Names what a run processes: the sorted names of the files waiting."""
    return "provider_events:" + hashlib.sha256("\n".join(sorted(names)).encode("utf-8")).hexdigest()[:32]


@dg.sensor(
    job_name=APPLY_PROVIDER_EVENTS_JOB,
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="When provider events (Twilio statuses, Resend webhooks, web unsubscribes and confirmations) "
    "wait to be applied — files under $HERALD_HOME/landing/events, or unprocessed rows of "
    "herald_raw.provider_events on PostgreSQL — requests one apply_provider_events_job run.",
)
def provider_events_sensor(
    context: dg.SensorEvaluationContext, herald_settings: HeraldSettingsResource, warehouse: WarehouseResource
):
    settings = herald_settings.get()
    # files may wait in every mode (a service that landed them before switching, polling)
    names = [p.name for p in pending_event_files(settings.home)]
    names += [f"clicks/{p.name}" for p in pending_click_files(settings.home)]  # tracked-link clicks
    if names:
        return dg.RunRequest(run_key=pending_run_key(names), tags={"herald/provider_event_files": str(len(names))})
    if settings.warehouse.engine == "postgres":
        with warehouse.get_reader().session(read_only=True) as session:
            waiting = unprocessed(session, PROVIDER_EVENTS, PROCESSING, "event_id")
            clicks, latest = unapplied_clicks(session)
        if clicks and not waiting.count:
            return dg.RunRequest(run_key=f"link_clicks:{latest}:{clicks}", tags={"herald/link_clicks": str(clicks)})
        if not waiting.count:
            return dg.SkipReason(f"no unprocessed rows in {PROVIDER_EVENTS} or {CLICKS_TABLE}")
        return dg.RunRequest(
            run_key=f"provider_events:{waiting.run_key_part}", tags={"herald/provider_events": str(waiting.count)}
        )
    return dg.SkipReason(f"no provider events waiting in {events_dir(settings.home)}")
