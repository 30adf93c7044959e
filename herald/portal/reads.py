"""The portal's read path: queries that never wait behind a writer.

DuckDB admits one read-write process per file and a reader in another process takes a shared
lock, so a page reading the live warehouse would wait for a whole dbt build (seconds to
minutes) — and, worse, a reader that holds the file when a run starts makes that run's
dbt-duckdb fail at once (it does not retry a lock). So on DuckDB the portal never opens the
live file: it reads a **snapshot**, a separate DuckDB file holding only the tables the portal
reads (:data:`PORTAL_TABLES`), published by a writer once its work is done
(:func:`publish_snapshot`: the dbt build at its end, inside its warehouse pool slot; the
portal's own writes right after they commit). Publishing copies the tables into a new file of
its own name, then renames a one-line pointer file (``CURRENT``) to name it, so a reader sees
the old snapshot or the new one, never a half-written one. Each snapshot has its own file name
because DuckDB caches one database instance per path in a process: a path reused for a newer
file could hand a reader the old one. The two latest snapshots are kept (a reader may still be
in the previous one). Every answer carries the snapshot's ``as_of`` time.

On PostgreSQL there is no such lock: the portal reads the live warehouse in read-only
transactions on a small connection pool (``as_of`` is None: live).

Queries use ``?`` placeholders on both engines, as :class:`herald.warehouse.connection.Session`.
Design, trade-offs and measurements: docs/portal.md, "Reading the warehouse".
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from herald.clock import utcnow
from herald.settings import WarehouseTarget

SNAPSHOT_DIR = "portal"
POINTER_FILE = "CURRENT"
SNAPSHOT_GLOB = "snapshot-*.duckdb"
KEEP_SNAPSHOTS = 2
META_SCHEMA = "herald_snapshot"
META_TABLE = f"{META_SCHEMA}.meta"
PUBLISH_LOCK_WAIT_SECONDS = 5.0
PG_POOL_MAX = 4
# What the portal's pages read. A table absent from the warehouse (dbt not run yet) is left out
# of the snapshot; a page reading it gets an empty answer (see ReadSession.has_table).
PORTAL_TABLES: tuple[str, ...] = (
    "herald_ops.clients",
    "herald_ops.packets",
    "herald_ops.packet_events",
    "herald_raw.packet_rejects",
    "herald_ops.suppressions",
    "herald_ops.consent_events",
    "marts.contacts",
    "marts.contact_sources",
    "marts.consent_status",
    "marts.messages",
    "marts.missed_contacts",
    "marts.conversations",
    "marts.conversation_messages",
    # the client report (the Reports page builds it with herald.reports.client_report from here)
    "marts.deliveries",
    "marts.engagement_events",
    "marts.appointment_confirmations",
    "marts.funnel_events",
    "analytics.campaign_performance_daily",
    "analytics.compliance_daily",
    "analytics.ab_test_results",
    "analytics.attribution_by_channel",
    "analytics.conversions",
    "analytics.attributed_conversions",
    "marts.credit_transactions",
    "analytics.client_dashboard",
    "analytics.journey_funnel",
    "analytics.journey_variants",
    "marts.appointments",  # the Inbox's contact context (upcoming appointments)
    # the Campaigns page (herald/portal/campaigns.py)
    "herald_ops.campaign_pauses",
    "herald_ops.enrollments",
    "herald_ops.campaign_occurrences",
    "herald_ops.portal_user_phones",
    # the Inbox (herald/portal/inbox.py): what staff did to the conversations, republished after
    # each of its writes (its per-user read marks are in the portal store, herald/portal/store.py)
    "herald_ops.inbox_threads",
    "herald_ops.inbox_entries",
    "herald_ops.inbox_quick_replies",
    "herald_ops.auto_reply_settings",
    "herald_ops.outbox",  # only the Inbox's replies' rows (PORTAL_SUBSETS)
)
# Tables of which the snapshot holds only some rows: table → (the rows' condition on the live
# file, the tables it reads; without them the table is left out). The Inbox shows a reply's outbox status until the marts show the
# reply; the snapshot needs those outbox rows only, not the whole outbox.
PORTAL_SUBSETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "herald_ops.outbox": (
        "message_key in (select message_key from live.herald_ops.inbox_entries "
        "where kind = 'reply' and message_key is not null)",
        ("herald_ops.inbox_entries",),
    ),
}


class PortalReadError(RuntimeError):
    """The portal cannot read right now; the message says why and what to do."""


@dataclass(frozen=True)
class SnapshotInfo:
    """One published snapshot."""

    path: Path
    as_of: datetime  # when its rows were copied (Herald's clock, naive UTC)
    tables: tuple[str, ...]
    size_bytes: int
    seconds: float  # how long the copy took (the live file was held read-only for this long)


@dataclass(frozen=True)
class ReadResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    as_of: datetime | None  # the snapshot's time on DuckDB; None: live (PostgreSQL)

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def snapshot_dir(target: WarehouseTarget) -> Path:
    """Where the portal's snapshots of a DuckDB warehouse live (beside the warehouse file)."""
    assert target.duckdb_path is not None, "snapshots are for DuckDB warehouses"
    return target.duckdb_path.parent / SNAPSHOT_DIR


def current_snapshot(target: WarehouseTarget) -> Path | None:
    """The latest complete snapshot, or None when none was published."""
    folder = snapshot_dir(target)
    try:
        name = (folder / POINTER_FILE).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return folder / name if name else None


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def publish_snapshot(
    target: WarehouseTarget,
    lock_wait_seconds: float = PUBLISH_LOCK_WAIT_SECONDS,
    tables: Sequence[str] = PORTAL_TABLES,
) -> SnapshotInfo | None:
    """Copy ``tables`` of the DuckDB warehouse into a new snapshot and publish it atomically.

    Call it where no writer is in (at the end of a run, after a write commits). It opens the
    live file read-only, waiting up to ``lock_wait_seconds`` for a writer to let go (0: one try).
    Returns None on PostgreSQL (nothing to publish) and when the warehouse does not exist yet.
    Raises :class:`PortalReadError` when a writer kept the file for the whole wait.
    """
    if target.engine != "duckdb":
        return None
    import duckdb

    live = target.duckdb_path
    assert live is not None
    if not live.exists():
        return None
    folder = snapshot_dir(target)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = f"{time.time_ns()}-{os.getpid()}-{threading.get_ident()}"
    final = folder / f"snapshot-{stamp}.duckdb"
    temp = folder / f".snapshot-{stamp}.tmp"
    started = time.perf_counter()
    con = duckdb.connect(str(temp))
    try:
        deadline = time.monotonic() + lock_wait_seconds
        while True:
            try:
                con.execute(f"attach {_sql_text(str(live))} as live (read_only)")
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise PortalReadError(
                        f"the portal snapshot was not published: a run held the warehouse {live} "
                        f"for over {lock_wait_seconds:g} s; the last snapshot stays in use"
                    ) from exc
                time.sleep(0.1)
        try:
            present = {
                f"{schema}.{name}"
                for schema, name in con.execute(
                    "select schema_name, table_name from duckdb_tables() where database_name = 'live' "
                    "union all select schema_name, view_name from duckdb_views() "
                    "where database_name = 'live' and not internal"
                ).fetchall()
            }
            copied = tuple(dict.fromkeys(t for t in tables if t in present))  # a table named twice: once
            # a table copied in part needs the tables its condition reads (else it is left out)
            copied = tuple(t for t in copied if all(n in present for n in PORTAL_SUBSETS.get(t, ("", ()))[1]))
            as_of = utcnow()
            # one read transaction on the live file: every table as of the same moment
            con.execute("begin transaction")
            try:
                for table in copied:
                    schema, name = table.split(".")
                    where = f" where {PORTAL_SUBSETS[table][0]}" if table in PORTAL_SUBSETS else ""
                    con.execute(f"create schema if not exists {_quote(schema)}")
                    con.execute(
                        f"create table {_quote(schema)}.{_quote(name)} as "
                        f"select * from live.{_quote(schema)}.{_quote(name)}{where}"
                    )
                con.execute(f"create schema {META_SCHEMA}")
                con.execute(f"create table {META_TABLE} (as_of timestamp not null, tables varchar not null)")
                con.execute(f"insert into {META_TABLE} values (?, ?)", [as_of, ",".join(copied)])
            except BaseException:
                con.execute("rollback")  # so the detach below can run and the first error is the one raised
                raise
            con.execute("commit")
        finally:
            con.execute("detach live")  # the live file is free again from here
        con.execute("checkpoint")
    except BaseException:
        con.close()
        temp.unlink(missing_ok=True)
        Path(f"{temp}.wal").unlink(missing_ok=True)
        raise
    con.close()
    with open(temp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(temp, final)
    pointer = folder / f".{POINTER_FILE}.{stamp}.tmp"
    pointer.write_text(final.name + "\n", encoding="utf-8")
    os.replace(pointer, folder / POINTER_FILE)  # atomic: readers see the old snapshot or this one
    _prune(folder, final)
    return SnapshotInfo(final, as_of, copied, final.stat().st_size, time.perf_counter() - started)


def _prune(folder: Path, newest: Path) -> None:
    """Delete all but the :data:`KEEP_SNAPSHOTS` latest snapshots (a reader still in an older
    one keeps its open file: POSIX unlinks only the name)."""
    snapshots = sorted(folder.glob(SNAPSHOT_GLOB), key=lambda p: int(p.name.split("-")[1]))
    for old in snapshots[:-KEEP_SNAPSHOTS]:
        if old != newest:
            old.unlink(missing_ok=True)


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class ReadSession:
    """Read-only queries against one consistent state (a snapshot file, or one PostgreSQL
    read-only transaction)."""

    def __init__(self, engine: str, conn: Any, as_of: datetime | None, tables: frozenset[str] | None):
        self.engine = engine
        self.as_of = as_of
        self._conn = conn
        self._tables = tables

    def query(self, sql: str, params: Sequence[Any] | None = None) -> ReadResult:
        if self.engine == "duckdb":
            cur = self._conn.execute(sql, list(params or []))
            columns = [d[0] for d in cur.description or []]
            return ReadResult(columns, [tuple(r) for r in cur.fetchall()], self.as_of)
        cur = self._conn.cursor()
        try:
            cur.execute(sql.replace("%", "%%").replace("?", "%s"), list(params or []))
            columns = [d[0] for d in cur.description or []]
            return ReadResult(columns, [tuple(r) for r in cur.fetchall()], self.as_of)
        finally:
            cur.close()

    def scalar(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        rows = self.query(sql, params).rows
        return rows[0][0] if rows else None

    def has_table(self, table: str) -> bool:
        """Whether ``schema.table`` can be read here (a mart dbt has not built yet cannot)."""
        if self._tables is not None:
            return table in self._tables
        schema, name = table.split(".")
        return bool(
            self.scalar(
                "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
                [schema, name],
            )
        )


class PortalReader:
    """Opens :class:`ReadSession` s for one warehouse; one per process, shared by threads."""

    def __init__(self, target: WarehouseTarget):
        self.target = target
        self._lock = threading.Lock()
        self._pool: Any = None
        self._local = threading.local()

    # -- DuckDB: the snapshot --------------------------------------------------------------------

    def _snapshot_connection(self) -> tuple[Any, datetime, frozenset[str]]:
        """This thread's connection to the current snapshot (reopened when a newer one was
        published)."""
        import duckdb

        path = current_snapshot(self.target)
        if path is None:
            self._first_snapshot()
            path = current_snapshot(self.target)
            assert path is not None
        cached = getattr(self._local, "snapshot", None)
        if cached is not None and cached[0] == path:
            return cached[1], cached[2], cached[3]
        if cached is not None:
            cached[1].close()
        try:
            con = duckdb.connect(str(path), read_only=True)
        except duckdb.IOException:
            # pruned between reading the pointer and opening it (two newer ones were published)
            path = current_snapshot(self.target)
            assert path is not None
            con = duckdb.connect(str(path), read_only=True)
        as_of, tables = con.execute(f"select as_of, tables from {META_TABLE}").fetchone()
        entry = (path, con, as_of, frozenset(t for t in tables.split(",") if t))
        self._local.snapshot = entry
        return entry[1], entry[2], entry[3]

    def _first_snapshot(self) -> None:
        """No snapshot yet (a warehouse from before the portal): publish one, waiting briefly
        for a writer; one thread at a time."""
        with self._lock:
            if current_snapshot(self.target) is not None:
                return
            if self.target.duckdb_path is None or not self.target.duckdb_path.exists():
                raise PortalReadError("the warehouse does not exist yet: nothing has been ingested")
            publish_snapshot(self.target)

    # -- PostgreSQL: a pool of read-only connections ---------------------------------------------

    def _pg_pool(self) -> Any:
        with self._lock:
            if self._pool is None:
                from psycopg2.pool import ThreadedConnectionPool

                t = self.target
                self._pool = ThreadedConnectionPool(
                    1, PG_POOL_MAX, host=t.pg_host, port=t.pg_port, user=t.pg_user,
                    password=t.pg_password, dbname=t.pg_database,
                )  # fmt: skip
            return self._pool

    @contextmanager
    def session(self) -> Iterator[ReadSession]:
        if self.target.engine == "duckdb":
            con, as_of, tables = self._snapshot_connection()
            cursor = con.cursor()  # a cursor per use: threads share nothing but the file
            try:
                yield ReadSession("duckdb", cursor, as_of, tables)
            finally:
                cursor.close()
            return
        import psycopg2

        pool = self._pg_pool()
        conn = pool.getconn()
        broken = False
        try:
            conn.set_session(readonly=True, autocommit=False)
            yield ReadSession("postgres", conn, None, None)
        except psycopg2.OperationalError:
            broken = True
            raise
        finally:
            try:
                conn.rollback()  # a read-only transaction: nothing to keep
            except psycopg2.Error:
                broken = True
            pool.putconn(conn, close=broken)

    def query(self, sql: str, params: Sequence[Any] | None = None) -> ReadResult:
        with self.session() as s:
            return s.query(sql, params)

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.closeall()
                self._pool = None
        cached = getattr(self._local, "snapshot", None)
        if cached is not None:
            cached[1].close()
            self._local.snapshot = None


_READERS: dict[WarehouseTarget, PortalReader] = {}
_READERS_LOCK = threading.Lock()


def reader_for(target: WarehouseTarget) -> PortalReader:
    """The process's reader of ``target`` (made on first use)."""
    with _READERS_LOCK:
        reader = _READERS.get(target)
        if reader is None:
            reader = _READERS[target] = PortalReader(target)
        return reader
