"""`herald credits add` and `herald credits balance` (herald_ops.credit_ledger)."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer
from rich.table import Table

from herald.cli.common import console, fail, load_settings, resolve_client, warehouse_errors
from herald.clock import utcnow as _clock_now

app = typer.Typer(help="Buy credits for a client and see balances (herald_ops.credit_ledger).", no_args_is_help=True)


@app.command("add")
def credits_add(
    client: Annotated[str, typer.Argument(metavar="CLIENT", help="Client id.")],
    amount: Annotated[str, typer.Argument(metavar="AMOUNT", help="Credits bought, e.g. 1000 or 12.5.")],
    note: Annotated[str, typer.Option(help="What the purchase is (an invoice number); kept and audited.")],
) -> None:
    """Record a credit purchase for a client (audited with your user name). From its first
    purchase a client is metered: each message is debited when a delivery run claims it (an SMS
    per segment, an email per message; herald.yaml `pricing`) and held when the balance is short."""
    from herald.billing.credits import CreditError, add_credits, balances, credits, show
    from herald.warehouse.connection import Warehouse

    settings = load_settings()
    resolve_client(settings, client)
    now = _clock_now()
    warehouse = Warehouse(settings.warehouse)
    try:
        with warehouse_errors():
            warehouse.ensure_schema()
            with warehouse.session() as s:
                add_credits(s, client, amount, note, f"cli:{getpass.getuser()}", now)
                balance = balances(s, client)[client]
    except CreditError as exc:
        fail(str(exc))
    console.print(
        f"added {show(credits(amount))} credits to {client}: balance {show(balance.balance)}", highlight=False
    )


@app.command("balance")
def credits_balance(
    client: Annotated[
        str | None, typer.Argument(metavar="[CLIENT]", help="Client id (default: every metered client).")
    ] = None,
) -> None:
    """Show each metered client's balance, credits bought and spent, and its last purchase."""
    from herald.billing.credits import balances, show
    from herald.warehouse.connection import Warehouse

    settings = load_settings()
    if client is not None:
        resolve_client(settings, client)
    warehouse = Warehouse(settings.warehouse)
    with warehouse_errors():
        warehouse.ensure_schema()
        with warehouse.session(read_only=True) as s:
            found = balances(s, client)
    if not found:
        console.print(
            f"{client or 'no client'} has no credits yet (unmetered until `herald credits add`)", highlight=False
        )
        return
    table = Table("client", "balance", "bought", "spent", "last purchase")
    for b in found.values():
        last = (
            f"{show(b.last_purchase_amount)} on {b.last_purchase_at:%Y-%m-%d %H:%M} UTC" if b.last_purchase_at else "-"
        )
        table.add_row(b.client_id, show(b.balance), show(b.purchased), show(b.spent), last)
    console.print(table)
