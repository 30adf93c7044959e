"""run_failure_sensor: a Dagster run failed → the operator is told once (herald/alerts/operator.py).

A run-status sensor: Dagster hands it each run that failed since its cursor; it records the
failure as an operator incident keyed by the run id and sends the email and/or webhook, with the
link to the run. A run already recorded is never told twice, whatever re-evaluates the sensor.
The warehouse is opened for a moment before and after the notification, never held during it."""

import dagster as dg

from herald.alerts.operator import operator_address, report_run_failure
from herald.clock import utcnow
from herald.settings import operator_alert_settings
from resources import HeraldConfigResource, ProvidersResource, WarehouseResource

RUN_FAILURE_SENSOR = "run_failure_sensor"


@dg.run_failure_sensor(
    name=RUN_FAILURE_SENSOR,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Tells the operator once about every failed run (HERALD_OPERATOR_EMAIL through the email provider "
    "and/or a POST to HERALD_ALERT_WEBHOOK_URL, with the link {HERALD_DAGSTER_URL}/runs/{run_id}); recorded in "
    "herald_ops.operator_incidents.",
)
def run_failure_sensor(
    context: dg.RunFailureSensorContext,
    warehouse: WarehouseResource,
    providers: ProvidersResource,
    herald_config: HeraldConfigResource,
) -> None:
    run = context.dagster_run
    # the run's failure says which steps failed; each step's failure says why
    lines = [context.failure_event.message or ""] if context.failure_event else []
    for event in context.get_step_failure_events()[:3]:
        failure = event.step_failure_data.error
        while failure is not None and failure.cause is not None:  # Dagster wraps the user's error
            failure = failure.cause
        lines.append(f"{event.step_key}: {failure.message.strip() if failure else 'failed'}")
    error = "\n".join(line for line in lines if line) or None
    settings = operator_alert_settings()
    incident = report_run_failure(
        warehouse.get(),
        settings,
        providers.get(),
        operator_address(settings, herald_config.load().herald.operator_email),
        run_id=run.run_id,
        job_name=run.job_name,
        error=error,
        now=utcnow(),
    )
    if incident is None:
        context.log.info(f"run {run.run_id} of {run.job_name}: its failure was already reported")
    else:
        context.log.warning(
            f"{incident.summary}: email {incident.email_status}, webhook {incident.webhook_status} ({incident.link})"
        )
