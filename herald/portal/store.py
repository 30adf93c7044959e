"""Where the portal keeps its own rows: its accounts (users, recovery codes, reset links,
sessions) and the audit rows of what its users read and do.

On PostgreSQL that is the warehouse, as for everything else: no lock makes a sign-in wait there.

On the embedded DuckDB the warehouse is one file that one process at a time may write, and a run
(a dbt build, a send) holds it for seconds to minutes. A sign-in and every page view write (a
session, an audit row), so they cannot live there. They live in a store of their own beside the
warehouse file: ``<warehouse folder>/portal.sqlite3`` (``<HERALD_HOME>/portal.sqlite3`` in the
default), an SQLite file in WAL mode that no run holds. SQLite rather than a second DuckDB file:
many processes may open it (the server, ``herald users``, ``herald audit``, a run moving the
audit spool), a reader never blocks a writer, a writer waits its turn for milliseconds, and an
open costs a fraction of a millisecond where a DuckDB open-write-close costs a checkpoint.

The store has the same tables under the same names (``herald_ops.portal_users``, …,
``herald_ops.audit_log``), made from :data:`herald.warehouse.schema.TABLES`, so
:mod:`herald.portal.accounts` and :mod:`herald.portal.audit` run unchanged on either.

Its ``audit_log`` is a **spool**: the portal's audit rows wait there until a process that holds
the warehouse moves them into ``herald_ops.audit_log`` (:func:`move_spool` in the writer's own
transaction, then :func:`forget_spooled` once it committed). The dbt build does it as its last
step, and a privacy export or erasure does it first, so those see every row. A row is never lost
(it leaves the spool only after the warehouse committed it) and never doubled (the warehouse
insert skips an ``audit_id`` it has; ``herald audit`` reads both and shows each id once).

When the store is made, the account rows the warehouse already holds (migration 0005, a
deployment from before the store) are copied into it once, in the transaction that makes it;
the next move of the spool deletes them from the warehouse (a lost store is then made again
empty, never from stale copies).

The Inbox's per-user read marks (``herald_ops.inbox_reads``) are portal state too (every view of
a conversation writes one), so since store version 2 they live here; a version-1 store is
upgraded in place (the table made, the warehouse's marks copied once).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from herald.settings import WarehouseTarget
from herald.warehouse.connection import LOCK_RETRY_SECONDS, Session, Warehouse, WarehouseError
from herald.warehouse.schema import OPS_SCHEMA, TABLES, column_names

STORE_FILE = "portal.sqlite3"
STORE_VERSION = 2  # PRAGMA user_version of a made store (0: being made; 1: before the Inbox's read marks)
BUSY_TIMEOUT_MS = 5000  # a writer waits this long for another's transaction (milliseconds in practice)
AUDIT_LOG = f"{OPS_SCHEMA}.audit_log"
ACCOUNT_TABLES = (
    f"{OPS_SCHEMA}.portal_users",
    f"{OPS_SCHEMA}.portal_recovery_codes",
    f"{OPS_SCHEMA}.portal_reset_tokens",
    f"{OPS_SCHEMA}.portal_sessions",
)
INBOX_READS = f"{OPS_SCHEMA}.inbox_reads"  # each user's read mark per conversation (portal state, version 2)
STORE_TABLES = (*ACCOUNT_TABLES, AUDIT_LOG, INBOX_READS)
COPIED_TABLES = (*ACCOUNT_TABLES, INBOX_READS)  # what a new store takes from the warehouse
MOVE_BATCH = 10_000  # spooled rows moved into the warehouse per call at most
log = logging.getLogger("herald.portal.store")
_made: set[Path] = set()  # stores this process has checked are made (at STORE_VERSION)
_making = threading.Lock()


def _timestamp(value: bytes) -> datetime:
    return datetime.fromisoformat(value.decode())


# columns declared ``timestamp`` come back as datetime (only connections opened with
# PARSE_DECLTYPES, i.e. this module's, use converters)
sqlite3.register_converter("timestamp", _timestamp)


def _adapt(value: Any) -> Any:
    """A parameter as SQLite stores it: timestamps as naive-UTC text that sorts as time does."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    return value


class StoreSession(Session):
    """A :class:`Session` over the SQLite store (engine ``"sqlite"``), ``?`` placeholders."""

    def __init__(self, conn: sqlite3.Connection, read_only: bool):
        self.engine = "sqlite"
        self._conn = conn
        self._cur = conn.cursor()
        self._read_only = read_only

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self._cur.execute(sql, [_adapt(v) for v in params or ()])

    def commit(self) -> None:
        self._cur.execute("commit")
        self._cur.execute("begin" if self._read_only else "begin immediate")

    def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], ignore_existing: bool = False
    ) -> int:
        if not rows:
            return 0
        verb = "insert or ignore into" if ignore_existing else "insert into"
        self._cur.executemany(
            f"{verb} {table} ({', '.join(columns)}) values ({', '.join('?' * len(columns))})",
            [[_adapt(v) for v in r] for r in rows],
        )
        return len(rows)

    def query_frame(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        raise NotImplementedError("the portal store has no frames")

    def frame_as_table(self, name: str, frame: Any) -> Any:
        raise NotImplementedError("the portal store has no frames")

    def insert_frame(self, table: str, frame: Any, constants: Any = None, ignore_existing: bool = False) -> int:
        raise NotImplementedError("the portal store has no frames")


def store_path(target: WarehouseTarget) -> Path | None:
    """The store's file on DuckDB (beside the warehouse file); None on PostgreSQL (the warehouse)."""
    if target.engine != "duckdb" or target.duckdb_path is None:
        return None
    return target.duckdb_path.parent / STORE_FILE


def _ddl(table: str) -> str:
    for name, columns, key in TABLES:
        if name == table:
            cols = [f"{c} {t}" for c, t in columns]
            if key:
                cols.append(f"primary key ({', '.join(key)})")
            return f"create table if not exists {table} ({', '.join(cols)})"
    raise KeyError(table)


class PortalStore:
    """Sessions on the portal's own tables: the SQLite store on DuckDB, the warehouse on PostgreSQL.

    ``warehouse_lock`` is held while the store is made and copies the warehouse's account rows
    (the server's lock that keeps its own DuckDB opens of the live file apart)."""

    def __init__(self, target: WarehouseTarget, warehouse_lock: AbstractContextManager[Any] | None = None):
        self.target = target
        self.path = store_path(target)
        self._warehouse_lock = warehouse_lock

    @property
    def separate(self) -> bool:
        """Whether the portal's rows live apart from the warehouse (the embedded DuckDB)."""
        return self.path is not None

    def exists(self) -> bool:
        return self.path is not None and self.path.exists()

    def made(self) -> bool:
        """Whether the store exists and is made (its tables there, the warehouse's accounts copied)."""
        if not self.exists():
            return False
        conn = self._connect(BUSY_TIMEOUT_MS / 1000)
        try:
            return bool(conn.execute("pragma herald_ops.user_version").fetchone()[0] >= STORE_VERSION)
        except sqlite3.Error:
            return False
        finally:
            conn.close()

    def _connect(self, wait_seconds: float) -> sqlite3.Connection:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            # owner-only: it holds password hashes and TOTP keys (SQLite gives its -wal and -shm
            # files the same mode); an empty file is an empty database
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        conn = sqlite3.connect(":memory:", timeout=max(wait_seconds, 0.05), isolation_level=None,
                               detect_types=sqlite3.PARSE_DECLTYPES, check_same_thread=False)  # fmt: skip
        try:
            conn.execute(f"pragma busy_timeout = {int(max(wait_seconds, 0.05) * 1000)}")
            # the main database is an empty in-memory one: the file is attached as herald_ops, so
            # the tables keep the warehouse's schema-qualified names
            conn.execute("attach database ? as herald_ops", [str(self.path)])
        except sqlite3.Error as exc:
            conn.close()
            raise WarehouseError(f"cannot open the portal store {self.path}: {exc}") from exc
        return conn

    def ensure(self, lock_wait_seconds: float = LOCK_RETRY_SECONDS) -> None:
        """Makes the store when it is missing (once): its tables, and the account rows the
        warehouse holds, in one transaction. On PostgreSQL: the warehouse's migrations."""
        if self.path is None:
            Warehouse(self.target).ensure_schema()
            return
        if self.path in _made and self.path.exists():
            return
        with _making:
            conn = self._connect(BUSY_TIMEOUT_MS / 1000)
            try:
                version = conn.execute("pragma herald_ops.user_version").fetchone()[0]
                if version > STORE_VERSION:
                    raise WarehouseError(
                        f"the portal store {self.path} is of a newer Herald (version {version}; this code "
                        f"knows {STORE_VERSION}): upgrade Herald"
                    )
                if version == 0:
                    self._make(conn, lock_wait_seconds)
                elif version < STORE_VERSION:
                    self._upgrade(conn, lock_wait_seconds)
                self._check_columns(conn)
            except sqlite3.Error as exc:
                raise WarehouseError(f"cannot make the portal store {self.path}: {exc}") from exc
            finally:
                conn.close()
            _made.add(self.path)

    def _make(self, conn: sqlite3.Connection, lock_wait_seconds: float) -> None:
        conn.execute("pragma herald_ops.journal_mode = wal")
        conn.execute("begin immediate")
        try:
            if conn.execute("pragma herald_ops.user_version").fetchone()[0] >= STORE_VERSION:
                conn.execute("rollback")  # another process made it meanwhile
                return
            for table in STORE_TABLES:
                conn.execute(_ddl(table))
            session = StoreSession(conn, read_only=False)
            for table, (columns, rows) in self._warehouse_accounts(lock_wait_seconds).items():
                session.insert_rows(table, columns, rows)
            conn.execute(f"pragma herald_ops.user_version = {STORE_VERSION}")
            conn.execute("commit")
        except BaseException:
            conn.execute("rollback")
            raise

    def _upgrade(self, conn: sqlite3.Connection, lock_wait_seconds: float) -> None:
        """A store of an older version: its missing tables made (version 1 → 2: the Inbox's read
        marks, copied from the warehouse where an older Herald kept them; a run holding the
        warehouse then leaves them behind, logged: conversations read before show unread once)."""
        conn.execute("begin immediate")
        try:
            version = conn.execute("pragma herald_ops.user_version").fetchone()[0]
            if version >= STORE_VERSION:
                conn.execute("rollback")  # another process upgraded it meanwhile
                return
            for table in STORE_TABLES:
                conn.execute(_ddl(table))
            if version < 2:
                try:
                    copied = self._warehouse_accounts(lock_wait_seconds, tables=(INBOX_READS,))
                except WarehouseError as exc:
                    log.warning("the portal store %s is upgraded without the Inbox's read marks: %s", self.path, exc)
                    copied = {}
                session = StoreSession(conn, read_only=False)
                for table, (columns, rows) in copied.items():
                    session.insert_rows(table, columns, rows, ignore_existing=True)
            conn.execute(f"pragma herald_ops.user_version = {STORE_VERSION}")
            conn.execute("commit")
        except BaseException:
            conn.execute("rollback")
            raise

    def _warehouse_accounts(
        self, lock_wait_seconds: float, tables: Sequence[str] = COPIED_TABLES
    ) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
        """The account rows (and Inbox read marks) the warehouse holds (a deployment from before
        the store)."""
        assert self.target.duckdb_path is not None
        if not self.target.duckdb_path.exists():
            return {}
        found: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
        with (
            self._warehouse_lock or nullcontext(),
            Warehouse(self.target).session(read_only=True, lock_wait_seconds=lock_wait_seconds) as s,
        ):
            for table in tables:
                schema, name = table.split(".")
                there = s.scalar(
                    "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
                    [schema, name],
                )
                if there:
                    columns = column_names(table)
                    _, rows = s.query(f"select {', '.join(columns)} from {table}")
                    found[table] = (columns, rows)
        return found

    def _check_columns(self, conn: sqlite3.Connection) -> None:
        for table in STORE_TABLES:
            name = table.split(".")[1]
            have = [r[1] for r in conn.execute(f"pragma herald_ops.table_info({name})").fetchall()]
            want = column_names(table)
            if have != want:
                raise WarehouseError(
                    f"the portal store {self.path} table {table} has the columns {have}, this code expects "
                    f"{want}: the store needs an upgrade this version of Herald does not make"
                )

    @contextmanager
    def session(self, read_only: bool = False, lock_wait_seconds: float = LOCK_RETRY_SECONDS) -> Iterator[Session]:
        """One transaction on the portal's tables: committed on success, rolled back on error."""
        if self.path is None:
            with Warehouse(self.target).session(read_only=read_only, lock_wait_seconds=lock_wait_seconds) as s:
                yield s
            return
        self.ensure(lock_wait_seconds)
        conn = self._connect(lock_wait_seconds)
        try:
            try:
                conn.execute("begin" if read_only else "begin immediate")
            except sqlite3.OperationalError as exc:
                raise WarehouseError(f"the portal store {self.path} is busy: {exc}") from exc
            session = StoreSession(conn, read_only)
            try:
                yield session
            except BaseException:
                conn.execute("rollback")
                raise
            try:
                conn.execute("rollback" if read_only else "commit")
            except sqlite3.OperationalError as exc:
                conn.execute("rollback")
                raise WarehouseError(f"the portal store {self.path} could not commit: {exc}") from exc
        finally:
            conn.close()


# --- the audit spool ----------------------------------------------------------------------------


def spooled(target: WarehouseTarget, limit: int = MOVE_BATCH) -> list[tuple[Any, ...]]:
    """The audit rows waiting in the store (oldest first); none on PostgreSQL."""
    store = PortalStore(target)
    if not store.exists():
        return []
    columns = column_names(AUDIT_LOG)
    with store.session(read_only=True) as s:
        _, rows = s.query(f"select {', '.join(columns)} from {AUDIT_LOG} order by occurred_at, audit_id "
                          f"limit {int(limit)}")  # fmt: skip
    return rows


def move_spool(session: Session, target: WarehouseTarget) -> list[str]:
    """Copies the spooled audit rows into ``herald_ops.audit_log`` in ``session``'s transaction (a
    warehouse write session), skipping any ``audit_id`` already there; returns the ids copied.
    Call :func:`forget_spooled` with them once that transaction committed."""
    if session.engine != "duckdb":
        return []
    rows = spooled(target)
    if rows:
        session.insert_rows(AUDIT_LOG, column_names(AUDIT_LOG), rows, ignore_existing=True)
    return [r[0] for r in rows]


def forget_spooled(target: WarehouseTarget, audit_ids: Sequence[str]) -> None:
    """Deletes moved rows from the spool (after the warehouse committed them)."""
    if not audit_ids:
        return
    with PortalStore(target).session() as s:
        s._cur.executemany(f"delete from {AUDIT_LOG} where audit_id = ?", [[i] for i in audit_ids])


def retire_warehouse_accounts(session: Session, target: WarehouseTarget) -> int:
    """Deletes the account rows left in the DuckDB warehouse once the store is made (they were
    copied into it then, and nothing reads them after), in ``session``'s transaction; returns how
    many. So a store that is lost is made again empty, never from stale copies (a user disabled
    since, a password changed since, would come back)."""
    if session.engine != "duckdb" or not PortalStore(target).made():
        return 0
    retired = 0
    for table in ACCOUNT_TABLES:
        schema, name = table.split(".")
        there = session.scalar(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?", [schema, name]
        )
        if there:
            retired += int(session.scalar(f"select count(*) from {table}") or 0)
            session.execute(f"delete from {table}")
    return retired


def drain_spool(target: WarehouseTarget, lock_wait_seconds: float = LOCK_RETRY_SECONDS) -> int:
    """Moves the spooled audit rows into the warehouse (DuckDB; nothing to do on PostgreSQL):
    one warehouse transaction, then the rows leave the spool. Returns how many moved. The same
    transaction deletes the warehouse's old copies of the accounts (:func:`retire_warehouse_accounts`)."""
    if store_path(target) is None or not PortalStore(target).exists():
        return 0
    moved_total = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with Warehouse(target).session(lock_wait_seconds=lock_wait_seconds) as s:
            retire_warehouse_accounts(s, target)
            moved = move_spool(s, target)
        forget_spooled(target, moved)
        moved_total += len(moved)
        if len(moved) < MOVE_BATCH:
            break
    return moved_total
