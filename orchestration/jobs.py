"""Jobs: ingest one packet; transform everything landed; refresh the segments; send campaigns;
deliver due messages."""

import dagster as dg
from dagster_dbt import get_asset_key_for_model

from assets.compliance.inbound import INBOUND_MESSAGES_KEY, INBOUND_PROCESSING_KEY
from assets.delivery.campaigns import DELIVERY_KEY, OCCURRENCES_KEY, OUTBOX_KEY, REGIONS_KEY
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

# The campaign send: config → occurrences → dbt message plan → render + enqueue → deliver →
# dbt messages marts. Requested by the campaign schedules and campaign_triggers_sensor, with the
# occurrences in its run config; `herald campaign send` starts one by hand.
# every dbt model downstream of what a send, a delivery or a reply changes (messages, deliveries,
# conversations, compliance and analytics marts, the client dashboard): refreshed in the same run,
# so the marts never lag behind the outbox
MARTS_AFTER_DELIVERY = dg.AssetSelection.assets(OUTBOX_KEY, DELIVERY_KEY, INBOUND_PROCESSING_KEY).downstream(
    include_self=False
) & dg.AssetSelection.assets(herald_dbt_models)
PLAN_MODEL = dg.AssetSelection.assets(get_asset_key_for_model([herald_dbt_models], "message_plan"))

send_campaigns_job = dg.define_asset_job(
    "send_campaigns_job",
    selection=dg.AssetSelection.assets(client_config)
    | dg.AssetSelection.assets(OCCURRENCES_KEY, REGIONS_KEY, OUTBOX_KEY, DELIVERY_KEY)
    | PLAN_MODEL
    | MARTS_AFTER_DELIVERY,
    description="Plans the campaign occurrences in its config (and any a trigger fired), renders and "
    "enqueues the messages idempotently, delivers what is due, and refreshes the messages marts.",
    tags={"herald/stage": "send"},
)

# Releases messages whose time (or send window) has come, retries transient failures.
deliver_messages_job = dg.define_asset_job(
    "deliver_messages_job",
    selection=dg.AssetSelection.assets(DELIVERY_KEY)
    | MARTS_AFTER_DELIVERY,
    description="Delivers every due outbox message (deferred ones once their window opens, retries "
    "once their backoff is over) and refreshes marts.messages and the campaign performance mart.",
    tags={"herald/stage": "deliver"},
)

# An inbound reply: load and apply it (an opt-out cancels queued messages before any later
# send), then deliver at once, so the one confirmation or HELP answer goes out now.
apply_replies_job = dg.define_asset_job(
    "apply_replies_job",
    selection=dg.AssetSelection.assets(INBOUND_MESSAGES_KEY, INBOUND_PROCESSING_KEY, DELIVERY_KEY)
    | MARTS_AFTER_DELIVERY,
    description="Loads landed inbound replies and applies them (opt-outs suppress and cancel queued messages, "
    "opt-ins restore, HELP is answered, appointment confirmations recorded), then delivers the replies.",
    tags={"herald/stage": "compliance"},
)
