"""Short-lived warehouse sessions over DuckDB or PostgreSQL behind one small interface.

DuckDB allows one writing process per file, so a session is opened for one unit of work and
closed at once; read-only sessions (``herald sql``) never take the write lock. Every write a
session makes is in one transaction: it commits on success and rolls back on any error, so a
failure never leaves a half-applied change.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from herald.settings import WarehouseTarget

if TYPE_CHECKING:
    import polars as pl

LOCK_RETRY_SECONDS = 30.0
COPY_ROWS = 100_000  # rows a PostgreSQL COPY buffer holds at most
NULL_MARK = "\\N"


class WarehouseError(RuntimeError):
    """The warehouse refused a statement; the message names the statement's purpose."""


class Session:
    """One connection inside one transaction. SQL uses ``?`` placeholders on both engines."""

    def __init__(self, engine: str, conn: Any):
        self.engine = engine
        self._conn = conn
        self._cur = conn.cursor() if engine == "postgres" else conn

    def _sql(self, sql: str) -> str:
        return sql.replace("%", "%%").replace("?", "%s") if self.engine == "postgres" else sql

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        if params is None and self.engine == "postgres":
            self._cur.execute(sql)
        else:
            self._cur.execute(self._sql(sql), list(params or []))

    def query(self, sql: str, params: Sequence[Any] | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Rows of a query with their column names."""
        self.execute(sql, params)
        description = self._cur.description or []
        return [d[0] for d in description], [tuple(r) for r in self._cur.fetchall()]

    def commit(self) -> None:
        """Commits the work so far and begins the next transaction on the same connection: two
        units of work that must not stand or fall together, without a second connection."""
        self._conn.commit()
        if self.engine == "duckdb":
            self._conn.execute("begin transaction")

    def scalar(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        _, rows = self.query(sql, params)
        return rows[0][0] if rows else None

    def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], ignore_existing: bool = False
    ) -> int:
        """Insert many rows through each engine's bulk path (DuckDB: Arrow, PostgreSQL: COPY).

        ``ignore_existing`` skips rows whose primary key is already there.
        """
        if not rows:
            return 0
        cols = ", ".join(columns)
        if self.engine == "duckdb":
            import pyarrow as pa

            data = pa.table({c: [r[i] for r in rows] for i, c in enumerate(columns)})
            self._conn.register("_herald_insert", data)
            try:
                verb = "insert or ignore into" if ignore_existing else "insert into"
                self._conn.execute(f"{verb} {table} ({cols}) select {cols} from _herald_insert")
            finally:
                self._conn.unregister("_herald_insert")
            return len(rows)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for row in rows:
            writer.writerow([NULL_MARK if v is None else v for v in row])
        buffer.seek(0)
        target = table
        if ignore_existing:
            target = "_herald_copy"
            self._cur.execute("drop table if exists _herald_copy")
            self._cur.execute(f"create temp table _herald_copy (like {table})")
        self._cur.copy_expert(f"copy {target} ({cols}) from stdin with (format csv, null '{NULL_MARK}')", buffer)
        if ignore_existing:
            self._cur.execute(f"insert into {table} ({cols}) select {cols} from _herald_copy on conflict do nothing")
            self._cur.execute("drop table _herald_copy")
        return len(rows)

    def query_frame(self, sql: str, params: Sequence[Any] | None = None) -> pl.DataFrame:
        """A query's rows as a polars frame (DuckDB hands them over as Arrow)."""
        import polars as pl

        if self.engine == "duckdb":
            return pl.from_arrow(self._conn.sql(sql, params=list(params or [])).to_arrow_table())  # type: ignore[return-value]
        columns, rows = self.query(sql, params)
        return pl.DataFrame(rows, schema=columns, orient="row")

    @contextmanager
    def frame_as_table(self, name: str, frame: pl.DataFrame) -> Iterator[str]:
        """A polars frame readable as table ``name`` while the block runs (DuckDB: the Arrow data
        registered in place; PostgreSQL: a temporary table filled by COPY, all columns text)."""
        if self.engine == "duckdb":
            self._conn.register(name, frame.to_arrow())
            try:
                yield name
            finally:
                self._conn.unregister(name)
            return
        columns = ", ".join(f"{c} text" for c in frame.columns)
        self._cur.execute(f"create temp table {name} ({columns})")
        try:
            self.insert_frame(name, frame)
            yield name
        finally:
            self._cur.execute(f"drop table if exists {name}")

    def insert_frame(
        self,
        table: str,
        frame: pl.DataFrame,
        constants: dict[str, Any] | None = None,
        ignore_existing: bool = False,
    ) -> int:
        """Insert a polars frame whose columns are named as the table's, plus ``constants`` (one
        value for every row) — DuckDB: from Arrow, the constants as parameters; PostgreSQL: COPY
        of CSV with every value quoted, so no text can read as NULL. ``ignore_existing`` skips
        rows whose primary key is already there."""
        if frame.is_empty():
            return 0
        constants = constants or {}
        if self.engine == "duckdb":
            cols = ", ".join([*constants, *frame.columns])
            values = ", ".join(["?"] * len(constants) + list(frame.columns))
            verb = "insert or ignore into" if ignore_existing else "insert into"
            self._conn.register("_herald_frame", frame.to_arrow())
            try:
                self._conn.execute(
                    f"{verb} {table} ({cols}) select {values} from _herald_frame", list(constants.values())
                )
            finally:
                self._conn.unregister("_herald_frame")
            return frame.height
        import polars as pl

        frame = frame.with_columns([pl.lit(v).alias(k) for k, v in constants.items()])
        cols = ", ".join(frame.columns)
        target = table
        if ignore_existing:
            target = "_herald_copy"
            self._cur.execute("drop table if exists _herald_copy")
            self._cur.execute(f"create temp table _herald_copy (like {table})")
        for part in frame.iter_slices(COPY_ROWS):  # one CSV buffer at a time, not the whole frame's
            buffer = io.BytesIO()
            part.write_csv(buffer, include_header=False, quote_style="always", datetime_format="%Y-%m-%d %H:%M:%S%.f")
            buffer.seek(0)
            self._cur.copy_expert(f"copy {target} ({cols}) from stdin with (format csv)", buffer)
        if ignore_existing:
            self._cur.execute(f"insert into {table} ({cols}) select {cols} from _herald_copy on conflict do nothing")
            self._cur.execute("drop table _herald_copy")
        return frame.height


class Warehouse:
    """Opens sessions on the configured warehouse."""

    def __init__(self, target: WarehouseTarget):
        self.target = target

    @property
    def engine(self) -> str:
        return self.target.engine

    def _connect(self, read_only: bool, lock_wait_seconds: float = LOCK_RETRY_SECONDS) -> Any:
        if self.engine == "duckdb":
            import duckdb

            path = self.target.duckdb_path
            assert path is not None
            path.parent.mkdir(parents=True, exist_ok=True)
            if read_only and not path.exists():
                raise WarehouseError(f"the warehouse {path} does not exist yet: run `herald demo` or ingest a packet")
            deadline = time.monotonic() + lock_wait_seconds
            while True:
                try:
                    return duckdb.connect(str(path), read_only=read_only)
                except duckdb.IOException as exc:
                    # another process holds DuckDB's single write lock for a moment: wait for it
                    if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                        raise WarehouseError(f"cannot open the warehouse {path}: {exc}") from exc
                    time.sleep(0.2)
        import psycopg2

        t = self.target
        try:
            conn = psycopg2.connect(
                host=t.pg_host, port=t.pg_port, user=t.pg_user, password=t.pg_password, dbname=t.pg_database
            )
        except psycopg2.OperationalError as exc:
            # the server's own words (no password in them) say which: refused, unknown database, auth
            reason = " ".join(str(exc).split())
            raise WarehouseError(
                f"cannot reach the PostgreSQL warehouse {t.pg_user}@{t.pg_host}:{t.pg_port}/{t.pg_database}: {reason}"
            ) from exc
        if read_only:
            conn.set_session(readonly=True)
        return conn

    @contextmanager
    def session(self, read_only: bool = False, lock_wait_seconds: float = LOCK_RETRY_SECONDS) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error. On DuckDB,
        a file another process holds the write lock of is waited for up to ``lock_wait_seconds``
        (0: one try, then :class:`WarehouseError`)."""
        conn = self._connect(read_only, lock_wait_seconds)
        try:
            if self.engine == "duckdb" and not read_only:
                conn.execute("begin transaction")
            session = Session(self.engine, conn)
            try:
                yield session
            except BaseException as exc:
                lost = self._connection_lost(conn, exc)
                if lost is not None:  # nothing to roll back: the server ended the transaction with it
                    raise lost from exc
                if not read_only:
                    conn.rollback()
                raise
            if not read_only:
                try:
                    conn.commit()
                except Exception as exc:
                    lost = self._connection_lost(conn, exc)
                    if lost is not None:
                        raise lost from exc
                    raise
        finally:
            conn.close()

    def _connection_lost(self, conn: Any, exc: BaseException) -> WarehouseError | None:
        """A :class:`WarehouseError` naming the warehouse when ``exc`` is PostgreSQL closing this
        session's connection (a terminated backend, a server restart, a network cut); else None.
        Nothing of the session's transaction was committed."""
        if self.engine != "postgres" or not getattr(conn, "closed", 0):
            return None
        import psycopg2

        if not isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError):
            return None
        t = self.target
        reason = " ".join(str(exc).split()) or type(exc).__name__
        return WarehouseError(
            f"lost the connection to the PostgreSQL warehouse {t.pg_user}@{t.pg_host}:{t.pg_port}/{t.pg_database} "
            f"({reason}); this session's transaction was not committed"
        )

    def ensure_schema(self) -> None:
        """Bring Herald's own tables to the schema this code knows: apply the pending migrations
        (herald/warehouse/migrations), each in one transaction. At the head it only reads the
        version table. A warehouse newer than this code raises :class:`WarehouseError`."""
        from herald.warehouse.migrate import upgrade

        upgrade(self)
