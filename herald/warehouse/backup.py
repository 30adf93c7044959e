"""Backups of a Herald deployment: the whole warehouse, and the state under ``HERALD_HOME`` that
a restored deployment needs to resume.

A backup is one folder::

    manifest.json        engine, Herald schema version, created_at, every table's row count,
                         the SHA-256 of every other file (written last: no manifest, no backup)
    warehouse.dump       PostgreSQL: ``pg_dump --format=custom`` of the warehouse database
    warehouse/           DuckDB: ``EXPORT DATABASE … (FORMAT parquet)``
    comments.json        DuckDB: table, view and column comments (dbt's descriptions), which
                         EXPORT DATABASE leaves out
    home/                landing files not loaded yet, ``secret_key``, ``ingest_api_keys/``,
                         ``portal.sqlite3`` (DuckDB: the portal's accounts and audit spool,
                         copied with SQLite's online backup inside the warehouse's read lock)

**Consistency.** PostgreSQL: the row counts are taken in a repeatable-read transaction whose
snapshot ``pg_dump --snapshot`` dumps, so the manifest describes exactly the dump. DuckDB: the
counts and the export are made on one read-only connection, which holds DuckDB's shared lock —
no run can write the file meanwhile (a writer waits; see :mod:`herald.warehouse.connection`).
The landing files are copied *before* the snapshot: loading a landing file is idempotent
(deterministic ids), so a file in both is harmless, and none can fall between them.

**Restore never half-applies.** PostgreSQL: the drop of what is there, the dump's script and a
check of every table's row count against the manifest run in one ``psql --single-transaction``;
any error rolls all of it back. DuckDB: ``IMPORT DATABASE`` needs an empty database, so the
backup is imported into a new file beside the warehouse, checked, and swapped in with one atomic
rename while a read-only connection on the old file keeps writers out; the old file stays
(``<stem>.before-restore-<time>.duckdb``) for the operator to delete.

Passwords go to ``pg_dump``, ``pg_restore`` and ``psql`` through ``PGPASSWORD`` in their
environment, never on a command line, in the manifest or in a message.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from herald.settings import ENV_WAREHOUSE_URL, Settings, WarehouseTarget, redact_url
from herald.warehouse.connection import LOCK_RETRY_SECONDS, Session, Warehouse, WarehouseError

FORMAT = "herald-backup/1"
MANIFEST = "manifest.json"
PG_DUMP_FILE = "warehouse.dump"
DUCKDB_EXPORT_DIR = "warehouse"
COMMENTS_FILE = "comments.json"
HOME_DIR = "home"
LANDING = "landing"
HOME_FILES = ("secret_key",)  # single files under HERALD_HOME a backup keeps
HOME_FOLDERS = ("ingest_api_keys",)  # folders under HERALD_HOME a backup keeps whole
LANDING_SUFFIX = ".jsonl"
# a landing file loaded after the backup's landing copy began is not in the backed-up warehouse:
# a restore puts it back to be loaded again (idempotent); the margin allows for clock steps
REQUEUE_MARGIN_SECONDS = 60
MIGRATIONS_TABLE = ("herald_ops", "schema_migrations")
SEGMENT_ROLE_PREFIX = "herald_seg_"
# PostgreSQL: the clients' segment schemas (herald/warehouse/segment_roles.py) are left out of a
# backup. They hold only views over marts and a function owned by the client's role, which a
# non-superuser cannot give back to that role in a restore; Herald rebuilds them before the
# client's next segment evaluation.
SEGMENT_SCHEMAS = "seg_*"  # pg_dump's pattern
_NOT_SEGMENT_SCHEMA = "not like 'seg\\_%'"
PG_SYSTEM_SCHEMAS = ("pg_catalog", "information_schema")
ENGINE_NAMES = {"duckdb": "DuckDB", "postgres": "PostgreSQL"}
CHUNK = 1 << 20

Progress = Callable[[str, int | None, int | None], None]
"""``progress(description, done, total)``: what is happening; ``total`` None when unknown."""


def _no_progress(description: str, done: int | None, total: int | None) -> None:
    return None


class BackupError(RuntimeError):
    """A backup or restore could not be made; the message says what, where and what to do."""


@dataclass
class Manifest:
    engine: str
    created_at: str  # ISO 8601, UTC
    schema_version: Any  # max(version) of herald_ops.schema_migrations, or None
    tables: dict[str, int]  # "schema.table" → rows
    files: dict[str, str]  # path inside the backup → SHA-256
    source: str  # the warehouse it was taken from (password masked)
    herald_version: str | None = None
    roles: list[str] = field(default_factory=list)  # PostgreSQL: roles owning or granted objects
    home: dict[str, Any] = field(default_factory=dict)  # HERALD_HOME state: files, landing_copied_at
    format: str = FORMAT

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2, sort_keys=True, default=str) + "\n"


@dataclass(frozen=True)
class TableCheck:
    table: str
    in_backup: int
    restored: int

    @property
    def ok(self) -> bool:
        return self.in_backup == self.restored


@dataclass
class RestoreReport:
    manifest: Manifest
    tables: list[TableCheck]
    kept: Path | None = None  # DuckDB: the warehouse file as it was before the restore
    landing_restored: int = 0  # landing files of the backup put back to be loaded
    landing_requeued: int = 0  # files loaded after the backup, put back to be loaded again
    home_restored: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# -- what the warehouse holds ----------------------------------------------------------------


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _qualified(table: str) -> str:
    schema, name = table.split(".", 1)
    return f"{_ident(schema)}.{_ident(name)}"


def list_tables(session: Session) -> list[str]:
    """Every base table of the warehouse, in every schema but the engine's own, as ``schema.table``."""
    if session.engine == "duckdb":
        sql = (
            "select schema_name, table_name from duckdb_tables() "
            "where database_name = current_database() and not temporary order by 1, 2"
        )
    else:
        system = ", ".join(f"'{s}'" for s in PG_SYSTEM_SCHEMAS)
        sql = (
            "select n.nspname, c.relname from pg_class as c join pg_namespace as n on n.oid = c.relnamespace "
            f"where c.relkind in ('r', 'p') and n.nspname not in ({system}) "
            "and n.nspname not like 'pg\\_toast%' and n.nspname not like 'pg\\_temp%' "
            f"and n.nspname {_NOT_SEGMENT_SCHEMA} order by 1, 2"
        )
    _, rows = session.query(sql)
    return [f"{schema}.{name}" for schema, name in rows]


def row_counts(session: Session) -> dict[str, int]:
    """``schema.table`` → rows, for every base table (:func:`list_tables`)."""
    return {t: int(session.scalar(f"select count(*) from {_qualified(t)}")) for t in list_tables(session)}


def tables_with_rows(session: Session) -> list[str]:
    return [t for t in list_tables(session) if session.scalar(f"select exists (select 1 from {_qualified(t)})")]


def schema_version(session: Session) -> Any:
    """The highest version recorded by the migrations table, or None when there is none."""
    schema, name = MIGRATIONS_TABLE
    has_version = session.scalar(
        "select count(*) from information_schema.columns where table_schema = ? and table_name = ? "
        "and column_name = 'version'",
        [schema, name],
    )
    if not has_version:
        return None
    return session.scalar(f"select max(version) from {_ident(schema)}.{_ident(name)}")


def _herald_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("herald")
    except PackageNotFoundError:
        return None


def _describe(target: WarehouseTarget) -> str:
    return str(target.duckdb_path) if target.engine == "duckdb" else redact_url(target.url)


# -- files --------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _checksums(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): _sha256(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def _copy_home_state(home: Path, dest: Path) -> list[str]:
    """Copies what a deployment needs to resume from HERALD_HOME into ``dest``: landing files
    waiting to be loaded (replies, provider events, clicks — a waiting file may be an unapplied
    STOP), the link-signing ``secret_key``, the ingest API key hashes and the portal's own store
    (its accounts and audit spool, on the embedded DuckDB). Returns their paths
    relative to HERALD_HOME."""
    copied: list[str] = []

    def keep(path: Path) -> None:
        relative = path.relative_to(home)
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copy2(path, target)
        except FileNotFoundError:  # loaded and moved away meanwhile: it is in the warehouse
            return
        copied.append(relative.as_posix())

    landing = home / LANDING
    if landing.is_dir():
        for kind in sorted(p for p in landing.iterdir() if p.is_dir()):
            for path in sorted(kind.glob(f"*{LANDING_SUFFIX}")):
                if not path.name.startswith("."):
                    keep(path)
    for name in HOME_FILES:
        if (home / name).is_file():
            keep(home / name)
    for name in HOME_FOLDERS:
        if (home / name).is_dir():
            for path in sorted((home / name).rglob("*")):
                if path.is_file():
                    keep(path)
    copied += _copy_portal_store(home, dest)
    return copied


def _copy_portal_store(home: Path, dest: Path) -> list[str]:
    """The portal's own store (accounts, audit spool) beside the embedded warehouse
    (herald/portal/store.py), copied through SQLite's online backup: a consistent copy even
    while the server writes it (a file copy of a database in WAL mode is not)."""
    import sqlite3
    from contextlib import closing

    from herald.portal.store import STORE_FILE

    store = home / STORE_FILE
    if not store.is_file():
        return []
    target = dest / STORE_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(store, timeout=30)) as source, closing(sqlite3.connect(target)) as copy:
        source.backup(copy)
    return [STORE_FILE]


@contextmanager
def _partial_folder(dest: Path) -> Iterator[Path]:
    """A hidden folder beside ``dest`` renamed to ``dest`` only when the block succeeds, so a
    failed or interrupted backup never looks like a backup."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(f"{dest} already exists and is not an empty folder: choose a new backup folder")
    if not dest.parent.is_dir():
        raise BackupError(f"{dest.parent} is not a folder: create it first, or choose another place for the backup")
    partial = dest.parent / f".{dest.name}.partial-{uuid.uuid4().hex[:8]}"
    partial.mkdir(mode=0o700)
    try:
        yield partial
        if dest.exists():
            dest.rmdir()
        partial.rename(dest)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


# -- backup -------------------------------------------------------------------------------------


def create_backup(
    settings: Settings,
    dest: Path,
    progress: Progress = _no_progress,
    lock_wait_seconds: float = LOCK_RETRY_SECONDS,
) -> Manifest:
    """Back up the configured warehouse and HERALD_HOME's state into the new folder ``dest``."""
    dest = dest.expanduser().resolve()
    target = settings.warehouse
    with _partial_folder(dest) as partial:
        if target.engine == "duckdb":
            manifest = _backup_duckdb(settings, partial, progress, lock_wait_seconds)
        else:
            manifest = _backup_postgres(settings, partial, progress)
        progress("checksums", None, None)
        manifest.files = _checksums(partial)
        (partial / MANIFEST).write_text(manifest.to_json())
    return manifest


def _now() -> datetime:
    # the real time, not herald.clock's (a demo's simulated clock): it is compared with file times
    return datetime.now(UTC)


def _new_manifest(settings: Settings, session: Session, started: datetime, home_files: list[str]) -> Manifest:
    return Manifest(
        engine=settings.warehouse.engine,
        created_at=started.isoformat(),
        schema_version=schema_version(session),
        tables=row_counts(session),
        files={},
        source=_describe(settings.warehouse),
        herald_version=_herald_version(),
        home={"files": home_files, "landing_copied_at": started.isoformat()},
    )


def _backup_duckdb(settings: Settings, partial: Path, progress: Progress, lock_wait_seconds: float) -> Manifest:
    warehouse = Warehouse(settings.warehouse)
    progress("waiting for the warehouse (no run may write it during the export)", None, None)
    try:
        with warehouse.session(read_only=True, lock_wait_seconds=lock_wait_seconds) as s:
            started = _now()
            home_files = _copy_home_state(settings.home, partial / HOME_DIR)
            progress("counting rows", None, None)
            manifest = _new_manifest(settings, s, started, home_files)
            (partial / COMMENTS_FILE).write_text(json.dumps(_duckdb_comments(s), indent=1) + "\n")
            progress(f"exporting {len(manifest.tables)} tables (parquet)", None, None)
            export = partial / DUCKDB_EXPORT_DIR
            s.execute(f"export database '{_sql_text(str(export))}' (format parquet)")
    except WarehouseError as exc:
        raise BackupError(str(exc)) from None
    return manifest


def _sql_text(value: str) -> str:
    return value.replace("'", "''")


def _duckdb_comments(session: Session) -> list[str]:
    """COMMENT ON statements for every commented table, view and column (dbt's descriptions)."""
    statements: list[str] = []
    _, rows = session.query(
        "select 'table', schema_name, table_name, comment from duckdb_tables() "
        "where database_name = current_database() and comment is not null "
        "union all select 'view', schema_name, view_name, comment from duckdb_views() "
        "where database_name = current_database() and not internal and comment is not null"
    )
    for kind, schema, name, comment in rows:
        statements.append(f"comment on {kind} {_ident(schema)}.{_ident(name)} is '{_sql_text(comment)}'")
    _, rows = session.query(
        "select schema_name, table_name, column_name, comment from duckdb_columns() "
        "where database_name = current_database() and not internal and comment is not null"
    )
    for schema, name, column, comment in rows:
        statements.append(
            f"comment on column {_ident(schema)}.{_ident(name)}.{_ident(column)} is '{_sql_text(comment)}'"
        )
    return statements


def _pg_env(target: WarehouseTarget) -> dict[str, str]:
    """The connection for pg_dump / pg_restore / psql: libpq's variables, the password among them
    (never an argument: arguments are visible to every user of the machine)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(
        PGHOST=target.pg_host,
        PGPORT=str(target.pg_port),
        PGUSER=target.pg_user,
        PGDATABASE=target.pg_database,
        PGAPPNAME="herald-backup",
        PGCONNECT_TIMEOUT="10",
    )
    if target.pg_password:
        env["PGPASSWORD"] = target.pg_password
    return env


def _tool(name: str) -> str:
    found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if not found:
        raise BackupError(
            f"{name} was not found on PATH: install the PostgreSQL client tools of the server's version "
            "(Debian: apt-get install postgresql-client)"
        )
    return found


def _roles(session: Session) -> list[str]:
    """Roles that own objects of the database or are granted privileges on them."""
    system = ", ".join(f"'{s}'" for s in PG_SYSTEM_SCHEMAS)
    mine = f"n.nspname not in ({system}) and n.nspname not like 'pg\\_%' and n.nspname {_NOT_SEGMENT_SCHEMA}"
    _, rows = session.query(
        f"""
        with acls as (
            select c.relowner as owner, c.relacl as acl from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where {mine}
            union all select p.proowner, p.proacl from pg_proc p join pg_namespace n on n.oid = p.pronamespace
            where {mine}
            union all select n.nspowner, n.nspacl from pg_namespace n where {mine}
        ), roles as (
            select owner as oid from acls
            union select (aclexplode(acl)).grantee from acls where acl is not null
        )
        select distinct rolname from roles join pg_roles r on r.oid = roles.oid order by 1
        """
    )
    return [str(r[0]) for r in rows]


def _backup_postgres(settings: Settings, partial: Path, progress: Progress) -> Manifest:
    import psycopg2
    from psycopg2.extensions import ISOLATION_LEVEL_REPEATABLE_READ

    target = settings.warehouse
    pg_dump = _tool("pg_dump")
    started = _now()
    home_files = _copy_home_state(settings.home, partial / HOME_DIR)  # before the snapshot: see the module doc
    try:
        conn = Warehouse(target)._connect(read_only=True)
    except psycopg2.Error as exc:
        raise BackupError(f"cannot connect to the warehouse {_describe(target)}: {str(exc).strip()}") from None
    try:
        conn.set_session(isolation_level=ISOLATION_LEVEL_REPEATABLE_READ, readonly=True)
        session = Session("postgres", conn)
        snapshot = session.scalar("select pg_export_snapshot()")
        progress("counting rows", None, None)
        manifest = _new_manifest(settings, session, started, home_files)
        manifest.roles = _roles(session)
        command = [pg_dump, "--format=custom", "--verbose", "--no-password", f"--snapshot={snapshot}"]
        command += [f"--exclude-schema={SEGMENT_SCHEMAS}"]
        command += [f"--file={partial / PG_DUMP_FILE}"]
        _run_with_progress(
            command, _pg_env(target), "dumping", len(manifest.tables), r'dumping contents of table "(.+)"', progress
        )
        conn.rollback()  # the snapshot was needed until pg_dump finished
    finally:
        conn.close()
    return manifest


def _follow(stream: Any, what: str, total: int, pattern: str, progress: Progress) -> list[str]:
    """Reads a PostgreSQL tool's verbose standard error to its end, advancing ``progress`` on
    each line matching ``pattern``; returns the other lines (its errors among them)."""
    done, others = 0, []
    progress(what, done, total)
    for line in stream:
        found = re.search(pattern, line)
        if found:
            done += 1
            progress(f"{what} {found.group(1)}", min(done, total), total)
        else:
            others.append(line.rstrip())
    progress(what, total, total)
    return others


def _errors(tool: str, lines: list[str], code: int) -> str:
    """What a failed tool said: its error lines (with their details), else its last lines."""
    picked = [
        line for line in lines if re.search(r"\b(error|fatal|detail|hint|context)\b", line, re.IGNORECASE)
    ] or lines[-8:]
    return f"{tool} failed (exit status {code}):\n" + "\n".join(picked[-12:])


def _run_with_progress(
    command: list[str], env: dict[str, str], what: str, total: int, pattern: str, progress: Progress
) -> None:
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    lines = _follow(process.stderr, what, total, pattern, progress)
    if process.wait() != 0:
        raise BackupError(_errors(Path(command[0]).name, lines, process.returncode))


# -- reading a backup ---------------------------------------------------------------------------


def read_backup(src: Path) -> Manifest:
    """The backup's manifest (its files are checked by :func:`check_files`)."""
    src = src.expanduser()
    if not src.exists():
        raise BackupError(f"{src}: no such backup folder")
    if not src.is_dir():
        raise BackupError(f"{src} is not a backup folder (a backup is the folder `herald backup` made)")
    path = src / MANIFEST
    if not path.is_file():
        raise BackupError(
            f"{path} is missing: {src} is not a complete Herald backup (the manifest is written last; "
            "a backup without one was interrupted)"
        )
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        if data.get("format") != FORMAT:
            raise BackupError(f"{path}: format {data.get('format')!r} is not {FORMAT!r}, the one this Herald reads")
        manifest = Manifest(**data)
    except (ValueError, TypeError) as exc:
        raise BackupError(f"{path} is not a readable backup manifest: {exc}") from None
    if manifest.engine not in ENGINE_NAMES:
        raise BackupError(f"{path}: engine {manifest.engine!r} is not one Herald knows (duckdb, postgres)")
    return manifest


def check_files(src: Path, manifest: Manifest) -> None:
    """Raises unless every file the manifest names is in ``src``, unchanged."""
    path = src / MANIFEST
    expected = PG_DUMP_FILE if manifest.engine == "postgres" else f"{DUCKDB_EXPORT_DIR}/load.sql"
    if expected not in manifest.files:
        raise BackupError(f"{path} names no {expected}: the backup is incomplete")
    for name, digest in sorted(manifest.files.items()):
        file = src / name
        if not file.is_file():
            raise BackupError(f"{file} is missing from the backup: it cannot be restored")
        if _sha256(file) != digest:
            raise BackupError(f"{file} does not match its checksum in {MANIFEST}: the backup is damaged")


# -- restore ------------------------------------------------------------------------------------


def restore_backup(
    settings: Settings,
    src: Path,
    force: bool = False,
    progress: Progress = _no_progress,
    lock_wait_seconds: float = LOCK_RETRY_SECONDS,
) -> RestoreReport:
    """Replace the configured warehouse with the backup in ``src`` (``force`` when it holds rows),
    check every table's row count, then put back HERALD_HOME's state."""
    src = src.expanduser().resolve()
    progress("checking the backup", None, None)
    manifest = read_backup(src)
    target = settings.warehouse
    if manifest.engine != target.engine:
        raise BackupError(
            f"{src} is a backup of a {ENGINE_NAMES[manifest.engine]} warehouse and the configured warehouse "
            f"({ENV_WAREHOUSE_URL}: {_describe(target)}) is {ENGINE_NAMES[target.engine]}: restore it into a "
            f"{ENGINE_NAMES[manifest.engine]} warehouse (a backup is not a way to move between engines)"
        )
    check_files(src, manifest)
    if target.engine == "duckdb":
        report = _restore_duckdb(settings, src, manifest, force, progress, lock_wait_seconds)
    else:
        report = _restore_postgres(settings, src, manifest, force, progress)
    _restore_home(settings.home, src / HOME_DIR, manifest, report)
    return report


def _refuse_non_empty(target: WarehouseTarget, filled: list[str]) -> None:
    if filled:
        shown = ", ".join(filled[:5]) + (f" and {len(filled) - 5} more" if len(filled) > 5 else "")
        tables = f"{len(filled)} table{'s' if len(filled) != 1 else ''}"
        raise BackupError(
            f"the warehouse {_describe(target)} is not empty ({tables} with rows: {shown}); "
            "pass --force to replace everything in it with the backup"
        )


def _checks(manifest: Manifest, counts: dict[str, int]) -> list[TableCheck]:
    tables = sorted(set(manifest.tables) | set(counts))
    return [TableCheck(t, manifest.tables.get(t, 0), counts.get(t, 0)) for t in tables]


def _mismatches(checks: list[TableCheck], manifest: Manifest) -> list[str]:
    return [
        f"{c.table}: {c.restored} rows, the backup has {c.in_backup}"
        if c.table in manifest.tables
        else f"{c.table}: not in the backup"
        for c in checks
        if not c.ok or c.table not in manifest.tables
    ]


def _restore_duckdb(
    settings: Settings,
    src: Path,
    manifest: Manifest,
    force: bool,
    progress: Progress,
    lock_wait_seconds: float,
) -> RestoreReport:
    import duckdb

    target = settings.warehouse
    path = target.duckdb_path
    assert path is not None
    warehouse = Warehouse(target)
    if path.exists() and not force:
        try:
            with warehouse.session(read_only=True, lock_wait_seconds=lock_wait_seconds) as s:
                _refuse_non_empty(target, tables_with_rows(s))
        except (WarehouseError, duckdb.Error) as exc:
            raise BackupError(
                f"cannot check that the warehouse {path} is empty ({str(exc).strip()}); pass --force to replace "
                "it with the backup (the old file is kept beside it)"
            ) from None
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = path.with_name(f"{path.stem}.restoring-{uuid.uuid4().hex[:8]}{path.suffix}")
    try:
        progress(f"importing {len(manifest.tables)} tables into a new file", None, None)
        con = duckdb.connect(str(fresh))
        try:
            con.execute(f"import database '{_sql_text(str(src / DUCKDB_EXPORT_DIR))}'")
            comments = src / COMMENTS_FILE
            for statement in json.loads(comments.read_text()) if comments.is_file() else []:
                con.execute(statement)
            progress("checking row counts", None, None)
            checks = _checks(manifest, row_counts(Session("duckdb", con)))
            con.execute("checkpoint")
        finally:
            con.close()
    except duckdb.Error as exc:
        _remove_duckdb_file(fresh)
        raise BackupError(
            f"importing {src / DUCKDB_EXPORT_DIR} failed, the warehouse {path} was not changed: {str(exc).strip()}"
        ) from None
    except BaseException:
        _remove_duckdb_file(fresh)
        raise
    wrong = _mismatches(checks, manifest)
    if wrong:
        _remove_duckdb_file(fresh)
        raise BackupError(
            f"the restored copy does not match the backup's manifest, the warehouse {path} was not changed: "
            + "; ".join(wrong[:10])
        )
    progress("swapping the restored file in", None, None)
    try:
        kept = _swap_duckdb(path, fresh, lock_wait_seconds)
    except BaseException:
        _remove_duckdb_file(fresh)
        raise
    return RestoreReport(manifest=manifest, tables=checks, kept=kept)


def _remove_duckdb_file(path: Path) -> None:
    for p in (path, path.with_name(path.name + ".wal")):
        p.unlink(missing_ok=True)


def _swap_duckdb(path: Path, fresh: Path, lock_wait_seconds: float) -> Path | None:
    """Puts ``fresh`` in place of ``path`` atomically; returns where the old file is kept.

    The old file is first opened for writing (waiting for any run that writes it) and
    checkpointed, so it has no WAL beside it; then a read-only connection holds DuckDB's shared
    lock — no process can open it for writing — while the old file gets a second name (a hard
    link) and ``fresh`` is renamed over ``path``. A process that opens the path afterwards gets
    the restored file; a read-only connection never writes, so closing ours touches nothing."""
    import duckdb

    if not path.exists():
        os.replace(fresh, path)
        return None
    kept = path.with_name(f"{path.stem}.before-restore-{_now().strftime('%Y%m%dT%H%M%SZ')}{path.suffix}")
    deadline = time.monotonic() + lock_wait_seconds
    while True:
        try:
            duckdb.connect(str(path)).execute("checkpoint").close()
            holder = duckdb.connect(str(path), read_only=True)
        except duckdb.Error as exc:
            if "lock" not in str(exc).lower():  # a damaged file nobody can open: nobody uses it either
                os.link(path, kept)
                os.replace(fresh, path)
                return kept
            if time.monotonic() > deadline:
                raise BackupError(
                    f"cannot take the warehouse {path} from the process using it ({exc}); the restored copy "
                    "was not swapped in: stop Dagster and `herald tick`, then restore again"
                ) from None
            time.sleep(0.2)
            continue
        try:
            if path.with_name(path.name + ".wal").exists():  # a writer came between the two: again
                if time.monotonic() > deadline:
                    raise BackupError(f"the warehouse {path} kept being written: stop Dagster and `herald tick`")
                continue
            os.link(path, kept)
            os.replace(fresh, path)
            return kept
        finally:
            holder.close()


def _restore_postgres(
    settings: Settings, src: Path, manifest: Manifest, force: bool, progress: Progress
) -> RestoreReport:
    import psycopg2

    from herald.warehouse.segment_roles import _ensure_role

    target = settings.warehouse
    pg_restore, psql = _tool("pg_restore"), _tool("psql")
    warehouse = Warehouse(target)
    try:
        with warehouse.session() as s:
            if not force:
                _refuse_non_empty(target, tables_with_rows(s))
            _, rows = s.query("select rolname from pg_roles")
            missing = sorted(set(manifest.roles) - {str(r[0]) for r in rows})
            foreign = [r for r in missing if not r.startswith(SEGMENT_ROLE_PREFIX)]
            if foreign:
                raise BackupError(
                    f"the backup's objects belong to or are granted to roles this server does not have: "
                    f"{', '.join(foreign)}; create them (CREATE ROLE … NOLOGIN) and grant them to "
                    f"{target.pg_user}, then restore again"
                )
            for role in missing:  # a client's segment role (cluster-wide): made as Herald makes it
                _ensure_role(s, role)
            drops = _drop_everything_sql(s)
    except psycopg2.Error as exc:
        raise BackupError(f"the warehouse {_describe(target)} refused: {str(exc).strip()}") from None
    except WarehouseError as exc:
        raise BackupError(str(exc)) from None
    env = _pg_env(target)
    _load_in_one_transaction(
        [pg_restore, "--verbose", "--no-password", "--file=-", str(src / PG_DUMP_FILE)],
        [psql, "--no-psqlrc", "--quiet", "--no-password", "--single-transaction", "-v", "ON_ERROR_STOP=1", "-f", "-"],
        drops,
        _verify_sql(manifest),
        env,
        len(manifest.tables),
        progress,
        f"the warehouse {_describe(target)} was not changed (the restore rolled back)",
    )
    progress("analyzing", None, None)
    conn = warehouse._connect(read_only=False)
    try:
        conn.autocommit = True
        conn.cursor().execute("analyze")
        counts = row_counts(Session("postgres", conn))
    finally:
        conn.close()
    return RestoreReport(manifest=manifest, tables=_checks(manifest, counts))


def _load_in_one_transaction(
    dumper_command: list[str],
    loader_command: list[str],
    before: str,
    after: str,
    env: dict[str, str],
    total: int,
    progress: Progress,
    unchanged: str,
) -> None:
    """Feeds ``before``, pg_restore's script and ``after`` to one ``psql --single-transaction``.

    ``after`` (the row-count check) is sent only once pg_restore has exited successfully; if it
    failed, psql is killed before the end of its input, so its transaction never commits — a
    cut-off script (a table missing its indexes, say) is never left behind."""
    dumper = subprocess.Popen(dumper_command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    loader = subprocess.Popen(
        loader_command, env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert dumper.stdout and dumper.stderr and loader.stdin and loader.stderr
    dumper_lines: list[str] = []
    loader_lines: list[str] = []
    readers = [
        threading.Thread(
            target=lambda: dumper_lines.extend(
                _follow(
                    (line.decode(errors="replace") for line in dumper.stderr),  # type: ignore[union-attr]
                    "restoring",
                    total,
                    r'processing data for table "(.+)"',
                    progress,
                )
            ),
            daemon=True,
        ),
        threading.Thread(
            target=lambda: loader_lines.extend(
                line.decode(errors="replace").rstrip()
                for line in loader.stderr  # type: ignore[union-attr]
            ),
            daemon=True,
        ),
    ]
    for reader in readers:
        reader.start()
    sent_everything = False
    try:
        loader.stdin.write(before.encode() + b"\n")
        while chunk := dumper.stdout.read(CHUNK):
            loader.stdin.write(chunk)
        if dumper.wait() == 0:
            loader.stdin.write(b"\n" + after.encode() + b"\n")
            sent_everything = True
    except BrokenPipeError:  # psql stopped at an error: its transaction is rolled back
        pass
    finally:
        if not sent_everything and loader.poll() is None:
            loader.kill()  # never let psql reach the end of its input and commit
        with suppress(BrokenPipeError):
            loader.stdin.close()
        dumper.stdout.close()
        loaded, dumped = loader.wait(), dumper.wait()
        for reader in readers:
            reader.join()
    if dumped != 0:
        raise BackupError(_errors("pg_restore", dumper_lines, dumped) + "\n" + unchanged)
    if loaded != 0:
        raise BackupError(_errors("psql", loader_lines, loaded) + "\n" + unchanged)


def _drop_everything_sql(session: Session) -> str:
    """Statements dropping every schema of the database (and every relation of ``public``), so the
    restored database holds the backup and nothing else."""
    system = ", ".join(f"'{s}'" for s in PG_SYSTEM_SCHEMAS)
    _, schemas = session.query(
        f"select nspname from pg_namespace where nspname not in ({system}, 'public') "
        "and nspname not like 'pg\\_%' order by 1"
    )
    statements = [f"drop schema if exists {_ident(str(s))} cascade;" for (s,) in schemas]
    kinds = {"r": "table", "p": "table", "v": "view", "m": "materialized view", "S": "sequence", "f": "foreign table"}
    _, relations = session.query(
        "select c.relname, c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f') and not c.relispartition"
    )
    for name, kind in relations:
        statements.append(f"drop {kinds[str(kind)]} if exists public.{_ident(str(name))} cascade;")
    return "\n".join(statements) or "select 1;"


def _verify_sql(manifest: Manifest) -> str:
    """A DO block that raises (rolling the restore back) when a table's rows differ from the manifest."""
    checks = []
    for table, rows in sorted(manifest.tables.items()):
        label = table.replace("'", "''")
        checks.append(
            f"select count(*) into n from {_qualified(table)}; if n <> {int(rows)} then "
            f"raise exception 'row count check: % has % rows after the restore, the backup has {int(rows)}', "
            f"'{label}', n; end if;"
        )
    return "do $herald$ declare n bigint; begin " + " ".join(checks) + " end $herald$;"


def _restore_home(home: Path, saved: Path, manifest: Manifest, report: RestoreReport) -> None:
    """Puts back HERALD_HOME's state: landing files waiting at backup time (unless waiting now),
    landing files loaded since the backup began (back to waiting: the restored warehouse lacks
    them; loading is idempotent), a missing ``secret_key`` and missing ingest API key files.
    Nothing already in HERALD_HOME is deleted or overwritten."""
    copied_at = manifest.home.get("landing_copied_at") or manifest.created_at
    cutoff = datetime.fromisoformat(copied_at).timestamp() - REQUEUE_MARGIN_SECONDS
    landing = home / LANDING
    if landing.is_dir():
        for loaded in sorted(landing.glob(f"*/loaded/*{LANDING_SUFFIX}")):
            waiting = loaded.parent.parent / loaded.name
            if loaded.stat().st_mtime >= cutoff and not waiting.exists():
                loaded.rename(waiting)
                report.landing_requeued += 1
    for relative in manifest.home.get("files", []):
        source, there = saved / relative, home / relative
        if relative.startswith(f"{LANDING}/"):
            if not there.exists():
                there.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, there)
                report.landing_restored += 1
            continue
        if not there.exists():
            there.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, there)
            report.home_restored.append(relative)
        elif there.is_file() and _sha256(there) != _sha256(source):
            report.warnings.append(f"{there} differs from the backup's copy; kept as it is (the backup's: {source})")
