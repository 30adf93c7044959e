"""marts.message_plan on both engines, from hand-made marts and campaign configuration.

The upstream marts (contacts, attributes, sources, funnel events) are created by hand with
the columns the plan reads, so every expected row below is written out: who is planned, on
which channel, when (deferred into the send window, DST-correct), and who is left out and why.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from herald.campaigns.journeys import PLAN_MODELS, record_plan_run
from herald.campaigns.preview import variant_bucket
from herald.compliance.windows import legal_window_rows
from herald.warehouse.connection import Warehouse
from herald.warehouse.schema import column_names
from tests.integration.test_dbt_models import DBT_PROJECT_DIR

LOADED = datetime(2026, 11, 1)
CLIENT = "acme"
TZ = "America/Chicago"

MART_DDL = [
    """create table marts.contacts (
        contact_id varchar, client_id varchar, external_id varchar, first_name varchar, last_name varchar,
        email varchar, is_email_valid boolean, phone_e164 varchar, is_phone_valid boolean,
        postal_code varchar, time_zone varchar)""",
    """create table marts.contact_attributes (
        contact_id varchar, client_id varchar, attribute_name varchar, attribute_type varchar,
        string_value varchar, numeric_value numeric(38, 6), boolean_value boolean, date_value date,
        timestamp_value timestamp, array_value {json}, raw_value varchar, is_parsed boolean)""",
    "create table marts.contact_sources (packet_id varchar, line_number bigint, contact_id varchar)",
    """create table marts.funnel_events (
        event_id varchar, client_id varchar, contact_id varchar, funnel_type varchar,
        to_stage varchar, occurred_at timestamp, loaded_at timestamp)""",
    """create table marts.appointments (
        appointment_key varchar, client_id varchar, contact_id varchar, appointment_id varchar,
        appointment_at timestamp, appointment_type varchar, provider_name varchar, status varchar,
        first_seen_at timestamp, last_seen_at timestamp)""",
]

# contact, phone (valid), email (valid), appointment_at (naive UTC) or None
CONTACTS = [
    ("c1", "+13125550101", "c1@example.com", datetime(2026, 11, 21, 9, 0)),
    ("c2", None, "c2@example.com", None),
    ("c3", None, None, None),
    ("c4", "+13125550101", None, None),  # c1's phone
    ("c5", "+13125550105", None, None),  # opted out
    ("c6", "+13125550106", None, datetime(2026, 11, 20, 2, 0)),  # appointment already over
    ("c7", "+13125550107", None, None),  # never agreed to marketing texts
]
# c1 agreed to marketing texts by keyword; c6's packet says so (an sms_consent column)
CONSENT = [
    ("ev1", CLIENT, "c1", "sms", "+13125550101", "opt_in", "all", "express_written", "web", "form", LOADED, LOADED)
]

CAMPAIGNS = [
    # name, status, trigger, daily limit
    ("announce", "active", "schedule", 2),
    ("remind", "active", "schedule", None),
    ("quiet", "paused", "schedule", None),
]
STEPS = [
    # campaign, step, position, channel, fallback, fallback_if_missing, anchor_field, anchor_minutes
    ("announce", "first", 1, "sms", "email", "phone", None, 0),
    ("remind", "reminder", 1, "sms", None, None, "appointment_at", -24 * 60),
    ("quiet", "only", 1, "sms", None, None, None, 0),
]
VARIANTS = [
    # campaign, step, variant, weight, from, to, sms template, email template, subject
    ("announce", "first", "a", 1, 0, 5000, "a.sms.j2", "a.mjml.j2", "Hello {{ first_name }}"),
    ("announce", "first", "b", 1, 5000, 10000, "b.sms.j2", "b.mjml.j2", "Hi {{ first_name }}"),
    ("remind", "reminder", "only", 1, 0, 10000, "r.sms.j2", None, None),
    ("quiet", "only", "only", 1, 0, 10000, "q.sms.j2", None, None),
]
# Friday 2026-11-20 03:00 UTC is Thursday 21:00 in Chicago: after the window closes
FIRED = datetime(2026, 11, 20, 3, 0)
CLOCK = datetime(2026, 3, 1)


def dbt_run(
    warehouse: Warehouse, tmp: Path, select: tuple[str, ...] = ("contact_template_variables", *PLAN_MODELS)
) -> None:
    """`dbt run` of the plan, in this process (dbt's start-up is most of a small run's time)."""
    from unittest import mock

    from dbt.cli.main import dbtRunner

    env = {**warehouse.target.dbt_env(), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_LOG_PATH": str(tmp)}
    with mock.patch.dict(os.environ, env):
        result = dbtRunner().invoke(
            [
                "run", "--quiet", "--select", *select,
                "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
                "--target-path", str(tmp / "target"),
            ]
        )  # fmt: skip
        # let go of the warehouse: dbt-duckdb keeps its connection to the file in a class-level
        # environment otherwise, and this process opens the file itself next
        if warehouse.engine == "duckdb":
            from dbt.adapters.duckdb.connections import DuckDBConnectionManager

            with DuckDBConnectionManager._LOCK:
                if DuckDBConnectionManager._ENV is not None:
                    DuckDBConnectionManager._ENV.close()
                    DuckDBConnectionManager._ENV = None
    if not result.success:
        failures = [str(r.message) for r in (result.result or []) if getattr(r, "status", None) == "error"]
        pytest.fail(f"dbt run failed: {result.exception or failures}")


def insert(session: Any, table: str, rows: list[tuple]) -> None:
    """Rows into the table's first columns (the journey columns after them are left null)."""
    session.insert_rows(table, column_names(table)[: len(rows[0])], rows)


def insert_versioned(session: Any, table: str, rows: list[tuple], version: str = "") -> None:
    """A campaign's step, branch or variant rows of one version (the campaign's config_version;
    '' when the campaign has none) into the table's first columns."""
    columns = [*column_names(table)[: len(rows[0])], "config_version"]
    session.insert_rows(table, columns, [(*row, version) for row in rows])


def occurrence(name: str, campaign: str, fired_at: datetime) -> tuple:
    return (CLIENT, campaign, name, "schedule", fired_at, None, None, "test", fired_at, None)


# The same tests run on PostgreSQL from test_message_plan_postgres.py (a module of its own, so
# the two engines' dbt runs go in parallel on several workers).
@pytest.fixture
def planned(herald_env, tmp_path: Path) -> tuple[Warehouse, Path]:
    return build_plan("duckdb", herald_env, tmp_path)


def build_plan(engine: str, herald_env, tmp_path: Path, *, run: bool = True) -> tuple[Warehouse, Path]:
    """The hand-made marts and configuration, planned by one dbt run (``run=False``: not yet, for a
    test that adds its own rows first and plans everything in one run)."""
    from herald.settings import Settings

    env = herald_env(engine)
    warehouse = Warehouse(Settings.from_env(env).warehouse)
    warehouse.ensure_schema()
    json_type = "json" if warehouse.engine == "duckdb" else "jsonb"
    with warehouse.session() as s:
        for ddl in MART_DDL:
            s.execute(ddl.format(json=json_type))
        insert(s, "herald_ops.clients", [(CLIENT, "Acme Dental", "healthcare", TZ, "US", LOADED)])
        insert(s, "herald_ops.send_windows", [(CLIENT, d, 720 if d == 7 else 540, 1200) for d in range(1, 8)])
        insert(s, "herald_ops.campaign_send_windows", [
            (CLIENT, name, d, 720 if d == 7 else 540, 1200, None) for name, *_ in CAMPAIGNS for d in range(1, 8)
        ])  # fmt: skip
        insert(s, "herald_ops.campaigns", [
            (CLIENT, name, "announcement" if name != "remind" else "appointment_reminder",
             "marketing" if name != "remind" else "transactional", status, "everyone", trigger, None, None, None,
             None, limit, "express_written" if name != "remind" else "prior_express", LOADED)
            for name, status, trigger, limit in CAMPAIGNS
        ])  # fmt: skip
        insert_versioned(s, "herald_ops.campaign_steps", [(CLIENT, *step) for step in STEPS])
        insert_versioned(s, "herald_ops.campaign_variants", [(CLIENT, *variant) for variant in VARIANTS])
        insert(s, "herald_ops.legal_windows", list(legal_window_rows()))
        insert(s, "herald_ops.frequency_caps", [
            (CLIENT, "marketing", 24, 3, "3 marketing messages per 24 h"),
            (CLIENT, "transactional", 24, 1, "1 healthcare reminder per day"),
            (CLIENT, "transactional", 168, 3, "3 healthcare reminders per week"),
        ])  # fmt: skip
        insert(s, "herald_ops.consent_events", CONSENT)
        s.execute(
            "insert into marts.contact_attributes values "
            "('c6', ?, 'sms_consent', 'boolean', null, null, true, null, null, null, 'Y', true)",
            [CLIENT],
        )
        insert(s, "herald_ops.suppressions", [
            ("*", "sms", "+13125550105", "all", "opt_out", "sms_keyword", None, None, LOADED),
            # an opt-out scoped to another message type leaves announcements alone
            ("*", "sms", "+13125550101", "lab", "opt_out", "sms_keyword", None, None, LOADED),
        ])  # fmt: skip
        for contact_id, phone, email, appointment_at in CONTACTS:
            s.execute(
                "insert into marts.contacts values (?, ?, ?, ?, null, ?, ?, ?, ?, null, null)",
                [
                    contact_id,
                    CLIENT,
                    contact_id.upper(),
                    f"Name{contact_id}",
                    email,
                    email is not None,
                    phone,
                    phone is not None,
                ],
            )
            insert(s, "marts.segment_members", [(CLIENT, "everyone", contact_id, LOADED, LOADED)])
            if appointment_at is not None:
                s.execute(
                    "insert into marts.contact_attributes values "
                    "(?, ?, 'appointment_at', 'timestamp', null, null, null, null, ?, null, 'x', true)",
                    [contact_id, CLIENT, appointment_at],
                )
        insert(s, "herald_ops.campaign_occurrences", [occurrence(f"o-{c}", c, FIRED) for c, *_ in CAMPAIGNS])
        # the pass's clock: before every occurrence here, so each is planned from its own time
        record_plan_run(s, "test", CLOCK, CLOCK)
    if run:
        dbt_run(warehouse, tmp_path)
    return warehouse, tmp_path


def plan_rows(warehouse: Warehouse, where: str = "") -> dict[tuple[str, str, str], dict[str, Any]]:
    with warehouse.session(read_only=True) as s:
        names, rows = s.query(f"select * from marts.message_plan {where}")
    found = [dict(zip(names, row, strict=False)) for row in rows]
    return {(r["campaign"], r["occurrence"], r["contact_id"]): r for r in found}


def test_each_contact_is_planned_or_left_out_with_its_reason(planned) -> None:
    warehouse, _ = planned
    rows = plan_rows(warehouse, "where occurrence like 'o-%'")
    outcome = {
        key: (r["status"], r["reason"], r["channel"] if r["status"] == "planned" else None) for key, r in rows.items()
    }
    assert outcome == {
        ("announce", "o-announce", "c1"): ("planned", None, "sms"),
        ("announce", "o-announce", "c2"): ("planned", None, "email"),  # no phone → the rule's email
        ("announce", "o-announce", "c3"): ("excluded", "no valid phone or email", None),
        ("announce", "o-announce", "c4"): ("excluded", "duplicate address", None),
        ("announce", "o-announce", "c5"): ("excluded", "suppressed: opt_out", None),
        # c6 would be the third of a daily limit of 2: not planned, carried over (below)
        ("announce", "o-announce", "c7"): (
            "excluded",
            "no consent: express written consent needed for marketing texts",
            None,
        ),
        ("remind", "o-remind", "c1"): ("planned", None, "sms"),
        ("remind", "o-remind", "c2"): ("excluded", "no valid phone for sms", None),
        ("remind", "o-remind", "c3"): ("excluded", "no valid phone for sms", None),
        ("remind", "o-remind", "c4"): ("excluded", "no appointment_at", None),
        ("remind", "o-remind", "c5"): ("excluded", "no appointment_at", None),
        ("remind", "o-remind", "c6"): ("excluded", "appointment_at has passed", None),
        ("remind", "o-remind", "c7"): ("excluded", "no appointment_at", None),
        **{("quiet", "o-quiet", c): ("excluded", "campaign paused", None) for c, *_ in CONTACTS},
    }
    with warehouse.session(read_only=True) as s:
        _, carried = s.query(
            "select contact_id, step, outcome, status, reason from marts.journey_transitions "
            "where campaign = 'announce' and is_final and outcome = 'carried_over'"
        )
    assert carried == [("c6", "first", "carried_over", "waiting", "over the daily limit: carried over to the next day")]


def test_messages_outside_the_window_are_deferred_to_the_next_allowed_moment(planned) -> None:
    warehouse, _ = planned
    rows = plan_rows(warehouse, "where status = 'planned'")
    # fired Thursday 21:00 Chicago → Friday 09:00 CST = 15:00 UTC
    announce = rows[("announce", "o-announce", "c1")]
    assert (announce["scheduled_at"], announce["send_after"], announce["is_deferred"]) == (
        FIRED,
        datetime(2026, 11, 20, 15, 0),
        True,
    )
    # the reminder is due 24 h before 2026-11-21 09:00 UTC, i.e. Friday 03:00 Chicago → 09:00 local
    remind = rows[("remind", "o-remind", "c1")]
    assert remind["scheduled_at"] == datetime(2026, 11, 20, 9, 0)
    assert remind["send_after"] == datetime(2026, 11, 20, 15, 0)
    assert remind["to_address"] == "+13125550101" and remind["template"] == "r.sms.j2"


def test_windows_follow_sundays_and_daylight_saving_time(planned) -> None:
    warehouse, tmp = planned
    with warehouse.session() as s:
        s.execute("update herald_ops.campaign_occurrences set planned_at = ?", [FIRED])
        s.execute("update herald_ops.campaigns set daily_limit = null")
        insert(s, "herald_ops.campaign_occurrences", [
            # Sunday 01:30 CST, the night clocks spring forward → the Sunday window opens at
            # 12:00 CDT = 17:00 UTC (18:00 UTC had the offset not changed)
            occurrence("dst", "announce", datetime(2026, 3, 8, 7, 30)),
            # Sunday 10:00 CST → the Sunday window opens at 12:00 = 18:00 UTC
            occurrence("sunday", "announce", datetime(2026, 11, 22, 16, 0)),
            # Monday 10:00 CST is inside the window: sent as scheduled
            occurrence("monday", "announce", datetime(2026, 11, 23, 16, 0)),
        ])  # fmt: skip
    dbt_run(warehouse, tmp)
    rows = plan_rows(warehouse, "where contact_id = 'c1'")
    assert rows[("announce", "dst", "c1")]["send_after"] == datetime(2026, 3, 8, 17, 0)
    assert rows[("announce", "sunday", "c1")]["send_after"] == datetime(2026, 11, 22, 18, 0)
    monday = rows[("announce", "monday", "c1")]
    assert (monday["send_after"], monday["is_deferred"]) == (datetime(2026, 11, 23, 16, 0), False)


def test_variants_are_deterministic_and_variables_are_in_the_plan(planned) -> None:
    warehouse, _ = planned
    rows = plan_rows(warehouse, "where campaign = 'announce' and status = 'planned'")
    for (_, _, contact_id), row in rows.items():
        expected = "a" if variant_bucket(contact_id, "announce", "first") < 5000 else "b"
        assert row["variant"] == expected
        variables = row["variables"] if isinstance(row["variables"], dict) else json.loads(row["variables"])
        assert variables["first_name"] == f"Name{contact_id}"
        assert variables["client_name"] == "Acme Dental"
    assert rows[("announce", "o-announce", "c2")]["subject_template"] in (
        "Hello {{ first_name }}",
        "Hi {{ first_name }}",
    )


def test_a_planned_occurrence_is_never_planned_again(planned) -> None:
    warehouse, tmp = planned
    before = plan_rows(warehouse)
    dbt_run(warehouse, tmp)  # planned_at still unset: the plan itself knows the occurrence
    assert plan_rows(warehouse).keys() == before.keys()
    with warehouse.session(read_only=True) as s:
        assert s.scalar("select count(*) - count(distinct message_key) from marts.message_plan") == 0


def add_contacts(warehouse: Warehouse, contacts: list[tuple], regions: list[tuple]) -> None:
    """(contact_id, phone, postal_code, time_zone) contacts in the 'everyone' segment, with their
    looked-up regions (kind, value, zones, state)."""
    with warehouse.session() as s:
        for contact_id, phone, postal, zone in contacts:
            s.execute(
                "insert into marts.contacts values (?, ?, ?, ?, null, null, false, ?, true, ?, ?)",
                [contact_id, CLIENT, contact_id.upper(), f"Name{contact_id}", phone, postal, zone],
            )
            insert(s, "marts.segment_members", [(CLIENT, "everyone", contact_id, LOADED, LOADED)])
        insert(s, "herald_raw.address_regions", [(*r, LOADED) for r in regions])
        s.execute("update herald_ops.campaign_occurrences set planned_at = ?", [LOADED])


def send_after(warehouse: Warehouse, occurrence_name: str) -> dict[str, datetime | str]:
    rows = plan_rows(warehouse, f"where occurrence = '{occurrence_name}'")
    return {contact: r["send_after"] or r["reason"] for (_, _, contact), r in rows.items() if contact.startswith("m")}


MIXED = [
    # contact, phone, postal code, own time zone
    ("m-fl", "+13055550100", None, None),  # Miami area code: Florida, Eastern
    ("m-tx", "+13125550120", "75001", None),  # a Chicago number, but a Texas ZIP: Texas, Central
    ("m-id", "+12085550100", None, None),  # Idaho area code: Mountain (Boise) and Pacific
    ("m-own", "+13055550130", "33101", "America/Los_Angeles"),  # their own zone wins over ZIP and phone
]
MIXED_REGIONS = [
    ("phone", "+13055550100", "America/New_York", "FL"),
    ("phone", "+13125550120", "America/Chicago", "IL"),
    ("postal", "75001", "America/Chicago", "TX"),
    ("phone", "+12085550100", "America/Boise,America/Los_Angeles", "ID"),
    ("phone", "+13055550130", "America/New_York", "FL"),
    ("postal", "33101", "America/New_York", "FL"),
]


def test_each_recipient_waits_for_their_own_window_and_state_law(planned) -> None:
    warehouse, tmp = planned
    add_contacts(warehouse, MIXED, MIXED_REGIONS)
    with warehouse.session() as s:
        s.execute("update herald_ops.campaigns set daily_limit = null")
        s.execute("delete from herald_ops.frequency_caps")  # many sends to the same people here
        insert(s, "herald_ops.consent_events", [
            (f"ev-{c}", CLIENT, c, "sms", phone, "opt_in", "all", "express_written", "web", "form", LOADED, LOADED)
            for c, phone, _, _ in MIXED
        ])  # fmt: skip
        insert(s, "herald_ops.campaign_occurrences", [
            # Thursday 20:15 in Miami (01:15 UTC Friday), 19:15 in Texas, 18:15 Boise / 17:15 Los Angeles
            occurrence("thu-evening", "announce", datetime(2026, 11, 20, 1, 15)),
            # Sunday 10:00 in Texas
            occurrence("sunday-morning", "announce", datetime(2026, 11, 22, 16, 0)),
            # Friday 09:30 in Boise, 08:30 in Los Angeles
            occurrence("fri-early", "announce", datetime(2026, 11, 20, 16, 30)),
        ])  # fmt: skip
    dbt_run(warehouse, tmp)
    # the client's safe default (9:00-20:00, Sundays from 12:00) inside every state's law
    assert send_after(warehouse, "thu-evening") == {
        "m-fl": datetime(2026, 11, 20, 14, 0),  # Friday 09:00 Eastern
        "m-tx": datetime(2026, 11, 20, 1, 15),  # 19:15 in Texas: still open
        "m-id": datetime(2026, 11, 20, 1, 15),  # 18:15 / 17:15: open in both zones
        "m-own": datetime(2026, 11, 20, 1, 15),  # 17:15 where they live
    }
    sunday = send_after(warehouse, "sunday-morning")
    assert sunday["m-tx"] == datetime(2026, 11, 22, 18, 0)  # Sunday noon in Texas
    fri = send_after(warehouse, "fri-early")
    # open in Boise at 09:30, not yet in Los Angeles (08:30): waits for 09:00 Pacific
    assert fri["m-id"] == datetime(2026, 11, 20, 17, 0)

    # the same recipients under the law's minimum (the client's policy allows the whole day)
    with warehouse.session() as s:
        s.execute("update herald_ops.send_windows set start_minute = 0, end_minute = 1440")
        s.execute("update herald_ops.campaign_send_windows set start_minute = 0, end_minute = 1440")
        s.execute("update herald_ops.campaign_occurrences set planned_at = ?", [LOADED])
        insert(s, "herald_ops.campaign_occurrences", [
            occurrence("thu-evening-legal", "announce", datetime(2026, 11, 20, 1, 15)),
            occurrence("sunday-legal", "announce", datetime(2026, 11, 22, 14, 0)),
            occurrence("fri-early-legal", "announce", datetime(2026, 11, 20, 16, 30)),
        ])  # fmt: skip
    dbt_run(warehouse, tmp)
    legal = send_after(warehouse, "thu-evening-legal")
    assert legal["m-fl"] == datetime(2026, 11, 20, 13, 0)  # Florida: 8:00-20:00 → Friday 08:00
    assert legal["m-tx"] == datetime(2026, 11, 20, 1, 15)  # Texas allows until 21:00
    # Sunday 08:00 in Texas: the law says noon; a Florida number on Sunday 09:00 may go now
    sunday_legal = send_after(warehouse, "sunday-legal")
    assert sunday_legal["m-tx"] == datetime(2026, 11, 22, 18, 0)
    assert sunday_legal["m-fl"] == datetime(2026, 11, 22, 14, 0)
    # federal 8:00-21:00 holds in both Idaho zones at 08:30 Pacific
    assert send_after(warehouse, "fri-early-legal")["m-id"] == datetime(2026, 11, 20, 16, 30)


def test_frequency_caps_count_messages_across_campaigns(planned) -> None:
    warehouse, tmp = planned
    with warehouse.session() as s:
        s.execute("update herald_ops.campaign_occurrences set planned_at = ?", [LOADED])
        s.execute("update herald_ops.campaigns set daily_limit = null")
        # three marketing sends on Monday morning (Chicago), then a fourth in the afternoon
        insert(s, "herald_ops.campaign_occurrences", [
            occurrence(f"mon-{hour}", "announce", datetime(2026, 11, 23, hour, 0)) for hour in (15, 16, 17)
        ])  # fmt: skip
    dbt_run(warehouse, tmp)
    with warehouse.session() as s:
        s.execute("update herald_ops.campaign_occurrences set planned_at = ?", [LOADED])
        insert(s, "herald_ops.campaign_occurrences", [
            occurrence("mon-late", "announce", datetime(2026, 11, 23, 21, 0)),
            # Tuesday afternoon: more than 24 h after the first three
            occurrence("tue", "announce", datetime(2026, 11, 24, 18, 0)),
            # two more reminders for c1, both released at 09:00 Chicago on Saturday: the first is 24 h
            # after Friday's (not within it), the second within 24 h of the first
            occurrence("r1", "remind", datetime(2026, 11, 21, 3, 0)),
            occurrence("r2", "remind", datetime(2026, 11, 21, 4, 0)),
        ])  # fmt: skip
    dbt_run(warehouse, tmp)
    rows = plan_rows(warehouse)
    for hour in (15, 16, 17):
        assert rows[("announce", f"mon-{hour}", "c2")]["status"] == "planned"
    capped = "frequency cap: at most 3 marketing messages per 24 h"
    assert rows[("announce", "mon-late", "c2")]["reason"] == capped
    assert rows[("announce", "mon-late", "c1")]["reason"] == capped
    assert rows[("announce", "tue", "c2")]["status"] == "planned"
    reminders = [rows[("remind", "r1", "c1")], rows[("remind", "r2", "c1")]]
    assert [r["reason"] for r in reminders] == [None, "frequency cap: at most 1 healthcare reminder per day"]


def test_a_message_due_before_the_pass_waits_for_the_next_allowed_moment_after_its_clock(planned) -> None:
    """A message whose time came while no pass ran (a day carried over, a click seen late, a
    scheduler down overnight) is not given an allowed moment already past — that would send it
    at once, at night — but the next one after the pass's clock."""
    warehouse, tmp = planned
    with warehouse.session() as s:
        s.execute("update herald_ops.campaign_occurrences set planned_at = ?", [FIRED])
        s.execute("update herald_ops.campaigns set daily_limit = null")
        # fired Friday 10:00 CST, inside the window; the pass runs Friday 22:00 CST, after it closed
        insert(s, "herald_ops.campaign_occurrences", [occurrence("late", "announce", datetime(2026, 11, 20, 16, 0))])
        record_plan_run(s, "late-pass", datetime(2026, 11, 21, 4, 0), datetime(2026, 11, 21, 4, 0))
    dbt_run(warehouse, tmp)
    late = plan_rows(warehouse, "where contact_id = 'c1'")[("announce", "late", "c1")]
    # Saturday 09:00 CST: the window's next opening, not Friday 10:00 (already past)
    assert (late["status"], late["send_after"], late["is_deferred"]) == ("planned", datetime(2026, 11, 21, 15, 0), True)
