"""A throw-away copy of the warehouse, for planning that must write nothing real.

``herald campaign preview`` and ``simulate`` run the send's own plan — the same dbt models,
the same ledger and outbox code — on a copy, then drop it. The copy is made with each engine's
own mechanism, consistently even while other processes use the warehouse:

- DuckDB: ``COPY FROM DATABASE`` from the warehouse attached read-only into a new file;
- PostgreSQL: ``CREATE DATABASE … TEMPLATE`` the warehouse (PostgreSQL refuses while other
  sessions are connected to it; the error says so). The role needs ``CREATEDB``.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from herald.settings import WarehouseTarget
from herald.warehouse.connection import WarehouseError


def _copy_duckdb(source: Path, destination: Path) -> None:
    import duckdb

    if not source.exists():
        raise WarehouseError(f"the warehouse {source} does not exist yet: run `herald demo` or ingest a packet")
    conn = duckdb.connect(str(destination))
    try:
        conn.execute(f"attach '{source}' as source_db (read_only)")
        conn.execute(f"copy from database source_db to {conn.execute('select current_database()').fetchone()[0]}")
        conn.execute("detach source_db")
    except duckdb.Error as exc:
        raise WarehouseError(f"cannot copy the warehouse {source}: {exc}") from exc
    finally:
        conn.close()


def _pg_admin(target: WarehouseTarget):
    import psycopg2

    conn = psycopg2.connect(
        host=target.pg_host, port=target.pg_port, user=target.pg_user, password=target.pg_password,
        dbname="postgres",  # not the warehouse: a template must have no session on it
    )  # fmt: skip
    conn.autocommit = True
    return conn


@contextmanager
def scratch_copy(target: WarehouseTarget) -> Iterator[WarehouseTarget]:
    """A copy of the warehouse at ``target``, removed on exit."""
    if target.engine == "duckdb":
        assert target.duckdb_path is not None
        folder = Path(tempfile.mkdtemp(prefix="herald-scratch-"))
        path = folder / "warehouse.duckdb"
        try:
            _copy_duckdb(target.duckdb_path, path)
            yield replace(target, url=f"duckdb:///{path}", duckdb_path=path)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    import psycopg2
    from psycopg2 import sql

    name = f"herald_scratch_{uuid.uuid4().hex[:12]}"
    try:
        conn = _pg_admin(target)
    except psycopg2.Error as exc:
        raise WarehouseError(f"cannot connect to the PostgreSQL server of the warehouse: {exc}") from exc
    try:
        conn.cursor().execute(
            sql.SQL("create database {} template {}").format(sql.Identifier(name), sql.Identifier(target.pg_database))
        )
    except psycopg2.Error as exc:
        conn.close()
        raise WarehouseError(
            f"cannot copy the warehouse database {target.pg_database!r} to plan on a scratch copy: "
            f"{str(exc).strip()} (a copy needs the CREATEDB privilege and no other session on the database: "
            f"stop the Dagster daemon and code server for a moment, or preview on a replica)"
        ) from exc
    try:
        yield replace(target, pg_database=name, url=target.url.rsplit("/", 1)[0] + "/" + name)
    finally:
        try:
            conn.cursor().execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        finally:
            conn.close()
