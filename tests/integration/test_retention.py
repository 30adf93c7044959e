"""The retention purge on a real warehouse, once per engine: what goes, what stays, the audit
rows, one transaction; then the Dagster asset, its job and its schedule."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from pydantic import ValidationError

from herald.compliance.retention import PURGED_BODY, purge
from herald.config import load_deployment
from herald.config.models import HeraldConfig, Retention
from herald.warehouse.connection import Warehouse
from herald.warehouse.schema import column_names
from tests.conftest import CONFIG_DIR, ENGINES

NOW = datetime(2026, 6, 1, 12, 0)
RETENTION = Retention()  # defaults: consent 5 y, opt-outs 7 y, content 3 y, delivery logs 1 y
RECORDED = datetime(2026, 1, 1)


def row(table: str, **values: Any) -> tuple[Any, ...]:
    full: dict[str, Any] = dict.fromkeys(column_names(table))
    full.update(values)
    return tuple(full.values())


def consent(
    event_id: str, address: str, kind: str, occurred_at: datetime, scope: str = "all", client_id: str = "clinic"
):
    return row(
        "herald_ops.consent_events", event_id=event_id, client_id=client_id, channel="sms", address=address,
        kind=kind, scope=scope, source="sms_keyword", occurred_at=occurred_at, recorded_at=occurred_at,
    )  # fmt: skip


CONSENT_EVENTS = [
    # opted in, out, in again: the first two were superseded long ago; the last is current
    consent("a-in-2015", "+13125550101", "opt_in", datetime(2015, 1, 1)),
    consent("a-out-2016", "+13125550101", "opt_out", datetime(2016, 1, 1)),
    consent("a-in-2018", "+13125550101", "opt_in", datetime(2018, 1, 1)),
    # an old opt-in revoked recently: still the evidence for the messages sent until 2024
    consent("b-in-2015", "+13125550102", "opt_in", datetime(2015, 1, 1)),
    consent("b-out-2024", "+13125550102", "opt_out", datetime(2024, 1, 1)),
    # the only event of an address, however old, is its current state
    consent("c-out-2010", "+13125550103", "opt_out", datetime(2010, 1, 1)),
    # one address, two scopes: each scope's latest event is current
    consent("d-in-all-2011", "+13125550104", "opt_in", datetime(2011, 1, 1)),
    consent("d-out-reminder-2012", "+13125550104", "opt_out", datetime(2012, 1, 1), scope="appointment_reminder"),
    # another client's history of the same address is its own
    consent("e-in-2012", "+13125550101", "opt_in", datetime(2012, 1, 1), client_id="realty"),
]


def suppression(address: str, reason: str, created_at: datetime):
    return row(
        "herald_ops.suppressions", client_id="clinic", channel="sms", address=address, scope="all",
        reason=reason, source="sms_keyword", created_at=created_at,
    )  # fmt: skip


SUPPRESSIONS = [
    suppression("+13125550201", "opt_out", datetime(2015, 1, 1)),  # past 7 years: goes
    suppression("+13125550202", "opt_out", datetime(2024, 1, 1)),
    suppression("+13125550203", "hard_bounce", datetime(2010, 1, 1)),
    suppression("+13125550204", "manual_block", datetime(2010, 1, 1)),
    suppression("+13125550205", "complaint", datetime(2010, 1, 1)),
]


def message(key: str, status: str, enqueued_at: datetime, sent_at: datetime | None = None, content: bool = True):
    return row(
        "herald_ops.outbox", message_key=key, client_id="clinic", campaign="reminders", step="day_before",
        variant="a", occurrence="o1", contact_id=f"contact-{key}", message_type="appointment_reminder",
        category="transactional", channel="email", to_address=f"{key}@example.com",
        subject="Your visit" if content else None, body_text="See you tomorrow" if content else None,
        body_html="<p>See you tomorrow</p>" if content else None,
        headers='{"List-Unsubscribe": "<https://x>"}' if content else None,
        send_after=enqueued_at, status=status, attempts=1, enqueued_at=enqueued_at, sent_at=sent_at,
        updated_at=enqueued_at,
    )  # fmt: skip


OLD = datetime(2020, 5, 1)
OUTBOX = [
    message("old-sent", "sent", OLD, sent_at=OLD),
    message("old-failed", "failed", OLD),
    message("old-queued", "queued", OLD),  # may still go out: keeps its content
    message("old-held", "held", OLD),
    message("recent-sent", "sent", datetime(2025, 1, 1), sent_at=datetime(2025, 1, 1)),
    message("old-cancelled-empty", "cancelled", OLD, content=False),  # nothing left to purge
    # enqueued long ago, sent recently: the content's age is from when it was sent
    message("late-sent", "sent", datetime(2022, 1, 1), sent_at=datetime(2024, 1, 1)),
]


def attempt(key: str, at: datetime):
    return row(
        "herald_ops.delivery_attempts", message_key=key, attempt_number=1, channel="email", outcome="sent",
        started_at=at, finished_at=at,
    )  # fmt: skip


DELIVERY_ATTEMPTS = [
    attempt("old-sent", datetime(2024, 1, 1)),
    attempt("old-failed", datetime(2024, 1, 1)),
    attempt("late-sent", datetime(2025, 5, 31)),
    attempt("recent-sent", datetime(2026, 5, 1)),
]


def inbound(inbound_id: str, body: str, received_at: datetime):
    return row(
        "herald_raw.inbound_messages", inbound_id=inbound_id, channel="sms", from_address="+13125550101",
        to_address="+13125559999", body=body, provider="sandbox", received_at=received_at, landed_at=received_at,
    )  # fmt: skip


INBOUND = [
    inbound("in-old", "STOP texting me, my MRN is 12345", datetime(2021, 1, 1)),
    inbound("in-old-purged", PURGED_BODY, datetime(2020, 1, 1)),
    inbound("in-recent", "C", datetime(2025, 1, 1)),
]

INBOX_ENTRIES = [  # the portal Inbox's replies and notes (herald/portal/inbox.py)
    row("herald_ops.inbox_entries", entry_id="note-old", client_id="clinic", conversation_id="conv", kind="note",
        author_user_id="u1", author_email="a@example.com", body="Prefers mornings", created_at=datetime(2021, 1, 1)),
    row("herald_ops.inbox_entries", entry_id="note-recent", client_id="clinic", conversation_id="conv", kind="note",
        author_user_id="u1", author_email="a@example.com", body="Moved to 3pm", created_at=datetime(2025, 1, 1)),
]  # fmt: skip

OLD_AUDIT = row(
    "herald_ops.audit_log", audit_id="audit-2010", occurred_at=datetime(2010, 1, 1), actor="inbound_replies",
    action="consent_change", subject="+1********01",
)  # fmt: skip

EXPECTED = {
    "herald_ops.consent_events": 2,
    "herald_ops.suppressions": 1,
    "herald_ops.outbox": 2,
    "herald_ops.delivery_attempts": 3,
    "herald_raw.inbound_messages": 1,
    "herald_ops.inbox_entries": 1,
}


def fill(warehouse: Warehouse) -> None:
    with warehouse.session() as s:
        for table, rows in (
            ("herald_ops.consent_events", CONSENT_EVENTS),
            ("herald_ops.suppressions", SUPPRESSIONS),
            ("herald_ops.outbox", OUTBOX),
            ("herald_ops.delivery_attempts", DELIVERY_ATTEMPTS),
            ("herald_raw.inbound_messages", INBOUND),
            ("herald_ops.inbox_entries", INBOX_ENTRIES),
            ("herald_ops.audit_log", [OLD_AUDIT]),
        ):
            s.insert_rows(table, column_names(table), rows)


def query(warehouse: Warehouse, sql: str) -> list[tuple[Any, ...]]:
    with warehouse.session(read_only=True) as s:
        return s.query(sql)[1]


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_purge_removes_what_is_past_retention_and_keeps_the_rest(warehouse: Warehouse) -> None:
    fill(warehouse)
    with warehouse.session() as s:
        counts = purge(s, RETENTION, NOW)
    assert counts == EXPECTED

    events = {r[0] for r in query(warehouse, "select event_id from herald_ops.consent_events")}
    assert events == {e[0] for e in CONSENT_EVENTS} - {"a-in-2015", "a-out-2016"}

    suppressed = {r[0]: r[1] for r in query(warehouse, "select address, reason from herald_ops.suppressions")}
    assert suppressed == {
        "+13125550202": "opt_out", "+13125550203": "hard_bounce", "+13125550204": "manual_block",
        "+13125550205": "complaint",
    }  # fmt: skip

    outbox = {
        r[0]: r[1:]
        for r in query(
            warehouse,
            "select message_key, status, to_address, subject, body_text, body_html, headers from herald_ops.outbox",
        )
    }
    assert set(outbox) == {m[0] for m in OUTBOX}  # every row and key stays
    assert outbox["old-sent"] == ("sent", "old-sent@example.com", None, None, None, None)
    assert outbox["old-failed"] == ("failed", "old-failed@example.com", None, None, None, None)
    for kept in ("old-queued", "old-held", "recent-sent", "late-sent"):
        assert outbox[kept][2:4] == ("Your visit", "See you tomorrow"), kept

    attempts = sorted(r[0] for r in query(warehouse, "select message_key from herald_ops.delivery_attempts"))
    assert attempts == ["recent-sent"]

    bodies = dict(query(warehouse, "select inbound_id, body from herald_raw.inbound_messages"))
    assert bodies == {"in-old": PURGED_BODY, "in-old-purged": PURGED_BODY, "in-recent": "C"}
    notes = dict(query(warehouse, "select entry_id, body from herald_ops.inbox_entries"))
    assert notes == {"note-old": PURGED_BODY, "note-recent": "Moved to 3pm"}


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_each_purged_table_is_documented_in_the_audit_log_which_is_never_purged(warehouse: Warehouse) -> None:
    fill(warehouse)
    with warehouse.session() as s:
        purge(s, RETENTION, NOW)
    audits = query(
        warehouse,
        "select audit_id, occurred_at, actor, action, subject, detail from herald_ops.audit_log "
        "where actor = 'retention' order by subject",
    )
    assert [(a[2], a[3], a[4]) for a in audits] == [("retention", "purge", table) for table in sorted(EXPECTED)]
    assert all(audit[1] == NOW for audit in audits)
    details = {a[4]: json.loads(a[5]) for a in audits}
    assert {table: d["rows"] for table, d in details.items()} == EXPECTED
    assert details["herald_ops.delivery_attempts"]["cutoff"] == "2025-06-01T12:00:00"
    assert details["herald_ops.delivery_attempts"]["delivery_log_days"] == 365
    assert details["herald_ops.consent_events"]["cutoff"] == "2021-06-01T12:00:00"
    assert query(warehouse, "select audit_id from herald_ops.audit_log where audit_id = 'audit-2010'") == [
        ("audit-2010",)
    ]


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_a_second_purge_finds_nothing_and_adds_no_audit_row(warehouse: Warehouse) -> None:
    fill(warehouse)
    with warehouse.session() as s:
        purge(s, RETENTION, NOW)
    with warehouse.session() as s:
        again = purge(s, RETENTION, datetime(2026, 6, 2, 3, 30))
    assert again == dict.fromkeys(EXPECTED, 0)
    assert query(warehouse, "select count(*) from herald_ops.audit_log where actor = 'retention'") == [(6,)]


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_a_failing_purge_changes_nothing(warehouse: Warehouse) -> None:
    fill(warehouse)
    # without an audit log the purge cannot document itself: it must then purge nothing
    with warehouse.session() as s:
        s.execute("drop table herald_ops.audit_log")
    with pytest.raises(Exception, match="audit_log"), warehouse.session() as s:
        purge(s, RETENTION, NOW)
    assert query(warehouse, "select count(*) from herald_ops.consent_events") == [(len(CONSENT_EVENTS),)]
    assert query(warehouse, "select count(*) from herald_ops.delivery_attempts") == [(len(DELIVERY_ATTEMPTS),)]
    assert query(warehouse, "select body_text from herald_ops.outbox where message_key = 'old-sent'") == [
        ("See you tomorrow",)
    ]


@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_shorter_retention_from_configuration_purges_more(warehouse: Warehouse) -> None:
    fill(warehouse)
    with warehouse.session() as s:
        counts = purge(s, Retention(delivery_log_days=1, message_content_days=30), NOW)
    assert counts["herald_ops.delivery_attempts"] == 4
    assert counts["herald_ops.outbox"] == 4  # every finished message with content
    assert counts["herald_raw.inbound_messages"] == 2


# --- configuration -----------------------------------------------------------------------


def test_retention_defaults_are_5_7_3_1_years_and_herald_yaml_keeps_them() -> None:
    assert Retention().model_dump() == {
        "consent_days": 1826, "opt_out_days": 2557, "message_content_days": 1096, "delivery_log_days": 365,
        "contact_days": 1096,
    }  # fmt: skip
    assert load_deployment(CONFIG_DIR).herald.retention == Retention()


@pytest.mark.parametrize("days", [0, -5])
def test_retention_must_be_positive(days: int) -> None:
    with pytest.raises(ValidationError, match="greater than 0"):
        HeraldConfig.model_validate({"retention": {"consent_days": days}})
    with pytest.raises(ValidationError, match="Extra inputs"):
        HeraldConfig.model_validate({"retention": {"consent_years": 5}})


# --- the asset, its job and schedule ------------------------------------------------------


def test_the_asset_purges_and_reports_counts_as_a_markdown_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from assets.compliance.retention import RETENTION_PURGE_KEY, retention_purge
    from herald.settings import Settings
    from resources import HeraldConfigResource, WarehouseResource

    monkeypatch.setenv("HERALD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HERALD_CONFIG_DIR", str(CONFIG_DIR))
    monkeypatch.setenv("HERALD_WAREHOUSE_URL", "")
    warehouse = Warehouse(Settings.from_env().warehouse)
    warehouse.ensure_schema()
    fill(warehouse)  # relative to today, everything old in the fixtures is past retention

    result = dg.materialize(
        [retention_purge], resources={"warehouse": WarehouseResource(), "herald_config": HeraldConfigResource()}
    )
    assert result.success
    [materialization] = result.asset_materializations_for_node(retention_purge.node_def.name)
    assert materialization.asset_key == RETENTION_PURGE_KEY
    table = materialization.metadata["purged"].value
    assert table.splitlines()[:2] == ["| table | rows purged |", "|---|---|"]
    assert "| herald_ops.suppressions | 1 |" in table
    purged = [int(line.split("|")[2]) for line in table.splitlines()[2:]]
    assert len(purged) == 6 and materialization.metadata["rows_purged"].value == sum(purged) > 0
    assert query(warehouse, "select count(*) from herald_ops.audit_log where actor = 'retention'") == [(6,)]
    assert retention_purge.group_names_by_key[RETENTION_PURGE_KEY] == "compliance"


def test_the_schedule_runs_the_purge_job_daily_at_0330_utc() -> None:
    from assets.compliance.retention import retention_purge
    from orchestration.jobs import retention_purge_job
    from orchestration.schedules import retention_purge_schedule
    from resources import HeraldConfigResource, WarehouseResource

    defs = dg.Definitions(
        assets=[retention_purge], jobs=[retention_purge_job], schedules=[retention_purge_schedule],
        resources={"warehouse": WarehouseResource(), "herald_config": HeraldConfigResource()},
    )  # fmt: skip
    job = defs.resolve_job_def("retention_purge_job")
    assert job.asset_layer.selected_asset_keys == {dg.AssetKey(["herald_ops", "retention_purge"])}
    assert (retention_purge_schedule.name, retention_purge_schedule.cron_schedule) == (
        "retention_purge_schedule", "30 3 * * *",
    )  # fmt: skip
    assert retention_purge_schedule.execution_timezone == "UTC"
    assert retention_purge_schedule.job_name == "retention_purge_job"
