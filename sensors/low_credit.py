"""low_credit_sensor: a delivery run that sent something → one low-credit check.

Balances only fall when a delivery run debits messages, so the trigger is a finished run of a
job that delivers; the sensor never opens the warehouse (an embedded DuckDB has one writer).
The run key names the delivery run, so a repeated tick never checks twice for one run; the
check itself alerts once per crossing (herald/billing/alerts.py)."""

from collections.abc import Sequence

import dagster as dg
from dagster._core.definitions.target import ExecutableDefinition  # a job or an asset job; not exported publicly

from assets.delivery.campaigns import DELIVERY_KEY


def sent_in_run(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """Messages the run's delivery step reported sent (None: it did not materialize delivery)."""
    event = instance.get_latest_materialization_event(DELIVERY_KEY)
    if event is None or event.run_id != run_id or event.asset_materialization is None:
        return None
    sent = event.asset_materialization.metadata.get("sent")
    return int(sent.value) if sent is not None else None


def build_low_credit_sensor(
    delivering_jobs: Sequence[ExecutableDefinition], alert_low_credit_job: ExecutableDefinition
) -> dg.RunStatusSensorDefinition:
    """Watches ``delivering_jobs`` (the jobs that debit credits). A run status sensor names the
    jobs it watches and requests as definitions (Dagster has no by-name form for them), so
    orchestration builds it with its jobs."""

    @dg.run_status_sensor(
        name="low_credit_sensor",
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=list(delivering_jobs),
        request_job=alert_low_credit_job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="When a delivery run sent messages (and so debited credits), requests one alert_low_credit_job "
        "run: clients whose balance fell below their threshold get one email per crossing.",
    )
    def low_credit_sensor(context: dg.RunStatusSensorContext):
        run_id = context.dagster_run.run_id
        sent = sent_in_run(context.instance, run_id)
        if sent == 0:
            return dg.SkipReason(f"run {run_id} sent no message: no balance changed")
        return dg.RunRequest(run_key=f"low_credit-after:{run_id}")

    return low_credit_sensor
