"""`herald appointments digest CLIENT [--dry-run]`: the daily staff digest of unconfirmed
appointments (herald.appointments.digest)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from herald.cli.common import console, fail, load_settings, resolve_client, warehouse_errors
from herald.clock import utcnow as _clock_now

if TYPE_CHECKING:
    from herald.warehouse.connection import Session

app = typer.Typer(help="Appointments: the staff digest of unconfirmed appointments.", no_args_is_help=True)


@app.command("digest")
def digest(
    client: Annotated[str, typer.Argument(metavar="CLIENT", help="Client id.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the digest without sending or recording it.")
    ] = False,
) -> None:
    """Print the client's digest of tomorrow's unconfirmed appointments (its local day) and send
    it to its contact.email now, unless it was already sent today; --dry-run only prints it.
    The schedule sends it by itself from `confirmations.digest.send_at`."""
    from herald.appointments.digest import compose, send_digests
    from herald.providers.factory import providers_from_env
    from herald.warehouse.connection import Warehouse

    settings = load_settings()
    deployment, _ = resolve_client(settings, client)
    now = _clock_now()
    warehouse = Warehouse(settings.warehouse)
    with warehouse_errors():
        warehouse.ensure_schema()
        with warehouse.session(read_only=dry_run) as s:
            if not _marts_built(s):
                fail("marts.appointment_confirmations is not built yet; run `herald tick --until-idle` first")
            composed = compose(deployment, client, now, s)
            console.print(f"Subject: {composed.subject}\n", highlight=False, markup=False)
            console.print(composed.text, highlight=False, markup=False)
            if dry_run:
                console.print("(dry run: not sent)", highlight=False)
                return
            sent = send_digests(s, deployment, providers_from_env(), now, [client], ignore_send_at=True)
    if not sent:
        console.print(f"not sent: {client}'s digest for today was already sent (or digests are disabled)")
        return
    result = sent[0]
    if result.email_status in ("sent", "empty"):
        what = "sent to the client's contact.email" if result.email_status == "sent" else "nothing to send"
        console.print(f"{what} (herald_ops.staff_digests)", highlight=False)
        return
    fail(f"the digest was not sent ({result.email_status}): {result.email_error}")


def _marts_built(session: Session) -> bool:
    _, found = session.query(
        "select count(*) from information_schema.tables "
        "where table_schema = 'marts' and table_name = 'appointment_confirmations'"
    )
    return bool(found[0][0])
