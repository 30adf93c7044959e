"""The compliance marts — ``marts.suppressions``, ``marts.consent_status``,
``marts.appointment_confirmations`` and ``analytics.compliance_daily`` — on a real warehouse,
once per engine: hand-made compliance tables in, one ``dbt build`` of the four models (with
their data tests) out.

``marts.contacts`` and ``marts.message_plan`` are other models' outputs: the test creates those
tables itself with the columns these models read, so only the four models run.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ENGINES
from tests.dbt_harness import DBT_PROJECT_DIR, Built, MartBuild, build_marts, failed_nodes, row, rows

MODELS = ("suppressions", "consent_status", "appointment_confirmations", "compliance_daily")
SOURCE_TABLES = (
    "herald_ops.clients", "herald_ops.suppressions", "herald_ops.consent_events", "herald_ops.inbound_processing",
    "herald_ops.appointment_responses", "herald_ops.outbox", "herald_ops.confirmation_settings",
    "herald_ops.consent_requests",
)  # fmt: skip
APPOINTMENT_COLUMNS = [
    ("appointment_key", "varchar"), ("client_id", "varchar"), ("contact_id", "varchar"), ("appointment_id", "varchar"),
    ("appointment_at", "timestamp"), ("status", "varchar"), ("first_seen_at", "timestamp"),
    ("last_seen_at", "timestamp"),
]  # fmt: skip

LOADED_AT = datetime(2024, 3, 1, 12, 0)
CLIENTS = [
    # Chicago is UTC-5 from 10 March 2024 (CDT), New York UTC-4 (EDT)
    ("clinic", "Bright Smiles Dental", "healthcare", "America/Chicago", "US", LOADED_AT),
    ("realty", "Harbor Realty", "real_estate", "America/New_York", "US", LOADED_AT),
]

CONTACT_COLUMNS = [
    ("contact_id", "varchar"),
    ("client_id", "varchar"),
    ("first_name", "varchar"),
    ("last_name", "varchar"),
]
CONTACTS = [("c1", "clinic", "Ana", "Cruz"), ("c2", "clinic", "Bob", None), ("c3", "realty", "Cy", "Lee")]


def nulls_first(values: tuple[Any, ...]) -> tuple[str, ...]:
    """A sort key for rows holding nulls."""
    return tuple("" if v is None else str(v) for v in values)


# --- marts.suppressions ---------------------------------------------------------------------

SUPPRESSED_AT = datetime(2024, 3, 12, 3, 0)


def suppression(client_id: str, channel: str, address: str, scope: str, reason: str, **values: Any):
    return row(
        "herald_ops.suppressions", client_id=client_id, channel=channel, address=address, scope=scope, reason=reason,
        created_at=SUPPRESSED_AT, **values,
    )  # fmt: skip


SUPPRESSIONS = [
    suppression("clinic", "sms", "+13125550167", "all", "opt_out", source="sms_keyword", note="STOP", contact_id="c1"),
    suppression(
        "clinic", "sms", "+13125550167", "appointment_reminder", "opt_out", source="sms_keyword", contact_id="c1"
    ),
    # another number with the same mask: the key tells them apart
    suppression("clinic", "sms", "+13125550267", "all", "opt_out", source="sms_keyword"),
    suppression("clinic", "sms", "+447911123456", "all", "opt_out", source="sms_keyword"),
    suppression("*", "*", "ana.cruz@example.com", "all", "manual_block", source="manual", note="asked by phone"),
    suppression("realty", "email", "bob@example.org", "all", "hard_bounce", source="provider", contact_id="c2"),
]

# --- marts.consent_status -------------------------------------------------------------------


def consent(event_id: str, client_id: str, channel: str, address: str, scope: str, kind: str, occurred_at: datetime,
            **values: Any):  # fmt: skip
    values.setdefault("recorded_at", occurred_at)
    return row(
        "herald_ops.consent_events", event_id=event_id, client_id=client_id, channel=channel, address=address,
        kind=kind, scope=scope, source=values.pop("source", "sms_keyword"), occurred_at=occurred_at, **values,
    )  # fmt: skip


CONSENT_EVENTS = [
    # opted in by packet, confirmed by SMS: granted since the opt-in, at the opt-in's level
    consent("e1", "clinic", "sms", "+13125550101", "all", "opt_in", datetime(2024, 1, 1), contact_id="c1",
            consent_level="express_written", source="packet", evidence="packet p1 line 2"),
    consent("e2", "clinic", "sms", "+13125550101", "all", "confirm", datetime(2024, 2, 1), contact_id="c1",
            evidence="YES"),
    # the same address revoked one message type: its own row
    consent("e3", "clinic", "sms", "+13125550101", "appointment_reminder", "opt_in", datetime(2024, 1, 1),
            contact_id="c1", consent_level="prior_express", source="packet"),
    consent("e4", "clinic", "sms", "+13125550101", "appointment_reminder", "opt_out", datetime(2024, 3, 1),
            contact_id="c1", evidence="STOP"),
    # in, out, in again: granted since the last opt-in
    consent("e5", "clinic", "sms", "+13125550102", "all", "opt_in", datetime(2023, 1, 1), contact_id="c2",
            consent_level="express_written", source="web"),
    consent("e6", "clinic", "sms", "+13125550102", "all", "opt_out", datetime(2023, 6, 1), contact_id="c2"),
    consent("e7", "clinic", "sms", "+13125550102", "all", "opt_in", datetime(2024, 1, 1),
            consent_level="prior_express", evidence="START"),
    # two events at the same moment: the one recorded later wins
    consent("e8", "realty", "email", "x@example.com", "all", "opt_out", datetime(2024, 1, 1),
            recorded_at=datetime(2024, 1, 1, 0, 5), source="web"),
    consent("e9", "realty", "email", "x@example.com", "all", "opt_in", datetime(2024, 1, 1),
            recorded_at=datetime(2024, 1, 1, 0, 6), consent_level="express_written", source="web"),
    consent("e10", "realty", "email", "y@example.com", "all", "opt_in", datetime(2024, 1, 1),
            consent_level="express_written", source="web"),
    consent("e11", "realty", "email", "y@example.com", "all", "revoke", datetime(2024, 2, 1), source="manual",
            evidence="support ticket 42"),
]  # fmt: skip

# --- marts.appointment_confirmations --------------------------------------------------------

APPOINTMENT_RESPONSES = [
    ("in-1", "clinic", "c1", "confirmed", datetime(2024, 3, 10, 15, 0)),
    ("in-2", "clinic", "c1", "reschedule_requested", datetime(2024, 3, 11, 15, 0)),
    ("in-3", "clinic", "c2", "confirmed", datetime(2024, 3, 11, 16, 0)),
    ("in-4", "realty", "c3", "confirmed", datetime(2024, 3, 11, 17, 0)),
]

# --- analytics.compliance_daily -------------------------------------------------------------


def reply(inbound_id: str, client_id: str | None, kind: str, keyword_class: str | None, action: str,
          processed_at: datetime, messages_cancelled: int = 0):  # fmt: skip
    return row(
        "herald_ops.inbound_processing", inbound_id=inbound_id, client_id=client_id, kind=kind,
        keyword_class=keyword_class, action=action, messages_cancelled=messages_cancelled, processed_at=processed_at,
    )  # fmt: skip


INBOUND_PROCESSING = [
    # 03:00 UTC on 12 March is 22:00 on 11 March in Chicago
    reply("i1", "clinic", "opt_out", "standard", "suppressed", datetime(2024, 3, 12, 3, 0), messages_cancelled=2),
    # 04:59 UTC is 23:59 on the 11th; 05:30 UTC is 00:30 on the 12th
    reply("i2", "clinic", "opt_out", "standard", "already_suppressed", datetime(2024, 3, 12, 4, 59), messages_cancelled=1),
    reply("i3", "clinic", "opt_out", "carrier", "suppressed", datetime(2024, 3, 12, 5, 30)),
    reply("i4", "clinic", "probable_opt_out", "misspelling", "suppressed", datetime(2024, 3, 12, 15, 0)),
    reply("i5", "clinic", "probable_opt_out", "misspelling", "clarification_sent", datetime(2024, 3, 12, 16, 0)),
    reply("i6", "clinic", "opt_out", "spanish", "suppressed", datetime(2024, 3, 12, 17, 0)),
    reply("i7", "clinic", "opt_out", "free_text", "suppressed", datetime(2024, 3, 12, 18, 0)),
    reply("i8", "clinic", "opt_in", "opt_in", "restored", datetime(2024, 3, 12, 19, 0)),
    reply("i9", "clinic", "help", "help", "helped", datetime(2024, 3, 12, 20, 0)),
    reply("i10", "clinic", "help", "help", "helped", datetime(2024, 3, 13, 4, 0)),  # 23:00 on the 12th
    reply("i11", "clinic", "confirm", "confirm", "confirmed", datetime(2024, 3, 12, 20, 0)),
    reply("i12", None, "opt_out", "standard", "suppressed", datetime(2024, 3, 12, 20, 0)),  # no client: not counted
    # 03:30 UTC is 23:30 on the 11th in New York
    reply("i13", "realty", "opt_out", "standard", "suppressed", datetime(2024, 3, 12, 3, 30)),
]  # fmt: skip

MESSAGE_PLAN_COLUMNS = [
    ("message_key", "varchar"), ("client_id", "varchar"), ("campaign", "varchar"), ("contact_id", "varchar"),
    ("channel", "varchar"), ("status", "varchar"), ("reason", "varchar"), ("scheduled_at", "timestamp"),
    ("send_after", "timestamp"), ("is_deferred", "boolean"),
]  # fmt: skip
DUE_EVENING = datetime(2024, 3, 12, 2, 0)  # 21:00 on 11 March in Chicago: deferred to the morning
DUE_MORNING = datetime(2024, 3, 12, 15, 0)
MESSAGE_PLAN = [
    ("p1", "clinic", "reminders", "c1", "sms", "planned", None, DUE_EVENING, datetime(2024, 3, 12, 14, 0), True),
    ("p2", "clinic", "reminders", "c2", "sms", "planned", None, DUE_MORNING, DUE_MORNING, False),
    ("p3", "clinic", "reminders", "c1", "sms", "excluded", "suppressed: opt_out", DUE_MORNING, None, False),
    ("p4", "clinic", "promo", "c1", "sms", "excluded", "suppressed: opt_out", DUE_MORNING, None, False),
    ("p5", "clinic", "promo", "c2", "sms", "excluded", "frequency cap: 3 per 24h", DUE_MORNING, None, False),
    ("p6", "clinic", "promo", "c3", "sms", "excluded", "no consent for marketing", DUE_MORNING, None, False),
    ("p7", "clinic", "promo", "c4", None, "excluded", "no valid phone or email", DUE_MORNING, None, False),
    ("p8", "clinic", "promo", "c5", "sms", "excluded", "campaign paused", DUE_MORNING, None, False),
]  # fmt: skip


def message(key: str, status: str, status_reason: str | None, enqueued_at: datetime):
    return row(
        "herald_ops.outbox", message_key=key, client_id="clinic", campaign="reminders", step="day_before", variant="a",
        occurrence="o1", contact_id="c1", message_type="appointment_reminder", category="transactional",
        channel="sms", to_address="+13125550101", send_after=enqueued_at, status=status, status_reason=status_reason,
        attempts=0, enqueued_at=enqueued_at, updated_at=enqueued_at,
    )  # fmt: skip


OUTBOX = [
    message(
        "m-phi", "held", "PHI guard: looks like a date of birth", datetime(2024, 3, 12, 4, 30)
    ),  # 23:30 on the 11th
    message("m-template", "held", "template: first_name is missing", datetime(2024, 3, 12, 4, 30)),
    message("m-cancelled", "cancelled", "opted out: STOP", datetime(2024, 3, 12, 4, 30)),
]


BUILD = MartBuild(
    name="compliance",
    models=MODELS,
    sources=SOURCE_TABLES,
    hand_made={
        "marts.contacts": CONTACT_COLUMNS,
        "marts.message_plan": MESSAGE_PLAN_COLUMNS,
        "marts.appointments": APPOINTMENT_COLUMNS,
    },
    rows={
        "herald_ops.clients": CLIENTS,
        "herald_ops.suppressions": SUPPRESSIONS,
        "herald_ops.consent_events": CONSENT_EVENTS,
        "herald_ops.appointment_responses": APPOINTMENT_RESPONSES,
        "herald_ops.inbound_processing": INBOUND_PROCESSING,
        "herald_ops.outbox": OUTBOX,
        "marts.contacts": CONTACTS,
        "marts.message_plan": MESSAGE_PLAN,
    },
)


@pytest.fixture(scope="module", params=ENGINES)
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    with build_marts(request, tmp_path_factory, BUILD) as result:
        yield result


# --- the build ------------------------------------------------------------------------------


def test_the_four_models_and_their_data_tests_pass(built: Built) -> None:
    statuses = {r["unique_id"]: r["status"] for r in built.run["results"]}
    assert failed_nodes(built) == {}
    assert {f"model.herald.{m}" for m in MODELS} <= set(statuses)
    tests = [k for k in statuses if k.startswith("test.")]
    for expected in ("unique_key_suppressions", "unique_key_consent_status", "unique_key_appointment_confirmations",
                     "unique_key_compliance_daily", "accepted_values_consent_status_status"):  # fmt: skip
        assert any(expected in t for t in tests), expected
    tables = rows(
        built.warehouse,
        "select table_schema, table_name from information_schema.tables where table_name in "
        "('suppressions', 'consent_status', 'appointment_confirmations', 'compliance_daily') "
        "and table_schema in ('marts', 'analytics') order by 2",
    )
    assert [(t["table_schema"], t["table_name"]) for t in tables] == [
        ("marts", "appointment_confirmations"), ("analytics", "compliance_daily"), ("marts", "consent_status"),
        ("marts", "suppressions"),
    ]  # fmt: skip


# --- marts.suppressions ---------------------------------------------------------------------


def test_suppressions_are_masked_with_the_contacts_name(built: Built) -> None:
    got = sorted(
        [
            (s["client_id"], s["channel"], s["address_masked"], s["scope"], s["reason"], s["source"], s["note"],
             s["contact_id"], s["contact_name"], s["is_all_clients"], s["created_at"])
            for s in rows(built.warehouse, "select * from marts.suppressions")
        ],
        key=nulls_first,
    )  # fmt: skip
    assert got == [
        ("*", "*", "a***@example.com", "all", "manual_block", "manual", "asked by phone", None, None, True, SUPPRESSED_AT),
        ("clinic", "sms", "+1********67", "all", "opt_out", "sms_keyword", None, None, None, False, SUPPRESSED_AT),
        ("clinic", "sms", "+1********67", "all", "opt_out", "sms_keyword", "STOP", "c1", "Ana Cruz", False, SUPPRESSED_AT),
        ("clinic", "sms", "+1********67", "appointment_reminder", "opt_out", "sms_keyword", None, "c1", "Ana Cruz", False,
         SUPPRESSED_AT),
        ("clinic", "sms", "+44********56", "all", "opt_out", "sms_keyword", None, None, None, False, SUPPRESSED_AT),
        ("realty", "email", "b***@example.org", "all", "hard_bounce", "provider", None, "c2", "Bob", False, SUPPRESSED_AT),
    ]  # fmt: skip
    names = {
        r["column_name"]
        for r in rows(
            built.warehouse,
            "select column_name from information_schema.columns "
            "where table_schema = 'marts' and table_name = 'suppressions'",
        )
    }
    assert "address" not in names


def test_colliding_masks_keep_distinct_keys(built: Built) -> None:
    keys = rows(
        built.warehouse,
        "select suppression_key from marts.suppressions where address_masked = '+1********67' and scope = 'all'",
    )
    assert len({k["suppression_key"] for k in keys}) == 2
    import hashlib

    expected = hashlib.md5(b"clinic|sms|+13125550267|all|opt_out").hexdigest()
    assert expected in {k["suppression_key"] for k in keys}


# --- marts.consent_status -------------------------------------------------------------------


def test_the_latest_consent_event_wins_per_client_channel_address_and_scope(built: Built) -> None:
    status = {
        (c["client_id"], c["address"], c["scope"]): (
            c["status"], c["is_granted"], c["consent_level"], c["last_event_kind"], c["source"], c["evidence"],
            c["since"], c["last_event_at"], c["contact_id"], c["event_count"],
        )
        for c in rows(built.warehouse, "select * from marts.consent_status")
    }  # fmt: skip
    assert status == {
        # a confirmation keeps the opt-in's date and level
        ("clinic", "+13125550101", "all"): (
            "granted", True, "express_written", "confirm", "sms_keyword", "YES", datetime(2024, 1, 1),
            datetime(2024, 2, 1), "c1", 2,
        ),
        ("clinic", "+13125550101", "appointment_reminder"): (
            "revoked", False, None, "opt_out", "sms_keyword", "STOP", datetime(2024, 3, 1), datetime(2024, 3, 1),
            "c1", 2,
        ),
        # opted in again after an opt-out: a new run starts
        ("clinic", "+13125550102", "all"): (
            "granted", True, "prior_express", "opt_in", "sms_keyword", "START", datetime(2024, 1, 1),
            datetime(2024, 1, 1), None, 3,
        ),
        # same moment: recorded later wins
        ("realty", "x@example.com", "all"): (
            "granted", True, "express_written", "opt_in", "web", None, datetime(2024, 1, 1), datetime(2024, 1, 1),
            None, 2,
        ),
        ("realty", "y@example.com", "all"): (
            "revoked", False, None, "revoke", "manual", "support ticket 42", datetime(2024, 2, 1),
            datetime(2024, 2, 1), None, 2,
        ),
    }  # fmt: skip


# --- marts.appointment_confirmations --------------------------------------------------------


def test_the_latest_appointment_response_per_contact(built: Built) -> None:
    got = sorted(
        (a["client_id"], a["contact_id"], a["response"], a["is_confirmed"], a["responded_at"], a["inbound_id"],
         a["response_count"])
        for a in rows(built.warehouse, "select * from marts.appointment_confirmations")
    )  # fmt: skip
    assert got == [
        ("clinic", "c1", "reschedule_requested", False, datetime(2024, 3, 11, 15, 0), "in-2", 2),
        ("clinic", "c2", "confirmed", True, datetime(2024, 3, 11, 16, 0), "in-3", 1),
        ("realty", "c3", "confirmed", True, datetime(2024, 3, 11, 17, 0), "in-4", 1),
    ]


# --- analytics.compliance_daily -------------------------------------------------------------


def test_compliance_counts_fall_on_the_clients_local_day(built: Built) -> None:
    got = sorted(
        (d["client_id"], d["activity_date"], d["metric"], d["detail"], d["count"])
        for d in rows(built.warehouse, "select * from analytics.compliance_daily")
    )
    evening, day = date(2024, 3, 11), date(2024, 3, 12)
    assert got == [
        # 22:00 and 23:59 local on the 11th: one new opt-out (the second was a repeat), 2 + 1
        # messages cancelled; the PHI hold at 23:30; the plan row due at 21:00, deferred
        ("clinic", evening, "deferrals", "send window", 1),
        ("clinic", evening, "messages_cancelled_by_opt_out", "all", 3),
        ("clinic", evening, "opt_outs", "standard", 1),
        ("clinic", evening, "phi_holds", "PHI guard", 1),
        # from 00:30 local on the 12th; HELP at 23:00 local still counts on the 12th
        ("clinic", day, "exclusions", "frequency cap: 3 per 24h", 1),
        ("clinic", day, "exclusions", "no consent for marketing", 1),
        ("clinic", day, "exclusions", "suppressed: opt_out", 2),
        ("clinic", day, "help_requests", "all", 2),
        ("clinic", day, "opt_ins", "all", 1),
        ("clinic", day, "opt_outs", "carrier", 1),
        ("clinic", day, "opt_outs", "free_text", 1),
        ("clinic", day, "opt_outs", "misspelling", 1),  # the clarified probable opt-out is not counted
        ("clinic", day, "opt_outs", "spanish", 1),
        # New York: 03:30 UTC is 23:30 on the 11th
        ("realty", evening, "opt_outs", "standard", 1),
    ]


def test_compliance_daily_has_one_column_per_documented_field(built: Built) -> None:
    columns = [
        r["column_name"]
        for r in rows(
            built.warehouse,
            "select column_name from information_schema.columns "
            "where table_schema = 'analytics' and table_name = 'compliance_daily' order by ordinal_position",
        )
    ]
    assert columns == ["client_id", "activity_date", "metric", "detail", "count"]


def test_models_are_documented() -> None:
    import yaml

    for path in (DBT_PROJECT_DIR / "models/marts/_marts__compliance.yml",
                 DBT_PROJECT_DIR / "models/analytics/_analytics__compliance.yml"):  # fmt: skip
        for model in yaml.safe_load(Path(path).read_text())["models"]:
            assert model.get("description"), model["name"]
            for column in model["columns"]:
                assert column.get("description"), f"{model['name']}.{column['name']}"
