"""What the portal's integration tests share (not a test module, so not collected): a cheap but
real argon2 hasher, a deployment's environment and a warehouse made, filled and published for it.

A test module takes the hasher with ``from tests.integration.portal_support import cheap_argon2``
(the autouse module fixture then applies to that module only)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from herald.portal import accounts
from herald.portal.reads import publish_snapshot
from herald.settings import Settings
from herald.warehouse.connection import Warehouse
from tests.conftest import CONFIG_DIR


@pytest.fixture(scope="module", autouse=True)
def cheap_argon2() -> Iterator[None]:
    """Real argon2 with the cheapest parameters for the module's tests, the product's hasher after."""
    product = accounts._hasher
    accounts._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    yield
    accounts._hasher = product


def portal_env(home: Path, secret_key: str, url: str | None = None, **extra: str) -> dict[str, str]:
    """A deployment's HERALD_* environment: its home, the example config, no sandbox receipts; the
    warehouse URL when ``url`` is given ("" is the embedded DuckDB), then ``extra``."""
    env = {"HERALD_HOME": str(home), "HERALD_CONFIG_DIR": str(CONFIG_DIR), "HERALD_SECRET_KEY": secret_key,
           "HERALD_PUBLIC_URL": "http://127.0.0.1:8000", "HERALD_SANDBOX_RECEIPTS": "off"}  # fmt: skip
    if url is not None:
        env["HERALD_WAREHOUSE_URL"] = url
    return env | extra


def engine_url(request: pytest.FixtureRequest) -> str:
    """The warehouse URL for a fixture parametrized over ENGINES: a fresh PostgreSQL database or "" (DuckDB)."""
    return request.getfixturevalue("pg_database_factory")() if request.param == "postgres" else ""


def made_warehouse(
    env: dict[str, str], fill: Callable[[Warehouse], None] | None = None, publish: bool = True
) -> tuple[Settings, Warehouse]:
    """The deployment's settings and its warehouse with the schema, ``fill``'s rows and (by
    default) the portal's published snapshot."""
    settings = Settings.from_env(env)
    warehouse = Warehouse(settings.warehouse)
    warehouse.ensure_schema()
    if fill is not None:
        fill(warehouse)
    if publish:
        publish_snapshot(settings.warehouse)
    return settings, warehouse
