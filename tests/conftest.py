"""Shared fixtures: warehouses on both engines, a throwaway HERALD_HOME, the example config.

PostgreSQL tests use the server on 127.0.0.1:5432 (trust auth) in a database of their own that
is dropped afterwards, owned by and connected to as ``herald_app``, a role that is not a
superuser (as production's warehouse user would not be). Outside CI a missing server skips them, saying why; under CI=true it
fails them, because CI must prove the PostgreSQL path.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg2
import pytest

from herald.config import Deployment, load_deployment
from herald.settings import Settings
from herald.warehouse.connection import Warehouse

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "config"
PG_ADMIN = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "postgres"}
PG_APP_ROLE = "herald_app"  # the non-superuser application role every PostgreSQL test connects as
ENGINES = ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(autouse=True)
def _no_leftover_dagster_state_storage() -> Iterator[None]:
    """Each test starts with no "current" Dagster defs-state storage. Entering a DagsterInstance
    sets one in a context variable that only that instance's exit resets; a test process that
    ever leaves one behind (an instance entered twice, a generator never closed) made later,
    unrelated tests in the same xdist worker fail with "Attempted to resolve undefined
    DagsterInstance weakref" as they loaded definitions. A deployment runs each run in a fresh
    process, so this is test hygiene, not a product behaviour."""
    from dagster._core.storage.defs_state.base import set_defs_state_storage

    with set_defs_state_storage(None):
        yield


def _pg_reachable() -> str | None:
    try:
        psycopg2.connect(connect_timeout=3, **PG_ADMIN).close()
    except psycopg2.OperationalError as exc:
        return str(exc).strip()
    return None


@pytest.fixture(scope="session")
def pg_database_factory() -> Iterator[Callable[[], str]]:
    """Creates empty PostgreSQL databases (returns their URL); drops them all at the end."""
    problem = _pg_reachable()
    if problem:
        message = f"PostgreSQL on 127.0.0.1:5432 is not reachable: {problem}"
        if os.environ.get("CI"):
            pytest.fail(message + " (under CI the PostgreSQL tests must run)")
        pytest.skip(message)
    created: list[str] = []
    ensured: set[str] = set()

    def create(owner: str | None = PG_APP_ROLE) -> str:
        """``owner``: the role that owns the database and connects. By default the non-superuser
        application role (created when missing, LOGIN CREATEROLE CREATEDB, as a production
        warehouse user would be), so that no superuser privilege can hide a hole; ``None``: the
        superuser."""
        name = f"herald_test_{uuid.uuid4().hex[:10]}"
        conn = psycopg2.connect(**PG_ADMIN)
        conn.autocommit = True
        if owner and owner not in ensured:
            cur = conn.cursor()
            # the test workers set the role up at once: one at a time (ALTER ROLE beside another
            # fails with "tuple concurrently updated")
            cur.execute("select pg_advisory_lock(hashtext('herald test roles'))")
            try:
                cur.execute(
                    f"do $$ begin create role {owner}; "
                    "exception when duplicate_object or unique_violation then null; end $$"
                )
                # what production's warehouse user holds (docs/operations.md): it makes the
                # clients' segment roles (CREATEROLE) and the scratch copy a preview plans on (CREATEDB)
                cur.execute(f"alter role {owner} login createrole createdb nosuperuser")
            finally:
                cur.execute("select pg_advisory_unlock(hashtext('herald test roles'))")
            ensured.add(owner)
        conn.cursor().execute(f"create database {name}" + (f" owner {owner}" if owner else ""))
        conn.close()
        created.append(name)
        return f"postgresql://{owner or 'postgres'}@127.0.0.1:5432/{name}"

    yield create
    conn = psycopg2.connect(**PG_ADMIN)
    conn.autocommit = True
    for name in created:
        conn.cursor().execute(f"drop database if exists {name} with (force)")
    conn.close()


REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis on 127.0.0.1:6379 that concurrent delivery workers share their rate limits in;
    skipped, saying why, when it is not there (under CI=true: failed, like PostgreSQL)."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        message = f"Redis on 127.0.0.1:6379 is not reachable: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message + " (under CI the shared rate limit tests must run)")
        pytest.skip(message)
    return REDIS_URL


@pytest.fixture
def herald_env(tmp_path: Path, request: pytest.FixtureRequest) -> Callable[[str], dict[str, str]]:
    """Environment for a Herald deployment under tmp_path on the given engine."""

    def make(engine: str) -> dict[str, str]:
        env = {"HERALD_HOME": str(tmp_path / "home"), "HERALD_CONFIG_DIR": str(CONFIG_DIR)}
        env["HERALD_WAREHOUSE_URL"] = request.getfixturevalue("pg_database_factory")() if engine == "postgres" else ""
        return env

    return make


@pytest.fixture
def warehouse(request: pytest.FixtureRequest, herald_env: Callable[[str], dict[str, str]]) -> Warehouse:
    """An empty warehouse with Herald's tables, on the engine the test is parametrized with."""
    engine = getattr(request, "param", "duckdb")
    settings = Settings.from_env(herald_env(engine))
    w = Warehouse(settings.warehouse)
    w.ensure_schema()
    return w


@pytest.fixture(scope="session")
def deployment() -> Deployment:
    return load_deployment(CONFIG_DIR)


# runs a tick may start beside the ones a test follows: a delivery run of messages_due_sensor (any
# tick after a queued message fell due) and the low-credit check after a run that sent something
BACKGROUND_JOBS = frozenset(
    {"deliver_messages_job", "alert_low_credit_job", "advance_journeys_job", "staff_alerts_job", "webhooks_job"}
)


def jobs_run(output: str) -> list[str]:
    """The runs a `herald tick` printed, in order, as "<status> <job>", leaving out the background
    runs (BACKGROUND_JOBS): a delivery run of messages_due_sensor fires in any tick after a message fell due."""
    runs = []
    for line in output.splitlines():
        found = re.match(r"^\s+(SUCCESS|FAILURE) (\w+)", line)
        if found and found.group(2) not in BACKGROUND_JOBS:
            runs.append(f"{found.group(1)} {found.group(2)}")
    return runs


def last_tick_done(output: str) -> str:
    return [line for line in output.splitlines() if line.startswith("tick done")][-1]
