"""Applying an A/B winner: once the results name a winner of a campaign that
applies it, the config load gives the winner every bucket, so the plan sends only it; a
campaign that does not apply its winner keeps the split."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pytest

from herald.analytics.ab_tests import ArmResult, record_winners
from herald.config import load_deployment
from herald.warehouse.config_tables import load_config_tables
from herald.warehouse.connection import Warehouse
from tests.conftest import CONFIG_DIR, ENGINES

NOW = datetime(2026, 11, 20, 12, 0)
CLIENT, CAMPAIGN = "bright_smiles_dental", "appointment_reminder"


def arm(variant: str, verdict: str, winner: str | None) -> ArmResult:
    return ArmResult("reminder", variant, variant == "friendly", 500, 490, 80 if variant == "brief" else 40, 0,
                     "replied", 0.1, 0.08, 0.12, 3.2, 0.001, verdict, winner)  # fmt: skip


def variants(warehouse: Warehouse) -> dict[str, tuple[int, int]]:
    with warehouse.session(read_only=True) as s:
        _, rows = s.query(
            "select variant, bucket_from, bucket_to from herald_ops.campaign_variants "
            "where campaign = ? and step = 'reminder' order by 1",
            [CAMPAIGN],
        )
    return {v: (low, high) for v, low, high in rows}


@pytest.fixture
def applying(tmp_path: Path):
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    path = config / "clients" / CLIENT / "campaigns" / f"{CAMPAIGN}.yaml"
    path.write_text(path.read_text() + "ab_test: {apply_winner: true}\n")
    return load_deployment(config)


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_the_winner_takes_every_bucket_from_then_on(warehouse: Warehouse, applying, deployment) -> None:
    results = [
        (CLIENT, CAMPAIGN, arm("friendly", "control", "brief")),
        (CLIENT, CAMPAIGN, arm("brief", "winner", "brief")),
    ]
    with warehouse.session() as s:
        load_config_tables(s, applying)
    assert variants(warehouse) == {"brief": (5000, 10000), "friendly": (0, 5000)}
    with warehouse.session() as s:
        assert record_winners(s, applying, results, NOW) == 1
        load_config_tables(s, applying)
    assert variants(warehouse) == {"brief": (0, 10000), "friendly": (0, 0)}
    # a later result naming another winner does not replace the first
    with warehouse.session() as s:
        record_winners(s, applying, [(CLIENT, CAMPAIGN, arm("friendly", "winner", "friendly"))], NOW)
        assert s.query("select variant from herald_ops.ab_winners")[1] == [("brief",)]
    # the example config does not apply winners: its split stays
    with warehouse.session() as s:
        load_config_tables(s, deployment)
    assert variants(warehouse) == {"brief": (5000, 10000), "friendly": (0, 5000)}


def test_a_campaign_without_apply_winner_records_nothing(warehouse: Warehouse, deployment) -> None:
    with warehouse.session() as s:
        assert record_winners(s, deployment, [(CLIENT, CAMPAIGN, arm("brief", "winner", "brief"))], NOW) == 0
