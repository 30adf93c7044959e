"""The simulation and preview of test_simulate.py on PostgreSQL (the scratch copy is a database
made from the warehouse as a template)."""

from __future__ import annotations

from pathlib import Path

import pytest

from herald.campaigns.simulate import Simulation
from herald.warehouse.connection import Warehouse
from tests.integration.test_simulate import *  # noqa: F403  (the tests themselves)
from tests.integration.test_simulate import run_simulation

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory, pg_database_factory) -> tuple[Simulation, Warehouse, Path]:
    tmp = tmp_path_factory.mktemp("simulate_pg")
    return run_simulation({"HERALD_HOME": str(tmp / "home"), "HERALD_WAREHOUSE_URL": pg_database_factory()}, tmp)
