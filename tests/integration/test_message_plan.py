"""marts.message_plan on both engines, from hand-made marts and campaign configuration.

The upstream marts (contacts, attributes, sources, funnel events) are created by hand with
the columns the plan reads, so every expected row below is written out: who is planned, on
which channel, when (deferred into the send window, DST-correct), and who is left out and why.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from herald.campaigns.preview import variant_bucket
from herald.warehouse.connection import Warehouse
from herald.warehouse.schema import column_names
from tests.conftest import REPO_ROOT
from tests.integration.test_dbt_models import DBT_PROJECT_DIR, dbt_executable

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
]

# contact, phone (valid), email (valid), appointment_at (naive UTC) or None
CONTACTS = [
    ("c1", "+13125550101", "c1@example.com", datetime(2026, 11, 21, 9, 0)),
    ("c2", None, "c2@example.com", None),
    ("c3", None, None, None),
    ("c4", "+13125550101", None, None),  # c1's phone
    ("c5", "+13125550105", None, None),  # opted out
    ("c6", "+13125550106", None, datetime(2026, 11, 20, 2, 0)),  # appointment already over
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


def dbt_run(warehouse: Warehouse, tmp: Path) -> None:
    env = {**os.environ, **warehouse.target.dbt_env(), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_LOG_PATH": str(tmp)}
    completed = subprocess.run(
        [
            dbt_executable(), "run", "--select", "contact_template_variables", "message_plan",
            "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
            "--target-path", str(tmp / "target"),
        ],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if completed.returncode != 0:
        pytest.fail(f"dbt run failed:\n{completed.stdout[-6000:]}\n{completed.stderr[-2000:]}")


def insert(session: Any, table: str, rows: list[tuple]) -> None:
    session.insert_rows(table, column_names(table), rows)


def occurrence(name: str, campaign: str, fired_at: datetime) -> tuple:
    return (CLIENT, campaign, name, "schedule", fired_at, None, None, "test", fired_at, None)


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def planned(request: pytest.FixtureRequest, herald_env, tmp_path: Path) -> tuple[Warehouse, Path]:
    from herald.settings import Settings

    env = herald_env(request.param)
    warehouse = Warehouse(Settings.from_env(env).warehouse)
    warehouse.ensure_schema()
    json_type = "json" if warehouse.engine == "duckdb" else "jsonb"
    with warehouse.session() as s:
        for ddl in MART_DDL:
            s.execute(ddl.format(json=json_type))
        insert(s, "herald_ops.clients", [(CLIENT, "Acme Dental", "healthcare", TZ, "US", LOADED)])
        insert(s, "herald_ops.send_windows", [(CLIENT, d, 720 if d == 7 else 540, 1200) for d in range(1, 8)])
        insert(s, "herald_ops.campaigns", [
            (CLIENT, name, "announcement", "marketing", status, "everyone", trigger, None, None, None, None, limit, LOADED)
            for name, status, trigger, limit in CAMPAIGNS
        ])  # fmt: skip
        insert(s, "herald_ops.campaign_steps", [(CLIENT, *step) for step in STEPS])
        insert(s, "herald_ops.campaign_variants", [(CLIENT, *variant) for variant in VARIANTS])
        insert(s, "herald_ops.suppressions", [
            ("*", "sms", "+13125550105", "all", "opt_out", "sms_keyword", None, None, LOADED),
            # an opt-out scoped to another message type leaves announcements alone
            ("*", "sms", "+13125550101", "appointment_reminder", "opt_out", "sms_keyword", None, None, LOADED),
        ])  # fmt: skip
        for contact_id, phone, email, appointment_at in CONTACTS:
            s.execute(
                "insert into marts.contacts values (?, ?, ?, ?, null, ?, ?, ?, ?, null, null)",
                [contact_id, CLIENT, contact_id.upper(), f"Name{contact_id}", email, email is not None, phone, phone is not None],
            )
            insert(s, "marts.segment_members", [(CLIENT, "everyone", contact_id, LOADED, LOADED)])
            if appointment_at is not None:
                s.execute(
                    "insert into marts.contact_attributes values "
                    "(?, ?, 'appointment_at', 'timestamp', null, null, null, null, ?, null, 'x', true)",
                    [contact_id, CLIENT, appointment_at],
                )
        insert(s, "herald_ops.campaign_occurrences", [occurrence(f"o-{c}", c, FIRED) for c, *_ in CAMPAIGNS])
    dbt_run(warehouse, tmp_path)
    return warehouse, tmp_path


def plan_rows(warehouse: Warehouse, where: str = "") -> dict[tuple[str, str, str], dict[str, Any]]:
    with warehouse.session(read_only=True) as s:
        names, rows = s.query(f"select * from marts.message_plan {where}")
    found = [dict(zip(names, row)) for row in rows]
    return {(r["campaign"], r["occurrence"], r["contact_id"]): r for r in found}


def test_each_contact_is_planned_or_left_out_with_its_reason(planned) -> None:
    warehouse, _ = planned
    rows = plan_rows(warehouse, "where occurrence like 'o-%'")
    outcome = {key: (r["status"], r["reason"], r["channel"] if r["status"] == "planned" else None) for key, r in rows.items()}
    assert outcome == {
        ("announce", "o-announce", "c1"): ("planned", None, "sms"),
        ("announce", "o-announce", "c2"): ("planned", None, "email"),  # no phone → the rule's email
        ("announce", "o-announce", "c3"): ("excluded", "no valid phone or email", None),
        ("announce", "o-announce", "c4"): ("excluded", "duplicate address", None),
        ("announce", "o-announce", "c5"): ("excluded", "suppressed: opt_out", None),
        ("announce", "o-announce", "c6"): ("excluded", "over the daily limit of 2", None),
        ("remind", "o-remind", "c1"): ("planned", None, "sms"),
        ("remind", "o-remind", "c2"): ("excluded", "no valid phone for sms", None),
        ("remind", "o-remind", "c3"): ("excluded", "no valid phone for sms", None),
        ("remind", "o-remind", "c4"): ("excluded", "no appointment_at", None),
        ("remind", "o-remind", "c5"): ("excluded", "no appointment_at", None),
        ("remind", "o-remind", "c6"): ("excluded", "appointment_at has passed", None),
        **{("quiet", "o-quiet", c): ("excluded", "campaign paused", None) for c, *_ in CONTACTS},
    }


def test_messages_outside_the_window_are_deferred_to_the_next_allowed_moment(planned) -> None:
    warehouse, _ = planned
    rows = plan_rows(warehouse, "where status = 'planned'")
    # fired Thursday 21:00 Chicago → Friday 09:00 CST = 15:00 UTC
    announce = rows[("announce", "o-announce", "c1")]
    assert (announce["scheduled_at"], announce["send_after"], announce["is_deferred"]) == (FIRED, datetime(2026, 11, 20, 15, 0), True)
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
    assert rows[("announce", "o-announce", "c2")]["subject_template"] in ("Hello {{ first_name }}", "Hi {{ first_name }}")


def test_a_planned_occurrence_is_never_planned_again(planned) -> None:
    warehouse, tmp = planned
    before = plan_rows(warehouse)
    dbt_run(warehouse, tmp)  # planned_at still unset: the plan itself knows the occurrence
    assert plan_rows(warehouse).keys() == before.keys()
    with warehouse.session(read_only=True) as s:
        assert s.scalar("select count(*) - count(distinct message_key) from marts.message_plan") == 0
