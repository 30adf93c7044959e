"""``analytics.conversions``, ``analytics.attributed_conversions`` and the two attribution
rollups on a real warehouse, once per engine: hand-made marts and replies in, one ``dbt build``
of the four models (with their data tests, "credits sum to 1" among them) out.

``marts.messages``, ``marts.funnel_events``, ``marts.appointment_confirmations``,
``marts.contact_attributes`` and ``marts.contacts`` are other models' outputs: the test creates
them itself with the columns these models read, so only the four models run.

The scenario, every conversion at T (default vars: sms lookback 7 days, email 14, half-life 7):
  college c1  funnel event to "Enrolled", value 5000 (conversion_value beats list_price);
              touches email 14 d before (the email lookback's edge), sms 7 d (the sms edge),
              sms 1 d; not touches: sms 8 d (outside), email 15 d (outside), sms after T, a
              failed sms
  college c2  funnel event to "won", value 250000 (list_price); touches email 2 d, sms 1 d
  college c3  a free-text reply, no value; touches sms 6 d, email 5 d, sms 3 d, sms 2 d
  college c6  funnel event to "closed" with no touch: a conversion, never attributed
  clinic  c4  "C" confirming an appointment: one conversion (not a reply too); touch sms 2 d
  not conversions: a funnel event to "contacted", STOP, HELP, a reschedule request
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.conftest import ENGINES
from tests.dbt_harness import Built, MartBuild, build_marts, failed_nodes, row, rows

MODELS = ("conversions", "attributed_conversions", "attribution_by_campaign", "attribution_by_channel")
ATTRIBUTION_MODELS = ("first_touch", "last_touch", "linear", "time_decay", "position_based")
SOURCE_TABLES = (
    "herald_ops.clients", "herald_raw.inbound_messages", "herald_ops.inbound_processing",
    "herald_ops.appointment_responses",
)  # fmt: skip

T = datetime(2024, 3, 20, 12, 0)
LOADED_AT = datetime(2024, 3, 1, 12, 0)
CLIENTS = [
    ("college", "Lakeside College", "education", "America/Chicago", "US", LOADED_AT),
    ("clinic", "Bright Smiles Dental", "healthcare", "America/Chicago", "US", LOADED_AT),
]


def before(days: float) -> datetime:
    return T - timedelta(days=days)


# --- hand-made marts ------------------------------------------------------------------------

CONTACT_COLUMNS = [("contact_id", "varchar"), ("client_id", "varchar")]
CONTACTS = [("c1", "college"), ("c2", "college"), ("c3", "college"), ("c6", "college"), ("c4", "clinic"),
            ("c5", "clinic")]  # fmt: skip

MESSAGE_COLUMNS = [
    ("message_key", "varchar"), ("client_id", "varchar"), ("campaign", "varchar"), ("step", "varchar"),
    ("variant", "varchar"), ("channel", "varchar"), ("contact_id", "varchar"), ("status", "varchar"),
    ("sent_at", "timestamp"),
]  # fmt: skip


def message(key: str, contact_id: str, channel: str, campaign: str, sent_at: datetime | None,
            status: str = "sent", client_id: str = "college") -> tuple[Any, ...]:  # fmt: skip
    return (key, client_id, campaign, "intro", "a", channel, contact_id, status, sent_at)


MESSAGES = [
    message("c1-email-14d", "c1", "email", "nurture", before(14)),
    message("c1-sms-7d", "c1", "sms", "nurture", before(7)),
    message("c1-sms-1d", "c1", "sms", "open_house", before(1)),
    message("c1-sms-8d", "c1", "sms", "nurture", before(8)),  # outside the sms lookback
    message("c1-email-15d", "c1", "email", "nurture", before(15)),  # outside the email lookback
    message("c1-sms-after", "c1", "sms", "open_house", T + timedelta(hours=1)),  # after the conversion
    message("c1-failed", "c1", "sms", "open_house", None, status="failed"),
    message("c1-queued", "c1", "sms", "open_house", None, status="queued"),
    message("c2-email-2d", "c2", "email", "nurture", before(2)),
    message("c2-sms-1d", "c2", "sms", "open_house", before(1)),
    message("c3-sms-6d", "c3", "sms", "nurture", before(6)),
    message("c3-email-5d", "c3", "email", "nurture", before(5)),
    message("c3-sms-3d", "c3", "sms", "open_house", before(3)),
    message("c3-sms-2d", "c3", "sms", "open_house", before(2)),
    message("c4-sms-2d", "c4", "sms", "reminders", before(2), client_id="clinic"),
    message("c5-sms-2d", "c5", "sms", "reminders", before(2), client_id="clinic"),
]

FUNNEL_EVENT_COLUMNS = [
    ("event_id", "varchar"), ("client_id", "varchar"), ("contact_id", "varchar"), ("funnel_type", "varchar"),
    ("from_stage", "varchar"), ("to_stage", "varchar"), ("occurred_at", "timestamp"), ("loaded_at", "timestamp"),
]  # fmt: skip
FUNNEL_EVENTS = [
    ("ev-c1", "college", "c1", "admissions", "applied", "Enrolled", T, T),
    ("ev-c2", "college", "c2", "admissions", "applied", "won", T, T),
    ("ev-c2-early", "college", "c2", "admissions", "new", "contacted", before(3), T),  # not a converting stage
    ("ev-c6", "college", "c6", "admissions", "applied", "closed", T, T),
]

CONTACT_ATTRIBUTE_COLUMNS = [
    ("contact_id", "varchar"), ("client_id", "varchar"), ("attribute_name", "varchar"), ("numeric_value", "numeric(38, 6)"),
]  # fmt: skip
CONTACT_ATTRIBUTES = [
    ("c1", "college", "list_price", 300000),
    ("c1", "college", "conversion_value", 5000),
    ("c1", "college", "program", None),
    ("c2", "college", "list_price", 250000),
]

APPOINTMENT_CONFIRMATION_COLUMNS = [
    ("client_id", "varchar"), ("contact_id", "varchar"), ("response", "varchar"), ("is_confirmed", "boolean"),
    ("responded_at", "timestamp"), ("inbound_id", "varchar"),
]  # fmt: skip
APPOINTMENT_CONFIRMATIONS = [
    ("clinic", "c4", "confirmed", True, T, "in-c4-confirm"),
    ("clinic", "c5", "reschedule_requested", False, T, "in-c5-reschedule"),
]


# --- replies --------------------------------------------------------------------------------


def inbound(
    inbound_id: str, client_id: str | None, contact_id: str | None, kind: str, body: str
) -> tuple[tuple, tuple]:
    message_row = row(
        "herald_raw.inbound_messages", inbound_id=inbound_id, channel="sms", from_address="+13125550100",
        to_address="+13125559999", body=body, provider="sandbox", received_at=T, landed_at=T,
    )  # fmt: skip
    processing_row = row(
        "herald_ops.inbound_processing", inbound_id=inbound_id, client_id=client_id, contact_id=contact_id, kind=kind,
        action="ignored", messages_cancelled=0, processed_at=T + timedelta(minutes=1),
    )  # fmt: skip
    return message_row, processing_row


REPLIES = [
    inbound("in-c3-question", "college", "c3", "other", "Is there parking on campus?"),
    inbound("in-c4-confirm", "clinic", "c4", "confirm", "C"),  # an appointment confirmation, counted once
    inbound("in-c5-reschedule", "clinic", "c5", "reschedule", "R"),
    inbound("in-c5-stop", "clinic", "c5", "opt_out", "STOP"),
    inbound("in-c5-help", "clinic", "c5", "help", "HELP"),
    inbound("in-unknown", None, None, "other", "who is this?"),  # no client, no contact
]
APPOINTMENT_RESPONSES = [
    ("in-c4-confirm", "clinic", "c4", "confirmed", T),
    ("in-c5-reschedule", "clinic", "c5", "reschedule_requested", T),
]


BUILD = MartBuild(
    name="attribution",
    models=MODELS,
    sources=SOURCE_TABLES,
    hand_made={
        "marts.contacts": CONTACT_COLUMNS,
        "marts.messages": MESSAGE_COLUMNS,
        "marts.funnel_events": FUNNEL_EVENT_COLUMNS,
        "marts.contact_attributes": CONTACT_ATTRIBUTE_COLUMNS,
        "marts.appointment_confirmations": APPOINTMENT_CONFIRMATION_COLUMNS,
    },
    rows={
        "herald_ops.clients": CLIENTS,
        "herald_raw.inbound_messages": [m for m, _ in REPLIES],
        "herald_ops.inbound_processing": [p for _, p in REPLIES],
        "herald_ops.appointment_responses": APPOINTMENT_RESPONSES,
        "marts.contacts": CONTACTS,
        "marts.messages": MESSAGES,
        "marts.funnel_events": FUNNEL_EVENTS,
        "marts.contact_attributes": CONTACT_ATTRIBUTES,
        "marts.appointment_confirmations": APPOINTMENT_CONFIRMATIONS,
    },
)


@pytest.fixture(scope="module", params=ENGINES)
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    with build_marts(request, tmp_path_factory, BUILD) as result:
        yield result


def conversion_id(kind: str, client_id: str, contact_id: str, source_id: str) -> str:
    return hashlib.md5(f"{kind}|{client_id}|{contact_id}|{source_id}".encode()).hexdigest()


def credits(built: Built, contact_id: str) -> dict[str, dict[str, float]]:
    """model → message_id → credit, for the contact's one conversion."""
    got: dict[str, dict[str, float]] = {}
    for r in rows(built.warehouse, f"select * from analytics.attributed_conversions where contact_id = '{contact_id}'"):
        got.setdefault(r["model"], {})[r["message_id"]] = r["credit"]
    return got


def approx(expected: dict[str, dict[str, float]]) -> dict[str, Any]:
    return {model: pytest.approx(by_message, abs=1e-9) for model, by_message in expected.items()}


# --- the build ------------------------------------------------------------------------------


def test_the_four_models_and_their_data_tests_pass(built: Built) -> None:
    statuses = {r["unique_id"]: r["status"] for r in built.run["results"]}
    assert failed_nodes(built) == {}
    assert {f"model.herald.{m}" for m in MODELS} <= set(statuses)
    tests = [k for k in statuses if k.startswith("test.")]
    for expected in ("credits_sum_to_one_attributed_conversions", "unique_key_attributed_conversions",
                     "unique_key_conversions", "accepted_values_conversions_kind"):  # fmt: skip
        assert any(expected in t for t in tests), expected
    tables = rows(
        built.warehouse,
        "select table_schema, table_name from information_schema.tables "
        f"where table_name in ({', '.join(repr(m) for m in MODELS)}) order by 2",
    )
    assert {(t["table_schema"], t["table_name"]) for t in tables} == {("analytics", m) for m in MODELS}


# --- analytics.conversions ------------------------------------------------------------------


def test_conversions_are_converting_funnel_events_confirmed_appointments_and_replies(built: Built) -> None:
    got = sorted(
        (c["conversion_id"], c["kind"], c["client_id"], c["contact_id"], c["source_id"], c["occurred_at"],
         None if c["value"] is None else float(c["value"]))
        for c in rows(built.warehouse, "select * from analytics.conversions")
    )  # fmt: skip
    expected = [
        ("funnel_event", "college", "c1", "ev-c1", T, 5000.0),  # conversion_value before list_price
        ("funnel_event", "college", "c2", "ev-c2", T, 250000.0),  # list_price when it is all there is
        ("funnel_event", "college", "c6", "ev-c6", T, None),  # no touch: kept here all the same
        ("reply", "college", "c3", "in-c3-question", T, None),
        # the "C" reply is the appointment, not a reply as well
        ("appointment_confirmed", "clinic", "c4", "in-c4-confirm", T, None),
    ]
    assert got == sorted((conversion_id(k, cl, co, s), k, cl, co, s, at, v) for k, cl, co, s, at, v in expected)


# --- analytics.attributed_conversions -------------------------------------------------------


def test_three_touches_at_known_ages_under_each_model(built: Built) -> None:
    # ages 14, 7 and 1 days; half-life 7 days: weights 1/4, 1/2, 2^(-1/7)
    weights = {"c1-email-14d": 0.25, "c1-sms-7d": 0.5, "c1-sms-1d": 2 ** (-1 / 7)}
    total = sum(weights.values())
    assert credits(built, "c1") == approx({
        "first_touch": {"c1-email-14d": 1.0, "c1-sms-7d": 0.0, "c1-sms-1d": 0.0},
        "last_touch": {"c1-email-14d": 0.0, "c1-sms-7d": 0.0, "c1-sms-1d": 1.0},
        "linear": {"c1-email-14d": 1 / 3, "c1-sms-7d": 1 / 3, "c1-sms-1d": 1 / 3},
        "time_decay": {key: weight / total for key, weight in weights.items()},
        "position_based": {"c1-email-14d": 0.4, "c1-sms-7d": 0.2, "c1-sms-1d": 0.4},
    })  # fmt: skip
    # written out, so the formula above is not the only witness
    assert credits(built, "c1")["time_decay"] == pytest.approx(
        {"c1-email-14d": 0.15099, "c1-sms-7d": 0.30198, "c1-sms-1d": 0.54703}, abs=1e-5
    )


def test_touches_outside_the_lookback_after_the_conversion_or_not_sent_do_not_count(built: Built) -> None:
    touched = {
        r["message_id"] for r in rows(built.warehouse, "select message_id from analytics.attributed_conversions")
    }
    assert touched.isdisjoint({"c1-sms-8d", "c1-email-15d", "c1-sms-after", "c1-failed", "c1-queued"})
    c1 = rows(
        built.warehouse,
        "select distinct message_id, touch_number, touch_count, touch_at, converted_at, conversion_kind "
        "from analytics.attributed_conversions where contact_id = 'c1' order by touch_number",
    )
    assert [(r["message_id"], r["touch_number"], r["touch_count"], r["touch_at"]) for r in c1] == [
        ("c1-email-14d", 1, 3, before(14)), ("c1-sms-7d", 2, 3, before(7)), ("c1-sms-1d", 3, 3, before(1)),
    ]  # fmt: skip
    assert {(r["converted_at"], r["conversion_kind"]) for r in c1} == {(T, "funnel_event")}


def test_two_touches_split_position_based_credit_in_half(built: Built) -> None:
    weights = {"c2-email-2d": 2 ** (-2 / 7), "c2-sms-1d": 2 ** (-1 / 7)}
    assert credits(built, "c2") == approx({
        "first_touch": {"c2-email-2d": 1.0, "c2-sms-1d": 0.0},
        "last_touch": {"c2-email-2d": 0.0, "c2-sms-1d": 1.0},
        "linear": {"c2-email-2d": 0.5, "c2-sms-1d": 0.5},
        "time_decay": {key: weight / sum(weights.values()) for key, weight in weights.items()},
        "position_based": {"c2-email-2d": 0.5, "c2-sms-1d": 0.5},
    })  # fmt: skip


def test_four_touches_share_the_middle_20_percent(built: Built) -> None:
    got = credits(built, "c3")
    assert got["position_based"] == pytest.approx(
        {"c3-sms-6d": 0.4, "c3-email-5d": 0.1, "c3-sms-3d": 0.1, "c3-sms-2d": 0.4}
    )
    assert got["linear"] == pytest.approx(dict.fromkeys(("c3-sms-6d", "c3-email-5d", "c3-sms-3d", "c3-sms-2d"), 0.25))


def test_a_single_touch_takes_all_the_credit_under_every_model(built: Built) -> None:
    assert credits(built, "c4") == approx({model: {"c4-sms-2d": 1.0} for model in ATTRIBUTION_MODELS})


def test_credits_sum_to_one_and_untouched_conversions_are_left_out(built: Built) -> None:
    sums = rows(
        built.warehouse,
        "select contact_id, model, sum(credit) as total, count(*) as touches "
        "from analytics.attributed_conversions group by contact_id, model",
    )
    assert {(s["contact_id"], s["model"]) for s in sums} == {
        (contact, model) for contact in ("c1", "c2", "c3", "c4") for model in ATTRIBUTION_MODELS
    }  # c6 converted without a touch; c5 did not convert
    assert all(s["total"] == pytest.approx(1.0, abs=1e-9) for s in sums)


def test_revenue_is_credit_times_value(built: Built) -> None:
    got = {
        (r["contact_id"], r["message_id"]): r["revenue"]
        for r in rows(built.warehouse, "select * from analytics.attributed_conversions where model = 'position_based'")
    }
    assert got == {
        ("c1", "c1-email-14d"): pytest.approx(2000.0), ("c1", "c1-sms-7d"): pytest.approx(1000.0),
        ("c1", "c1-sms-1d"): pytest.approx(2000.0),
        ("c2", "c2-email-2d"): pytest.approx(125000.0), ("c2", "c2-sms-1d"): pytest.approx(125000.0),
        ("c3", "c3-sms-6d"): None, ("c3", "c3-email-5d"): None, ("c3", "c3-sms-3d"): None, ("c3", "c3-sms-2d"): None,
        ("c4", "c4-sms-2d"): None,
    }  # fmt: skip


# --- the rollups ----------------------------------------------------------------------------


def rollup(built: Built, table: str, dimension: str, model: str) -> dict[tuple[str, str], tuple[Any, ...]]:
    return {
        (r["client_id"], r[dimension]): (
            pytest.approx(r["conversions_credited"]),
            None if r["revenue"] is None else pytest.approx(r["revenue"]),
            r["conversions_touched"],
        )
        for r in rows(built.warehouse, f"select * from analytics.{table} where model = '{model}'")
    }


def test_attribution_by_campaign(built: Built) -> None:
    # c1: nurture 0.4 + 0.2, open_house 0.4; c2: 0.5 / 0.5; c3: nurture 0.4 + 0.1, open_house 0.1 + 0.4
    assert rollup(built, "attribution_by_campaign", "campaign", "position_based") == {
        ("college", "nurture"): (1.6, 0.6 * 5000 + 0.5 * 250000, 3),
        ("college", "open_house"): (1.4, 0.4 * 5000 + 0.5 * 250000, 3),
        ("clinic", "reminders"): (1.0, None, 1),
    }
    # first touch: c1, c2 and c3 all began with a nurture message
    assert rollup(built, "attribution_by_campaign", "campaign", "first_touch") == {
        ("college", "nurture"): (3.0, 5000 + 250000, 3),
        ("college", "open_house"): (0.0, 0.0, 3),
        ("clinic", "reminders"): (1.0, None, 1),
    }
    # every model hands out exactly the touched conversions: 3 for the college, 1 for the clinic
    totals = rows(
        built.warehouse,
        "select client_id, model, sum(conversions_credited) as total from analytics.attribution_by_campaign "
        "group by client_id, model",
    )
    assert {(t["client_id"], t["model"]): t["total"] for t in totals} == {
        **{("college", m): pytest.approx(3.0) for m in ATTRIBUTION_MODELS},
        **{("clinic", m): pytest.approx(1.0) for m in ATTRIBUTION_MODELS},
    }


def test_attribution_by_channel(built: Built) -> None:
    # linear: c1 email 1/3, sms 2/3; c2 0.5 / 0.5; c3 email 0.25, sms 0.75
    assert rollup(built, "attribution_by_channel", "channel", "linear") == {
        ("college", "email"): (1 / 3 + 0.5 + 0.25, 5000 / 3 + 125000, 3),
        ("college", "sms"): (2 / 3 + 0.5 + 0.75, 5000 * 2 / 3 + 125000, 3),
        ("clinic", "sms"): (1.0, None, 1),
    }
    assert rollup(built, "attribution_by_channel", "channel", "last_touch") == {
        ("college", "email"): (0.0, 0.0, 3),
        ("college", "sms"): (3.0, 5000 + 250000, 3),
        ("clinic", "sms"): (1.0, None, 1),
    }
