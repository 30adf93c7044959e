"""Steps migrations share where DuckDB and PostgreSQL differ.

Old migrations call these, so their behaviour is part of history: fix a bug, add a parameter
with a default, never change what an existing call does.
"""

from __future__ import annotations

from collections.abc import Sequence

from herald.warehouse.connection import Session


def add_column(
    s: Session,
    table: str,
    column: str,
    type_: str,
    backfill: str | None = None,
    primary_key: Sequence[str] | None = None,
) -> None:
    """Add ``column`` (``type_`` as in a ``create table``, e.g. ``varchar not null``) as the last
    column of ``table``. Existing rows get ``backfill``, an SQL expression over the row as ``t``
    (NULL when none: then a ``not null`` column needs one); ``primary_key`` replaces the table's key.

    PostgreSQL changes the table in place (views over it stay). DuckDB cannot add a constraint to a
    column it has just filled in the same transaction, nor change a primary key, so there the rows
    move to a new table of the new definition (same column order, the new column last).
    """
    not_null = "not null" in type_.lower()
    bare_type = type_.lower().replace("not null", "").strip()
    value = backfill or "null"
    if s.engine == "postgres":
        s.execute(f"alter table {table} add column {column} {bare_type}")
        if backfill:
            s.execute(f"update {table} as t set {column} = {backfill}")
        if not_null:
            s.execute(f"alter table {table} alter column {column} set not null")
        if primary_key is not None:
            set_primary_key(s, table, primary_key)
        return
    if not not_null and primary_key is None:
        s.execute(f"alter table {table} add column {column} {bare_type}")
        if backfill:
            s.execute(f"update {table} as t set {column} = {backfill}")
        return
    schema, name = table.split(".")
    _, rows = s.query(
        "select column_name, data_type, is_nullable from duckdb_columns() "
        "where database_name = current_database() and schema_name = ? and table_name = ? order by column_index",
        [schema, name],
    )
    key = tuple(primary_key) if primary_key is not None else _duckdb_key(s, schema, name)
    kept = [r[0] for r in rows]
    columns = [f"{n} {t}{'' if nullable else ' not null'}" for n, t, nullable in rows]
    columns.append(f"{column} {type_}")
    if key:
        columns.append(f"primary key ({', '.join(key)})")
    old = f"{name}__before_{column}"
    s.execute(f"alter table {table} rename to {old}")
    s.execute(f"create table {table} ({', '.join(columns)})")
    s.execute(
        f"insert into {table} ({', '.join(kept)}, {column}) select {', '.join(kept)}, {value} from {schema}.{old} as t"
    )
    s.execute(f"drop table {schema}.{old}")


def set_primary_key(s: Session, table: str, key: Sequence[str]) -> None:
    """Make ``key`` the primary key of ``table`` on PostgreSQL (in place, whatever the old key's
    constraint is named). DuckDB cannot change a key in place: use :func:`add_column`'s rebuild."""
    if s.engine != "postgres":
        raise ValueError(
            f"set_primary_key({table}): DuckDB cannot change a primary key in place; "
            "use add_column(..., primary_key=...), which rebuilds the table"
        )
    schema, name = table.split(".")
    old = s.scalar(
        "select constraint_name from information_schema.table_constraints "
        "where table_schema = ? and table_name = ? and constraint_type = 'PRIMARY KEY'",
        [schema, name],
    )
    if old:
        s.execute(f'alter table {table} drop constraint "{old}"')
    s.execute(f"alter table {table} add primary key ({', '.join(key)})")


def _duckdb_key(s: Session, schema: str, name: str) -> tuple[str, ...]:
    found = s.scalar(
        "select constraint_column_names from duckdb_constraints() where database_name = current_database() "
        "and schema_name = ? and table_name = ? and constraint_type = 'PRIMARY KEY'",
        [schema, name],
    )
    return tuple(found or ())
