"""``marts.deliveries``, ``marts.missed_contacts`` and the response columns of
``analytics.campaign_performance_daily`` on a real warehouse, once per engine: hand-made outbox
rows (with the provider statuses the event processing writes), inbound replies, clients and
contacts in; one ``dbt build`` of the three models (with their data tests) out."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import ENGINES
from tests.dbt_harness import (
    CLIENTS,
    LATE_EVENING,
    MESSAGE_PLAN_COLUMNS,
    MORNING,
    Built,
    MartBuild,
    build_marts,
    failed_nodes,
    outbox_row,
    rows,
)

MODELS = ("deliveries", "missed_contacts", "campaign_performance_daily")
SOURCE_TABLES = (
    "herald_ops.clients",
    "herald_ops.outbox",
    "herald_raw.inbound_messages",
    "herald_ops.provider_event_processing",
)
CLINIC_SENDER, REALTY_SENDER = "+13125559999", "+15550001111"
T = LATE_EVENING  # 2024-03-12 03:00 UTC: the evening of 11 March in Chicago and New York


def at(minutes: int) -> datetime:
    return T + timedelta(minutes=minutes)


def sent(key: str, to: str, provider: str = "twilio", **values: Any) -> tuple[Any, ...]:
    return outbox_row(key, to_address=to, status="sent", provider=provider, provider_message_id=f"id-{key}",
                      sent_at=at(5), attempts=1, **values)  # fmt: skip


OUTBOX = [
    sent("d-delivered", "+13125550101", provider_status="delivered", provider_status_at=at(6), delivered_at=at(6)),
    sent(
        "d-undelivered",
        "+13125550102",
        provider_status="undelivered",
        provider_status_at=at(10),
        delivery_error="30003: unreachable destination handset",
    ),
    sent("d-sent-only", "+13125550103"),
    sent(
        "e-bounced",
        "ann.cruz@example.com",
        provider="resend",
        channel="email",
        provider_status="bounced",
        provider_status_at=at(7),
        bounced_at=at(7),
        delivery_error="bounce Permanent/General: no such mailbox",
    ),
    sent(
        "e-complained",
        "bob@example.org",
        provider="resend",
        channel="email",
        provider_status="complained",
        provider_status_at=at(60),
        delivered_at=at(6),
        complained_at=at(60),
        opened_at=at(30),
    ),
    outbox_row(
        "f-refused",
        to_address="+13125550104",
        status="failed",
        provider="twilio",
        attempts=1,
        status_reason="21211: invalid 'To' number",
    ),
    outbox_row("q-queued", send_after=MORNING),
    outbox_row(
        "s-suppressed",
        channel="email",
        to_address="cy@example.com",
        send_after=MORNING,
        status="suppressed",
        status_reason="opt_out",
    ),
    outbox_row("h-held", send_after=MORNING, status="held", status_reason="template: first_name is missing"),
    outbox_row("c-cancelled", send_after=MORNING, status="cancelled", status_reason="unsubscribed via the web page"),
    # no delivery receipts for this client: the response rate is per sent message
    outbox_row(
        "r-1",
        client_id="realty",
        campaign="new_listings",
        step="intro",
        variant="b",
        to_address="+13125550201",
        sender=REALTY_SENDER,
        status="sent",
        provider="sandbox",
        provider_message_id="SB-1",
        sent_at=at(1),
    ),
    outbox_row(
        "r-2",
        client_id="realty",
        campaign="new_listings",
        step="intro",
        variant="b",
        to_address="+13125550202",
        sender=REALTY_SENDER,
        status="sent",
        provider="sandbox",
        provider_message_id="SB-2",
        sent_at=at(1),
    ),
]


def inbound(inbound_id: str, sender: str, to: str, received_at: datetime) -> tuple[Any, ...]:
    return (inbound_id, "sms", sender, to, "ok thanks", "twilio", received_at, received_at)


INBOUND = [
    inbound("in-1", "+13125550101", CLINIC_SENDER, at(30)),  # replies to d-delivered ...
    inbound("in-2", "+13125550101", CLINIC_SENDER, at(60)),  # ... twice: counted once
    inbound("in-3", "+13125550103", CLINIC_SENDER, T + timedelta(days=8)),  # more than 7 days later
    inbound("in-4", "+13125550102", "+13125550000", at(30)),  # to another number than the sender
    inbound("in-5", "+13125550104", CLINIC_SENDER, at(-30)),  # before anything was sent
    inbound("in-6", "+13125550201", REALTY_SENDER, at(90)),
]

CONTACT_COLUMNS = [
    ("contact_id", "varchar"),
    ("client_id", "varchar"),
    ("first_name", "varchar"),
    ("last_name", "varchar"),
]
CONTACTS = [
    ("contact-e-bounced", "clinic", "Ana", "Cruz"),
    ("contact-s-suppressed", "clinic", "Cy", "Young"),
    ("contact-d-undelivered", "clinic", "Dee", "Lopez"),
]
CLIENT_ROWS = [*CLIENTS]


BUILD = MartBuild(
    name="deliveries",
    models=MODELS,
    sources=SOURCE_TABLES,
    hand_made={"marts.message_plan": MESSAGE_PLAN_COLUMNS, "marts.contacts": CONTACT_COLUMNS},
    rows={
        "herald_ops.clients": CLIENT_ROWS,
        "herald_ops.outbox": OUTBOX,
        "herald_raw.inbound_messages": INBOUND,
        "marts.contacts": CONTACTS,
        "herald_ops.provider_event_processing": [
            ("SM-a:sent", "d-delivered", "status_updated", None, at(5)),
            ("SM-a:delivered", "d-delivered", "status_updated", None, at(7)),
            ("SM-z:sent", None, "unmatched", None, at(8)),
        ],
    },
)


@pytest.fixture(scope="module", params=ENGINES)
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    with build_marts(request, tmp_path_factory, BUILD) as result:
        yield result


def by_key(built: Built, table: str) -> dict[str, dict[str, Any]]:
    return {r["message_key"]: r for r in rows(built.warehouse, f"select * from {table}")}


def test_the_models_and_their_data_tests_pass(built: Built) -> None:
    statuses = {r["unique_id"]: r["status"] for r in built.run["results"]}
    assert failed_nodes(built) == {}
    assert {"model.herald.deliveries", "model.herald.missed_contacts"} <= set(statuses)
    assert any("accepted_values_missed_contacts_missed_status" in t for t in statuses)


def test_deliveries_have_the_final_status_and_its_timestamps(built: Built) -> None:
    deliveries = by_key(built, "marts.deliveries")
    assert {k: d["final_status"] for k, d in deliveries.items()} == {
        "d-delivered": "delivered", "d-undelivered": "undelivered", "d-sent-only": "sent", "e-bounced": "bounced",
        "e-complained": "complained", "f-refused": "failed", "r-1": "sent", "r-2": "sent",
    }  # queued, held, suppressed and cancelled messages never reached a provider  # fmt: skip
    undelivered = deliveries["d-undelivered"]
    assert (undelivered["failed_at"], undelivered["delivered_at"], undelivered["delivery_error"]) == (
        at(10), None, "30003: unreachable destination handset",
    )  # fmt: skip
    assert undelivered["to_address_masked"] == "+1********02"
    assert (deliveries["d-delivered"]["last_provider_event_at"], undelivered["last_provider_event_at"]) == (at(7), None)
    complained = deliveries["e-complained"]
    assert (complained["sent_at"], complained["delivered_at"], complained["opened_at"], complained["complained_at"]) == (
        at(5), at(6), at(30), at(60),
    )  # fmt: skip
    assert complained["to_address_masked"] == "b***@example.org"
    assert (deliveries["e-bounced"]["bounced_at"], deliveries["e-bounced"]["delivery_error"]) == (
        at(7), "bounce Permanent/General: no such mailbox",
    )  # fmt: skip
    refused = deliveries["f-refused"]
    assert (refused["failed_at"], refused["delivery_error"], refused["provider_message_id"]) == (
        datetime(2024, 3, 12, 4, 0), "21211: invalid 'To' number", None,
    )  # fmt: skip
    sql = (
        "select column_name from information_schema.columns where table_schema = 'marts' and table_name = 'deliveries'"
    )
    columns = {r["column_name"] for r in rows(built.warehouse, sql)}
    assert "to_address" not in columns


def test_missed_contacts_say_why_and_when_with_the_contacts_name(built: Built) -> None:
    missed = by_key(built, "marts.missed_contacts")
    updated = datetime(2024, 3, 12, 4, 0)  # the outbox rows' updated_at
    got = {k: (m["missed_status"], m["reason"], m["missed_at"]) for k, m in missed.items()}
    assert got == {
        "d-undelivered": ("undelivered", "30003: unreachable destination handset", at(10)),
        "e-bounced": ("bounced", "bounce Permanent/General: no such mailbox", at(7)),
        "e-complained": ("complained", "marked as spam", at(60)),
        "f-refused": ("failed", "21211: invalid 'To' number", updated),
        "s-suppressed": ("suppressed", "opt_out", updated),
        "h-held": ("held", "template: first_name is missing", updated),
        "c-cancelled": ("cancelled", "unsubscribed via the web page", updated),
    }
    assert (missed["e-bounced"]["first_name"], missed["e-bounced"]["last_name"]) == ("Ana", "Cruz")
    assert missed["e-bounced"]["to_address_masked"] == "a***@example.com"
    assert (missed["s-suppressed"]["first_name"], missed["s-suppressed"]["to_address_masked"]) == (
        "Cy",
        "c***@example.com",
    )
    assert missed["h-held"]["first_name"] is None  # not in marts.contacts: the row stays


def test_response_rate_per_campaign_step_and_variant(built: Built) -> None:
    daily = rows(
        built.warehouse,
        "select client_id, campaign, step, variant, channel, send_date, sent, failed, delivered, replied, response_rate "
        "from analytics.campaign_performance_daily where send_date = '2024-03-11' order by client_id, channel",
    )
    got = [tuple(d.values()) for d in daily]
    assert got == [
        # 3 SMS sent (1 delivered, 1 replied to twice: counted once), 1 refused
        ("clinic", "reminders", "day_before", "a", "email", date(2024, 3, 11), 2, 0, 1, 0, 0.0),
        ("clinic", "reminders", "day_before", "a", "sms", date(2024, 3, 11), 3, 1, 1, 1, 1.0),
        # no delivery receipts: replied / sent
        ("realty", "new_listings", "intro", "b", "sms", date(2024, 3, 11), 2, 0, 0, 1, 0.5),
    ]
