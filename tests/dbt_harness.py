"""One harness for the dbt-mart integration tests: a real warehouse per engine, hand-made rows in,
one ``dbt build`` of the models under test (with their data tests) out.

A test module describes its build with :class:`MartBuild` (the models, the Herald tables they
read, the other models' outputs it fakes as plain tables, and the rows) and opens it in a
module-scoped fixture, so every assertion of the module reads the same built warehouse (dbt's
start-up dominates the cost):

    @pytest.fixture(scope="module", params=ENGINES)
    def built(request, tmp_path_factory) -> Iterator[Built]:
        with build_marts(request, tmp_path_factory, BUILD) as result:
            yield result

Below the harness: sample rows several of those modules share.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from herald.settings import parse_warehouse_url
from herald.warehouse.connection import Warehouse
from herald.warehouse.schema import column_names, ddl_statements

REPO_ROOT = Path(__file__).resolve().parents[1]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"

Rows = list[tuple[Any, ...]]
Columns = list[tuple[str, str]]  # (name, SQL type), in the table's order


@dataclass(frozen=True)
class MartBuild:
    """One ``dbt build`` of ``models`` over hand-made rows.

    ``sources``: Herald's own tables the models read, created by the real DDL (empty unless
    ``rows`` fills them). ``hand_made``: other models' outputs, created as plain tables with only
    the columns these models read, so only ``models`` run. ``rows``: table → rows, inserted in
    this order, in the columns of the real DDL or of ``hand_made``. ``dbt_args``: more arguments
    for ``dbt build`` (such as ``--vars``). ``command``: ``run`` builds the models without their
    data tests (for a module that checks something else of them)."""

    name: str  # names the temporary folders, e.g. "messages"
    models: Sequence[str]
    sources: Sequence[str]
    rows: Mapping[str, Rows]
    hand_made: Mapping[str, Columns] = field(default_factory=dict)
    dbt_args: Sequence[str] = ()
    command: str = "build"

    def columns(self, table: str) -> list[str]:
        if table in self.hand_made:
            return [name for name, _ in self.hand_made[table]]
        return column_names(table)


@dataclass
class Built:
    warehouse: Warehouse
    run: dict[str, Any]  # dbt's run_results.json
    tmp: Path  # the build's own temporary folder (a deployment home may go under it)


@contextmanager
def build_marts(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, spec: MartBuild
) -> Iterator[Built]:
    """A fresh warehouse on the engine ``request.param`` names, with ``spec`` built in it."""
    engine: str = request.param
    tmp = tmp_path_factory.mktemp(f"dbt-{spec.name}-{engine}")
    if engine == "postgres":
        create_database: Callable[[], str] = request.getfixturevalue("pg_database_factory")
        url = create_database()  # dropped by the factory at the end of the session
    else:
        url = str(tmp / "warehouse.duckdb")
    warehouse = Warehouse(parse_warehouse_url(url, tmp))
    with warehouse.session() as s:
        # the schemas and the tables the models read, by the real DDL (the others are not needed)
        for statement in ddl_statements(warehouse.engine):
            if statement.startswith("create schema") or any(f" {t} (" in statement for t in spec.sources):
                s.execute(statement)
        for table, columns in spec.hand_made.items():
            s.execute(f"create schema if not exists {table.split('.')[0]}")
            s.execute(f"create table {table} ({', '.join(f'{n} {t}' for n, t in columns)})")
    insert(warehouse, {table: (spec.columns(table), table_rows) for table, table_rows in spec.rows.items()})
    target_path = DBT_PROJECT_DIR / "target" / f"{engine}-{spec.name}-test-{uuid.uuid4().hex[:10]}"
    try:
        run = dbt(warehouse, target_path, tmp / "logs", spec.command, "--select", *spec.models, *spec.dbt_args)
        yield Built(warehouse, run, tmp)
    finally:
        shutil.rmtree(target_path, ignore_errors=True)


def insert(warehouse: Warehouse, tables: dict[str, tuple[list[str], Rows]]) -> None:
    with warehouse.session() as s:
        for table, (columns, table_rows) in tables.items():
            s.insert_rows(table, columns, table_rows)


def rows(warehouse: Warehouse, sql: str) -> list[dict[str, Any]]:
    with warehouse.session(read_only=True) as s:
        names, values = s.query(sql)
    return [dict(zip(names, row, strict=True)) for row in values]


def dbt(warehouse: Warehouse, target_path: Path, log_path: Path, *args: str) -> dict[str, Any]:
    """A dbt command in a subprocess; fails the test with dbt's output when dbt fails."""
    beside_python = Path(sys.executable).parent / "dbt"
    executable = str(beside_python) if beside_python.exists() else (shutil.which("dbt") or "dbt")
    env = {
        **os.environ,
        **warehouse.target.dbt_env(),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_LOG_PATH": str(log_path),
    }
    completed = subprocess.run(
        [executable, *args, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
         "--target-path", str(target_path)],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if completed.returncode != 0:
        pytest.fail(
            f"dbt {args[0]} failed ({completed.returncode}):\n{completed.stdout[-8000:]}\n{completed.stderr[-4000:]}"
        )
    run_results = target_path / "run_results.json"
    return json.loads(run_results.read_text()) if run_results.exists() else {}


def failed_nodes(built: Built) -> dict[str, str]:
    """dbt nodes of the build that did not succeed or pass, with their status (empty when all did)."""
    statuses = {r["unique_id"]: r["status"] for r in built.run["results"]}
    return {node: status for node, status in statuses.items() if status not in ("success", "pass")}


def row(table: str, **values: Any) -> tuple[Any, ...]:
    """A row of one of Herald's tables in its DDL's column order: ``values``, None elsewhere."""
    full: dict[str, Any] = dict.fromkeys(column_names(table))
    full.update(values)
    return tuple(full.values())


# --- shared sample rows -----------------------------------------------------------------------

LOADED_AT = datetime(2024, 3, 1, 12, 0)
CLIENTS = [
    # client_id, name, industry, time_zone, default_region, loaded_at
    ("clinic", "Bright Smiles Dental", "healthcare", "America/Chicago", "US", LOADED_AT),
    ("realty", "Harbor Realty", "real_estate", "America/New_York", "US", LOADED_AT),
]

# 2024-03-12 03:00 UTC is 2024-03-11 22:00 in Chicago (CDT since 10 March) and 23:00 in New York
LATE_EVENING = datetime(2024, 3, 12, 3, 0)
LATE_EVENING_HALF = datetime(2024, 3, 12, 3, 30)
MORNING = datetime(2024, 3, 12, 15, 0)  # 10:00 on 12 March in Chicago


# an herald_ops.outbox row's values unless a test says otherwise: a clinic reminder by SMS, queued
OUTBOX_DEFAULTS: dict[str, Any] = {
    "client_id": "clinic", "campaign": "reminders", "step": "day_before", "variant": "a",
    "occurrence": "2024-03-11T09:00-05:00", "message_type": "appointment_reminder", "category": "transactional",
    "channel": "sms", "to_address": "+13125550100", "sender": "+13125559999", "body_text": "See you tomorrow",
    "send_after": LATE_EVENING, "status": "queued", "attempts": 0, "enqueued_at": datetime(2024, 3, 11, 14, 0),
    "updated_at": datetime(2024, 3, 12, 4, 0),
}  # fmt: skip


def outbox_row(message_key: str, **values: Any) -> tuple[Any, ...]:
    """An ``herald_ops.outbox`` row: :data:`OUTBOX_DEFAULTS` but for ``values``."""
    return row(
        "herald_ops.outbox",
        **{**OUTBOX_DEFAULTS, "message_key": message_key, "contact_id": f"contact-{message_key}", **values},
    )


# marts.message_plan as the plan model writes it (columns in its documented order)
MESSAGE_PLAN_COLUMNS: Columns = [
    ("message_key", "varchar"), ("client_id", "varchar"), ("campaign", "varchar"), ("step", "varchar"),
    ("step_position", "bigint"), ("occurrence", "varchar"), ("contact_id", "varchar"), ("channel", "varchar"),
    ("variant", "varchar"), ("status", "varchar"), ("reason", "varchar"), ("scheduled_at", "timestamp"),
    ("send_after", "timestamp"), ("is_deferred", "boolean"), ("planned_at", "timestamp"),
]  # fmt: skip
