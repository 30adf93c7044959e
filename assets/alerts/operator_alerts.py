"""The deployment-wide failed/held threshold as an asset, checked in the staff alerts' run.

Beside the per-client staff alerts (assets/alerts/staff_alerts.py): across every client, too many
messages failed or held in the recent window is one operator incident in
``herald_ops.operator_incidents``, told once (email and/or webhook, with the link to this run)
until it recovers (herald/alerts/operator.py)."""

import dagster as dg

from assets.alerts.staff_alerts import ALERTS_GROUP, STAFF_ALERTS_KEY
from assets.partitions import WAREHOUSE_POOL
from herald.alerts.operator import check_failed_or_held, operator_address
from herald.clock import utcnow
from herald.settings import operator_alert_settings
from resources import HeraldConfigResource, ProvidersResource, WarehouseResource

OPERATOR_INCIDENTS_KEY = dg.AssetKey(["herald_ops", "operator_incidents"])


@dg.asset(
    key=OPERATOR_INCIDENTS_KEY,
    group_name=ALERTS_GROUP,
    pool=WAREHOUSE_POOL,
    kinds={"python"},
    deps=[STAFF_ALERTS_KEY],
)
def operator_incidents(
    context: dg.AssetExecutionContext,
    herald_config: HeraldConfigResource,
    warehouse: WarehouseResource,
    providers: ProvidersResource,
):
    """One row per operator incident: a failed run (run_failure_sensor) or the deployment's failed and held
    messages over HERALD_OPERATOR_FAILED_OR_HELD_COUNT in the window, told once to the operator until it
    recovers. This step checks the threshold."""
    settings = operator_alert_settings()
    operator = operator_address(settings, herald_config.load().herald.operator_email)
    with warehouse.get().session() as session:
        result = check_failed_or_held(session, settings, providers.get(), operator, utcnow(), context.run_id)
    if result.opened is not None:
        context.log.warning(
            f"operator incident: {result.opened.summary} (email {result.opened.email_status}, "
            f"webhook {result.opened.webhook_status})"
        )
    return dg.MaterializeResult(
        metadata={
            "failed_or_held": dg.MetadataValue.int(result.observed),
            "threshold": dg.MetadataValue.int(settings.failed_or_held_count),
            "opened": dg.MetadataValue.bool(result.opened is not None),
            "recovered": dg.MetadataValue.bool(result.recovered is not None),
            "open_incident": dg.MetadataValue.text(result.open.summary if result.open else "none"),
        }
    )
