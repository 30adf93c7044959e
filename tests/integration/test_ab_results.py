"""A/B results on a real warehouse (DuckDB and PostgreSQL): the marts compute_ab_results reads
are created with plain DDL and a handful of rows, so each test says what every arm counts."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from herald.analytics.ab_tests import compute_ab_results, two_proportion_test
from herald.config import Deployment
from herald.config.campaigns import AbTest
from herald.warehouse.connection import Warehouse
from tests.conftest import CONFIG_DIR, ENGINES

COLLEGE, DENTAL, REALTY = "northfield_college", "bright_smiles_dental", "lakeside_realty"
NOW = datetime(2026, 4, 1, 6, 0)
# arms the example configuration A/B tests: the dental reminder's and the college welcome's two
# each (filled below), and the contractor's two (no message sent: "not enough data")
ARMS = 6

DDL = [
    """create table analytics.campaign_performance_daily (
        client_id varchar, campaign varchar, step varchar, variant varchar, channel varchar,
        send_date date, sent bigint, delivered bigint, replied bigint
    )""",
    """create table marts.messages (
        message_key varchar primary key, client_id varchar not null, campaign varchar, step varchar,
        variant varchar, contact_id varchar, status varchar, sent_at timestamp
    )""",
    """create table marts.funnel_events (
        event_id varchar, client_id varchar not null, contact_id varchar, funnel_type varchar,
        from_stage varchar, to_stage varchar, occurred_at timestamp
    )""",
]
PERFORMANCE = [
    # the college's welcome step: campus_focus replies three times as often (split over two days)
    (COLLEGE, "admitted_nurture", "welcome", "program_focus", "sms", date(2026, 3, 1), 250, 240, 12),
    (COLLEGE, "admitted_nurture", "welcome", "program_focus", "sms", date(2026, 3, 2), 150, 150, 8),
    (COLLEGE, "admitted_nurture", "welcome", "campus_focus", "sms", date(2026, 3, 1), 400, 380, 60),
    # excluded plan rows (no variant) and a one-variant step are no A/B test
    (COLLEGE, "admitted_nurture", "welcome", "none", "none", date(2026, 3, 1), 0, 0, 0),
    (COLLEGE, "admitted_nurture", "follow_up", "standard", "sms", date(2026, 3, 4), 300, 290, 9),
    # the dental reminder: brief has too few messages sent to judge
    (DENTAL, "appointment_reminder", "reminder", "friendly", "sms", date(2026, 3, 1), 150, 150, 30),
    (DENTAL, "appointment_reminder", "reminder", "brief", "sms", date(2026, 3, 1), 40, 39, 20),
    # a campaign no longer in the configuration is left out
    (DENTAL, "retired_campaign", "reminder", "friendly", "sms", date(2026, 3, 1), 500, 500, 5),
    (REALTY, "new_listings", "announcement", "standard", "sms", date(2026, 3, 1), 80, 80, 2),
]
SENT = datetime(2026, 3, 1, 15, 0)
MESSAGES = [
    # message_key, client_id, campaign, step, variant, contact_id, status, sent_at
    ("m1", COLLEGE, "admitted_nurture", "welcome", "program_focus", "c1", "sent", SENT),  # enrolled 9 days later
    ("m2", COLLEGE, "admitted_nurture", "welcome", "program_focus", "c2", "sent", SENT),  # enrolled 31 days later
    ("m3", COLLEGE, "admitted_nurture", "welcome", "program_focus", "c3", "sent", SENT),  # only admitted
    ("m4", COLLEGE, "admitted_nurture", "welcome", "program_focus", "c4", "sent", SENT),  # enrolled before
    ("m5", COLLEGE, "admitted_nurture", "welcome", "program_focus", "c5", "failed", None),  # never sent
    ("m6", COLLEGE, "admitted_nurture", "welcome", "campus_focus", "c6", "sent", SENT),  # enrolled
    ("m7", COLLEGE, "admitted_nurture", "welcome", "campus_focus", "c7", "sent", SENT),  # enrolled
    ("m8", COLLEGE, "admitted_nurture", "follow_up", "standard", "c1", "sent", datetime(2026, 3, 4, 15)),
    ("m9", DENTAL, "appointment_reminder", "reminder", "brief", "c6", "sent", SENT),  # c6 of another client
]
FUNNEL = [
    ("e1", COLLEGE, "c1", "admissions", "admitted", "enrolled", datetime(2026, 3, 10)),
    ("e2", COLLEGE, "c2", "admissions", "admitted", "enrolled", datetime(2026, 4, 1, 16)),
    ("e3", COLLEGE, "c3", "admissions", "applied", "admitted", datetime(2026, 3, 3)),
    ("e4", COLLEGE, "c4", "admissions", "admitted", "enrolled", datetime(2026, 2, 27)),
    ("e5", COLLEGE, "c5", "admissions", "admitted", "enrolled", datetime(2026, 3, 3)),
    ("e6", COLLEGE, "c6", "admissions", "admitted", "enrolled", datetime(2026, 3, 2)),
    ("e7", COLLEGE, "c7", "admissions", "admitted", "enrolled", datetime(2026, 3, 20)),
]
COLUMNS = (
    "client_id, campaign, step, variant, is_control, sent, delivered, replied, converted, metric, "
    "rate, verdict, winner, computed_at"
)


def fill(warehouse: Warehouse) -> None:
    with warehouse.session() as s:
        for ddl in DDL:
            s.execute(ddl)
        s.insert_rows(
            "analytics.campaign_performance_daily",
            ["client_id", "campaign", "step", "variant", "channel", "send_date", "sent", "delivered", "replied"],
            PERFORMANCE,
        )
        s.insert_rows(
            "marts.messages",
            ["message_key", "client_id", "campaign", "step", "variant", "contact_id", "status", "sent_at"],
            MESSAGES,
        )
        s.insert_rows(
            "marts.funnel_events",
            ["event_id", "client_id", "contact_id", "funnel_type", "from_stage", "to_stage", "occurred_at"],
            FUNNEL,
        )


def with_ab_test(deployment: Deployment, client_id: str, campaign: str, ab_test: AbTest) -> Deployment:
    client = deployment.clients[client_id]
    changed = client.campaigns[campaign].model_copy(update={"ab_test": ab_test})
    client = client.model_copy(update={"campaigns": {**client.campaigns, campaign: changed}})
    return deployment.model_copy(update={"clients": {**deployment.clients, client_id: client}})


def results(warehouse: Warehouse) -> list[tuple[Any, ...]]:
    with warehouse.session(read_only=True) as s:
        _, rows = s.query(
            f"select {COLUMNS} from analytics.ab_test_results where client_id in ('{DENTAL}', '{COLLEGE}') "
            "order by client_id, campaign, step, variant"
        )
    return rows


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_results_per_step_and_variant(warehouse: Warehouse, deployment: Deployment) -> None:
    fill(warehouse)
    with warehouse.session() as s:
        assert compute_ab_results(s, deployment, NOW) == ARMS
    assert results(warehouse) == [
        (DENTAL, "appointment_reminder", "reminder", "brief", False, 40, 39, 20, 0, "replied", 0.5,
         "not enough data", None, NOW),
        (DENTAL, "appointment_reminder", "reminder", "friendly", True, 150, 150, 30, 0, "replied", 0.2,
         "control", None, NOW),
        (COLLEGE, "admitted_nurture", "welcome", "campus_focus", False, 400, 380, 60, 2, "replied", 0.15,
         "winner", "campus_focus", NOW),
        (COLLEGE, "admitted_nurture", "welcome", "program_focus", True, 400, 390, 20, 1, "replied", 0.05,
         "control", "campus_focus", NOW),
    ]  # fmt: skip
    with warehouse.session(read_only=True) as s:
        _, [(z, p, low, high)] = s.query(
            "select z, p_value, ci_low, ci_high from analytics.ab_test_results where variant = 'campus_focus'"
        )
    assert (z, p) == pytest.approx(two_proportion_test(60, 400, 20, 400))
    assert low < 0.15 < high

    # recomputing replaces every row: the same results, a new computed_at
    first = results(warehouse)
    later = datetime(2026, 4, 2, 6, 0)
    with warehouse.session() as s:
        assert compute_ab_results(s, deployment, later) == ARMS
    again = results(warehouse)
    assert [r[:-1] for r in again] == [r[:-1] for r in first]
    assert {r[-1] for r in again} == {later}


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_configured_control_metric_and_minimum(warehouse: Warehouse, deployment: Deployment) -> None:
    fill(warehouse)
    # conversions (1 of 400 vs 2 of 400) cannot tell the variants apart; a smaller minimum
    # lets the dental test be judged (20 of 40 vs 30 of 150 replied), with brief as the control
    deployment = with_ab_test(
        deployment, COLLEGE, "admitted_nurture", AbTest(control="campus_focus", metric="converted")
    )
    deployment = with_ab_test(deployment, DENTAL, "appointment_reminder", AbTest(control="brief", min_sample=40))
    with warehouse.session() as s:
        assert compute_ab_results(s, deployment, NOW) == ARMS
    got = {(r[2], r[3]): (r[4], r[9], r[10], r[11], r[12]) for r in results(warehouse)}
    assert got == {
        ("reminder", "brief"): (True, "replied", 0.5, "control", "brief"),
        ("reminder", "friendly"): (False, "replied", 0.2, "loser", "brief"),
        ("welcome", "campus_focus"): (True, "converted", 2 / 400, "control", None),
        ("welcome", "program_focus"): (False, "converted", 1 / 400, "no significant difference", None),
    }


def test_the_asset_reports_the_results_as_a_markdown_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from assets.analytics.ab_tests import AB_TEST_RESULTS_KEY, build_ab_test_results
    from assets.transform.dbt import load_dbt_models
    from herald.settings import Settings
    from orchestration.jobs import ab_results_job
    from orchestration.schedules import ab_results_schedule
    from resources import HeraldConfigResource, WarehouseResource

    monkeypatch.setenv("HERALD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HERALD_CONFIG_DIR", str(CONFIG_DIR))
    monkeypatch.setenv("HERALD_WAREHOUSE_URL", "")
    warehouse = Warehouse(Settings.from_env().warehouse)
    warehouse.ensure_schema()
    fill(warehouse)
    ab_test_results = build_ab_test_results(load_dbt_models("duckdb"))

    result = dg.materialize(
        [ab_test_results], resources={"warehouse": WarehouseResource(), "herald_config": HeraldConfigResource()}
    )
    assert result.success
    [materialization] = result.asset_materializations_for_node(ab_test_results.node_def.name)
    assert materialization.asset_key == AB_TEST_RESULTS_KEY
    table = materialization.metadata["results"].value
    assert table.splitlines()[0] == (
        "| client_id | campaign | step | variant | sent | metric | rate | ci_low | ci_high | p_value | verdict |"
    )
    assert "| northfield_college | admitted_nurture | welcome | campus_focus | 400 | replied | 0.150 |" in table
    # the dental brief arm, and the contractor's tested arm (sent nothing yet; its other arm is the control)
    assert table.count("| not enough data |") == 2
    assert materialization.metadata["arms"].value == ARMS
    assert materialization.metadata["steps_with_winner"].value == 1
    assert ab_test_results.group_names_by_key[AB_TEST_RESULTS_KEY] == "analytics"
    assert {k.to_user_string() for k in ab_test_results.dependency_keys} == {
        "marts/messages", "analytics/campaign_performance_daily", "marts/engagement_events",
    }  # fmt: skip

    assert (ab_results_schedule.cron_schedule, ab_results_schedule.execution_timezone) == ("0 4 * * *", "UTC")
    assert ab_results_schedule.job_name == ab_results_job.name == "ab_results_job"
