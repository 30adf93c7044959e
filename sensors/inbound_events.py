"""inbound_events_sensor: replies waiting in the landing area → one apply_replies_job run."""

import hashlib

import dagster as dg

from herald.compliance.landing import inbound_dir, pending_files
from herald.settings import Settings
from orchestration.jobs import apply_replies_job


def pending_run_key(names: list[str]) -> str:
    """Names what a run processes: the sorted names of the files waiting."""
    return "inbound:" + hashlib.sha256("\n".join(sorted(names)).encode("utf-8")).hexdigest()[:32]


@dg.sensor(
    job=apply_replies_job,
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="When inbound replies wait under $HERALD_HOME/landing/inbound (from `herald inbound` or "
    "the webhook), requests one apply_replies_job run that loads and applies them all.",
)
def inbound_events_sensor(context: dg.SensorEvaluationContext):
    home = Settings.from_env().home
    names = [p.name for p in pending_files(home)]
    if not names:
        return dg.SkipReason(f"no inbound replies waiting in {inbound_dir(home)}")
    return dg.RunRequest(run_key=pending_run_key(names), tags={"herald/inbound_files": str(len(names))})
