"""Outbound webhooks as an asset: each materialization is one bounded dispatch run
(herald/webhooks/dispatch.py) — new client events enqueued per subscription, due deliveries
POSTed and signed, retries scheduled, 410 endpoints disabled.

It runs in its own job (``webhooks_job``, requested every minute by ``webhooks_sensor``), never in
a send or delivery run, so a slow or dead endpoint cannot hold back messages; a run stops starting
POSTs after :data:`TIME_BUDGET_SECONDS` and after :data:`MAX_ATTEMPTS_PER_RUN` attempts."""

import dagster as dg

from assets.partitions import WAREHOUSE_POOL
from herald.webhooks.dispatch import configured_subscriptions, dispatch
from resources import HeraldConfigResource, WarehouseResource

WEBHOOKS_GROUP = "webhooks"
WEBHOOK_DELIVERIES_KEY = dg.AssetKey(["herald_ops", "webhook_deliveries"])
CLIENT_EVENTS_KEY = dg.AssetKey(["marts", "client_events"])
MAX_ATTEMPTS_PER_RUN = 100
TIME_BUDGET_SECONDS = 45.0


@dg.asset(
    key=WEBHOOK_DELIVERIES_KEY,
    group_name=WEBHOOKS_GROUP,
    pool=WAREHOUSE_POOL,
    kinds={"python"},
    deps=[CLIENT_EVENTS_KEY],
)
def webhook_deliveries(
    context: dg.AssetExecutionContext, herald_config: HeraldConfigResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """One row per webhook subscription and client event (marts.client_events): the signed POST
    owed to the client's endpoint, its attempts (herald_ops.webhook_attempts) and next retry."""
    configured = configured_subscriptions(herald_config.load())
    result = dispatch(warehouse.get(), configured, max_attempts=MAX_ATTEMPTS_PER_RUN, time_budget=TIME_BUDGET_SECONDS)
    for problem in result.problems:
        context.log.warning(problem)
    totals = result.totals
    return dg.MaterializeResult(
        metadata={
            "subscriptions": len(configured),
            "enqueued": result.enqueued,
            "delivered": result.delivered,
            "failed": result.failed,
            "retrying": result.retrying,
            "disabled": result.disabled,
            "deferred": result.deferred,
            "pending_total": totals.get("pending", 0),
            "retrying_total": totals.get("retrying", 0),
            "failed_total": totals.get("failed", 0),
            "disabled_subscriptions": totals.get("disabled_subscriptions", 0),
            "problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in result.problems) or "none"),
        }
    )
