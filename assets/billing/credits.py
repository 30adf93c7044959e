"""Low-credit alerts as an asset, checked after each delivery run by ``low_credit_sensor``.

Design: an alert is a fact in the warehouse (``herald_ops.credit_alerts``) and an email to the
client; in Dagster it is the materialization's metadata (a Markdown table of the crossings) plus
one ``AssetObservation`` per alert, so the asset's timeline shows every alert by client. The run
fails (``dg.Failure``) only when an alert email could not be sent (no email provider, a provider
error, no ``contact.email``): the alert row is committed first, so a person is told either by the
email or by the failed run, and the next check tries the email again.
"""

import dagster as dg

from assets.partitions import WAREHOUSE_POOL
from herald.billing.alerts import CreditAlert, check_low_credit
from herald.billing.credits import show
from herald.clock import utcnow
from resources import HeraldConfigResource, ProvidersResource, WarehouseResource

BILLING_GROUP = "billing"
CREDIT_ALERTS_KEY = dg.AssetKey(["herald_ops", "credit_alerts"])


def alerts_table(alerts: list[CreditAlert]) -> str:
    """The alerts of one check as a Markdown table (no addresses)."""
    if not alerts:
        return "no client crossed its low-credit threshold"
    lines = ["| client | balance | threshold | email |", "|---|---|---|---|"]
    lines += [
        f"| {a.client_id} | {show(a.balance)} | {show(a.threshold)} | {a.email_status}"
        + (f": {a.email_error}" if a.email_error else "")
        + " |"
        for a in alerts
    ]
    return "\n".join(lines)


@dg.asset(
    key=CREDIT_ALERTS_KEY,
    group_name=BILLING_GROUP,
    pool=WAREHOUSE_POOL,
    kinds={"python"},
)
def credit_alerts(
    context: dg.AssetExecutionContext,
    herald_config: HeraldConfigResource,
    warehouse: WarehouseResource,
    providers: ProvidersResource,
) -> dg.MaterializeResult:
    """One row per low-credit crossing: a metered client whose balance fell below
    credit_alert_threshold_pct of its last purchase, emailed once (to its contact.email) until a
    new purchase re-arms the alert. Fails the run when an alert email could not be sent."""
    deployment = herald_config.load()
    now = utcnow()
    with warehouse.get().session() as session:
        fired = check_low_credit(session, deployment, providers.get(), now)
    for alert in fired:
        context.log_event(
            dg.AssetObservation(
                asset_key=CREDIT_ALERTS_KEY,
                metadata={
                    "client_id": alert.client_id,
                    "balance": float(alert.balance),
                    "threshold": float(alert.threshold),
                    "email_status": alert.email_status,
                    "message_key": alert.message_key,
                },
            )
        )
    unsent = [a for a in fired if not a.delivered]
    if unsent:
        raise dg.Failure(
            description=f"{len(unsent)} low-credit alert(s) could not be emailed; recorded in herald_ops.credit_alerts "
            "and tried again by the next check",
            metadata={"alerts": dg.MetadataValue.md(alerts_table(unsent))},
        )
    return dg.MaterializeResult(
        metadata={
            "alerts_fired": dg.MetadataValue.int(len(fired)),
            "alerts": dg.MetadataValue.md(alerts_table(fired)),
        }
    )
