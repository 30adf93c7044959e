"""A/B test results as an asset, recomputed daily by ``ab_results_schedule``."""

import dagster as dg

from assets.partitions import WAREHOUSE_POOL
from assets.transform.keys import dbt_model_key
from herald.analytics.ab_tests import RESULTS_TABLE, compute_ab_results
from herald.clock import utcnow
from resources import HeraldConfigResource, WarehouseResource

ANALYTICS_GROUP = "analytics"
AB_TEST_RESULTS_KEY = dg.AssetKey(["analytics", "ab_test_results"])
HEADLINE_COLUMNS = (
    "client_id",
    "campaign",
    "step",
    "variant",
    "sent",
    "metric",
    "rate",
    "ci_low",
    "ci_high",
    "p_value",
    "verdict",
)


def _cell(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}" if value < 0.001 else f"{value:.3f}"
    return str(value)


def headline_table(rows: list[tuple[object, ...]]) -> str:
    """One Markdown row per campaign step and variant (``HEADLINE_COLUMNS``)."""
    lines = ["| " + " | ".join(HEADLINE_COLUMNS) + " |", "|" + "---|" * len(HEADLINE_COLUMNS)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def build_ab_test_results(dbt_models: dg.AssetsDefinition) -> dg.AssetsDefinition:
    """The A/B results asset, downstream of the dbt marts it reads."""

    @dg.asset(
        key=AB_TEST_RESULTS_KEY,
        group_name=ANALYTICS_GROUP,
        pool=WAREHOUSE_POOL,
        kinds={"python"},
        deps=[
            dbt_model_key(dbt_models, "messages"),
            dbt_model_key(dbt_models, "campaign_performance_daily"),
            dbt_model_key(dbt_models, "engagement_events"),  # metric: clicked / opened
        ],
    )
    def ab_test_results(
        context: dg.AssetExecutionContext, herald_config: HeraldConfigResource, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """One row per campaign step and A/B variant: sent, delivered, replied, converted, the rate
        of the campaign's metric (replied, converted, delivered, clicked or opened) with its Wilson
        interval, a two-proportion test against the control, and the step's winner when
        significant (or "not enough data")."""
        deployment = herald_config.load()
        now = utcnow()
        with warehouse.get().session() as session:
            count = compute_ab_results(session, deployment, now)
            _, headline = session.query(
                f"select {', '.join(HEADLINE_COLUMNS)} from {RESULTS_TABLE} order by client_id, campaign, step, variant"
            )
            winners = session.scalar(
                f"select count(*) from (select distinct client_id, campaign, step from {RESULTS_TABLE} "
                "where winner is not null) as decided"
            )
        context.log.info(f"A/B results at {now:%Y-%m-%d %H:%M} UTC: {count} arms, {winners} steps with a winner")
        return dg.MaterializeResult(
            metadata={
                "results": dg.MetadataValue.md(headline_table(headline)),
                "arms": dg.MetadataValue.int(count),
                "steps_with_winner": dg.MetadataValue.int(int(winners or 0)),
            }
        )

    return ab_test_results
