"""``marts.messages`` and ``analytics.campaign_performance_daily`` on a real warehouse, once per
engine: outbox messages, their delivery attempts, clients and message-plan rows in; one
``dbt build`` of the two models (with their data tests) out.

``marts.message_plan`` is another model's output: the test creates that table itself with the
plan's columns and inserts plan rows, so only these two models run (dbt's start-up dominates
the cost, so every assertion reads the same built warehouse).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import pytest

from tests.conftest import ENGINES
from tests.dbt_harness import (
    CLIENTS,
    LATE_EVENING,
    LATE_EVENING_HALF,
    MESSAGE_PLAN_COLUMNS,
    MORNING,
    Built,
    MartBuild,
    build_marts,
    failed_nodes,
    outbox_row,
    rows,
)

MODELS = ("messages", "campaign_performance_daily")
SOURCE_TABLES = (
    "herald_ops.clients",
    "herald_ops.outbox",
    "herald_ops.delivery_attempts",
    "herald_raw.inbound_messages",
)

OUTBOX = [
    outbox_row(
        "m-sent",
        to_address="+13125550167",
        status="sent",
        sms_segments=2,
        attempts=2,
        provider="sandbox",
        provider_message_id="SM-1",
        sent_at=datetime(2024, 3, 12, 3, 5),
    ),
    outbox_row(
        "m-failed",
        to_address="+447911123456",
        send_after=LATE_EVENING_HALF,
        status="failed",
        status_reason="21211: invalid 'To' number",
        sms_segments=1,
        attempts=1,
        provider="sandbox",
    ),
    outbox_row(
        "m-held",
        channel="email",
        to_address="ana.cruz@example.com",
        subject="Tomorrow",
        send_after=MORNING,
        status="held",
        status_reason="template: first_name is missing",
    ),
    outbox_row(
        "m-suppressed",
        channel="email",
        to_address="bob@example.org",
        send_after=MORNING,
        status="suppressed",
        status_reason="opt_out",
    ),
    outbox_row("m-queued", send_after=MORNING, status="queued", status_reason="waiting for the window", sms_segments=1),
    outbox_row("m-cancelled", send_after=MORNING, status="cancelled", status_reason="campaign paused", sms_segments=1),
    outbox_row(
        "m-realty",
        client_id="realty",
        campaign="new_listings",
        step="intro",
        variant="b",
        to_address="+2348012345678",
        status="sent",
        sms_segments=3,
        attempts=1,
        provider="sandbox",
        provider_message_id="SM-2",
        sent_at=datetime(2024, 3, 12, 3, 1),
    ),
]


def attempt(message_key: str, number: int, outcome: str, started_at: datetime) -> tuple[Any, ...]:
    return (
        message_key, number, f"claim-{message_key}-{number}", "sms", "sandbox", outcome,
        None if outcome in ("sent", "reconciled_sent") else "E1", None, None, started_at, started_at,
    )  # fmt: skip


DELIVERY_ATTEMPTS = [
    attempt("m-sent", 1, "transient_error", datetime(2024, 3, 12, 3, 0)),
    attempt("m-sent", 2, "sent", datetime(2024, 3, 12, 3, 5)),
    attempt("m-failed", 1, "permanent_error", datetime(2024, 3, 12, 3, 30)),
    # the outcome of attempt 1 was unknown after a crash; reconciliation found it sent
    attempt("m-realty", 1, "held_unknown", datetime(2024, 3, 12, 3, 0)),
    attempt("m-realty", 1, "reconciled_sent", datetime(2024, 3, 12, 3, 1)),
]


def plan_row(
    message_key: str, channel: str | None, variant: str | None, status: str, reason: str | None,
    scheduled_at: datetime, send_after: datetime | None = None,
) -> tuple[Any, ...]:  # fmt: skip
    # as the plan writes them: an excluded row has no variant and no send_after
    if status == "planned":
        send_after = send_after or scheduled_at
    return (
        message_key, "clinic", "reminders", "day_before", 1, "2024-03-11T09:00-05:00", f"contact-{message_key}",
        channel, variant, status, reason, scheduled_at, send_after,
        send_after is not None and send_after > scheduled_at, datetime(2024, 3, 11, 14, 0),
    )  # fmt: skip


MESSAGE_PLAN = [
    plan_row("m-sent", "sms", "a", "planned", None, LATE_EVENING),
    # scheduled in quiet hours, deferred to later that evening
    plan_row("m-failed", "sms", "a", "planned", None, datetime(2024, 3, 12, 2, 0), LATE_EVENING_HALF),
    plan_row("p-no-address", None, None, "excluded", "no valid phone or email", LATE_EVENING),
    plan_row("p-over-limit", "sms", None, "excluded", "over the daily limit of 2", MORNING),
]

BUILD = MartBuild(
    name="messages",
    models=MODELS,
    sources=SOURCE_TABLES,
    hand_made={"marts.message_plan": MESSAGE_PLAN_COLUMNS},
    rows={
        "herald_ops.clients": CLIENTS,
        "herald_ops.outbox": OUTBOX,
        "herald_ops.delivery_attempts": DELIVERY_ATTEMPTS,
        "marts.message_plan": MESSAGE_PLAN,
    },
)


@pytest.fixture(scope="module", params=ENGINES)
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    with build_marts(request, tmp_path_factory, BUILD) as result:
        yield result


def messages_by_key(built: Built) -> dict[str, dict[str, Any]]:
    return {m["message_key"]: m for m in rows(built.warehouse, "select * from marts.messages")}


# --- the build ------------------------------------------------------------------------------


def test_both_models_and_their_data_tests_pass(built: Built) -> None:
    statuses = {r["unique_id"]: r["status"] for r in built.run["results"]}
    assert failed_nodes(built) == {}
    assert {"model.herald.messages", "model.herald.campaign_performance_daily"} <= set(statuses)
    tests = [k for k in statuses if k.startswith("test.")]
    assert any("unique_key_campaign_performance_daily" in t for t in tests)
    assert any("accepted_values_messages_status" in t for t in tests)
    # schema names verbatim on both engines
    tables = rows(
        built.warehouse,
        "select table_schema, table_name from information_schema.tables "
        "where table_name in ('messages', 'campaign_performance_daily') order by 1",
    )
    assert [(t["table_schema"], t["table_name"]) for t in tables] == [
        ("analytics", "campaign_performance_daily"), ("marts", "messages"),
    ]  # fmt: skip


# --- marts.messages -------------------------------------------------------------------------


def test_messages_carry_status_failure_reason_and_attempts(built: Built) -> None:
    messages = messages_by_key(built)
    assert set(messages) == {m[0] for m in OUTBOX}
    summary = {
        key: (m["status"], m["failure_reason"], m["attempt_count"], m["transient_error_count"])
        for key, m in messages.items()
    }
    assert summary == {
        "m-sent": ("sent", None, 2, 1),
        "m-failed": ("failed", "21211: invalid 'To' number", 1, 0),
        "m-held": ("held", "template: first_name is missing", 0, 0),
        "m-suppressed": ("suppressed", "opt_out", 0, 0),
        "m-queued": ("queued", None, 0, 0),  # a status_reason is a failure reason only when it failed
        "m-cancelled": ("cancelled", None, 0, 0),
        "m-realty": ("sent", None, 1, 0),  # the reconciliation of attempt 1 is not a second attempt
    }
    sent = messages["m-sent"]
    assert (sent["first_attempt_at"], sent["last_attempt_at"], sent["sent_at"]) == (
        datetime(2024, 3, 12, 3, 0), datetime(2024, 3, 12, 3, 5), datetime(2024, 3, 12, 3, 5),
    )  # fmt: skip
    assert (sent["provider"], sent["provider_message_id"], sent["sms_segments"]) == ("sandbox", "SM-1", 2)
    assert (sent["campaign"], sent["step"], sent["variant"], sent["channel"]) == ("reminders", "day_before", "a", "sms")
    held = messages["m-held"]
    assert (held["first_attempt_at"], held["last_attempt_at"]) == (None, None)
    assert held["send_after"] == MORNING


def test_addresses_are_masked(built: Built) -> None:
    masked = {key: m["to_address_masked"] for key, m in messages_by_key(built).items()}
    assert masked == {
        "m-sent": "+1********67",
        "m-failed": "+44********56",  # 2-digit country code
        "m-realty": "+234********78",  # 3-digit country code
        "m-held": "a***@example.com",
        "m-suppressed": "b***@example.org",
        "m-queued": "+1********00",
        "m-cancelled": "+1********00",
    }
    names = {
        r["column_name"]
        for r in rows(
            built.warehouse,
            "select column_name from information_schema.columns "
            "where table_schema = 'marts' and table_name = 'messages'",
        )
    }
    assert "to_address" not in names and "body_text" not in names


# --- analytics.campaign_performance_daily ---------------------------------------------------


def test_daily_counts_fall_on_the_clients_local_date(built: Built) -> None:
    daily = rows(
        built.warehouse,
        "select * from analytics.campaign_performance_daily "
        "order by client_id, campaign, step, send_date, variant, channel",
    )
    measures = ("planned", "excluded", "deferred", "enqueued", "held", "sent", "failed", "suppressed", "cancelled",
                "sms_segments_sent", "delivery_rate")  # fmt: skip
    got = [
        (d["client_id"], d["campaign"], d["step"], d["variant"], d["channel"], d["send_date"],
         *(d[m] for m in measures))
        for d in daily
    ]  # fmt: skip
    assert got == [
        # 03:00 and 03:30 UTC on 12 March are the evening of 11 March in Chicago
        ("clinic", "reminders", "day_before", "a", "sms", date(2024, 3, 11), 2, 0, 1, 2, 0, 1, 1, 0, 0, 2, 0.5),
        # excluded for lack of an address: no channel, no variant, still counted
        ("clinic", "reminders", "day_before", "none", "none", date(2024, 3, 11), 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, None),
        ("clinic", "reminders", "day_before", "a", "email", date(2024, 3, 12), 0, 0, 0, 2, 1, 0, 0, 1, 0, 0, None),
        ("clinic", "reminders", "day_before", "a", "sms", date(2024, 3, 12), 0, 0, 0, 2, 0, 0, 0, 0, 1, 0, None),
        # excluded with a channel but no variant, on the local date it was scheduled for
        ("clinic", "reminders", "day_before", "none", "sms", date(2024, 3, 12), 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, None),
        # New York: 03:00 UTC is 23:00 the day before
        ("realty", "new_listings", "intro", "b", "sms", date(2024, 3, 11), 0, 0, 0, 1, 0, 1, 0, 0, 0, 3, 1.0),
    ]
