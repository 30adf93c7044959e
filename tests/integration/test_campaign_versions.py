"""Campaign versions in the configuration tables: the load keeps an older version's steps,
branches and variants while enrollments of it are still going, and an existing warehouse gets
the version column without losing its rows."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pytest

from herald.config import load_deployment
from herald.settings import Settings
from herald.warehouse.config_tables import load_config_tables
from herald.warehouse.connection import Warehouse
from herald.warehouse.migrate import upgrade
from tests.conftest import CONFIG_DIR, ENGINES

CLIENT, CAMPAIGN = "summit_roofing", "roof_check_offer"
ENTERED = datetime(2026, 11, 16)


def versions(warehouse: Warehouse, table: str = "campaign_steps") -> list[tuple]:
    with warehouse.session(read_only=True) as s:
        return s.query(
            f"select distinct config_version from herald_ops.{table} where campaign = ? order by 1", [CAMPAIGN]
        )[1]


def enroll(warehouse: Warehouse, version: str, status: str) -> None:
    with warehouse.session() as s:
        s.execute(
            "insert into herald_ops.enrollments (enrollment_id, client_id, campaign, contact_id, occurrence, "
            "enrollment_rule, config_version, entered_at, status, step, step_entered_at, updated_at) "
            "values (?, ?, ?, 'c1', 'o1', 'once', ?, ?, ?, 'offer', ?, ?)",
            [f"e-{version}", CLIENT, CAMPAIGN, version, ENTERED, status, ENTERED, ENTERED],
        )


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_an_old_version_stays_while_an_enrollment_of_it_is_going(warehouse: Warehouse, tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    v1 = load_deployment(config)
    old = v1.clients[CLIENT].campaigns[CAMPAIGN].config_version
    path = config / "clients" / CLIENT / "campaigns" / f"{CAMPAIGN}.yaml"
    path.write_text(path.read_text().replace("weight: 50}", "weight: 60}", 1))  # a new version
    v2 = load_deployment(config)
    new = v2.clients[CLIENT].campaigns[CAMPAIGN].config_version
    assert old != new
    with warehouse.session() as s:
        load_config_tables(s, v1)
    enroll(warehouse, old, "waiting")
    with warehouse.session() as s:
        load_config_tables(s, v2)
    assert versions(warehouse) == versions(warehouse, "campaign_variants") == sorted([(old,), (new,)])
    # the same load again changes nothing: no second audit entry, v1 still kept
    with warehouse.session() as s:
        load_config_tables(s, v2)
        assert s.scalar("select count(*) from herald_ops.audit_log where action = 'config_change'") == 1
    assert versions(warehouse) == sorted([(old,), (new,)])
    # the enrollment ended: v1's rows go with the next load
    with warehouse.session() as s:
        s.execute("update herald_ops.enrollments set status = 'completed'")
        load_config_tables(s, v2)
    assert versions(warehouse) == versions(warehouse, "campaign_variants") == [(new,)]


@pytest.mark.parametrize("engine", ENGINES)
def test_an_existing_warehouse_gets_the_version_column_with_its_rows(engine: str, herald_env) -> None:
    warehouse = Warehouse(Settings.from_env(herald_env(engine)).warehouse)
    upgrade(warehouse, target=1)  # the tables as a release before versions made them (the baseline)
    with warehouse.session() as s:
        s.execute(
            "insert into herald_ops.campaigns (client_id, campaign, message_type, category, status, audience, "
            "trigger_type, loaded_at, config_version) "
            "values (?, ?, 'announcement', 'marketing', 'active', 'homeowners', 'schedule', ?, 'abc')",
            [CLIENT, CAMPAIGN, datetime(2026, 11, 16)],
        )
        s.execute(
            "insert into herald_ops.campaign_steps (client_id, campaign, step, position, anchor_minutes, channel) "
            "values (?, ?, 'offer', 1, 0, 'sms')",
            [CLIENT, CAMPAIGN],
        )
        s.execute(
            "insert into herald_ops.campaign_variants (client_id, campaign, step, variant, weight, bucket_from, "
            "bucket_to, sms_template) values (?, ?, 'offer', 'a', 1, 0, 10000, 'a.sms.j2')",
            [CLIENT, CAMPAIGN],
        )
    warehouse.ensure_schema()
    warehouse.ensure_schema()  # idempotent
    with warehouse.session() as s:
        assert s.query("select step, channel, config_version from herald_ops.campaign_steps")[1] == [
            ("offer", "sms", "abc")
        ]
        assert s.query("select variant, sms_template, config_version from herald_ops.campaign_variants")[1] == [
            ("a", "a.sms.j2", "abc")
        ]
        # the new key: the same step of another version is a row of its own
        s.execute(
            "insert into herald_ops.campaign_steps (client_id, campaign, step, position, anchor_minutes, "
            "config_version) values (?, ?, 'offer', 1, 0, 'def')",
            [CLIENT, CAMPAIGN],
        )
        assert s.scalar("select count(*) from herald_ops.campaign_steps") == 2
