"""Schema migrations of Herald's own tables, on DuckDB and PostgreSQL: the head of the migrations is
``schema.TABLES``; a warehouse of the previous release with data in it upgrades without losing a
row; upgrading twice does nothing; a failing migration leaves nothing half-applied; a warehouse
made before migrations is stamped and upgraded; a warehouse newer than the code is refused;
concurrent upgrades on PostgreSQL apply each migration once; `herald db status` / `upgrade`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from herald.settings import Settings
from herald.warehouse.connection import Session, Warehouse, WarehouseError
from herald.warehouse.migrate import (
    VERSION_TABLE,
    Migration,
    SchemaVersionError,
    known_migrations,
    status,
    upgrade,
)
from herald.warehouse.migrations.ops import add_column
from herald.warehouse.schema import TABLES, ddl_statements
from tests.conftest import ENGINES, REPO_ROOT

HEAD = len(known_migrations())
OWN_TABLES = sorted(t for t, _, _ in TABLES)
AT = datetime(2026, 11, 16, 9, 30)
CLIENT = "summit_roofing"
MIGRATIONS_DIR = REPO_ROOT / "herald" / "warehouse" / "migrations"


@pytest.fixture
def make_warehouse(herald_env: Callable[[str], dict[str, str]], tmp_path: Path) -> Callable[[str], Warehouse]:
    """Empty warehouses (nothing made yet), several per test when needed."""
    made = iter(range(100))

    def make(engine: str) -> Warehouse:
        env = herald_env(engine)
        if engine == "duckdb":
            env["HERALD_WAREHOUSE_URL"] = str(tmp_path / f"w{next(made)}.duckdb")
        return Warehouse(Settings.from_env(env).warehouse)

    return make


def env_of(warehouse: Warehouse, home: Path) -> dict[str, str]:
    url = str(warehouse.target.duckdb_path) if warehouse.engine == "duckdb" else warehouse.target.url
    return {"HERALD_HOME": str(home), "HERALD_WAREHOUSE_URL": url}


# -- what a warehouse's own tables look like --------------------------------------------------


def describe(s: Session) -> dict[str, object]:
    """Every table of Herald's schemas: its columns in order (name, type, nullable) and primary key;
    on PostgreSQL also the secondary indexes."""
    schemas = ("herald_raw", "herald_ops", "marts", "analytics")
    _, rows = s.query(
        "select c.table_schema || '.' || c.table_name, c.column_name, c.data_type, c.is_nullable, "
        "c.numeric_precision, c.numeric_scale from information_schema.columns as c "
        "join information_schema.tables as t on t.table_schema = c.table_schema and t.table_name = c.table_name "
        "where t.table_type = 'BASE TABLE' and c.table_catalog = current_database() "
        "and c.table_schema in (?, ?, ?, ?) order by 1, c.ordinal_position",
        list(schemas),
    )
    tables: dict[str, dict[str, object]] = {}
    for table, column, type_, nullable, precision, scale in rows:
        shape = tables.setdefault(table, {"columns": [], "key": ()})
        shape["columns"].append((column, type_.lower(), nullable, precision, scale))  # type: ignore[attr-defined]
    if s.engine == "duckdb":
        _, keys = s.query(
            "select schema_name || '.' || table_name, constraint_column_names from duckdb_constraints() "
            "where database_name = current_database() and constraint_type = 'PRIMARY KEY'"
        )
        indexes: list[tuple] = []
    else:
        _, keys = s.query(
            "select tc.table_schema || '.' || tc.table_name, array_agg(k.column_name::text order by k.ordinal_position) "
            "from information_schema.table_constraints as tc join information_schema.key_column_usage as k "
            "on k.constraint_name = tc.constraint_name and k.table_schema = tc.table_schema "
            "where tc.constraint_type = 'PRIMARY KEY' group by 1"
        )
        _, indexes = s.query(
            "select schemaname || '.' || tablename, indexdef from pg_indexes "
            "where schemaname in ('herald_raw', 'herald_ops') and indexname not like '%_pkey' order by 1, 2"
        )
    for table, key in keys:
        if table in tables:
            tables[table]["key"] = tuple(key)
    return {"tables": tables, "indexes": indexes}


def row_counts(s: Session, tables: list[str]) -> dict[str, int]:
    return {t: int(s.scalar(f"select count(*) from {t}")) for t in tables}


@pytest.mark.parametrize("engine", ENGINES)
def test_the_head_of_the_migrations_is_schema_tables(engine: str, make_warehouse) -> None:
    """A column in TABLES without a migration (or the reverse) fails here: types, nullability,
    column order, primary keys and PostgreSQL's indexes are compared."""
    migrated, from_tables = make_warehouse(engine), make_warehouse(engine)
    steps = upgrade(migrated)
    assert [(s.migration.version, s.how) for s in steps] == [(v, "applied") for v in range(1, HEAD + 1)]
    with from_tables.session() as s:
        for statement in ddl_statements(engine):
            s.execute(statement)
    with migrated.session(read_only=True) as s:
        got = describe(s)
    with from_tables.session(read_only=True) as s:
        want = describe(s)
    assert got["tables"].pop(VERSION_TABLE)  # the runner's own table, beside the head schema
    assert sorted(got["tables"]) == OWN_TABLES
    for table in OWN_TABLES:
        assert got["tables"][table] == want["tables"][table], table
    assert got["indexes"] == want["indexes"]
    if engine == "postgres":
        assert len(got["indexes"]) == 5


# -- the previous release, with data in it -------------------------------------------------------


def fill_previous_release(s: Session) -> None:
    """Rows a release-1 warehouse holds: packets and their rows (JSON), campaigns with steps,
    branches and variants (one campaign gone from the configuration), the outbox, consent, credits,
    segment members."""
    s.execute(
        "insert into herald_ops.packets (packet_id, client_id, packet_type, file_name, file_path, status, "
        "received_at, updated_at, rows_in_file) values ('p1', ?, 'contacts', 'a.csv', '/z/a.csv', 'landed', ?, ?, 2)",
        [CLIENT, AT, AT],
    )
    for line in (1, 2):
        s.execute(
            "insert into herald_raw.packet_rows (packet_id, client_id, packet_type, line_number, row_data, landed_at) "
            "values ('p1', ?, 'contacts', ?, ?, ?)",
            [CLIENT, line, json.dumps({"Phone": f"(512) 555-010{line}", "Name": "Ann"}), AT],
        )
    for campaign, version in (("roof_check_offer", "v-roof"), ("storm_follow_up", "v-storm")):
        s.execute(
            "insert into herald_ops.campaigns (client_id, campaign, message_type, category, status, audience, "
            "trigger_type, loaded_at, config_version) values (?, ?, 'offer', 'marketing', 'active', 'homeowners', "
            "'schedule', ?, ?)",
            [CLIENT, campaign, AT, version],
        )
    steps = [("roof_check_offer", "offer", 1), ("roof_check_offer", "wait", 2), ("storm_follow_up", "hello", 1),
             ("retired_campaign", "only", 1)]  # fmt: skip
    for campaign, step, position in steps:
        s.execute(
            "insert into herald_ops.campaign_steps (client_id, campaign, step, position, anchor_minutes, channel) "
            "values (?, ?, ?, ?, 0, 'sms')",
            [CLIENT, campaign, step, position],
        )
    s.execute(
        "insert into herald_ops.campaign_branches (client_id, campaign, step, position, path, test) "
        "values (?, 'roof_check_offer', 'wait', 1, 'yes', 'else')",
        [CLIENT],
    )
    for campaign, variant in (("roof_check_offer", "a"), ("roof_check_offer", "b"), ("retired_campaign", "a")):
        s.execute(
            "insert into herald_ops.campaign_variants (client_id, campaign, step, variant, weight, bucket_from, "
            "bucket_to, sms_template) values (?, ?, 'offer', ?, 0.5, 0, 5000, 'offer.sms.j2')",
            [CLIENT, campaign, variant],
        )
    s.execute(
        "insert into herald_ops.outbox (message_key, client_id, campaign, step, variant, occurrence, contact_id, "
        "message_type, category, channel, to_address, send_after, status, attempts, enqueued_at, updated_at, "
        "headers) values ('k1', ?, 'roof_check_offer', 'offer', 'a', 'o1', 'c1', 'offer', 'marketing', 'sms', "
        "'+15125550101', ?, 'sent', 1, ?, ?, ?)",
        [CLIENT, AT, AT, AT, json.dumps({"X-Test": "1"})],
    )
    s.execute(
        "insert into herald_ops.consent_events (event_id, client_id, channel, address, kind, scope, source, "
        "occurred_at, recorded_at) values ('e1', ?, 'sms', '+15125550101', 'opt_in', 'all', 'packet', ?, ?)",
        [CLIENT, AT, AT],
    )
    s.execute(
        "insert into herald_ops.credit_ledger (entry_id, client_id, kind, amount, actor, created_at) "
        "values ('purchase:1', ?, 'purchase', 1000.25, 'cli:test', ?)",
        [CLIENT, AT],
    )
    s.execute(
        "insert into marts.segment_members (client_id, segment_name, contact_id, entered_at, snapshot_at) "
        "values (?, 'homeowners', 'c1', ?, ?)",
        [CLIENT, AT, AT],
    )


VERSIONED = ("herald_ops.campaign_steps", "herald_ops.campaign_branches", "herald_ops.campaign_variants")


def rows_of(s: Session, table: str, columns: str = "*") -> list[tuple]:
    return sorted(s.query(f"select {columns} from {table}")[1], key=repr)


@pytest.mark.parametrize("engine", ENGINES)
def test_the_previous_release_with_data_upgrades_to_the_head_losing_nothing(engine: str, make_warehouse) -> None:
    warehouse = make_warehouse(engine)
    upgrade(warehouse, target=1)
    with warehouse.session() as s:
        fill_previous_release(s)
    with warehouse.session(read_only=True) as s:
        tables_before = sorted(describe(s)["tables"])
        before = row_counts(s, tables_before)
        kept_columns = {t: ", ".join(c for c, *_ in describe(s)["tables"][t]["columns"]) for t in tables_before}
        contents_before = {t: rows_of(s, t, kept_columns[t]) for t in tables_before if t != VERSION_TABLE}
    assert before["herald_ops.campaign_steps"] == 4 and before["herald_raw.packet_rows"] == 2
    assert status(warehouse).current == 1

    steps = upgrade(warehouse)

    assert [(s.migration.label, s.how) for s in steps] == [(m.label, "applied") for m in known_migrations()[1:]]
    with warehouse.session(read_only=True) as s:
        after = row_counts(s, tables_before)
        # every table keeps every row, every old column keeps its values
        assert {t: n for t, n in after.items() if t != VERSION_TABLE} == {
            t: n for t, n in before.items() if t != VERSION_TABLE
        }
        for table, rows in contents_before.items():
            assert rows_of(s, table, kept_columns[table]) == rows, table
        # each step, branch and variant is its campaign's current version; a campaign gone: ''
        assert rows_of(s, "herald_ops.campaign_steps", "campaign, step, config_version") == sorted(
            [("retired_campaign", "only", ""), ("roof_check_offer", "offer", "v-roof"),
             ("roof_check_offer", "wait", "v-roof"), ("storm_follow_up", "hello", "v-storm")], key=repr)  # fmt: skip
        assert rows_of(s, "herald_ops.campaign_branches", "campaign, path, config_version") == [
            ("roof_check_offer", "yes", "v-roof")
        ]
        assert rows_of(s, "herald_ops.campaign_variants", "campaign, variant, config_version") == sorted(
            [("retired_campaign", "a", ""), ("roof_check_offer", "a", "v-roof"), ("roof_check_offer", "b", "v-roof")],
            key=repr,
        )
        assert s.scalar("select count(*) from herald_ops.campaign_versions") == 0
        assert s.scalar("select amount from herald_ops.credit_ledger") == Decimal("1000.2500")
        payload = s.scalar("select row_data from herald_raw.packet_rows where line_number = 2")
        assert (json.loads(payload) if isinstance(payload, str) else payload)["Phone"] == "(512) 555-0102"
        applied = s.query(f"select version, how from {VERSION_TABLE} order by 1")[1]
    assert applied == [(v, "applied") for v in range(1, HEAD + 1)]
    # the new primary key: another version of a step is a row of its own; the same version is not
    with warehouse.session() as s:
        s.execute(
            "insert into herald_ops.campaign_steps (client_id, campaign, step, position, anchor_minutes, "
            "config_version) values (?, 'roof_check_offer', 'offer', 1, 0, 'v-roof-2')",
            [CLIENT],
        )
    with pytest.raises(Exception, match=r"(?i)duplicate|primary key|unique"), warehouse.session() as s:
        s.execute(
            "insert into herald_ops.campaign_steps (client_id, campaign, step, position, anchor_minutes, "
            "config_version) values (?, 'roof_check_offer', 'offer', 1, 0, 'v-roof')",
            [CLIENT],
        )

    # twice is a no-op: nothing applied, the version rows and every table as they were
    with warehouse.session(read_only=True) as s:
        versions_before = s.query(f"select * from {VERSION_TABLE} order by version")[1]
        counts = row_counts(s, tables_before)
    assert upgrade(warehouse) == []
    warehouse.ensure_schema()
    with warehouse.session(read_only=True) as s:
        assert s.query(f"select * from {VERSION_TABLE} order by version")[1] == versions_before
        assert row_counts(s, tables_before) == counts


# -- nothing half-applied ---------------------------------------------------------------------------


def _breaks_midway(s: Session) -> None:
    """Adds a column, makes a table and a row, rebuilds a table with rows — then fails."""
    s.execute("alter table herald_ops.outbox add column doomed varchar")
    s.execute("create table herald_ops.doomed (x integer)")
    s.execute("insert into herald_ops.doomed values (1)")
    s.execute("update herald_ops.packets set status = 'doomed'")
    add_column(s, "herald_ops.clients", "doomed_too", "varchar not null", backfill="'x'", primary_key=("name",))
    s.execute("select * from herald_ops.no_such_table")


def _fails_in_its_backfill(s: Session) -> None:
    """DuckDB's rebuild fails after the rename, PostgreSQL's update after the add column."""
    add_column(s, "herald_ops.campaign_steps", "doomed", "integer not null", backfill="cast(t.step as integer)")


def extra(version: int, name: str, upgrade_: Callable[[Session], None]) -> Migration:
    return Migration(version, name, upgrade_.__doc__ or name, f"test-{name}", upgrade_)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("failing", [_breaks_midway, _fails_in_its_backfill])
def test_a_failing_migration_leaves_the_version_and_the_tables_as_they_were(
    engine: str, failing: Callable[[Session], None], make_warehouse
) -> None:
    warehouse = make_warehouse(engine)
    upgrade(warehouse)
    with warehouse.session() as s:
        s.execute(
            "insert into herald_ops.packets (packet_id, client_id, packet_type, file_name, file_path, status, "
            "received_at, updated_at) values ('p1', ?, 'contacts', 'a.csv', '/z/a.csv', 'landed', ?, ?)",
            [CLIENT, AT, AT],
        )
        s.execute(
            "insert into herald_ops.clients (client_id, name, time_zone, default_region, loaded_at) "
            "values (?, 'Summit', 'America/Chicago', 'US', ?)",
            [CLIENT, AT],
        )
        s.execute(
            "insert into herald_ops.campaign_steps (client_id, campaign, step, position, anchor_minutes, "
            "config_version) values (?, 'roof_check_offer', 'offer', 1, 0, 'v1')",
            [CLIENT],
        )
    with warehouse.session(read_only=True) as s:
        shape = describe(s)
        contents = {t: rows_of(s, t) for t in shape["tables"]}  # type: ignore[call-overload]

    migrations = [*known_migrations(), extra(HEAD + 1, "breaks", failing)]
    with pytest.raises(WarehouseError) as raised:
        upgrade(warehouse, migrations)
    assert f"migration {HEAD + 1:04d}_breaks failed" in str(raised.value)
    assert f"stays at version {HEAD}" in str(raised.value)

    with warehouse.session(read_only=True) as s:
        assert describe(s) == shape
        assert {t: rows_of(s, t) for t in shape["tables"]} == contents  # type: ignore[call-overload]
    assert status(warehouse, migrations).current == HEAD
    assert [m.version for m in status(warehouse, migrations).pending] == [HEAD + 1]


# -- a warehouse made before migrations -----------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_a_warehouse_made_before_migrations_is_stamped_then_upgraded(engine: str, make_warehouse) -> None:
    # the previous release's ensure_schema: the baseline's tables, no version table
    old = make_warehouse(engine)
    with old.session() as s:
        known_migrations()[0].upgrade(s)
        fill_previous_release(s)
        s.execute("drop table herald_ops.staff_alerts")  # older still: a table the baseline adds
    found = status(old)
    later = list(range(2, HEAD + 1))
    assert (found.pre_migration_version, found.current, [m.version for m in found.pending]) == (1, 1, later)
    steps = upgrade(old)
    assert [(s.migration.version, s.how) for s in steps] == [(1, "stamped"), *[(v, "applied") for v in later]]
    with old.session(read_only=True) as s:
        assert s.scalar("select count(*) from herald_ops.staff_alerts") == 0  # made by the stamp
        assert s.scalar("select count(*) from herald_ops.campaign_steps where config_version = 'v-roof'") == 2
        assert s.scalar("select count(*) from herald_raw.packet_rows") == 2

    # this code's ensure_schema before migrations (ADDED_COLUMNS applied): the head tables, no version table
    recent = make_warehouse(engine)
    with recent.session() as s:
        for statement in ddl_statements(engine):
            s.execute(statement)
    assert status(recent).pre_migration_version == HEAD
    recent.ensure_schema()
    with recent.session(read_only=True) as s:
        stamped = s.query(f"select version, how from {VERSION_TABLE} order by 1")[1]
        assert stamped == [(v, "stamped") for v in range(1, HEAD + 1)]
    assert status(recent).pending == []

    # a few tables by the head's DDL, as the dbt tests make them: stamped at the head, the rest made
    partial = make_warehouse(engine)
    with partial.session() as s:
        for statement in ddl_statements(engine):
            if statement.startswith("create schema") or " herald_ops.campaign_steps (" in statement:
                s.execute(statement)
    partial.ensure_schema()
    with partial.session(read_only=True) as s:
        assert s.query(f"select version, how from {VERSION_TABLE} order by 1")[1] == [
            (v, "stamped") for v in range(1, HEAD + 1)
        ]
        assert sorted(describe(s)["tables"]) == sorted([*OWN_TABLES, VERSION_TABLE])

    # tables no release made: refused, naming the difference
    odd = make_warehouse(engine)
    with odd.session() as s:
        for statement in ddl_statements(engine):
            s.execute(statement)
        s.execute("alter table herald_ops.packets add column surprise varchar")
    with pytest.raises(
        SchemaVersionError, match=r"match no version Herald knows \(herald_ops.packets has extra surprise"
    ):
        upgrade(odd)
    with odd.session(read_only=True) as s:
        assert s.scalar("select count(*) from information_schema.tables where table_name = 'schema_migrations'") == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_a_warehouse_newer_than_the_code_is_refused(engine: str, make_warehouse, tmp_path: Path) -> None:
    warehouse = make_warehouse(engine)
    upgrade(warehouse)
    with warehouse.session() as s:
        for version in range(HEAD + 1, HEAD + 4):  # three versions this code does not know
            s.execute(
                f"insert into {VERSION_TABLE} (version, name, checksum, applied_at, duration_ms, how) "
                "values (?, ?, 'x', ?, 1, 'applied')",
                [version, f"future_{version}", AT],
            )
    message = f"the warehouse is at version {HEAD + 3}, this Herald knows up to {HEAD}: upgrade Herald"
    with pytest.raises(SchemaVersionError, match=message):
        warehouse.ensure_schema()
    for command in ("status", "upgrade"):
        done = herald(env_of(warehouse, tmp_path / "home"), "db", command)
        assert done.returncode == 1, done.stdout + done.stderr
        assert message in done.stderr and "Traceback" not in done.stderr


# -- concurrent upgrades on PostgreSQL ------------------------------------------------------------

SLOW_MIGRATION = '''"""A slow change: a table and one row, after a pause (so upgraders overlap)."""

from herald.warehouse.connection import Session


def upgrade(s: Session) -> None:
    s.execute("select pg_sleep(0.5)")
    s.execute("create table herald_ops.slow_marker (applied_by integer)")
    s.execute("insert into herald_ops.slow_marker values (pg_backend_pid())")
'''

UPGRADER = """
import json, sys, time
from pathlib import Path
from herald.settings import parse_warehouse_url
from herald.warehouse.connection import Warehouse
from herald.warehouse.migrate import load_migrations, upgrade
sys.path.insert(0, sys.argv[1])
migrations = load_migrations(Path(sys.argv[1]) / "concurrent_migrations", "concurrent_migrations")
warehouse = Warehouse(parse_warehouse_url(sys.argv[2], Path(".")))
start = float(sys.argv[3])
time.sleep(max(0.0, start - time.time()))
steps = upgrade(warehouse, migrations)
print(json.dumps([s.migration.version for s in steps]))
"""


@pytest.mark.postgres
def test_concurrent_upgrades_on_postgres_apply_each_migration_once(make_warehouse, tmp_path: Path) -> None:
    """Four processes upgrade one empty database at the same moment: each migration (the version
    table's creation included) is applied by exactly one of them, and all four succeed."""
    package = tmp_path / "concurrent_migrations"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for migration in sorted(MIGRATIONS_DIR.glob("[0-9]*.py")):
        shutil.copy(migration, package / migration.name)
    (package / f"{HEAD + 1:04d}_slow.py").write_text(SLOW_MIGRATION)
    warehouse = make_warehouse("postgres")
    start = time.time() + 4.0  # every process has imported Herald by then
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", UPGRADER, str(tmp_path), warehouse.target.url, str(start)],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0, 0], [err for _, err in outputs]
    applied = [v for out, _ in outputs for v in json.loads(out)]
    assert sorted(applied) == list(range(1, HEAD + 2))  # each once, by one process or another
    with warehouse.session(read_only=True) as s:
        assert s.query(f"select version, how from {VERSION_TABLE} order by 1")[1] == [
            (v, "applied") for v in range(1, HEAD + 2)
        ]
        assert s.scalar("select count(*) from herald_ops.slow_marker") == 1


# -- the command line ------------------------------------------------------------------------------


def herald(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    return subprocess.run([sys.executable, "-m", "herald.cli", *args], env={**clean, **env, "COLUMNS": "200"},
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip


@pytest.mark.parametrize("engine", ENGINES)
def test_herald_db_status_and_upgrade(engine: str, make_warehouse, tmp_path: Path) -> None:
    warehouse = make_warehouse(engine)
    env = env_of(warehouse, tmp_path / "home")
    labels = [m.label for m in known_migrations()]

    shown = herald(env, "db", "status")
    assert shown.returncode == 0, shown.stderr
    assert f"version: 0 of {HEAD} — {HEAD} migrations pending: run `herald db upgrade`" in shown.stdout
    assert shown.stdout.count("pending") == HEAD + 1

    dry = herald(env, "db", "upgrade", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"would apply {HEAD} migrations:" in dry.stdout and all(label in dry.stdout for label in labels)
    assert status(warehouse).current == 0  # nothing applied

    done = herald(env, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("applied ")]
    assert [line.split()[1] for line in lines] == labels
    assert all(line.endswith(" ms") for line in lines)
    assert f"the warehouse is at version {HEAD}: {HEAD} migrations applied in" in done.stdout

    again = herald(env, "db", "upgrade")
    assert again.returncode == 0 and f"nothing to apply: at version {HEAD}" in again.stdout

    shown = herald(env, "db", "status")
    assert shown.returncode == 0, shown.stderr
    assert f"version: {HEAD} of {HEAD} — up to date" in shown.stdout
    for m in known_migrations():
        row = next(line for line in shown.stdout.splitlines() if f" {m.name} " in line)
        assert f"{m.version:04d}" in row and " applied " in row and " ms " in row, row
    assert "pending" not in shown.stdout


def test_an_unreachable_warehouse_is_one_clear_line(tmp_path: Path) -> None:
    env = {"HERALD_HOME": str(tmp_path / "home"), "HERALD_WAREHOUSE_URL": "postgresql://herald@127.0.0.1:1/nowhere"}
    for args in (("db", "status"), ("db", "upgrade"), ("db", "upgrade", "--dry-run")):
        done = herald(env, *args)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "error: cannot reach the PostgreSQL warehouse herald@127.0.0.1:1/nowhere:" in done.stderr
        assert "Connection refused" in done.stderr and "Traceback" not in done.stderr
