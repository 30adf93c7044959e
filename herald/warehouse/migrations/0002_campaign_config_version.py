"""Journeys keep the version they started with: config_version on campaign steps, branches and variants.

``herald_ops.campaign_steps``, ``campaign_branches`` and ``campaign_variants`` get
``config_version`` (part of their primary key), so an older version's rows can stay while its
enrollments run; ``herald_ops.campaign_versions`` lists every version the config load has seen.
Existing rows are their campaign's current version (``herald_ops.campaigns.config_version``;
'' when the campaign is gone).
"""

from __future__ import annotations

from herald.warehouse.connection import Session
from herald.warehouse.migrations.ops import add_column

BACKFILL = (
    "coalesce((select c.config_version from herald_ops.campaigns as c "
    "where c.client_id = t.client_id and c.campaign = t.campaign), '')"
)
NEW_KEYS = {
    "herald_ops.campaign_steps": ("client_id", "campaign", "config_version", "step"),
    "herald_ops.campaign_branches": ("client_id", "campaign", "config_version", "step", "position"),
    "herald_ops.campaign_variants": ("client_id", "campaign", "config_version", "step", "variant"),
}


def upgrade(s: Session) -> None:
    for table, key in NEW_KEYS.items():
        add_column(s, table, "config_version", "varchar not null", backfill=BACKFILL, primary_key=key)
    s.execute(
        """
        create table herald_ops.campaign_versions (
            client_id varchar not null,
            campaign varchar not null,
            config_version varchar not null,
            first_loaded_at timestamp not null,
            retired_at timestamp,
            primary key (client_id, campaign, config_version)
        )"""
    )
