"""`herald alerts list` (herald_ops.staff_alerts) and `herald alerts incidents` (herald_ops.operator_incidents)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from herald.cli.common import console, load_settings, resolve_client, warehouse_errors

app = typer.Typer(
    help="Staff alerts: failed or held messages, low delivery rates, provider outages (herald_ops.staff_alerts); "
    "operator incidents: failed runs, deployment-wide failed/held messages (herald_ops.operator_incidents).",
    no_args_is_help=True,
)


@app.command("list")
def alerts_list(
    client: Annotated[str | None, typer.Argument(metavar="[CLIENT]", help="Client id (default: every client).")] = None,
    open_only: Annotated[bool, typer.Option("--open", help="Only alerts still open.")] = False,
) -> None:
    """List staff alerts, newest first: kind, counts, threshold, when it crossed and recovered, and what
    became of the client's email."""
    from herald.alerts import list_alerts
    from herald.warehouse.connection import Warehouse

    settings = load_settings()
    if client is not None:
        resolve_client(settings, client)
    warehouse = Warehouse(settings.warehouse)
    with warehouse_errors():
        warehouse.ensure_schema()
        with warehouse.session(read_only=True) as s:
            found = list_alerts(s, client, status="open" if open_only else None)
    if not found:
        console.print(f"no staff alerts{f' for {client}' if client else ''}", highlight=False)
        return
    table = Table("client", "kind", "provider", "observed", "of", "threshold", "crossed (UTC)", "status", "email")
    for a in found:
        status = a.status if a.recovered_at is None else f"{a.status} {a.recovered_at:%Y-%m-%d %H:%M}"
        email = a.email_status + (f": {a.email_error}" if a.email_error else "")
        table.add_row(a.client_id, a.kind, a.subject or "-", str(a.observed), str(a.total), a.threshold,
                      f"{a.crossed_at:%Y-%m-%d %H:%M}", status, email)  # fmt: skip
    console.print(table)


@app.command("incidents")
def alerts_incidents(
    open_only: Annotated[bool, typer.Option("--open", help="Only incidents still open.")] = False,
) -> None:
    """List operator incidents, newest first: failed runs and deployment-wide failed/held crossings
    (herald_ops.operator_incidents), with the run link and what became of the email and the webhook."""
    from herald.alerts.operator import list_incidents
    from herald.warehouse.connection import Warehouse

    settings = load_settings()
    warehouse = Warehouse(settings.warehouse)
    with warehouse_errors():
        warehouse.ensure_schema()
        with warehouse.session(read_only=True) as s:
            found = list_incidents(s, status="open" if open_only else None)
    if not found:
        console.print("no operator incidents", highlight=False)
        return
    table = Table("opened (UTC)", "kind", "summary", "status", "email", "webhook", "run")
    for i in found:
        status = i.status if i.recovered_at is None else f"{i.status} {i.recovered_at:%Y-%m-%d %H:%M}"
        email = i.email_status + (f": {i.email_error}" if i.email_error else "")
        webhook = i.webhook_status + (f": {i.webhook_error}" if i.webhook_error else "")
        table.add_row(f"{i.opened_at:%Y-%m-%d %H:%M}", i.kind, i.summary, status, email, webhook, i.link or "-")
    console.print(table)
