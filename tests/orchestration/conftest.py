"""Tests of the Dagster layer (assets, sensors, resources, the Definitions) without a warehouse:
sensors through ``build_sensor_context``, definitions resolved but never run."""

from __future__ import annotations

import dagster as dg
import pytest


@pytest.fixture(scope="session")
def defs() -> dg.Definitions:
    """The project's Definitions for the example configuration (built once per process)."""
    from orchestration.definitions import defs as load_defs

    return load_defs()
