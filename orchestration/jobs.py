"""Every job. Those over Python assets only are module constants; those that select dbt models
are built by :func:`build_dbt_jobs` from the dbt assets the definitions function loaded."""

from typing import NamedTuple

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from assets.alerts.operator_alerts import OPERATOR_INCIDENTS_KEY
from assets.alerts.staff_alerts import STAFF_ALERTS_KEY
from assets.analytics.ab_tests import AB_TEST_RESULTS_KEY
from assets.appointments.digest import STAFF_DIGESTS_KEY
from assets.billing.credits import CREDIT_ALERTS_KEY
from assets.compliance.inbound import INBOUND_MESSAGES_KEY, INBOUND_PROCESSING_KEY
from assets.compliance.retention import RETENTION_PURGE_KEY
from assets.delivery.campaigns import DELIVERY_KEY, OCCURRENCES_KEY, OUTBOX_KEY, REGIONS_KEY
from assets.events.provider_events import LINK_CLICKS_KEY, PROVIDER_EVENT_PROCESSING_KEY, PROVIDER_EVENTS_KEY
from assets.ingest.config_tables import client_config
from assets.ingest.packets import PACKET_ROWS, PHONE_NUMBERS, packet_rows
from assets.reports.client_reports import REPORTS_GROUP
from assets.segments.segments import SEGMENTS_GROUP
from assets.transform.keys import ANALYTICS_GROUP, dbt_model_key
from assets.webhooks.deliveries import WEBHOOK_DELIVERIES_KEY
from herald.campaigns.journeys import PLAN_MODELS

# what define_asset_job returns (Dagster does not export the type under its public name)
AssetJob = UnresolvedAssetJobDefinition

# names of the jobs build_dbt_jobs makes, for schedules that target them by name
TRANSFORM_PACKETS_JOB = "transform_packets_job"
REFRESH_ANALYTICS_JOB = "refresh_analytics_job"
SEND_CAMPAIGNS_JOB = "send_campaigns_job"
ADVANCE_JOURNEYS_JOB = "advance_journeys_job"
DELIVER_MESSAGES_JOB = "deliver_messages_job"
APPLY_REPLIES_JOB = "apply_replies_job"
APPLY_PROVIDER_EVENTS_JOB = "apply_provider_events_job"
CHECK_MARTS_JOB = "check_marts_job"

# herald_ops tables no asset owns (dbt sources only: several writers share them, see
# tests/test_definitions.py) that the Python steps of the jobs below write. The marts over them
# are rebuilt by the run that wrote them, so a STOP's suppression or a debit is in the marts when
# the run ends, not at the next unrelated dbt build.
SUPPRESSIONS_KEY = dg.AssetKey(["herald_ops", "suppressions"])  # replies, provider events
CONSENT_EVENTS_KEY = dg.AssetKey(["herald_ops", "consent_events"])  # replies, provider events
CREDIT_LEDGER_KEY = dg.AssetKey(["herald_ops", "credit_ledger"])  # delivery (debits, refunds), replies, provider events
APPOINTMENT_RESPONSES_KEY = dg.AssetKey(["herald_ops", "appointment_responses"])  # replies (C, R)

ingest_packet_job = dg.define_asset_job(
    "ingest_packet_job",
    selection=dg.AssetSelection.assets(client_config, packet_rows),
    description="Loads the configuration, then verifies and lands one packet (one partition per packet, "
    "partitioning inferred from packet_rows).",
    tags={"herald/stage": "ingest"},
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

retention_purge_job = dg.define_asset_job(
    "retention_purge_job",
    selection=dg.AssetSelection.assets(RETENTION_PURGE_KEY),
    description="Purges what is past retention (herald.yaml `retention`) and records each purge in the audit log.",
    tags={"herald/stage": "compliance"},
)

alert_low_credit_job = dg.define_asset_job(
    "alert_low_credit_job",
    selection=dg.AssetSelection.assets(CREDIT_ALERTS_KEY),
    description="Emails each metered client whose credit balance fell below its threshold (once per crossing) "
    "and records the alert in herald_ops.credit_alerts.",
    tags={"herald/stage": "billing"},
)

staff_alerts_job = dg.define_asset_job(
    "staff_alerts_job",
    selection=dg.AssetSelection.assets(STAFF_ALERTS_KEY, OPERATOR_INCIDENTS_KEY),
    description="Checks every client for too many failed or held messages, a low delivery rate or a provider "
    "outage (once per crossing) and records the alerts in herald_ops.staff_alerts; then the deployment's failed "
    "and held messages against the operator's threshold (herald_ops.operator_incidents).",
    tags={"herald/stage": "alerts"},
)

staff_digest_job = dg.define_asset_job(
    "staff_digest_job",
    selection=dg.AssetSelection.assets(STAFF_DIGESTS_KEY),
    description="Emails each client whose digest time has come the next day's unconfirmed appointments "
    "(once per local day) and records it in herald_ops.staff_digests.",
    tags={"herald/stage": "appointments"},
)

# Its own job, never part of a send or delivery run: a dead endpoint must not hold back messages.
webhooks_job = dg.define_asset_job(
    "webhooks_job",
    selection=dg.AssetSelection.assets(WEBHOOK_DELIVERIES_KEY),
    description="Posts new client events (marts.client_events) to the clients' webhook endpoints, signed, "
    "retrying failures on their backoff (herald_ops.webhook_deliveries, webhook_attempts).",
    tags={"herald/stage": "webhooks"},
)

ab_results_job = dg.define_asset_job(
    "ab_results_job",
    selection=dg.AssetSelection.assets(AB_TEST_RESULTS_KEY),
    description="Recomputes the A/B test results of every campaign step (analytics.ab_test_results).",
    tags={"herald/stage": "analytics"},
)

client_reports_job = dg.define_asset_job(
    "client_reports_job",
    selection=dg.AssetSelection.groups(REPORTS_GROUP),
    description="Writes every client's HTML report over the last 30 days under $HERALD_HOME/reports/.",
    tags={"herald/stage": "reports"},
)


def packet_path_keys(dbt_models: dg.AssetsDefinition) -> set[dg.AssetKey]:
    """The dbt models a packet feeds on its way to the contact marts (see transform_packets_job)."""
    # dagster-dbt takes seconds to import: imported when the definitions load
    from dagster._core.definitions.assets.graph.asset_graph import AssetGraph
    from dagster_dbt import build_dbt_asset_selection

    sources = " ".join(f"source:{'.'.join(key.path)}+" for key in (PACKET_ROWS, PHONE_NUMBERS))
    later = " ".join([f"config.schema:{ANALYTICS_GROUP}+", *(f"{model}+" for model in PLAN_MODELS)])
    selection = build_dbt_asset_selection([dbt_models], dbt_select=sources, dbt_exclude=later)
    return set(selection.without_checks().resolve(AssetGraph.from_assets([dbt_models])))


class DbtJobs(NamedTuple):
    """The jobs that select dbt models (iterable, for ``Definitions(jobs=[...])``)."""

    transform_packets_job: AssetJob
    refresh_analytics_job: AssetJob
    send_campaigns_job: AssetJob
    advance_journeys_job: AssetJob
    deliver_messages_job: AssetJob
    apply_replies_job: AssetJob
    apply_provider_events_job: AssetJob
    check_marts_job: AssetJob


def build_dbt_jobs(dbt_models: dg.AssetsDefinition) -> DbtJobs:
    """The jobs that run dbt models, built from the dbt assets the definitions loaded."""
    dbt = dg.AssetSelection.assets(dbt_models)
    plan_model = dg.AssetSelection.assets(*[dbt_model_key(dbt_models, m) for m in PLAN_MODELS])

    def marts_over(*tables: dg.AssetKey) -> dg.AssetSelection:
        """The models that read ``tables`` and everything downstream of them, except the send
        pass's planning models (they read suppressions and consent too, but only a send pass
        plans)."""
        readers = dg.AssetSelection.assets(*tables).downstream(depth=1, include_self=False) - plan_model
        return readers.downstream() & dbt

    # every dbt model downstream of what a send, a delivery or a reply changes (messages,
    # deliveries, conversations, credits, compliance and analytics marts, the client
    # dashboard): refreshed in the same run, so the marts never lag behind the outbox.
    # These refreshes run in every send, delivery, reply and provider-event run, so they build the
    # models without their dbt tests (a third of the build's time): the tests of these marts run in
    # check_marts_job (hourly) and after every packet, in the transform or the analytics refresh
    # that follows it. Herald's own
    # promises about the outbox are the delivery asset checks, which run in every one of those runs.
    marts_after_delivery = (
        dg.AssetSelection.assets(OUTBOX_KEY, DELIVERY_KEY, INBOUND_PROCESSING_KEY).downstream(include_self=False) & dbt
    ) | marts_over(CREDIT_LEDGER_KEY)
    # what a reply or a provider event also changes: suppressions and consent (a STOP, a bounce,
    # an unsubscribe), the credits an opt-out refunds, appointment answers (C, R)
    marts_after_replies = marts_over(SUPPRESSIONS_KEY, CONSENT_EVENTS_KEY, CREDIT_LEDGER_KEY, APPOINTMENT_RESPONSES_KEY)
    # provider events move outbox statuses (receipts, opens, clicks) and suppress: every mart over
    # the outbox, the events and the clicks, and the compliance marts
    marts_after_events = (
        dg.AssetSelection.assets(
            OUTBOX_KEY, PROVIDER_EVENTS_KEY, PROVIDER_EVENT_PROCESSING_KEY, LINK_CLICKS_KEY
        ).downstream(include_self=False)
        & dbt
    ) | marts_over(SUPPRESSIONS_KEY, CONSENT_EVENTS_KEY, CREDIT_LEDGER_KEY)
    marts_refreshed = marts_after_delivery | marts_after_replies | marts_after_events
    marts_after_delivery, marts_after_replies, marts_after_events = (
        selection.without_checks() for selection in (marts_after_delivery, marts_after_replies, marts_after_events)
    )

    # A packet's own path, the build that stands between a drop and fresh contacts: the models
    # downstream of the landed rows (and their phone verdicts) in dbt's own graph, except the
    # analytics marts, the send pass's planning models (only a send plans) and whatever reads
    # them. It holds every mart a plan or a segment reads from packets: contacts, attributes
    # (consent columns among them), template variables, sources, appointments, funnel events.
    # Its tests are those on these models (a relationship test from another mart to contacts
    # runs with that mart, in refresh_analytics_job).
    packet_path = dg.AssetSelection.assets(*packet_path_keys(dbt_models))
    transform_packets_job = dg.define_asset_job(
        TRANSFORM_PACKETS_JOB,
        selection=packet_path,
        description="dbt build of the packets' own path: maps landed packets to canonical fields, cleans and dedupes "
        "contacts, publishes the contact marts (contacts, attributes, sources, template variables, appointments, "
        "funnel events) with their tests. The analytics marts follow in refresh_analytics_job.",
        tags={"herald/stage": "transform"},
    )
    # Everything else the dbt project publishes, the rest of what one whole `dbt build` does:
    # the analytics marts (packet reports, conversions, the client dashboard), the marts over the
    # outbox and the ledgers, the planning models. Requested with the segment refresh after each
    # transform, off the path from a drop to fresh contacts; so the two runs together leave every
    # model built, as a whole build would.
    refresh_analytics_job = dg.define_asset_job(
        REFRESH_ANALYTICS_JOB,
        selection=dbt - packet_path,
        description="dbt build of every model a transform leaves: the analytics marts (packet reports, conversions, "
        "attribution, the client dashboard), the marts over the outbox and ledgers, and the planning models. "
        "Requested after each successful transform (contacts_refreshed_sensor).",
        tags={"herald/stage": "analytics"},
    )
    # The campaign send: config → occurrences → dbt message plan → render + enqueue → deliver →
    # dbt messages marts. Requested by the campaign schedules and campaign_triggers_sensor, with
    # the occurrences in its run config; `herald campaign send` starts one by hand.
    send_campaigns_job = dg.define_asset_job(
        SEND_CAMPAIGNS_JOB,
        selection=dg.AssetSelection.assets(client_config)
        | dg.AssetSelection.assets(OCCURRENCES_KEY, REGIONS_KEY, OUTBOX_KEY, DELIVERY_KEY)
        | plan_model
        | marts_after_delivery,
        description="Plans the campaign occurrences in its config (and any a trigger fired), renders and "
        "enqueues the messages idempotently, delivers what is due, and refreshes the messages marts.",
        tags={"herald/stage": "send"},
    )
    # The same pass with nothing newly fired: moves every enrollment on whose wait, timeout or
    # daily limit is over (advance_journeys_schedule), so journeys do not wait for a trigger.
    advance_journeys_job = dg.define_asset_job(
        ADVANCE_JOURNEYS_JOB,
        selection=send_campaigns_job.selection,
        description="Walks every journey enrollment still going as far as the clock allows (waits over, "
        "timeouts reached, contacts carried over by a daily limit), plans and enqueues what that reaches, "
        "and delivers what is due.",
        tags={"herald/stage": "send"},
    )
    # Releases messages whose time (or send window) has come, retries transient failures.
    deliver_messages_job = dg.define_asset_job(
        DELIVER_MESSAGES_JOB,
        selection=dg.AssetSelection.assets(DELIVERY_KEY) | marts_after_delivery,
        description="Delivers every due outbox message (deferred ones once their window opens, retries "
        "once their backoff is over; requested by messages_due_sensor) and refreshes the marts over the outbox, "
        "the attempts and the credits (messages, deliveries, conversations, credit transactions, analytics).",
        tags={"herald/stage": "deliver"},
    )
    # An inbound reply: load and apply it (an opt-out cancels queued messages before any later
    # send), then deliver at once, so the one confirmation or HELP answer goes out now.
    apply_replies_job = dg.define_asset_job(
        APPLY_REPLIES_JOB,
        selection=dg.AssetSelection.assets(INBOUND_MESSAGES_KEY, INBOUND_PROCESSING_KEY, DELIVERY_KEY)
        | marts_after_delivery
        | marts_after_replies,
        description="Loads landed inbound replies and applies them (opt-outs suppress and cancel queued messages, "
        "opt-ins restore, HELP is answered, appointment confirmations recorded), then delivers the replies and "
        "refreshes the marts they changed (suppressions, consent, conversations, messages, deliveries, credits).",
        tags={"herald/stage": "compliance"},
    )
    apply_provider_events_job = dg.define_asset_job(
        APPLY_PROVIDER_EVENTS_JOB,
        selection=dg.AssetSelection.assets(PROVIDER_EVENTS_KEY, PROVIDER_EVENT_PROCESSING_KEY) | marts_after_events,
        description="Loads landed provider events and applies them (delivery statuses forward only, bounces, "
        "complaints and unsubscribes suppress and cancel queued messages), then refreshes the marts they changed "
        "(deliveries, messages, conversations, engagement, suppressions, consent, the client dashboard).",
        tags={"herald/stage": "compliance"},
    )
    # The dbt tests of the marts the runs above refresh without them: every hour
    # (check_marts_schedule), and on demand from the UI. No model is built.
    check_marts_job = dg.define_asset_job(
        CHECK_MARTS_JOB,
        selection=marts_refreshed - marts_refreshed.without_checks(),  # their checks, no asset
        description="Runs the dbt tests of the marts that send, delivery, reply and provider-event runs refresh "
        "without their tests (messages, deliveries, conversations, credits, consent, suppressions, analytics): "
        "hourly, without building any model.",
        tags={"herald/stage": "checks"},
    )
    return DbtJobs(
        transform_packets_job,
        refresh_analytics_job,
        send_campaigns_job,
        advance_journeys_job,
        deliver_messages_job,
        apply_replies_job,
        apply_provider_events_job,
        check_marts_job,
    )
