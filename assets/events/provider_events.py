"""Provider events as assets: the events the web service (or the Twilio polling sensor) landed
are loaded into ``herald_raw.provider_events`` and applied to the outbox, the suppressions and
the consent history (:mod:`herald.events.apply`)."""

import dagster as dg

from assets.partitions import WAREHOUSE_POOL
from herald.campaigns.tracking import load_clicks
from herald.clock import utcnow
from herald.events.apply import ApplyReport, apply_provider_events
from herald.events.landing import load_events
from herald.settings import Settings
from resources import HeraldConfigResource, WarehouseResource

COMPLIANCE_GROUP = "compliance"
PROVIDER_EVENTS_KEY = dg.AssetKey(["herald_raw", "provider_events"])
PROVIDER_EVENT_PROCESSING_KEY = dg.AssetKey(["herald_ops", "provider_event_processing"])
LINK_CLICKS_KEY = dg.AssetKey(["herald_raw", "link_clicks"])
PREVIEW_ROWS = 10


def preview_table(report: ApplyReport) -> str:
    """The first applied events as a Markdown table (no addresses: events carry none here)."""
    lines = ["| event | kind | action | message | detail |", "|---|---|---|---|---|"]
    lines += [
        f"| {r.event_id} | {r.kind} | {r.action} | {r.message_key or ''} | {(r.detail or '').replace('|', '/')} |"
        for r in report.results[:PREVIEW_ROWS]
    ]
    return "\n".join(lines)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            PROVIDER_EVENTS_KEY,
            group_name=COMPLIANCE_GROUP,
            kinds={"python"},
            description="One row per provider event (Twilio status, Resend webhook, web unsubscribe or "
            "confirmation), as landed by the web service or the polling sensor.",
        ),
        dg.AssetSpec(
            PROVIDER_EVENT_PROCESSING_KEY,
            group_name=COMPLIANCE_GROUP,
            kinds={"python"},
            deps=[PROVIDER_EVENTS_KEY],
            description="One row per provider event applied: what it did (status_updated, ignored_older, "
            "suppressed, engagement_recorded, unsubscribed, confirmed, unmatched, ...).",
        ),
        dg.AssetSpec(
            LINK_CLICKS_KEY,
            group_name=COMPLIANCE_GROUP,
            kinds={"python"},
            description="One row per click on a tracked link (GET /l/<token>), with its message, client, contact, "
            "URL and user agent class; the first click by a person stamps the message's clicked_at.",
        ),
    ],
    name="provider_event_processing",
    pool=WAREHOUSE_POOL,
    can_subset=True,  # jobs may select the provider events alone; clicks are loaded either way
)
def provider_event_processing(
    context: dg.AssetExecutionContext, herald_config: HeraldConfigResource, warehouse: WarehouseResource
):
    """One row per provider event applied: events waiting under $HERALD_HOME/landing/events are
    loaded into herald_raw.provider_events (on PostgreSQL the web service wrote them there), then
    each new one is applied in one transaction — statuses move forward only, hard bounces,
    complaints, carrier STOPs and web unsubscribes suppress (cancelling queued messages), web
    confirmations are recorded — with consent events and audit rows."""
    deployment = herald_config.load()
    wh = warehouse.get()
    loaded = load_events(wh, Settings.from_env().home)
    clicks = load_clicks(wh, Settings.from_env().home)  # tracked-link clicks: files, client, outbox.clicked_at
    with wh.session() as session:
        report = apply_provider_events(session, deployment, utcnow())
    context.log.info(f"{loaded} events loaded from files, {len(report.results)} applied: {report.by_action}")
    selected = context.selected_asset_keys
    if PROVIDER_EVENTS_KEY in selected:
        yield dg.MaterializeResult(
            asset_key=PROVIDER_EVENTS_KEY,
            metadata={"events_loaded_from_files": dg.MetadataValue.int(loaded)},
        )
    if LINK_CLICKS_KEY in selected:
        yield dg.MaterializeResult(
            asset_key=LINK_CLICKS_KEY, metadata={"clicks_loaded_from_files": dg.MetadataValue.int(clicks)}
        )
    if PROVIDER_EVENT_PROCESSING_KEY not in selected:
        return
    yield dg.MaterializeResult(
        asset_key=PROVIDER_EVENT_PROCESSING_KEY,
        metadata={
            "events_applied": dg.MetadataValue.int(len(report.results)),
            "messages_cancelled": dg.MetadataValue.int(report.messages_cancelled),
            "by_action": dg.MetadataValue.json(report.by_action),
            "by_kind": dg.MetadataValue.json(report.by_kind),
            "preview": dg.MetadataValue.md(preview_table(report)),
        },
    )
