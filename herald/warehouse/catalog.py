"""What the warehouse holds, for analysts: Herald's schemas, their tables with what one row is
and how many rows there are, each table's columns, and the dbt docs site.

Descriptions come from the database's own comments: dbt writes every model's description and
its columns' descriptions there (``persist_docs`` in dbt_project.yml), on DuckDB and PostgreSQL
alike. Tables Python owns (``herald_raw``, ``herald_ops`` and the two it writes into ``marts``
and ``analytics``) have no comment; their description is the one the dbt project gives the
source, read from the parsed manifest when there is one.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from herald.paths import DBT_PROJECT_DIR
from herald.settings import Settings
from herald.warehouse.connection import Session, Warehouse
from herald.warehouse.schema import COLUMN_DESCRIPTIONS, TABLE_DESCRIPTIONS

HERALD_SCHEMAS = ("herald_raw", "herald_ops", "staging", "intermediate", "marts", "analytics")
DOCS_FOLDER = "dbt-docs"
MAX_SUGGESTIONS = 3
SUGGESTION_CUTOFF = 70  # rapidfuzz WRatio score out of 100

_SENTENCE_END = re.compile(r"(?<!e\.g)(?<!i\.e)\.\s")
_IN_SCHEMAS = ", ".join(f"'{s}'" for s in HERALD_SCHEMAS)

TABLES_SQL = {
    "duckdb": f"""
        select schema_name, table_name, 'table' as kind, comment
        from duckdb_tables()
        where database_name = current_database() and schema_name in ({_IN_SCHEMAS})
        union all
        select schema_name, view_name, 'view', comment
        from duckdb_views()
        where database_name = current_database() and not internal and schema_name in ({_IN_SCHEMAS})
        order by 1, 2
    """,
    "postgres": f"""
        select n.nspname, c.relname, case when c.relkind in ('v', 'm') then 'view' else 'table' end,
            obj_description(c.oid, 'pg_class')
        from pg_class as c
        inner join pg_namespace as n on n.oid = c.relnamespace
        where c.relkind in ('r', 'p', 'v', 'm') and n.nspname in ({_IN_SCHEMAS})
        order by 1, 2
    """,
}

COLUMNS_SQL = {
    "duckdb": """
        select column_name, data_type, comment
        from duckdb_columns()
        where database_name = current_database() and schema_name = ? and table_name = ?
        order by column_index
    """,
    "postgres": """
        select a.attname, format_type(a.atttypid, a.atttypmod), col_description(a.attrelid, a.attnum)
        from pg_attribute as a
        inner join pg_class as c on c.oid = a.attrelid
        inner join pg_namespace as n on n.oid = c.relnamespace
        where n.nspname = ? and c.relname = ? and a.attnum > 0 and not a.attisdropped
        order by a.attnum
    """,
}


class UnknownTable(ValueError):
    """No such table in Herald's schemas; the message suggests close names."""


@dataclass(frozen=True)
class TableInfo:
    schema: str
    name: str
    kind: str  # table | view
    description: str | None  # first line of the table's description
    row_count: int | None  # exact for tables; None for views (counting one runs its query)


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    data_type: str
    description: str | None


@dataclass(frozen=True)
class TableDescription:
    schema: str
    name: str
    kind: str
    description: str | None  # the whole description
    row_count: int | None
    columns: list[ColumnInfo] = field(default_factory=list)


@dataclass(frozen=True)
class _Relation:
    schema: str
    name: str
    kind: str
    comment: str | None


def first_line(text: str | None) -> str | None:
    """The first sentence-bearing line of a description, whitespace collapsed: dbt's folded
    descriptions arrive as one long line, so cut it at the first full stop followed by a space."""
    if not text or not text.strip():
        return None
    line = " ".join(text.strip().splitlines()[0].split())
    stop = _SENTENCE_END.search(line)
    return line[: stop.start() + 1] if stop else line


def _relations(session: Session, schema: str | None) -> list[_Relation]:
    _, rows = session.query(TABLES_SQL[session.engine])
    return [_Relation(*r) for r in rows if schema is None or r[0] == schema]


def _python_owned_descriptions(engine: str) -> dict[tuple[str, str], dict]:
    """(schema, table) → {"description", "columns": {name: {"description"}}} for the tables
    Python owns (they have no comment): the dbt manifest's source entries, and the few tables no
    source declares (herald.warehouse.schema)."""
    found: dict[tuple[str, str], dict] = {}
    for table, description in TABLE_DESCRIPTIONS.items():
        schema, name = table.split(".")
        columns = {c: {"description": d} for c, d in COLUMN_DESCRIPTIONS.get(table, {}).items()}
        found[(schema, name)] = {"description": description, "columns": columns}
    path = DBT_PROJECT_DIR / "target" / engine / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return found
    for source in manifest.get("sources", {}).values():
        found[(source["schema"], source.get("identifier") or source["name"])] = source
    return found


def _row_count(session: Session, relation: _Relation) -> int | None:
    if relation.kind != "table":
        return None
    return int(session.scalar(f'select count(*) from "{relation.schema}"."{relation.name}"'))


def list_tables(warehouse: Warehouse, schema: str | None = None) -> list[TableInfo]:
    """Every table and view in Herald's schemas (or one of them), by schema and name."""
    sources = _python_owned_descriptions(warehouse.engine)
    with warehouse.session(read_only=True) as session:
        return [
            TableInfo(
                schema=r.schema,
                name=r.name,
                kind=r.kind,
                description=first_line(r.comment or sources.get((r.schema, r.name), {}).get("description")),
                row_count=_row_count(session, r),
            )
            for r in _relations(session, schema)
        ]


def _resolve(relations: list[_Relation], name: str) -> _Relation:
    wanted = name.strip().lower()
    by_full = {f"{r.schema}.{r.name}": r for r in relations}
    if wanted in by_full:
        return by_full[wanted]
    if "." not in wanted:
        bare = [r for r in relations if r.name == wanted]
        if len(bare) == 1:
            return bare[0]
    from rapidfuzz import fuzz, process

    # a bare name is compared with table names, "schema.table" with full names
    choices = {full: (full if "." in wanted else r.name) for full, r in by_full.items()}
    matches = process.extract(wanted, choices, scorer=fuzz.WRatio, limit=MAX_SUGGESTIONS,
                              score_cutoff=SUGGESTION_CUTOFF)  # fmt: skip
    hint = f"did you mean {', '.join(m[2] for m in matches)}?" if matches else "`herald tables` lists them"
    raise UnknownTable(f"no table {name!r} in the warehouse's schemas ({', '.join(HERALD_SCHEMAS)}): {hint}")


def describe_table(warehouse: Warehouse, name: str) -> TableDescription:
    """A table's description, row count and columns (type, description), by "schema.table"
    or by a table name only one schema has. Raises :class:`UnknownTable` otherwise."""
    with warehouse.session(read_only=True) as session:
        relation = _resolve(_relations(session, None), name)
        _, rows = session.query(COLUMNS_SQL[session.engine], [relation.schema, relation.name])
        source = _python_owned_descriptions(warehouse.engine).get((relation.schema, relation.name), {})
        source_columns = source.get("columns", {})
        columns = [ColumnInfo(c, str(t), d or source_columns.get(c, {}).get("description") or None) for c, t, d in rows]
        description = relation.comment or source.get("description") or None
        return TableDescription(
            schema=relation.schema,
            name=relation.name,
            kind=relation.kind,
            description=" ".join(description.split()) if description else None,
            row_count=_row_count(session, relation),
            columns=columns,
        )


def docs_dir(settings: Settings) -> Path:
    """Where the deployment's dbt docs site is: one folder per warehouse engine under its home."""
    return settings.home / DOCS_FOLDER / settings.warehouse.dbt_target


def generate_docs(settings: Settings) -> Path:
    """Run ``dbt docs generate`` against the configured warehouse; returns the folder holding
    ``index.html`` (served by ``herald docs``) and ``static_index.html`` (opens from disk).

    dbt runs in a subprocess with the deployment's connection in its environment, so nothing of
    it leaks into this process. Raises RuntimeError with dbt's output when it fails.
    """
    folder = docs_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **settings.warehouse.dbt_env(), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    command = [
        sys.executable, "-m", "dbt.cli.main", "docs", "generate", "--static",
        "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
        "--target", settings.warehouse.dbt_target, "--target-path", str(folder), "--log-path", str(folder),
    ]  # fmt: skip
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not (folder / "index.html").exists():
        output = (result.stdout + result.stderr).strip().splitlines()
        raise RuntimeError("\n".join(output[-20:]) or f"dbt exited with status {result.returncode}")
    return folder


__all__ = [
    "ColumnInfo",
    "TableDescription",
    "TableInfo",
    "UnknownTable",
    "describe_table",
    "docs_dir",
    "generate_docs",
    "list_tables",
]
