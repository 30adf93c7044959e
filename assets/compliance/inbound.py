"""Inbound replies as an asset: landed replies loaded into the warehouse and applied (opt-out,
opt-in, HELP, appointment confirmations)."""

from collections import Counter

import dagster as dg

from assets.partitions import WAREHOUSE_POOL
from assets.transform.keys import dbt_model_key
from herald.clock import utcnow
from herald.compliance.inbound import InboundResult, apply_inbound
from herald.compliance.landing import load_landed_report
from herald.settings import Settings
from resources import HeraldConfigResource, WarehouseResource

COMPLIANCE_GROUP = "compliance"
INBOUND_PROCESSING_KEY = dg.AssetKey(["herald_ops", "inbound_processing"])
INBOUND_MESSAGES_KEY = dg.AssetKey(["herald_raw", "inbound_messages"])
PREVIEW_ROWS = 10


def preview_table(results: list[InboundResult]) -> str:
    """The first applied replies as a Markdown table (numbers masked, no message text)."""
    lines = ["| from | client | kind | matched | action | scope | cancelled |", "|---|---|---|---|---|---|---|"]
    lines += [
        f"| {r.from_masked} | {r.client_id or ''} | {r.kind} | {r.matched or ''} | {r.action} | {r.scope or ''} "
        f"| {r.messages_cancelled} |"
        for r in results[:PREVIEW_ROWS]
    ]
    return "\n".join(lines)


def build_inbound_processing(dbt_models: dg.AssetsDefinition) -> dg.AssetsDefinition:
    """The inbound replies and their processing, downstream of the dbt contacts mart they match
    senders against."""

    @dg.multi_asset(
        specs=[
            dg.AssetSpec(
                INBOUND_MESSAGES_KEY,
                description="SMS replies as received (webhook, polling or `herald inbound`), loaded from the landing area.",
                group_name=COMPLIANCE_GROUP,
                kinds={"python"},
            ),
            dg.AssetSpec(
                INBOUND_PROCESSING_KEY,
                description="What each reply became: opt-out, opt-in, HELP, confirmation, auto-reply, or nothing.",
                group_name=COMPLIANCE_GROUP,
                kinds={"python"},
                deps=[INBOUND_MESSAGES_KEY, dbt_model_key(dbt_models, "contacts")],
            ),
        ],
        pool=WAREHOUSE_POOL,
        name="herald_ops__inbound_processing",
    )
    def inbound_processing(
        context: dg.AssetExecutionContext, herald_config: HeraldConfigResource, warehouse: WarehouseResource
    ):
        """One row per inbound reply applied: replies landed under $HERALD_HOME/landing/inbound are
        loaded into herald_raw.inbound_messages, then each new one is classified and applied in one
        transaction — opt-outs suppress and cancel queued messages before any later send, opt-ins
        lift opt-outs, HELP is answered, C/R recorded — with consent events and audit rows."""
        deployment = herald_config.load()
        wh = warehouse.get()
        now = utcnow()
        loaded = load_landed_report(wh, Settings.from_env().home, now)
        for name, reason in loaded.rejected:
            context.log.warning(f"inbound file {name} rejected: {reason}")
        with wh.session() as session:
            results = apply_inbound(session, deployment, now)
        kinds = Counter(r.kind for r in results)
        actions = Counter(r.action for r in results)
        context.log.info(f"{loaded.new} replies loaded, {len(results)} applied: {dict(actions)}")
        yield dg.MaterializeResult(
            asset_key=INBOUND_MESSAGES_KEY, metadata={"replies_loaded": dg.MetadataValue.int(loaded.new)}
        )
        yield dg.MaterializeResult(
            asset_key=INBOUND_PROCESSING_KEY,
            metadata={
                "files_loaded": dg.MetadataValue.int(loaded.files - len(loaded.rejected)),
                "files_rejected": dg.MetadataValue.int(len(loaded.rejected)),
                "replies_loaded": dg.MetadataValue.int(loaded.new),
                "replies_applied": dg.MetadataValue.int(len(results)),
                "messages_cancelled": dg.MetadataValue.int(sum(r.messages_cancelled for r in results)),
                "replies_queued": dg.MetadataValue.int(sum(1 for r in results if r.reply_message_key)),
                "by_kind": dg.MetadataValue.json(dict(sorted(kinds.items()))),
                "by_action": dg.MetadataValue.json(dict(sorted(actions.items()))),
                "preview": dg.MetadataValue.md(preview_table(results)),
            },
        )

    return inbound_processing
