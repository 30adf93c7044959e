"""The configuration, loaded into ``herald_ops`` so dbt can join the load maps."""

import dagster as dg

from assets.partitions import WAREHOUSE_POOL
from herald.warehouse.config_tables import CONFIG_TABLES, load_config_tables
from resources import HeraldConfigResource, WarehouseResource

CONFIG_TABLE_KEYS = {table: dg.AssetKey(["herald_ops", table]) for table in CONFIG_TABLES}
DESCRIPTIONS = {
    "clients": "One row per client: name, industry, time zone and phone region.",
    "load_maps": "One row per client and packet type: which entity the packet carries.",
    "load_map_columns": "One row per mapped packet column: canonical field or typed attribute.",
    "canonical_fields": "One row per canonical field a load map can target, with its type.",
    "campaigns": "One row per campaign: message type, category, status, audience segment, trigger, daily limit.",
    "campaign_steps": "One row per campaign step: channel rule and when it is due (anchor and minutes).",
    "campaign_variants": "One row per A/B variant of a step: weight, hash-bucket range, templates, subject.",
    "campaign_branches": "One row per path of a branch step: its test (a compiled condition, a segment or a "
    "split share) and the step it leads to.",
    "send_windows": "The client's own sending hours per ISO day of week (its policy and business hours).",
    "campaign_send_windows": "Each campaign's own sending hours per ISO day of week: its send_window over the "
    "client's, with send_days (a day that is not one has no hours and says so).",
    "closed_days": "Per campaign, each date it sends nothing on (client-listed closed days and public holidays), "
    "with the reason a deferred message gives.",
    "legal_windows": "Calling-hours law per jurisdiction (US federal, or a state) and ISO day of week.",
    "frequency_caps": "Per recipient caps across campaigns: marketing per 24 h, healthcare reminders per day/week.",
    "sender_quotas": "Per client and channel: the daily quota its sender shares across all its campaigns.",
    "confirmation_settings": "Per client: when an unanswered appointment is unconfirmed or high risk, and its staff digest.",
    "campaign_topics": "Per campaign: its topic (one of the client's), which a contact may turn off.",
}


@dg.multi_asset(
    specs=[
        dg.AssetSpec(key, description=DESCRIPTIONS[table], group_name="ingest", kinds={"python"})
        for table, key in CONFIG_TABLE_KEYS.items()
    ],
    pool=WAREHOUSE_POOL,
)
def client_config(herald_config: HeraldConfigResource, warehouse: WarehouseResource):
    """Validates HERALD_CONFIG_DIR and replaces the configuration tables in one transaction."""
    deployment = herald_config.load()
    with warehouse.get().session() as session:
        counts = load_config_tables(session, deployment)
    for table, key in CONFIG_TABLE_KEYS.items():
        yield dg.MaterializeResult(asset_key=key, metadata={"rows": dg.MetadataValue.int(counts[table])})
