"""`herald backup DEST` and `herald restore SRC`: the whole warehouse (pg_dump / DuckDB's
EXPORT DATABASE) and HERALD_HOME's state, with a manifest of every table's row count
(herald/warehouse/backup.py; docs/operations.md#backups)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from herald.cli.common import console, err, fail, load_settings, plural

WAIT_HELP = "Seconds to wait for a run that holds the embedded warehouse's write lock (DuckDB)."


@contextmanager
def _progress() -> Iterator[object]:
    """A rich progress line on standard error: a bar when the total is known (tables dumped or
    restored), a spinner otherwise; the elapsed time throughout."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        tasks = [bar.add_task("starting", total=None)]

        def update(description: str, done: int | None, total: int | None) -> None:
            task = bar.tasks[-1]
            if (total is None) != (task.total is None):  # rich cannot turn a bar back into a spinner
                bar.remove_task(tasks[-1])
                tasks.append(bar.add_task(description, total=total))
            bar.update(tasks[-1], description=description, completed=done or 0, total=total)

        yield update


def backup(
    dest: Annotated[
        Path, typer.Argument(metavar="DEST", help="A new folder for the backup (must not exist, or be empty).")
    ],
    wait: Annotated[float, typer.Option("--wait", help=WAIT_HELP)] = 60.0,
) -> None:
    """Back up the warehouse and the HERALD_HOME state needed to resume into the folder DEST.
    PostgreSQL: pg_dump --format=custom of the whole warehouse database (every schema but the seg_*
    ones Herald rebuilds), from the same snapshot as the row counts. DuckDB: EXPORT DATABASE as
    parquet, under a read-only connection that keeps writers out meanwhile. Beside it: the landing
    files not loaded yet, secret_key and the ingest API key hashes, and manifest.json (engine,
    Herald schema version, created_at, every table's row count, every file's SHA-256). Not in a
    backup: the drop zone (its archive/ keeps every packet: back it up where it lives), Dagster's
    storage, the configuration and the secrets in the environment (docs/operations.md#backups)."""
    from herald.warehouse.backup import BackupError, create_backup

    settings = load_settings(config_dir_needed=False)
    try:
        with _progress() as update:
            manifest = create_backup(settings, dest, update, lock_wait_seconds=wait)  # type: ignore[arg-type]
    except BackupError as exc:
        fail(str(exc))
    rows = sum(manifest.tables.values())
    console.print(
        f"backed up the {manifest.engine} warehouse {manifest.source}: {plural(len(manifest.tables), 'table')}, "
        f"{plural(rows, 'row')}, {plural(len(manifest.home.get('files', [])), 'HERALD_HOME file')} → {dest}"
    )
    console.print(f"schema version: {manifest.schema_version}; manifest: {dest / 'manifest.json'}", style="dim")


def restore(
    src: Annotated[Path, typer.Argument(metavar="SRC", help="A backup folder made by `herald backup`.")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace a warehouse that holds rows (everything in it is replaced).")
    ] = False,
    wait: Annotated[float, typer.Option("--wait", help=WAIT_HELP)] = 60.0,
) -> None:
    """Restore the backup SRC into the configured warehouse, check every table's row count and print
    them, then put back HERALD_HOME's state. Refuses a backup of the other engine, a damaged one
    (every file is checked against the manifest first), and, without --force, a warehouse that holds
    rows. Nothing is half-applied: PostgreSQL restores in one transaction (drop, pg_restore's
    script, the row-count check); DuckDB imports into a new file, checks it and swaps it in
    atomically, keeping the old file beside it. Stop Dagster and `herald tick` first
    (docs/operations.md#backups)."""
    from herald.warehouse.backup import BackupError, restore_backup

    settings = load_settings(config_dir_needed=False)
    try:
        with _progress() as update:
            report = restore_backup(settings, src, force=force, progress=update, lock_wait_seconds=wait)  # type: ignore[arg-type]
    except BackupError as exc:
        fail(str(exc))
    table = Table("table", "rows in the backup", "rows restored", "", title="restored tables")
    for check in report.tables:
        mark = "[green]ok[/green]" if check.ok else "[red]differs[/red]"
        table.add_row(check.table, str(check.in_backup), str(check.restored), mark)
    console.print(table)
    manifest = report.manifest
    console.print(
        f"restored the backup of {manifest.created_at} (schema version {manifest.schema_version}): "
        f"{plural(len(report.tables), 'table')}, {plural(sum(c.restored for c in report.tables), 'row')}"
    )
    if report.landing_restored or report.landing_requeued:
        console.print(
            f"landing: {plural(report.landing_restored, 'file')} from the backup and "
            f"{plural(report.landing_requeued, 'file')} loaded since it put back to be loaded (the next tick loads them)"
        )
    for name in report.home_restored:
        console.print(f"put back {settings.home / name}")
    if report.kept:
        console.print(f"the warehouse as it was before the restore: {report.kept} (delete it once you have checked)")
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    if not all(c.ok for c in report.tables):
        fail("some tables' row counts differ from the backup's manifest (above)")
