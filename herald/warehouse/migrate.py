"""The schema migration runner: brings Herald's own tables (``herald_raw``, ``herald_ops`` and the
two it writes into ``marts`` and ``analytics``) to the version this code knows, on DuckDB or
PostgreSQL.

Migrations are the numbered files in :mod:`herald.warehouse.migrations`. Each pending one runs in
its own transaction together with its row in ``herald_ops.schema_migrations``, so a failure leaves
the warehouse at the version before it, tables and all. On PostgreSQL every upgrading transaction
first takes an advisory lock, so two processes upgrading at once apply each migration once (the
second waits, then finds it applied); DuckDB allows one writing process per file, and a lock per
file does the same for threads of one process.

A warehouse made before migrations existed (Herald's tables, no version table) is recognised by
its columns and stamped at the version it matches, then upgraded. dbt's own models are not
versioned here: dbt rebuilds them.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from herald.warehouse.connection import Session, Warehouse, WarehouseError
from herald.warehouse.schema import ANALYTICS_SCHEMA, MARTS_SCHEMA, OPS_SCHEMA, RAW_SCHEMA, TABLES, ddl_statements

VERSION_TABLE = f"{OPS_SCHEMA}.schema_migrations"
MIGRATIONS_PACKAGE = "herald.warehouse.migrations"
FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.py$")
# pg_advisory_xact_lock key: the first 8 bytes of sha256("herald.schema_migrations"), as a signed bigint
LOCK_KEY = int.from_bytes(hashlib.sha256(b"herald.schema_migrations").digest()[:8], "big", signed=True)
# The versions a warehouse made before migrations existed can be at: the baseline (the release
# before config_version) and 0002 (what ensure_schema's ADDED_COLUMNS made of it).
PRE_MIGRATION_VERSIONS = (1, 2)
# Where Herald's own tables live (dbt's views and tables in marts/analytics are not Herald's).
OWN_SCHEMAS = (RAW_SCHEMA, OPS_SCHEMA, MARTS_SCHEMA, ANALYTICS_SCHEMA)

VERSION_TABLE_DDL = f"""
create table if not exists {VERSION_TABLE} (
    version integer not null primary key,
    name varchar not null,
    checksum varchar not null,
    applied_at timestamp not null,
    duration_ms bigint not null,
    how varchar not null
)"""
APPLIED, STAMPED = "applied", "stamped"  # how: run here, or found already made (a pre-migration warehouse)


class SchemaVersionError(WarehouseError):
    """The warehouse's recorded migrations do not fit this code (newer, or another branch's)."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str  # the file name's words: "baseline", "campaign_config_version"
    description: str  # the docstring's first line
    checksum: str  # sha256 of the file: an applied migration edited afterwards shows in `herald db status`
    upgrade: Callable[[Session], None] = field(repr=False)

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"


@dataclass(frozen=True)
class AppliedMigration:
    """One row of herald_ops.schema_migrations."""

    version: int
    name: str
    checksum: str
    applied_at: datetime
    duration_ms: int
    how: str  # applied | stamped

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"


@dataclass(frozen=True)
class SchemaStatus:
    where: str  # the warehouse, for messages (a path, or a URL without its password)
    exists: bool  # False: a DuckDB file not made yet
    applied: list[AppliedMigration]
    pending: list[Migration]
    known: list[Migration]
    pre_migration_version: int | None  # Herald's tables without a version table: the version they match

    @property
    def current(self) -> int:
        """The version the warehouse is at (0: none of Herald's tables yet)."""
        if self.pre_migration_version is not None:
            return self.pre_migration_version
        return max((a.version for a in self.applied), default=0)

    @property
    def head(self) -> int:
        return max((m.version for m in self.known), default=0)

    @property
    def changed(self) -> list[int]:
        """Applied migrations whose file differs from what was applied (edited since: write a new one)."""
        files = {m.version: m.checksum for m in self.known}
        return [a.version for a in self.applied if a.version in files and files[a.version] != a.checksum]


@dataclass(frozen=True)
class UpgradeStep:
    """What an upgrade did: a migration applied (with its time), or versions stamped."""

    migration: Migration
    how: str  # applied | stamped
    duration_ms: int


def describe_target(warehouse: Warehouse) -> str:
    from herald.settings import redact_url

    t = warehouse.target
    if t.engine == "duckdb":
        return str(t.duckdb_path)
    return redact_url(t.url)


@functools.cache
def known_migrations() -> tuple[Migration, ...]:
    """The migrations in herald/warehouse/migrations, by version; a gap or a repeated number is an error."""
    package = importlib.import_module(MIGRATIONS_PACKAGE)
    folder = Path(package.__file__ or "").parent
    return tuple(load_migrations(folder, MIGRATIONS_PACKAGE))


def load_migrations(folder: Path, package: str) -> list[Migration]:
    found = []
    for path in sorted(folder.glob("[0-9]*.py")):
        match = FILE_NAME.match(path.name)
        if not match:
            raise SchemaVersionError(f"{path}: a migration file is named NNNN_what_it_does.py (lower case)")
        module = importlib.import_module(f"{package}.{path.stem}")
        upgrade = getattr(module, "upgrade", None)
        if not callable(upgrade):
            raise SchemaVersionError(f"{path}: a migration defines upgrade(s: Session) -> None")
        doc = (module.__doc__ or "").strip()
        if not doc:
            raise SchemaVersionError(f"{path}: a migration's docstring says what it changes")
        found.append(
            Migration(
                version=int(match.group(1)),
                name=match.group(2),
                description=doc.splitlines()[0],
                checksum=hashlib.sha256(path.read_bytes()).hexdigest(),
                upgrade=upgrade,
            )
        )
    check_sequence(found)
    return found


def check_sequence(migrations: Sequence[Migration]) -> None:
    """Versions are 1, 2, 3 ... with no gap and no number used twice."""
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        labels = ", ".join(m.label for m in migrations)
        raise SchemaVersionError(
            f"the migrations must be numbered 0001, 0002, ... without gaps or repeats; found {labels}"
        )


# -- reading the warehouse ------------------------------------------------------------------


def _has_version_table(s: Session) -> bool:
    schema, name = VERSION_TABLE.split(".")
    return bool(
        s.scalar(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, name],
        )
    )


def _read_applied(s: Session) -> list[AppliedMigration] | None:
    """The version table's rows by version, or None when there is no version table."""
    if not _has_version_table(s):
        return None
    _, rows = s.query(f"select version, name, checksum, applied_at, duration_ms, how from {VERSION_TABLE} order by 1")
    return [AppliedMigration(int(r[0]), r[1], r[2], r[3], int(r[4]), r[5]) for r in rows]


def own_table_columns(s: Session, tables: Sequence[str] | None = None) -> dict[str, list[str]]:
    """Columns of Herald's own tables that exist in the warehouse, in order (``tables``: those of
    the head schema when not given)."""
    names = set(tables) if tables is not None else {t for t, _, _ in TABLES}
    marks = ", ".join("?" for _ in OWN_SCHEMAS)
    _, rows = s.query(
        "select c.table_schema, c.table_name, c.column_name from information_schema.columns as c "
        "join information_schema.tables as t on t.table_schema = c.table_schema and t.table_name = c.table_name "
        "and t.table_catalog = c.table_catalog "
        f"where c.table_catalog = current_database() and c.table_schema in ({marks}) "
        "and t.table_type = 'BASE TABLE' order by c.table_schema, c.table_name, c.ordinal_position",
        list(OWN_SCHEMAS),
    )
    found: dict[str, list[str]] = {}
    for schema, table, column in rows:
        if f"{schema}.{table}" in names:
            found.setdefault(f"{schema}.{table}", []).append(column)
    return found


@functools.cache
def columns_at(version: int, migrations: tuple[Migration, ...]) -> dict[str, frozenset[str]]:
    """Herald's tables and their columns after migrations 1..version, found by applying them to
    an in-memory DuckDB (column names are the same on both engines)."""
    import duckdb

    conn = duckdb.connect(":memory:")
    try:
        s = Session("duckdb", conn)
        for m in migrations[:version]:
            m.upgrade(s)
        marks = ", ".join("?" for _ in OWN_SCHEMAS)
        _, rows = s.query(
            "select table_schema, table_name, column_name from information_schema.columns "
            f"where table_schema in ({marks})",
            list(OWN_SCHEMAS),
        )
    finally:
        conn.close()
    found: dict[str, set[str]] = {}
    for schema, table, column in rows:
        found.setdefault(f"{schema}.{table}", set()).add(column)
    return {t: frozenset(c) for t, c in found.items()}


def tables_version() -> int:
    """The version ``schema.TABLES`` describes: the last migration's (the tests hold them equal)."""
    return len(known_migrations())


def pre_migration_version(s: Session, migrations: Sequence[Migration]) -> int | None:
    """For a warehouse without a version table: None when it has none of Herald's tables (a new
    one), else the version its tables match — every table present must have exactly that
    version's columns.

    Tried in turn: the versions a release before migrations made (the latest first), then the
    head (a warehouse made by ``ddl_statements``, as tests make them). A table may be missing if
    stamping can make it in that version's shape: at the head any table (from ``TABLES``),
    otherwise one the baseline makes unchanged. No match is an error naming the differences."""
    if not own_table_columns(s):
        return None
    known = tuple(migrations)
    every = set().union(*(columns_at(v, known) for v in range(1, len(known) + 1)))
    present = own_table_columns(s, sorted(every))
    baseline = columns_at(1, known)
    head = tables_version()
    candidates = sorted((v for v in PRE_MIGRATION_VERSIONS if v <= len(known)), reverse=True)
    candidates += [head] if head not in candidates and head <= len(known) else []
    closest: list[str] = []
    for version in candidates:
        expected = columns_at(version, known)
        problems = []
        for table in sorted(every):
            want, have = expected.get(table), present.get(table)
            if have is None:
                if want is not None and version != head and baseline.get(table) != want:
                    problems.append(f"{table} is missing")
            elif want is None:
                problems.append(f"{table} should not exist yet")
            elif set(have) != want:
                extra, missing = sorted(set(have) - want), sorted(want - set(have))
                parts = [f"extra {', '.join(extra)}"] if extra else []
                parts += [f"no {', '.join(missing)}"] if missing else []
                problems.append(f"{table} has {' and '.join(parts)}")
        if not problems:
            return version
        if not closest or len(problems) < len(closest):
            closest = problems
    raise SchemaVersionError(
        "the warehouse has Herald's tables but no version table, and they match no version Herald "
        f"knows ({'; '.join(closest[:5])}): restore a backup made by a released Herald, or recreate the warehouse"
    )


def _make_missing_tables(s: Session, version: int, known: Sequence[Migration]) -> None:
    """Stamping: the tables a pre-migration warehouse lacks, in the shape of ``version`` (all of
    them ``if not exists``: the head's DDL, or the baseline run again)."""
    if version == tables_version():
        for statement in ddl_statements(s.engine):
            s.execute(statement)
    else:
        known[0].upgrade(s)


def check_compatible(applied: Sequence[AppliedMigration], migrations: Sequence[Migration]) -> None:
    """A warehouse newer than the code, or with a migration of the same number but another name
    (two branches took the same number), is an error: upgrading Herald is the fix."""
    head = max((m.version for m in migrations), default=0)
    at = max((a.version for a in applied), default=0)
    if at > head:
        raise SchemaVersionError(f"the warehouse is at version {at}, this Herald knows up to {head}: upgrade Herald")
    by_version = {m.version: m for m in migrations}
    for a in applied:
        m = by_version[a.version]
        if m.name != a.name:
            raise SchemaVersionError(
                f"migration {a.version:04d} is {a.label} in the warehouse but {m.label} in this Herald: "
                "two changes took the same number; renumber the one not yet released"
            )
    missing = sorted(set(range(1, at + 1)) - {a.version for a in applied})
    if missing:
        raise SchemaVersionError(
            f"the warehouse records version {at} but not {', '.join(f'{v:04d}' for v in missing)}: "
            f"{VERSION_TABLE} was edited by hand"
        )


def status(warehouse: Warehouse, migrations: Sequence[Migration] | None = None) -> SchemaStatus:
    """Where the warehouse stands: applied, pending, or a pre-migration warehouse's version.
    Writes nothing (a DuckDB file not made yet is version 0)."""
    known = list(migrations if migrations is not None else known_migrations())
    where = describe_target(warehouse)
    path = warehouse.target.duckdb_path
    if warehouse.engine == "duckdb" and path is not None and not path.exists():
        return SchemaStatus(where, False, [], known, known, None)
    with warehouse.session(read_only=True) as s:
        applied = _read_applied(s)
        legacy = pre_migration_version(s, known) if applied is None else None
    applied = applied or []
    check_compatible(applied, known)
    done = {a.version for a in applied} | set(range(1, (legacy or 0) + 1))
    return SchemaStatus(where, True, applied, [m for m in known if m.version not in done], known, legacy)


# -- upgrading ---------------------------------------------------------------------------------

_process_locks: dict[str, threading.Lock] = {}
_process_locks_guard = threading.Lock()


def _process_lock(warehouse: Warehouse) -> threading.Lock:
    """One lock per warehouse in this process: DuckDB's file lock keeps other processes out, not
    other threads, whose catalog changes would conflict."""
    with _process_locks_guard:
        return _process_locks.setdefault(warehouse.target.url, threading.Lock())


def _record(s: Session, m: Migration, how: str, duration_ms: int) -> None:
    s.execute(
        f"insert into {VERSION_TABLE} (version, name, checksum, applied_at, duration_ms, how) "
        "values (?, ?, ?, ?, ?, ?)",
        [m.version, m.name, m.checksum, datetime.now(UTC).replace(tzinfo=None), duration_ms, how],
    )


def upgrade(
    warehouse: Warehouse,
    migrations: Sequence[Migration] | None = None,
    target: int | None = None,
    on_step: Callable[[UpgradeStep], None] | None = None,
) -> list[UpgradeStep]:
    """Apply every pending migration (up to ``target``), each in its own transaction; returns
    what was done, in order (nothing when the warehouse is at the head). ``on_step`` hears of
    each step as soon as it is committed."""
    known = list(migrations if migrations is not None else known_migrations())
    check_sequence(known)
    stop = len(known) if target is None else target
    steps: list[UpgradeStep] = []
    with _process_lock(warehouse):
        while True:
            done = _upgrade_one(warehouse, known, stop)
            if not done:
                return steps
            for step in done:
                steps.append(step)
                if on_step is not None:
                    on_step(step)


def _upgrade_one(warehouse: Warehouse, known: list[Migration], stop: int) -> list[UpgradeStep]:
    """One transaction: stamp a pre-migration warehouse, or apply the next pending migration.
    Returns the steps committed (empty: nothing left to do)."""
    with warehouse.session() as s:
        applied = _read_applied(s)
        if applied is not None:
            check_compatible(applied, known)
            if _next(applied, known, stop) is None:
                return []  # at the head: the usual case, without taking the lock
        if s.engine == "postgres":
            # held until this transaction ends; whoever waited re-reads what the holder did
            s.execute("select pg_advisory_xact_lock(?)", [LOCK_KEY])
            applied = _read_applied(s)
        if applied is None:
            legacy = pre_migration_version(s, known)
            s.execute(f"create schema if not exists {OPS_SCHEMA}")
            s.execute(VERSION_TABLE_DDL)
            if legacy is not None:
                started = time.perf_counter()
                _make_missing_tables(s, legacy, known)
                elapsed = round((time.perf_counter() - started) * 1000)
                for m in known[:legacy]:
                    _record(s, m, STAMPED, elapsed if m.version == 1 else 0)
                return [UpgradeStep(m, STAMPED, elapsed if m.version == 1 else 0) for m in known[:legacy]]
            applied = []
        check_compatible(applied, known)
        migration = _next(applied, known, stop)
        if migration is None:
            return []
        started = time.perf_counter()
        try:
            migration.upgrade(s)
        except Exception as exc:
            raise WarehouseError(
                f"migration {migration.label} failed on {describe_target(warehouse)}, nothing of it was applied "
                f"(the warehouse stays at version {max((a.version for a in applied), default=0)}): {exc}"
            ) from exc
        elapsed = round((time.perf_counter() - started) * 1000)
        _record(s, migration, APPLIED, elapsed)
    return [UpgradeStep(migration, APPLIED, elapsed)]


def _next(applied: Sequence[AppliedMigration], known: Sequence[Migration], stop: int) -> Migration | None:
    done = {a.version for a in applied}
    return next((m for m in known if m.version not in done and m.version <= stop), None)
