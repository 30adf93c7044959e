"""Jobs: ingest one packet; transform everything landed; refresh the segments."""

import dagster as dg

from assets.ingest.config_tables import client_config
from assets.ingest.packets import packet_rows
from assets.segments.segments import SEGMENTS_GROUP
from assets.transform.dbt import herald_dbt_models

ingest_packet_job = dg.define_asset_job(
    "ingest_packet_job",
    selection=dg.AssetSelection.assets(client_config, packet_rows),
    description="Loads the configuration, then verifies and lands one packet (one partition per packet, "
    "partitioning inferred from packet_rows).",
    tags={"herald/stage": "ingest"},
)

transform_packets_job = dg.define_asset_job(
    "transform_packets_job",
    selection=dg.AssetSelection.assets(herald_dbt_models),
    description="dbt build: maps landed packets to canonical fields, cleans and dedupes contacts, publishes the marts.",
    tags={"herald/stage": "transform"},
)

# A job of its own rather than part of transform_packets_job: a segment whose SQL is refused
# fails its own asset, and must not turn every transform run red.
refresh_segments_job = dg.define_asset_job(
    "refresh_segments_job",
    selection=dg.AssetSelection.groups(SEGMENTS_GROUP),
    description="Evaluates every configured segment over the marts and snapshots its members "
    "(marts.segment_members, entered/exited events).",
    tags={"herald/stage": "segments"},
)
