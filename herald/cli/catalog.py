"""`herald tables`, `herald describe` and `herald docs`: what the warehouse holds, for analysts."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from herald.cli.common import USAGE_EXIT, console, err, fail, load_settings, warehouse_errors


def _count(rows: int | None) -> str:
    return "-" if rows is None else f"{rows:,}"


def tables(
    schema: Annotated[
        str | None, typer.Option(help="Only this schema (staging, intermediate, marts, analytics…).")
    ] = None,
) -> None:
    """List the warehouse's tables and views: schema, name, what one row is, row count."""
    from herald.warehouse.catalog import HERALD_SCHEMAS, list_tables
    from herald.warehouse.connection import Warehouse

    settings = load_settings()
    if schema is not None and schema not in HERALD_SCHEMAS:
        fail(f"--schema {schema!r} is not one of Herald's schemas: {', '.join(HERALD_SCHEMAS)}", USAGE_EXIT)
    with warehouse_errors():
        found = list_tables(Warehouse(settings.warehouse), schema)
    if not found:
        where = f"schema {schema!r}" if schema else "the warehouse"
        fail(f"{where} has no tables yet: run `make demo` (or `herald tick` after a packet) first")
    table = Table(box=None, padding=(0, 1), header_style="bold")
    # names and counts are never cut; the description gets one line of what is left (`herald
    # describe` has all of it)
    schema_width = max(len(t.schema) for t in found)
    name_width = max(len(t.name) for t in found)
    rows_width = max(len(_count(t.row_count)) for t in found)
    description_width = max(20, console.width - schema_width - name_width - rows_width - 8)
    table.add_column("schema", no_wrap=True, min_width=schema_width)
    table.add_column("table", no_wrap=True, min_width=name_width)
    table.add_column("description", no_wrap=True, overflow="ellipsis", max_width=description_width)
    table.add_column("rows", justify="right", no_wrap=True, min_width=rows_width)
    for t in found:
        table.add_row(t.schema, t.name, t.description or "", _count(t.row_count))
    console.print(table)


def describe(
    name: Annotated[
        str, typer.Argument(metavar="TABLE", help="schema.table, e.g. marts.contacts (or a unique table name).")
    ],
) -> None:
    """Show a table's description, row count and columns with their types and descriptions."""
    from herald.warehouse.catalog import UnknownTable, describe_table
    from herald.warehouse.connection import Warehouse

    settings = load_settings()
    try:
        with warehouse_errors():
            described = describe_table(Warehouse(settings.warehouse), name)
    except UnknownTable as exc:
        fail(str(exc))
    rows = (
        ""
        if described.row_count is None
        else f", {_count(described.row_count)} row{'' if described.row_count == 1 else 's'}"
    )
    console.print(f"[bold]{described.schema}.{described.name}[/bold] ({described.kind}{rows})", highlight=False)
    if described.description:
        console.print(described.description, highlight=False, markup=False)
    table = Table(box=None, padding=(0, 1), header_style="bold")
    table.add_column("column", no_wrap=True)
    table.add_column("type")
    table.add_column("description")
    for c in described.columns:
        table.add_row(c.name, c.data_type, c.description or "")
    console.print(table)


def docs(
    port: Annotated[int, typer.Option(help="Port to serve the docs on.")] = 8080,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    generate: Annotated[bool, typer.Option("--generate", help="Run `dbt docs generate` first.")] = False,
) -> None:
    """Serve the dbt docs (every model, column and test, with the lineage graph) on a local port."""
    import functools
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from herald.warehouse.catalog import docs_dir, generate_docs

    settings = load_settings()
    if generate:
        console.print("generating the dbt docs…")
        try:
            folder = generate_docs(settings)
        except Exception as exc:  # dbt's own message says what failed
            fail(f"dbt docs generate failed: {str(exc).strip()}")
    else:
        folder = docs_dir(settings)
    if not (folder / "index.html").exists():
        fail(f"no generated docs in {folder}: run `make docs`, or `herald docs --generate`")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(folder))
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    console.print(f"dbt docs on http://{host}:{port}/ (from {folder}); Ctrl+C stops", highlight=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        err.print("stopped")
    finally:
        server.server_close()
