"""The CLI end to end on PostgreSQL: every test of test_pipeline_cli.py, on a deployment whose
warehouse is a fresh PostgreSQL database (a module of its own so it builds in parallel)."""

from __future__ import annotations

import pytest

from tests.e2e import test_pipeline_cli
from tests.e2e.test_pipeline_cli import *  # noqa: F403  (the tests themselves)
from tests.e2e.test_pipeline_cli import Deployment, deploy

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def deployed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    return deploy("postgres", request, tmp_path_factory)


assert test_pipeline_cli.deploy is deploy
