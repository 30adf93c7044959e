"""`herald db status` and `herald db upgrade`: the version of Herald's own tables and its migrations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from herald.cli.common import console, err, load_settings, plural, warehouse_errors

if TYPE_CHECKING:
    from herald.warehouse.migrate import SchemaStatus

app = typer.Typer(
    help="The warehouse schema of Herald's own tables (herald_raw, herald_ops): its version, and the "
    "migrations that bring it to this release.",
    no_args_is_help=True,
)


@app.command("status")
def db_status() -> None:
    """Show the warehouse's schema version, the migrations applied (when, how long) and those pending.
    Writes nothing."""
    from herald.warehouse.connection import Warehouse
    from herald.warehouse.migrate import status

    settings = load_settings(config_dir_needed=False)
    warehouse = Warehouse(settings.warehouse)
    with warehouse_errors():
        found = status(warehouse)
    console.print(f"warehouse: {found.where} ({warehouse.engine})", highlight=False)
    if not found.exists:
        console.print("not made yet: `herald db upgrade` (or any run) makes it", highlight=False)
    console.print(f"version: {found.current} of {found.head} — {_summary(found)}", highlight=False)
    if found.pre_migration_version is not None:
        console.print(
            f"no version table: made before migrations; its tables match version {found.pre_migration_version} "
            "(`herald db upgrade` records that, then applies the rest)",
            highlight=False,
        )
    applied = {a.version: a for a in found.applied}
    pending = {m.version for m in found.pending}
    changed = set(found.changed)
    table = Table("version", "migration", "state", "applied (UTC)", "took", "what it changes")
    for m in found.known:
        a = applied.get(m.version)
        if a is not None:
            state = a.how + (" (file changed since)" if m.version in changed else "")
            table.add_row(f"{m.version:04d}", m.name, state, f"{a.applied_at:%Y-%m-%d %H:%M:%S}",
                          f"{a.duration_ms} ms", m.description)  # fmt: skip
        elif m.version in pending:
            table.add_row(f"{m.version:04d}", m.name, "pending", "-", "-", m.description)
        else:
            table.add_row(f"{m.version:04d}", m.name, "made before migrations", "-", "-", m.description)
    console.print(table)
    if changed:
        err.print(
            "[yellow]warning:[/yellow] "
            + ", ".join(f"{v:04d}" for v in sorted(changed))
            + " changed after it was applied: a released migration is never edited; put the change in a new one",
            highlight=False,
        )


def _summary(found: SchemaStatus) -> str:
    if not found.pending:
        return "up to date"
    return f"{plural(len(found.pending), 'migration')} pending: run `herald db upgrade`"


@app.command("upgrade")
def db_upgrade(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the migrations an upgrade would apply, and apply none.")
    ] = False,
) -> None:
    """Apply the pending migrations to the warehouse, each in one transaction, printing each with its
    time. Safe to run twice (the second applies nothing) and beside another upgrade (PostgreSQL:
    one at a time). Run it before starting a new release's services."""
    from herald.warehouse.connection import Warehouse
    from herald.warehouse.migrate import STAMPED, UpgradeStep, status, upgrade

    settings = load_settings(config_dir_needed=False)
    warehouse = Warehouse(settings.warehouse)
    with warehouse_errors():
        found = status(warehouse)
    console.print(f"warehouse: {found.where} ({warehouse.engine}), version {found.current}", highlight=False)
    if dry_run:
        if found.pre_migration_version is not None:
            console.print(f"would record version {found.pre_migration_version} (tables made before migrations)",
                          highlight=False)  # fmt: skip
        if not found.pending:
            console.print(f"nothing to apply: at version {found.head}, this Herald's latest", highlight=False)
            return
        console.print(f"would apply {plural(len(found.pending), 'migration')}:", highlight=False)
        for m in found.pending:
            console.print(f"  {m.label}  {m.description}", highlight=False)
        return

    def show(step: UpgradeStep) -> None:
        if step.how == STAMPED:
            console.print(f"recorded {step.migration.label} (its tables were made before migrations)", highlight=False)
        else:
            console.print(f"applied {step.migration.label} in {step.duration_ms} ms", highlight=False)

    with warehouse_errors():
        steps = upgrade(warehouse, on_step=show)
    if not steps:
        console.print(f"nothing to apply: at version {found.head}, this Herald's latest", highlight=False)
        return
    applied = [s for s in steps if s.how != STAMPED]
    total = sum(s.duration_ms for s in applied)
    console.print(
        f"the warehouse is at version {found.head}: {plural(len(applied), 'migration')} applied in {total} ms",
        highlight=False,
    )
