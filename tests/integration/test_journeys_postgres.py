"""The journeys of test_journeys.py on PostgreSQL (a module of its own, so the two engines' passes
run in parallel on several workers)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.test_journeys import *  # noqa: F403  (the tests themselves)
from tests.integration.test_journeys import run_days, run_outage, run_versions

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def days(tmp_path_factory: pytest.TempPathFactory, pg_database_factory) -> list[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("journeys_pg")
    return run_days({"HERALD_HOME": str(tmp / "home"), "HERALD_WAREHOUSE_URL": pg_database_factory()}, tmp)


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory, pg_database_factory) -> dict[str, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("outage_pg")
    return run_outage({"HERALD_HOME": str(tmp / "home"), "HERALD_WAREHOUSE_URL": pg_database_factory()}, tmp)


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory, pg_database_factory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("versions_pg")
    return run_versions({"HERALD_HOME": str(tmp / "home"), "HERALD_WAREHOUSE_URL": pg_database_factory()}, tmp)
