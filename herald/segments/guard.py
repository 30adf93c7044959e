"""The SQL guard for ``sql`` segments: one SELECT over ``marts`` / ``analytics``, nothing else.

The guard is the first, friendly check (a segment's author sees what is wrong, in words, before
a run); it is not the wall. Whatever it lets through runs confined by the engine
(``herald/segments/confine.py``): a database holding only the client's rows, nothing else
reachable (docs/security.md).
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

ALLOWED_SCHEMAS = frozenset({"marts", "analytics"})
# Statements (or clauses) that change state or reach outside the warehouse's tables.
_FORBIDDEN_NODES: tuple[type[exp.Expression], ...] = tuple(
    getattr(exp, name)
    for name in (
        "Insert",
        "Update",
        "Delete",
        "Merge",
        "Create",
        "Drop",
        "Alter",
        "Copy",
        "Command",
        "Set",
        "Pragma",
        "Attach",
        "Detach",
        "Use",
        "Transaction",
        "Commit",
        "Rollback",
        "Into",
        "Lock",
    )
    if hasattr(exp, name)
)
# Functions that read files, other databases or the server's environment (DuckDB and PostgreSQL).
_FORBIDDEN_FUNCTION_PREFIXES = (
    "read_",
    "pg_read",
    "pg_ls_",
    "pg_stat_file",
    "lo_",
    "dblink",
    "parquet_",
    "glob",
    "getenv",
    "query",
    "sniff_",
    "iceberg_",
    "delta_",
    "sqlite_",
    "postgres_",
    "mysql_",
    "current_setting",
    "set_config",
    "load_",
    "install_",
)


class SegmentSqlRefused(ValueError):
    """What is wrong with a segment's SQL (the caller adds the segment's name)."""


def _function_name(node: exp.Expression) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.this).lower()
    return node.sql_name().lower() if hasattr(node, "sql_name") else type(node).__name__.lower()


def check_sql(sql: str, dialect: str = "postgres") -> exp.Expression:
    """The parsed statement when ``sql`` is one SELECT reading only ``marts``/``analytics`` tables
    and (when its columns are named) returning ``contact_id``; otherwise :class:`SegmentSqlRefused`."""
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except sqlglot.errors.SqlglotError as exc:
        raise SegmentSqlRefused(f"the SQL does not parse: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        raise SegmentSqlRefused(f"the SQL must be exactly one SELECT statement, found {len(statements)} statements")
    statement = statements[0]
    if not isinstance(statement, exp.Query):
        raise SegmentSqlRefused(f"the SQL must be a SELECT, not {statement.key.upper()}")
    for node in statement.walk():
        if isinstance(node, _FORBIDDEN_NODES):
            raise SegmentSqlRefused(f"the SQL may only read: {node.key.upper()} is not allowed")
        if isinstance(node, exp.Func):
            name = _function_name(node)
            if isinstance(node, exp.ReadCSV) or name.startswith(_FORBIDDEN_FUNCTION_PREFIXES):
                raise SegmentSqlRefused(f"the SQL may not call {name}(): it reads outside the marts")
    cte_names = {cte.alias_or_name.lower() for cte in statement.find_all(exp.CTE)}
    for table in statement.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            name = _function_name(table.this) if isinstance(table.this, exp.Func) else table.this.sql()
            raise SegmentSqlRefused(
                f"the SQL may only read tables in marts or analytics, not the table function {name}"
            )
        schema = table.db.lower()
        if table.catalog:
            raise SegmentSqlRefused(
                f"the SQL may only read tables in marts or analytics, not {table.sql(dialect=dialect)}"
            )
        if not schema and table.name.lower() in cte_names:
            continue
        if schema not in ALLOWED_SCHEMAS:
            raise SegmentSqlRefused(
                f"the SQL may only read tables in marts or analytics, not {table.sql(dialect=dialect)}"
            )
    selects = statement.named_selects
    if "*" not in selects and not any(s.lower() == "contact_id" for s in selects):
        raise SegmentSqlRefused(
            f"the SQL must return a contact_id column; it returns {', '.join(selects) or 'nothing'}"
        )
    return statement


def referenced_relations(statement: exp.Expression) -> set[tuple[str, str]]:
    """``(schema, name)`` of every ``marts`` / ``analytics`` table a checked statement names."""
    return {
        (table.db.lower(), table.name.lower())
        for table in statement.find_all(exp.Table)
        if table.db.lower() in ALLOWED_SCHEMAS
    }
