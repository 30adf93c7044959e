"""manual_send_sensor: `herald campaign send` requests → one send run for the occurrences requested
(one per run usually; several waiting at once — as `herald demo` fires them — share one pass)."""

import json

import dagster as dg

from herald.campaigns.requests import pending_send_requests
from resources import HeraldSettingsResource

# targeted by name: the job is defined in orchestration/jobs.py, the layer above the sensors
SEND_CAMPAIGNS_JOB = "send_campaigns_job"


@dg.sensor(
    job_name=SEND_CAMPAIGNS_JOB,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts a send run for the occurrences requested with `herald campaign send` "
    "(request files under $HERALD_HOME/requests/send; several waiting at once share one run). The run "
    "key names the occurrences, so a request repeated for the same occurrence starts nothing.",
)
def manual_send_sensor(context: dg.SensorEvaluationContext, herald_settings: HeraldSettingsResource):
    requests = pending_send_requests(herald_settings.get().home)
    if not requests:
        return dg.SkipReason("no send requested with `herald campaign send`")
    key = ",".join(f"{r['client_id']}/{r['campaign']}/{r['occurrence']}" for r in requests)
    yield dg.RunRequest(
        run_key=f"manual:{key}",
        run_config={"ops": {"herald_ops__campaign_occurrences": {"config": {"occurrences": requests}}}},
        tags={
            "herald/client": ",".join(sorted({r["client_id"] for r in requests})),
            "herald/campaign": ",".join(sorted({r["campaign"] for r in requests})),
            "herald/occurrence": ",".join(sorted({r["occurrence"] for r in requests})),
            "herald/requested": json.dumps(requests)[:200],
        },
    )
