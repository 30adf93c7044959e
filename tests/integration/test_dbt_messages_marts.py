"""``marts.messages`` and ``analytics.campaign_performance_daily`` on a real warehouse, once per
engine: outbox messages, their delivery attempts, clients and message-plan rows in; one
``dbt build`` of the two models (with their data tests) out.

``marts.message_plan`` is another model's output: the test creates that table itself with the
plan's columns and inserts plan rows, so only these two models run (dbt's start-up dominates
the cost, so every assertion reads the same built warehouse).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from herald.settings import parse_warehouse_url
from herald.warehouse.connection import Warehouse
from herald.warehouse.schema import column_names, ddl_statements
from tests.conftest import ENGINES

REPO_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
MODELS = ("messages", "campaign_performance_daily")
SOURCE_TABLES = ("herald_ops.clients", "herald_ops.outbox", "herald_ops.delivery_attempts", "herald_raw.inbound_messages")

LOADED_AT = datetime(2024, 3, 1, 12, 0)
CLIENTS = [
    # client_id, name, industry, time_zone, default_region, loaded_at
    ("clinic", "Bright Smiles Dental", "healthcare", "America/Chicago", "US", LOADED_AT),
    ("realty", "Harbor Realty", "real_estate", "America/New_York", "US", LOADED_AT),
]

# 2024-03-12 03:00 UTC is 2024-03-11 22:00 in Chicago (CDT since 10 March) and 23:00 in New York
LATE_EVENING = datetime(2024, 3, 12, 3, 0)
LATE_EVENING_HALF = datetime(2024, 3, 12, 3, 30)
MORNING = datetime(2024, 3, 12, 15, 0)  # 10:00 on 12 March in Chicago


def outbox_row(message_key: str, **values: Any) -> tuple[Any, ...]:
    """An ``herald_ops.outbox`` row: a clinic reminder by SMS, queued, unless ``values`` say otherwise."""
    row: dict[str, Any] = {name: None for name in column_names("herald_ops.outbox")}
    row.update(
        message_key=message_key, client_id="clinic", campaign="reminders", step="day_before", variant="a",
        occurrence="2024-03-11T09:00-05:00", contact_id=f"contact-{message_key}", message_type="appointment_reminder",
        category="transactional", channel="sms", to_address="+13125550100", sender="+13125559999",
        body_text="See you tomorrow", send_after=LATE_EVENING, status="queued", attempts=0,
        enqueued_at=datetime(2024, 3, 11, 14, 0), updated_at=datetime(2024, 3, 12, 4, 0),
    )  # fmt: skip
    row.update(values)
    return tuple(row.values())


OUTBOX = [
    outbox_row(
        "m-sent", to_address="+13125550167", status="sent", sms_segments=2, attempts=2, provider="sandbox",
        provider_message_id="SM-1", sent_at=datetime(2024, 3, 12, 3, 5),
    ),  # fmt: skip
    outbox_row(
        "m-failed", to_address="+447911123456", send_after=LATE_EVENING_HALF, status="failed",
        status_reason="21211: invalid 'To' number", sms_segments=1, attempts=1, provider="sandbox",
    ),  # fmt: skip
    outbox_row(
        "m-held", channel="email", to_address="ana.cruz@example.com", subject="Tomorrow", send_after=MORNING,
        status="held", status_reason="template: first_name is missing",
    ),  # fmt: skip
    outbox_row(
        "m-suppressed", channel="email", to_address="bob@example.org", send_after=MORNING, status="suppressed",
        status_reason="opt_out",
    ),  # fmt: skip
    outbox_row("m-queued", send_after=MORNING, status="queued", status_reason="waiting for the window", sms_segments=1),
    outbox_row("m-cancelled", send_after=MORNING, status="cancelled", status_reason="campaign paused", sms_segments=1),
    outbox_row(
        "m-realty", client_id="realty", campaign="new_listings", step="intro", variant="b",
        to_address="+2348012345678", status="sent", sms_segments=3, attempts=1, provider="sandbox",
        provider_message_id="SM-2", sent_at=datetime(2024, 3, 12, 3, 1),
    ),  # fmt: skip
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

# marts.message_plan as the plan model writes it (columns in its documented order)
MESSAGE_PLAN_COLUMNS = [
    ("message_key", "varchar"), ("client_id", "varchar"), ("campaign", "varchar"), ("step", "varchar"),
    ("step_position", "bigint"), ("occurrence", "varchar"), ("contact_id", "varchar"), ("channel", "varchar"),
    ("variant", "varchar"), ("status", "varchar"), ("reason", "varchar"), ("scheduled_at", "timestamp"),
    ("send_after", "timestamp"), ("is_deferred", "boolean"), ("planned_at", "timestamp"),
]  # fmt: skip


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

Rows = list[tuple[Any, ...]]


def insert(warehouse: Warehouse, tables: dict[str, tuple[list[str], Rows]]) -> None:
    with warehouse.session() as s:
        for table, (columns, table_rows) in tables.items():
            s.insert_rows(table, columns, table_rows)


def rows(warehouse: Warehouse, sql: str) -> list[dict[str, Any]]:
    with warehouse.session(read_only=True) as s:
        names, values = s.query(sql)
    return [dict(zip(names, row)) for row in values]


def dbt(warehouse: Warehouse, target_path: Path, log_path: Path, *args: str) -> dict[str, Any]:
    """A dbt command in a subprocess; fails the test with dbt's output when dbt fails."""
    beside_python = Path(sys.executable).parent / "dbt"
    executable = str(beside_python) if beside_python.exists() else (shutil.which("dbt") or "dbt")
    env = {
        **os.environ,
        **warehouse.target.dbt_env(),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_LOG_PATH": str(log_path),
    }
    completed = subprocess.run(
        [executable, *args, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
         "--target-path", str(target_path)],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if completed.returncode != 0:
        pytest.fail(f"dbt {args[0]} failed ({completed.returncode}):\n{completed.stdout[-8000:]}\n{completed.stderr[-4000:]}")
    run_results = target_path / "run_results.json"
    return json.loads(run_results.read_text()) if run_results.exists() else {}


@dataclass
class Built:
    warehouse: Warehouse
    run: dict[str, Any]


@pytest.fixture(scope="module", params=ENGINES)
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    engine: str = request.param
    tmp = tmp_path_factory.mktemp(f"dbt-messages-{engine}")
    if engine == "postgres":
        create_database: Callable[[], str] = request.getfixturevalue("pg_database_factory")
        url = create_database()  # dropped by the factory at the end of the session
    else:
        url = str(tmp / "warehouse.duckdb")
    warehouse = Warehouse(parse_warehouse_url(url, tmp))
    plan_ddl = ", ".join(f"{name} {type_}" for name, type_ in MESSAGE_PLAN_COLUMNS)
    with warehouse.session() as s:
        # the schemas and the tables the two models read, by the real DDL (the others are not needed)
        for statement in ddl_statements(warehouse.engine):
            if statement.startswith("create schema") or any(f" {t} (" in statement for t in SOURCE_TABLES):
                s.execute(statement)
        s.execute(f"create table marts.message_plan ({plan_ddl})")
    insert(warehouse, {
        "herald_ops.clients": (column_names("herald_ops.clients"), CLIENTS),
        "herald_ops.outbox": (column_names("herald_ops.outbox"), OUTBOX),
        "herald_ops.delivery_attempts": (column_names("herald_ops.delivery_attempts"), DELIVERY_ATTEMPTS),
        "marts.message_plan": ([name for name, _ in MESSAGE_PLAN_COLUMNS], MESSAGE_PLAN),
    })  # fmt: skip
    target_path = DBT_PROJECT_DIR / "target" / f"{engine}-messages-test-{uuid.uuid4().hex[:10]}"
    try:
        run = dbt(warehouse, target_path, tmp / "logs", "build", "--select", *MODELS)
        yield Built(warehouse, run)
    finally:
        shutil.rmtree(target_path, ignore_errors=True)


def messages_by_key(built: Built) -> dict[str, dict[str, Any]]:
    return {m["message_key"]: m for m in rows(built.warehouse, "select * from marts.messages")}


# --- the build ------------------------------------------------------------------------------


def test_both_models_and_their_data_tests_pass(built: Built) -> None:
    statuses = {r["unique_id"]: r["status"] for r in built.run["results"]}
    assert {node: status for node, status in statuses.items() if status not in ("success", "pass")} == {}
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
