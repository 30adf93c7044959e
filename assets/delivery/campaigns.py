"""Campaign runs as assets: the occurrences a schedule or sensor fired, the rendered outbox,
and delivery. dbt's ``marts/message_plan`` sits between the occurrences and the outbox;
``marts/messages`` and ``analytics/campaign_performance_daily`` follow delivery."""

from dataclasses import replace
from datetime import datetime

import dagster as dg

from assets.compliance.inbound import INBOUND_PROCESSING_KEY
from assets.partitions import WAREHOUSE_POOL
from assets.transform.keys import dbt_model_key
from herald.billing.credits import delivery_pricing
from herald.campaigns.enqueue import enqueue_planned
from herald.campaigns.journeys import apply_transitions, record_plan_run
from herald.campaigns.links import links_from_env
from herald.campaigns.occurrences import Occurrence, detect_triggered, mark_planned, record_occurrences
from herald.clock import utcnow
from herald.compliance.audit import audit
from herald.compliance.regions import refresh_regions
from herald.contacts.phones import mask_email, mask_phone
from herald.delivery.engine import deliver_due
from herald.delivery.outbox import OUTBOX
from herald.providers.factory import delivery_options_from_env, failover_from_env
from herald.settings import Settings
from resources import HeraldConfigResource, ProvidersResource, WarehouseResource

DELIVERY_GROUP = "delivery"
OCCURRENCES_KEY = dg.AssetKey(["herald_ops", "campaign_occurrences"])
OUTBOX_KEY = dg.AssetKey(["herald_ops", "outbox"])
REGIONS_KEY = dg.AssetKey(["herald_raw", "address_regions"])
DELIVERY_KEY = dg.AssetKey(["herald_ops", "delivery_attempts"])


class OccurrenceSpec(dg.Config):
    """One firing of a campaign, as a schedule (or `herald campaign send`) requests it."""

    client_id: str
    campaign: str
    occurrence: str
    trigger_type: str = "schedule"
    fired_at: str | None = None  # ISO, naive UTC; default: now


class SendConfig(dg.Config):
    occurrences: list[OccurrenceSpec] = []  # noqa: RUF012 (pydantic copies a default per instance)
    detect_triggered: bool = False  # also look for new packets, segment entries, funnel events
    as_of: str | None = None  # ISO, naive UTC: the clock the journeys are walked at (default: now)


def _contacts_built(session) -> bool:
    found = session.scalar(
        "select count(*) from information_schema.tables where table_schema = 'marts' and table_name = 'contacts'"
    )
    return bool(found)


def _mask(channel: str, address: str) -> str:
    return mask_phone(address) if channel == "sms" else mask_email(address)


@dg.asset(
    key=DELIVERY_KEY,
    group_name=DELIVERY_GROUP,
    pool=WAREHOUSE_POOL,
    kinds={"python"},
    # replies (opt-out confirmations, HELP answers) are enqueued by inbound processing
    deps=[OUTBOX_KEY, INBOUND_PROCESSING_KEY],
)
def delivery(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    providers: ProvidersResource,
    herald_config: HeraldConfigResource,
):
    """Sends every due outbox message exactly once: claims it in a transaction (re-checking
    suppressions there), rate-limits per provider and sender, retries transient errors with
    backoff, fails permanent ones with the provider's reason, reconciles or holds messages whose
    outcome a crashed run left unknown, and records every attempt."""
    deployment, wh, sending, home = herald_config.load(), warehouse.get(), providers.get(), Settings.from_env().home
    report = deliver_due(
        wh,
        sending,
        # credits are reserved at claim time at the configured prices (herald.yaml `pricing`)
        options=replace(delivery_options_from_env(), pricing=delivery_pricing(deployment.herald)),
        progress=lambda r: context.log.info(r.summary()),
        # an opt-out landed as a file but not loaded yet holds its address's messages back
        inbound_home=home,
        # clients with their own providers (client.yaml `providers:`) fail over to a secondary
        failover=failover_from_env(deployment, sending, wh, home=home),
    )
    context.log.info(report.summary())
    for event in report.circuit_events:  # a primary's circuit opened or closed (provider names only)
        context.log.warning(event)
    if report.claimed:
        # every provider call is in herald_ops.delivery_attempts; the audit log gets who sent and how many
        with warehouse.get().session() as session:
            counts = {
                "sent": report.sent,
                "failed": report.failed,
                "suppressed": report.suppressed,
                "held": report.held,
            }
            audit(
                session, f"dagster:{context.run_id}", "send", None, None, "herald_ops.outbox", report.summary(), counts
            )
    return dg.MaterializeResult(
        metadata={
            "sent": dg.MetadataValue.int(report.sent),
            "failed": dg.MetadataValue.int(report.failed),
            "suppressed": dg.MetadataValue.int(report.suppressed),
            "held": dg.MetadataValue.int(report.held),
            "requeued": dg.MetadataValue.int(report.requeued),
            "failed_over": dg.MetadataValue.int(report.failed_over),
            "sent_by_provider": dg.MetadataValue.json(dict(report.sent_by_provider)),
            "circuit_events": dg.MetadataValue.md("\n".join(f"- {e}" for e in report.circuit_events) or "none"),
            "seconds": dg.MetadataValue.float(round(report.seconds, 2)),
        }
    )


def build_campaign_assets(dbt_models: dg.AssetsDefinition) -> list[dg.AssetsDefinition]:
    """The occurrences (with the recipients' regions) and the outbox, wired to the dbt models
    they read (``marts.contacts``) and that read them (``marts.message_plan``)."""

    @dg.asset(
        key=OCCURRENCES_KEY,
        description="One row per firing of a campaign's trigger (a cron minute, a packet, a batch of "
        "segment entries or funnel events, a `herald campaign send`); the journeys enroll from each.",
        group_name=DELIVERY_GROUP,
        kinds={"python"},
        deps=[dg.AssetKey(["herald_ops", "campaigns"])],
        pool=WAREHOUSE_POOL,
    )
    def campaign_occurrences(
        context: dg.AssetExecutionContext,
        config: SendConfig,
        herald_config: HeraldConfigResource,
        warehouse: WarehouseResource,
    ):
        """Records the campaign occurrences this run sends: the ones its schedule named, plus (when
        a trigger sensor asked) one per newly loaded packet of a packet_arrival campaign and one
        batch per campaign with new segment entries or funnel events. An occurrence already planned
        is never recorded again, so a repeated run of the same occurrence sends nothing new. Records
        the clock the pass plans at (herald_ops.plan_runs)."""
        deployment = herald_config.load()
        now = utcnow()
        occurrences: list[Occurrence] = []
        for spec in config.occurrences:
            client = deployment.clients.get(spec.client_id)
            if client is None or spec.campaign not in client.campaigns:
                raise dg.Failure(f"campaign {spec.client_id}/{spec.campaign} is not configured")
            fired_at = datetime.fromisoformat(spec.fired_at) if spec.fired_at else now
            occurrences.append(Occurrence(spec.client_id, spec.campaign, spec.occurrence, spec.trigger_type, fired_at))
        with warehouse.get().session() as session:
            if config.detect_triggered:
                occurrences += detect_triggered(session, deployment, now)
            recorded = record_occurrences(session, occurrences, context.run_id, now)
            as_of = datetime.fromisoformat(config.as_of) if config.as_of else now
            record_plan_run(session, context.run_id, as_of, now)
        names = [f"{o.client_id}/{o.campaign} {o.occurrence}" for o in occurrences]
        context.log.info(f"{recorded} occurrences to plan: {names}")
        return dg.MaterializeResult(
            metadata={
                "recorded": dg.MetadataValue.int(recorded),
                "as_of": dg.MetadataValue.text(as_of.isoformat(timespec="seconds")),
                "occurrences": dg.MetadataValue.md("\n".join(f"- {n}" for n in names) or "none"),
            },
        )

    # An asset of its own (not beside the occurrences): it follows marts.contacts, which the
    # journeys also read after the occurrences, and one op doing both would sit on both sides
    # of the dbt models in Dagster's plan.
    @dg.asset(
        key=REGIONS_KEY,
        description="Where recipients are: time zones and state of each contact phone (area code) and "
        "postal code (ZIP), looked up before planning so each recipient gets their own send window.",
        group_name=DELIVERY_GROUP,
        kinds={"python"},
        deps=[dbt_model_key(dbt_models, "contacts"), dbt_model_key(dbt_models, "contact_attributes")],
        pool=WAREHOUSE_POOL,
    )
    def address_regions(
        context: dg.AssetExecutionContext, herald_config: HeraldConfigResource, warehouse: WarehouseResource
    ):
        """Looks up the regions (time zones, state) of contacts' phones and postal codes not seen yet.
        Also records the consent events the packets' sms_consent columns state, with the client's
        stated source (herald/compliance/packet_consent.py), before the plan reads them."""
        from herald.compliance.packet_consent import record_packet_consent

        with warehouse.get().session() as session:
            regions = refresh_regions(session, utcnow()) if _contacts_built(session) else 0
            consents = record_packet_consent(session, herald_config.load(), utcnow())
        context.log.info(f"{regions} new phone/postal regions looked up; {consents} consent events from packets")
        return dg.MaterializeResult(
            metadata={"looked_up": dg.MetadataValue.int(regions), "packet_consents": dg.MetadataValue.int(consents)}
        )

    @dg.asset(
        key=OUTBOX_KEY,
        group_name=DELIVERY_GROUP,
        pool=WAREHOUSE_POOL,
        kinds={"python"},
        deps=[dbt_model_key(dbt_models, "message_plan"), dbt_model_key(dbt_models, "journey_transitions")],
    )
    def outbox(context: dg.AssetExecutionContext, herald_config: HeraldConfigResource, warehouse: WarehouseResource):
        """Renders every planned message that is not in the outbox yet (Jinja sandbox, MJML,
        unsubscribe links) and enqueues it under its deterministic message key — a repeated run
        adds nothing. A message whose template fails for its contact is held with the error.
        Then moves the journeys on: writes the pass's transitions to herald_ops.enrollments and
        its trail, and cancels the queued messages of enrollments that exited."""
        settings = Settings.from_env()
        deployment = herald_config.load()
        now = utcnow()
        wh = warehouse.get()
        with wh.session() as session:
            report = enqueue_planned(session, deployment, settings.config_dir, links_from_env(settings.home), now)
            planned = mark_planned(session, context.run_id, now)
            journeys = apply_transitions(session, f"dagster:{context.run_id}", now)
            _, preview = session.query(
                f"select campaign, step, variant, channel, to_address, status, send_after, coalesce(status_reason, '') "
                f"from {OUTBOX} where enqueued_at = ? order by send_after, message_key limit 5",
                [now],
            )
        context.log.info(report.summary())
        context.log.info(f"journeys: {journeys.summary()}")
        table = "| campaign | step | variant | channel | to | status | send after (UTC) | reason |\n"
        table += "|---|---|---|---|---|---|---|---|\n"
        table += "\n".join(
            f"| {c} | {s} | {v} | {ch} | {_mask(ch, to)} | {st} | {at:%Y-%m-%d %H:%M} | {r} |"
            for c, s, v, ch, to, st, at, r in preview
        )
        return dg.MaterializeResult(
            metadata={
                "enqueued": dg.MetadataValue.int(report.enqueued),
                "held": dg.MetadataValue.int(report.held),
                "occurrences_planned": dg.MetadataValue.int(planned),
                "enrolled": dg.MetadataValue.int(journeys.enrolled),
                "waiting": dg.MetadataValue.int(journeys.waiting),
                "carried_over": dg.MetadataValue.int(journeys.carried_over),
                "exited": dg.MetadataValue.int(journeys.exited),
                "completed": dg.MetadataValue.int(journeys.completed),
                "cancelled_by_exit": dg.MetadataValue.int(journeys.cancelled),
                "held_reasons": dg.MetadataValue.md(
                    "\n".join(f"- {reason} ({n})" for reason, n in report.held_reasons.most_common(10)) or "none"
                ),
                "preview": dg.MetadataValue.md(table),
            }
        )

    return [campaign_occurrences, address_regions, outbox]
