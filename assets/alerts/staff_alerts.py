"""Staff alerts as an asset, checked every few minutes after outbox changes by ``staff_alerts_sensor``.

An alert is a fact in the warehouse (``herald_ops.staff_alerts``, written by
:func:`herald.alerts.check_staff_alerts`), an email to the client's contact and an operator
alert: a WARNING log line, the materialization's metadata (a Markdown table of the open alerts,
no addresses), one ``AssetObservation`` per new alert, and the asset check ``no_open_staff_alerts``,
which fails while any alert is open. The run fails (``dg.Failure``) only when a client email could
not be sent (the rows are committed first; the next check tries again).
"""

import dagster as dg

from assets.partitions import WAREHOUSE_POOL
from herald.alerts import StaffAlert, check_staff_alerts
from herald.clock import utcnow
from resources import HeraldConfigResource, ProvidersResource, WarehouseResource

ALERTS_GROUP = "alerts"
STAFF_ALERTS_KEY = dg.AssetKey(["herald_ops", "staff_alerts"])
NO_OPEN_ALERTS_CHECK = "no_open_staff_alerts"


def alerts_table(alerts: list[StaffAlert]) -> str:
    """Alerts as a Markdown table (counts and statuses; no addresses)."""
    if not alerts:
        return "no staff alert is open"
    lines = [
        "| client | kind | provider | observed | of | threshold | since | client email |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {a.client_id} | {a.kind} | {a.subject or '-'} | {a.observed} | {a.total} | {a.threshold} | "
        f"{a.crossed_at:%Y-%m-%d %H:%M} | {a.email_status}" + (f": {a.email_error}" if a.email_error else "") + " |"
        for a in alerts
    ]
    return "\n".join(lines)


@dg.asset(
    key=STAFF_ALERTS_KEY,
    group_name=ALERTS_GROUP,
    pool=WAREHOUSE_POOL,
    kinds={"python"},
    check_specs=[
        dg.AssetCheckSpec(
            NO_OPEN_ALERTS_CHECK,
            asset=STAFF_ALERTS_KEY,
            description="Fails while any client has an open staff alert (too many failed or held messages, a low "
            "delivery rate, a provider outage).",
        )
    ],
)
def staff_alerts(
    context: dg.AssetExecutionContext,
    herald_config: HeraldConfigResource,
    warehouse: WarehouseResource,
    providers: ProvidersResource,
):
    """One row per staff-alert crossing per client over its recent window (client.yaml `alerts:`): too many
    failed or held messages, a delivery rate under its threshold, or a provider whose last attempts all
    failed. Each crossing is emailed once to the client's contact.email (and herald.yaml's operator_email)
    until it recovers; open alerts fail the no_open_staff_alerts check."""
    deployment = herald_config.load()
    with warehouse.get().session() as session:
        result = check_staff_alerts(session, deployment, providers.get(), utcnow())
    for alert in result.fired:
        context.log.warning(f"staff alert: {alert.summary()} (client email: {alert.email_status})")
        context.log_event(
            dg.AssetObservation(
                asset_key=STAFF_ALERTS_KEY,
                metadata={
                    "client_id": alert.client_id,
                    "kind": alert.kind,
                    "subject": alert.subject,
                    "observed": alert.observed,
                    "total": alert.total,
                    "threshold": alert.threshold,
                    "email_status": alert.email_status,
                    "operator_email_status": alert.operator_email_status,
                    "alert_id": alert.alert_id,
                },
            )
        )
    failed = [a for a in result.fired if a.email_status == "failed"]
    if failed:
        raise dg.Failure(
            description=f"{len(failed)} staff alert email(s) could not be sent; recorded in herald_ops.staff_alerts "
            "and tried again by the next check",
            metadata={"alerts": dg.MetadataValue.md(alerts_table(failed))},
        )
    yield dg.MaterializeResult(
        metadata={
            "alerts_fired": dg.MetadataValue.int(len(result.fired)),
            "alerts_recovered": dg.MetadataValue.int(len(result.recovered)),
            "alerts_open": dg.MetadataValue.int(len(result.open)),
            "open_alerts": dg.MetadataValue.md(alerts_table(result.open)),
        }
    )
    yield dg.AssetCheckResult(
        asset_key=STAFF_ALERTS_KEY,
        check_name=NO_OPEN_ALERTS_CHECK,
        passed=not result.open,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{len(result.open)} staff alert(s) open" if result.open else "no staff alert is open",
        metadata={"open_alerts": dg.MetadataValue.md(alerts_table(result.open))},
    )
