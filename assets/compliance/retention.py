"""The retention purge as an asset, run daily by ``retention_purge_schedule``."""

import dagster as dg

from assets.partitions import WAREHOUSE_POOL
from herald.clock import utcnow
from herald.compliance.retention import PURGED_TABLES, purge
from resources import HeraldConfigResource, WarehouseResource

COMPLIANCE_GROUP = "compliance"
RETENTION_PURGE_KEY = dg.AssetKey(["herald_ops", "retention_purge"])


def counts_table(counts: dict[str, int]) -> str:
    """The rows purged per table as a Markdown table."""
    lines = ["| table | rows purged |", "|---|---|"]
    lines += [f"| {table} | {counts.get(table, 0)} |" for table in PURGED_TABLES]
    return "\n".join(lines)


@dg.asset(
    key=RETENTION_PURGE_KEY,
    group_name=COMPLIANCE_GROUP,
    pool=WAREHOUSE_POOL,
    kinds={"python"},
)
def retention_purge(
    context: dg.AssetExecutionContext, herald_config: HeraldConfigResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """One purge of everything past retention (herald.yaml `retention`): superseded consent
    events, expired opt-out suppressions, delivery attempts, and the content of old outbox
    messages and inbound replies, with one audit_log row per purged table, in one transaction.
    The current consent state, bounces and blocks, outbox keys and the audit log are kept."""
    retention = herald_config.load().herald.retention
    now = utcnow()
    with warehouse.get().session() as session:
        counts = purge(session, retention, now)
    context.log.info(f"retention purge at {now:%Y-%m-%d %H:%M} UTC: {counts}")
    return dg.MaterializeResult(
        metadata={
            "purged": dg.MetadataValue.md(counts_table(counts)),
            "rows_purged": dg.MetadataValue.int(sum(counts.values())),
            "retention_days": dg.MetadataValue.json(retention.model_dump()),
        }
    )
