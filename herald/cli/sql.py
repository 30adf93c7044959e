"""`herald sql`: a read-only query on the warehouse."""

from __future__ import annotations

import csv
import json
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from herald.cli.common import USAGE_EXIT, console, fail, load_settings
from herald.reports.cells import csv_row

FORMATS = ("table", "csv", "json")


def print_rows(columns: list[str], rows: list[tuple[Any, ...]], fmt: str) -> None:
    if fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(csv_row(columns))
        writer.writerows(csv_row(r) for r in rows)  # formula-looking text neutralised
    elif fmt == "json":
        print(json.dumps([dict(zip(columns, r, strict=False)) for r in rows], default=str, indent=2))
    else:
        table = Table(*columns, show_lines=False)
        for row in rows:
            table.add_row(*["" if v is None else str(v) for v in row])
        console.print(table)
        console.print(f"({len(rows)} row{'s' if len(rows) != 1 else ''})", style="dim")


def sql(
    query: Annotated[str, typer.Argument(help="A read-only SQL query.")],
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
) -> None:
    """Print the result of a read-only query on the warehouse (DuckDB or PostgreSQL)."""
    from herald.warehouse.connection import Warehouse, WarehouseError

    if fmt not in FORMATS:
        fail(f"--format must be table, csv or json, not {fmt!r}", USAGE_EXIT)
    warehouse = Warehouse(load_settings().warehouse)
    try:
        with warehouse.session(read_only=True) as s:
            columns, rows = s.query(query)
    except WarehouseError as exc:
        fail(str(exc))
    except Exception as exc:  # the engine's own message says what is wrong with the query
        fail(f"{type(exc).__name__}: {str(exc).strip()}")
    print_rows(columns, rows, fmt)
