"""The retention purge as an asset, run daily by ``retention_purge_schedule``."""

import dagster as dg

from assets.partitions import WAREHOUSE_POOL
from herald.clock import utcnow
from herald.compliance.retention import PURGED_TABLES, purge
from herald.privacy.retention import purge_contacts
from resources import HeraldConfigResource, WarehouseResource

COMPLIANCE_GROUP = "compliance"
RETENTION_PURGE_KEY = dg.AssetKey(["herald_ops", "retention_purge"])


def counts_table(counts: dict[str, int]) -> str:
    """The rows purged per table as a Markdown table."""
    lines = ["| table | rows purged |", "|---|---|"]
    lines += [f"| {table} | {counts.get(table, 0)} |" for table in PURGED_TABLES]
    return "\n".join(lines)


def personal_table(counts: dict[str, int]) -> str:
    """Contacts purged and the rows purged with them, per table, as a Markdown table."""
    lines = ["| table | rows purged |", "|---|---|"]
    lines += [f"| {table} | {n} |" for table, n in sorted(counts.items())]
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
    events, expired opt-out suppressions, delivery attempts, the content of old outbox
    messages and inbound replies, and the personal data (contacts and packet rows) of people who
    opted out or were last active `contact_days` ago (client.yaml may set its own), with audit_log
    rows, in one transaction.
    The current consent state, bounces and blocks, outbox keys and the audit log are kept."""
    deployment = herald_config.load()
    retention = deployment.herald.retention
    contact_days = {
        client_id: client.config.retention.contact_days
        for client_id, client in deployment.clients.items()
        if client.config.retention.contact_days is not None
    }
    now = utcnow()
    with warehouse.get().session() as session:
        counts = purge(session, retention, now)
        personal = purge_contacts(session, contact_days, retention.contact_days, now)
    context.log.info(f"retention purge at {now:%Y-%m-%d %H:%M} UTC: {counts}; personal data: {personal}")
    return dg.MaterializeResult(
        metadata={
            "purged": dg.MetadataValue.md(counts_table(counts)),
            "rows_purged": dg.MetadataValue.int(sum(counts.values())),
            "contacts_purged": dg.MetadataValue.int(personal["contacts"]),
            "packet_rows_purged": dg.MetadataValue.int(personal["herald_raw.packet_rows"]),
            "personal_data_purged": dg.MetadataValue.md(personal_table(personal)),
            "retention_days": dg.MetadataValue.json(retention.model_dump()),
            "client_contact_days": dg.MetadataValue.json(contact_days),
        }
    )
