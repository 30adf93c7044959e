"""Per-appointment reminders and the confirmation follow-up, over five days with a controlled
clock, on hand-made marts (DuckDB here; the same tests run on PostgreSQL from
test_appointment_journeys_postgres.py). Each pass is a send run, as in test_journeys.py.

The journey is the dental example's: one enrollment per upcoming appointment
(``enrollment: per_appointment``), a reminder 48 h before it, then wait up to 24 h for a
confirmation (C): none → one follow-up SMS; a C → the journey ends. The healthcare caps
(1 a day, 3 a week per patient) are on.

Patients (every appointment at 16:00 UTC, 10:00 in Chicago; the passes run daily at 16:00 UTC):
- p1: two appointments, Wed (A1) and Fri (A2); answers C on Monday evening — it matches A1,
  the next upcoming, so only A1's journey ends and A2 gets its reminder and follow-up;
- p2: Thu (B1), reminder queued for Tuesday; the cancellation arrives Monday night;
- p3: Thu (C1), cancelled before the first pass;
- p4: Wed (D1), never answers: one follow-up, and the staff digest lists D1;
- p5: Thu (E1, the clinic's id), rescheduled on Monday night to Fri.
"""

from __future__ import annotations

import hashlib
import os
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from herald.appointments.digest import unconfirmed_appointments
from herald.appointments.occurrences import appointment_occurrence, parse_appointment_occurrence
from herald.compliance.windows import legal_window_rows
from herald.warehouse.config_tables import HEALTHCARE_CAPS
from herald.warehouse.connection import Warehouse
from tests.integration.test_dbt_models import DBT_PROJECT_DIR
from tests.integration.test_journeys import run_pass
from tests.integration.test_message_plan import CLIENT, LOADED, MART_DDL, TZ, insert, insert_versioned

DAY0 = datetime(2026, 11, 16, 16, 0)  # Monday 10:00 in Chicago
PASSES = [DAY0 + timedelta(days=n) for n in range(5)]  # Monday .. Friday
CAMPAIGN = "remind"


def at(day: int) -> datetime:
    """16:00 UTC on Monday + ``day`` days."""
    return DAY0 + timedelta(days=day)


def key(name: str) -> str:
    return hashlib.md5(name.encode()).hexdigest()  # marts.appointments keys are md5 hex


# appointment, contact, the clinic's id, when, status at the start
APPOINTMENTS = [
    ("A1", "p1", None, at(2), "scheduled"),
    ("A2", "p1", None, at(4), "scheduled"),
    ("B1", "p2", None, at(3), "scheduled"),
    ("C1", "p3", None, at(3), "cancelled"),
    ("D1", "p4", None, at(2), "scheduled"),
    ("E1", "p5", "E-1", at(3), "scheduled"),
]
PATIENTS = ["p1", "p2", "p3", "p4", "p5"]
STEPS = [
    # step, position, channel, anchor field, anchor minutes, kind, next, event, timeout, yes, no, exit reason
    ("reminder", 1, "sms", "appointment_at", -48 * 60, "message", "wait_confirm", None, None, None, None, None),
    ("wait_confirm", 2, None, None, 0, "wait_for", None, "confirmed", 24 * 60, "confirmed", "follow_up", None),
    ("confirmed", 3, None, None, 0, "exit", None, None, None, None, None, "confirmed"),
    ("follow_up", 4, "sms", None, 0, "message", None, None, None, None, None, None),
]


def phone(contact: str) -> str:
    return f"+1312555010{contact[1]}"


def build(warehouse: Warehouse) -> None:
    warehouse.ensure_schema()
    json_type = "json" if warehouse.engine == "duckdb" else "jsonb"
    with warehouse.session() as s:
        for ddl in MART_DDL:
            s.execute(ddl.format(json=json_type))
        insert(s, "herald_ops.clients", [(CLIENT, "Bright Smiles", "healthcare", TZ, "US", LOADED)])
        insert(s, "herald_ops.send_windows", [(CLIENT, d, 540, 1200) for d in range(1, 8)])
        insert(s, "herald_ops.campaign_send_windows", [(CLIENT, CAMPAIGN, d, 540, 1200, None) for d in range(1, 8)])
        insert(s, "herald_ops.legal_windows", list(legal_window_rows()))
        insert(s, "herald_ops.frequency_caps", [(CLIENT, "transactional", *cap) for cap in HEALTHCARE_CAPS])
        insert(s, "herald_ops.campaigns", [
            (CLIENT, CAMPAIGN, "appointment_reminder", "transactional", "active", "patients", "schedule", None,
             None, None, None, 125, "prior_express", LOADED, "per_appointment", None, "v1", "reminder", False, True,
             False, True, None, None)
        ])  # fmt: skip
        insert_versioned(s, "herald_ops.campaign_steps", [
            (CLIENT, CAMPAIGN, step, position, channel, None, None, field, minutes, kind, next_step, None, None,
             None, event, None, timeout, yes, no, reason)
            for step, position, channel, field, minutes, kind, next_step, event, timeout, yes, no, reason in STEPS
        ], "v1")  # fmt: skip
        insert_versioned(s, "herald_ops.campaign_variants", [
            (CLIENT, CAMPAIGN, step, "only", 1, 0, 10000, f"{step}.sms.j2", None, None)
            for step in ("reminder", "follow_up")
        ], "v1")  # fmt: skip
        for contact in PATIENTS:
            s.execute(
                "insert into marts.contacts values (?, ?, ?, ?, ?, null, false, ?, true, null, null)",
                [contact, CLIENT, contact.upper(), f"Pat{contact}", f"Last{contact}", phone(contact)],
            )
            insert(s, "marts.segment_members", [(CLIENT, "patients", contact, LOADED, LOADED)])
        for name, contact, appointment_id, when, status in APPOINTMENTS:
            s.execute(
                "insert into marts.appointments values (?, ?, ?, ?, ?, 'cleaning', 'Dr. Who', ?, ?, ?)",
                [key(name), CLIENT, contact, appointment_id, when, status, LOADED, LOADED],
            )


def fire(warehouse: Warehouse, when: datetime) -> None:
    """The campaign fires every pass (a new packet each night): already enrolled appointments
    are recorded and enroll nothing twice."""
    with warehouse.session() as s:
        insert(s, "herald_ops.campaign_occurrences", [
            (CLIENT, CAMPAIGN, when.strftime("%Y-%m-%dT%H:%M"), "schedule", when, None, None, "test", when, None)
        ])  # fmt: skip


def world(warehouse: Warehouse, when: datetime) -> None:
    """After Monday's pass: p1 answers C, B1 is cancelled and E1 moved by the night's packet."""
    if when != PASSES[0]:
        return
    evening, night = DAY0 + timedelta(hours=4), DAY0 + timedelta(hours=6)
    with warehouse.session() as s:
        insert(s, "herald_ops.appointment_responses", [("in-p1", CLIENT, "p1", "confirmed", evening)])
        s.execute(
            "update marts.appointments set status = 'cancelled', last_seen_at = ? where appointment_key = ?",
            [night, key("B1")],
        )
        s.execute(
            "update marts.appointments set appointment_at = ?, status = 'rescheduled', last_seen_at = ? "
            "where appointment_key = ?",
            [at(4), night, key("E1")],
        )


def confirmations_as_of(warehouse: Warehouse, tmp: Path, when: datetime) -> None:
    """marts.appointment_confirmations evaluated at ``when`` (the digest reads it)."""
    from unittest import mock

    from dbt.cli.main import dbtRunner

    env = {**warehouse.target.dbt_env(), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_LOG_PATH": str(tmp)}
    variables = f"{{confirmations_as_of: '{when:%Y-%m-%d %H:%M:%S}'}}"
    with mock.patch.dict(os.environ, env):
        result = dbtRunner().invoke(
            [
                "run", "--quiet", "--select", "appointment_confirmations", "--vars", variables,
                "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
                "--target-path", str(tmp / "target"),
            ]
        )  # fmt: skip
        if warehouse.engine == "duckdb":
            from dbt.adapters.duckdb.connections import DuckDBConnectionManager

            with DuckDBConnectionManager._LOCK:
                if DuckDBConnectionManager._ENV is not None:
                    DuckDBConnectionManager._ENV.close()
                    DuckDBConnectionManager._ENV = None
    assert result.success, result.exception


def snapshot(warehouse: Warehouse) -> dict[str, Any]:
    with warehouse.session(read_only=True) as s:
        _, outbox = s.query(
            "select step, contact_id, occurrence, status, status_reason, send_after from herald_ops.outbox "
            "order by contact_id, send_after, step"
        )
        _, ledger = s.query(
            "select contact_id, occurrence, status, step, exit_reason from herald_ops.enrollments "
            "order by contact_id, occurrence"
        )
        _, refused = s.query(
            "select contact_id, occurrence, enrollment_reason from intermediate.int_journey__new_enrollments "
            "where enrollment_reason is not null and enrollment_reason <> 'already recorded' order by contact_id"
        )
        _, excluded = s.query("select contact_id, step, reason from marts.message_plan where status = 'excluded'")
        duplicates = s.scalar("select count(*) - count(distinct message_key) from marts.message_plan")
    return {"outbox": outbox, "ledger": ledger, "refused": refused, "excluded": excluded, "duplicates": duplicates}


def run_days(engine_env: dict[str, str], tmp: Path) -> dict[str, Any]:
    from herald.settings import Settings

    warehouse = Warehouse(Settings.from_env(engine_env).warehouse)
    build(warehouse)
    snapshots = []
    digest = []
    for when in PASSES:
        fire(warehouse, when)
        run_pass(warehouse, tmp, when)
        snapshots.append(snapshot(warehouse))
        if when == PASSES[1]:  # Tuesday 10:00 in Chicago: the digest of Wednesday's appointments
            confirmations_as_of(warehouse, tmp, when)
            with warehouse.session(read_only=True) as s:
                digest = unconfirmed_appointments(s, TZ, CLIENT, date(2026, 11, 18))
        world(warehouse, when)
    return {"days": snapshots, "digest": digest}


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("appointment_journeys")
    return run_days({"HERALD_HOME": str(tmp / "home"), "HERALD_WAREHOUSE_URL": ""}, tmp)


def occurrence_of(name: str, when: datetime | None = None) -> str:
    appointment = next(a for a in APPOINTMENTS if a[0] == name)
    return appointment_occurrence(key(name), when or appointment[3])


def test_every_appointment_gets_its_own_reminder_keyed_by_the_appointment(week) -> None:
    outbox = week["days"][-1]["outbox"]
    reminders = {(m[1], m[2]): (m[3], m[5]) for m in outbox if m[0] == "reminder"}
    assert reminders == {
        ("p1", occurrence_of("A1")): ("sent", at(0)),
        ("p1", occurrence_of("A2")): ("sent", at(2)),
        ("p2", occurrence_of("B1")): ("cancelled", at(1)),
        ("p4", occurrence_of("D1")): ("sent", at(0)),
        ("p5", occurrence_of("E1")): ("cancelled", at(1)),
        ("p5", occurrence_of("E1", at(4))): ("sent", at(2)),
    }
    # the renderer reads each reminder's own appointment back from its occurrence
    assert parse_appointment_occurrence(occurrence_of("A2")) == (key("A2"), at(4))
    # a pass a day, each firing again: nothing was planned or enqueued twice
    assert all(day["duplicates"] == 0 for day in week["days"])
    assert len({(m[0], m[2]) for m in outbox}) == len(outbox)


def test_a_cancelled_appointment_is_not_enrolled_and_a_queued_reminder_is_cancelled(week) -> None:
    first = week["days"][0]
    assert ("p3", occurrence_of("C1"), "appointment cancelled") in first["refused"]
    assert not [m for m in week["days"][-1]["outbox"] if m[1] == "p3"]
    # B1's reminder was queued for Tuesday on Monday; the cancellation came that night
    queued = [m for m in first["outbox"] if m[1] == "p2"]
    assert [(m[0], m[3]) for m in queued] == [("reminder", "queued")]
    after = [m for m in week["days"][1]["outbox"] if m[1] == "p2"]
    assert [(m[3], m[4]) for m in after] == [("cancelled", "journey exited: appointment cancelled")]
    ledger = {(r[0], r[1]): r[2:] for r in week["days"][-1]["ledger"]}
    assert ledger[("p2", occurrence_of("B1"))] == ("exited", None, "appointment cancelled")


def test_a_rescheduled_appointment_is_reminded_for_its_new_time(week) -> None:
    p5 = [m for m in week["days"][-1]["outbox"] if m[1] == "p5"]
    assert [(m[0], m[2], m[3], m[4], m[5]) for m in p5] == [
        ("reminder", occurrence_of("E1"), "cancelled", "journey exited: appointment rescheduled", at(1)),
        ("reminder", occurrence_of("E1", at(4)), "sent", None, at(2)),
        ("follow_up", occurrence_of("E1", at(4)), "sent", None, at(3)),
    ]
    ledger = {(r[0], r[1]): r[2:] for r in week["days"][-1]["ledger"]}
    assert ledger[("p5", occurrence_of("E1"))] == ("exited", None, "appointment rescheduled")
    assert ledger[("p5", occurrence_of("E1", at(4)))] == ("completed", None, None)


def test_an_unconfirmed_appointment_gets_exactly_one_follow_up_and_is_in_the_digest(week) -> None:
    p4 = [(m[0], m[3], m[5]) for m in week["days"][-1]["outbox"] if m[1] == "p4"]
    # the follow-up 24 h after the reminder: within the healthcare cap of one a day
    assert p4 == [("reminder", "sent", at(0)), ("follow_up", "sent", at(1))]
    ledger = {(r[0], r[1]): r[2:] for r in week["days"][-1]["ledger"]}
    assert ledger[("p4", occurrence_of("D1"))] == ("completed", None, None)
    # Tuesday's staff digest of Wednesday: D1, not p1's confirmed A1
    assert [(a.appointment_key, a.patient, a.confirmation_state) for a in week["digest"]] == [
        (key("D1"), "Patp4 L.", "high_risk")
    ]
    # no message of the journey was left out by a cap or anything else
    assert all(day["excluded"] == [] for day in week["days"])


def test_a_confirmation_ends_only_the_journey_of_the_appointment_it_matched(week) -> None:
    p1 = [(m[0], m[2], m[3], m[5]) for m in week["days"][-1]["outbox"] if m[1] == "p1"]
    # the C on Monday evening confirmed A1 (the next upcoming): no follow-up for A1; A2, two
    # days later, still gets its reminder and, unanswered, its follow-up
    assert p1 == [
        ("reminder", occurrence_of("A1"), "sent", at(0)),
        ("reminder", occurrence_of("A2"), "sent", at(2)),
        ("follow_up", occurrence_of("A2"), "sent", at(3)),
    ]
    ledger = {(r[0], r[1]): r[2:] for r in week["days"][-1]["ledger"]}
    assert ledger[("p1", occurrence_of("A1"))] == ("exited", None, "confirmed")
    assert ledger[("p1", occurrence_of("A2"))] == ("completed", None, None)
