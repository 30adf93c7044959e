"""manual_send_sensor: `herald campaign send` requests → one send run per requested occurrence."""

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
    description="Starts a send run for each occurrence requested with `herald campaign send` "
    "(request files under $HERALD_HOME/requests/send). The run key is the occurrence, so a "
    "request repeated for the same occurrence starts nothing.",
)
def manual_send_sensor(context: dg.SensorEvaluationContext, herald_settings: HeraldSettingsResource):
    requests = pending_send_requests(herald_settings.get().home)
    if not requests:
        return dg.SkipReason("no send requested with `herald campaign send`")
    for request in requests:
        yield dg.RunRequest(
            run_key=f"manual:{request['client_id']}/{request['campaign']}/{request['occurrence']}",
            run_config={"ops": {"herald_ops__campaign_occurrences": {"config": {"occurrences": [request]}}}},
            tags={
                "herald/client": request["client_id"],
                "herald/campaign": request["campaign"],
                "herald/occurrence": request["occurrence"],
                "herald/requested": json.dumps(request)[:200],
            },
        )
