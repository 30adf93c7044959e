"""``herald privacy export|erase CLIENT CONTACT``: a person's access export and erasure
(herald/privacy; docs/compliance.md, "Privacy rights")."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer

from herald.cli.common import console, fail, load_settings, resolve_client
from herald.clock import utcnow

app = typer.Typer(help="Privacy rights: a person's access export and erasure.", no_args_is_help=True)

ClientArg = Annotated[str, typer.Argument(metavar="CLIENT", help="Client id.")]
ContactArg = Annotated[
    str, typer.Argument(metavar="CONTACT", help="The contact's contact_id, phone number (any format) or email.")
]


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


@app.command("export")
def export_command(
    client: ClientArg,
    contact: ContactArg,
    out: Annotated[
        Path, typer.Option("--out", help="A new folder, or a file ending in .zip: export.json and one CSV per kind.")
    ],
) -> None:
    """Everything Herald holds on a person for the client: the contact and its attributes, its
    packet rows by packet and line, messages, delivery attempts, provider events, replies,
    conversations, consent and suppressions. The request is recorded (counts only)."""
    from herald.portal.store import forget_spooled, move_spool
    from herald.privacy.export import collect, write
    from herald.privacy.subject import PrivacyError
    from herald.warehouse.connection import Warehouse

    settings = load_settings()
    _, configured = resolve_client(settings, client)
    warehouse = Warehouse(settings.warehouse)
    warehouse.ensure_schema()
    try:
        if out.exists() and (out.suffix.lower() == ".zip" or not out.is_dir() or any(out.iterdir())):
            raise PrivacyError(f"{out} exists: give a new folder or .zip file")
        with warehouse.session() as s:
            moved = move_spool(s, settings.warehouse)  # the portal's audit rows of the person too
            result = collect(s, client, contact, configured.default_region, _actor(), utcnow())
            names = write(result, out)
        forget_spooled(settings.warehouse, moved)
    except PrivacyError as exc:
        fail(str(exc))
    total = sum(result.counts.values())
    console.print(f"exported {total} rows on {len(result.contact_ids)} contact(s) to {out} ({len(names)} files)")
    for kind, n in sorted(result.counts.items()):
        console.print(f"  {kind.replace('__', '.', 1)}: {n}", highlight=False)


@app.command("erase")
def erase_command(
    client: ClientArg,
    contact: ContactArg,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would be erased; change nothing.")] = False,
) -> None:
    """Remove or irreversibly mask a person's data for the client — packet rows, contacts, messages,
    replies, provider events, consent, the marts — in one transaction, keeping only a hashed
    suppression so they are never messaged again, and an audit row with counts. A second erase
    is a no-op; an unknown contact is an error that changes nothing."""
    from herald.portal.store import forget_spooled, move_spool
    from herald.privacy.erase import erase
    from herald.privacy.subject import PrivacyError
    from herald.warehouse.connection import Warehouse

    settings = load_settings()
    _, configured = resolve_client(settings, client)
    warehouse = Warehouse(settings.warehouse)
    warehouse.ensure_schema()
    try:
        with warehouse.session() as s:
            moved = move_spool(s, settings.warehouse)  # the portal's audit rows are re-keyed too
            result = erase(s, client, contact, configured.default_region, _actor(), utcnow(), dry_run=dry_run)
        forget_spooled(settings.warehouse, moved)
    except PrivacyError as exc:
        fail(str(exc))
    if result.status == "already_erased":
        console.print(result.message, highlight=False)
        return
    console.print(result.message + (f" (request {result.request_id})" if result.request_id else ""), highlight=False)
    for table, n in sorted(result.counts.items()):
        console.print(f"  {table}: {n}", highlight=False)
    if dry_run:
        console.print("dry run: nothing was changed", highlight=False)
