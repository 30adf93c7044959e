"""Asset checks on the delivery side: what the outbox and the delivery attempts promise.

Each check runs after the asset it judges in every run that materializes it (send, delivery and
reply runs) and reports a :class:`herald.delivery.checks.Finding`: passed or not, severity ERROR
(each is a promise Herald makes to recipients or clients), and metadata an operator can act on —
the counts looked at and a few example rows, addresses masked."""

from collections.abc import Callable

import dagster as dg

from assets.delivery.campaigns import DELIVERY_KEY, OUTBOX_KEY
from assets.partitions import WAREHOUSE_POOL
from herald.delivery import checks
from herald.warehouse.connection import Session
from resources import HeraldConfigResource, WarehouseResource


def check_result(finding: checks.Finding) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=finding.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=finding.description,
        metadata={
            "violations": dg.MetadataValue.int(finding.violations),
            **{name: dg.MetadataValue.int(n) for name, n in finding.counts.items()},
            "examples": dg.MetadataValue.md(finding.examples_table()),
        },
    )


def _run(warehouse: WarehouseResource, judge: Callable[[Session], checks.Finding]) -> dg.AssetCheckResult:
    with warehouse.get().session() as session:
        return check_result(judge(session))


@dg.asset_check(
    asset=OUTBOX_KEY,
    name="no_duplicate_messages",
    pool=WAREHOUSE_POOL,
    description="One outbox row per message key and per message identity (client, campaign, step, contact, "
    "channel, occurrence): a repeated plan or a crashed enqueue added nothing.",
)
def no_duplicate_messages(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    return _run(warehouse, checks.no_duplicate_messages)


@dg.asset_check(
    asset=OUTBOX_KEY,
    name="every_message_accounted_for",
    pool=WAREHOUSE_POOL,
    description="Every outbox row is live (queued, sending) or final (sent, failed, suppressed, cancelled) or held, "
    "and every failed, suppressed, cancelled or held row says why.",
)
def every_message_accounted_for(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    return _run(warehouse, checks.every_message_accounted_for)


@dg.asset_check(
    asset=DELIVERY_KEY,
    name="no_message_sent_twice",
    pool=WAREHOUSE_POOL,
    description="At most one accepted provider call per message key (attempts sent or reconciled_sent).",
)
def no_message_sent_twice(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    return _run(warehouse, checks.no_message_sent_twice)


@dg.asset_check(
    asset=DELIVERY_KEY,
    name="no_suppressed_recipients",
    pool=WAREHOUSE_POOL,
    description="No message was sent after a suppression covering it (opt-out, bounce, complaint, block) was "
    "recorded; the one opt-out confirmation and HELP answers are exempt from opt-outs.",
)
def no_suppressed_recipients(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    return _run(warehouse, checks.no_suppressed_recipients)


@dg.asset_check(
    asset=DELIVERY_KEY,
    name="sent_inside_send_windows",
    pool=WAREHOUSE_POOL,
    description="Every sent message (answers to a reply excepted) went inside its recipient's send window: the "
    "client's hours and the calling-hours law of their state, in every zone they may be in (the plan's rule).",
)
def sent_inside_send_windows(warehouse: WarehouseResource, herald_config: HeraldConfigResource) -> dg.AssetCheckResult:
    deployment = herald_config.load()
    with warehouse.get().session() as session:
        return check_result(checks.sent_inside_send_windows(session, deployment))


DELIVERY_CHECKS = [
    no_duplicate_messages,
    every_message_accounted_for,
    no_message_sent_twice,
    no_suppressed_recipients,
    sent_inside_send_windows,
]
