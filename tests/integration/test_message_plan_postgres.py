"""marts.message_plan on PostgreSQL: every test of test_message_plan.py on a fresh database."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_message_plan import *  # noqa: F403  (the tests themselves)
from tests.integration.test_message_plan import build_plan

pytestmark = pytest.mark.postgres


@pytest.fixture
def planned(herald_env, tmp_path: Path):
    return build_plan("postgres", herald_env, tmp_path)
