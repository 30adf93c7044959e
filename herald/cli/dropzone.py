"""`herald dropzone check` and `herald drop`: the drop zone as an operator and as a client see it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from herald.cli.common import console, fail, load_settings, resolve_client

app = typer.Typer(help="Work with the drop zone (HERALD_DROPZONE_URL).", no_args_is_help=True)


@app.command("check")
def dropzone_check() -> None:
    """Connect with the current settings and print what is there: clients and waiting packets,
    or a clear error (bad credentials, unknown host key, missing bucket)."""
    from rich.markup import escape

    from herald.dropzone import DropZoneError, open_dropzone
    from herald.dropzone.base import safe_name

    settings = load_settings()
    try:
        zone = open_dropzone(settings.dropzone)
        try:
            check = getattr(zone, "check", None)
            described = check() if check else f"local folder {settings.dropzone.local_root}"
            clients = list(zone.clients())
            pending = zone.list_pending()
        finally:
            zone.close()
    except DropZoneError as exc:
        fail(f"{settings.dropzone.url}: {exc}")
    console.print(f"drop zone OK: {described}", highlight=False)
    console.print(f"clients: {', '.join(clients) or '(none yet)'}", highlight=False)
    for refusal in zone.refused:
        console.print(f"refused {safe_name(refusal)}", highlight=False, markup=False)
    if not pending:
        console.print("no packets waiting")
        return
    table = Table(box=None, padding=(0, 1), header_style="bold")
    for name in ("waiting packet", "bytes", "modified (UTC)", "checksum", "manifest rows"):
        table.add_column(name)
    for p in pending:
        table.add_row(
            escape(safe_name(p.zone_path)), str(p.size_bytes), p.modified_at.strftime("%Y-%m-%d %H:%M:%S"),
            escape(f"refused: {p.problem}") if p.problem else p.checksum_source,
            "" if p.manifest_rows is None else str(p.manifest_rows),
        )  # fmt: skip
    console.print(table)


def drop(
    file: Annotated[Path, typer.Argument(help="The packet file to drop.", exists=True, dir_okay=False, readable=True)],
    client: Annotated[str, typer.Option("--client", help="Client id (a folder under config/clients).")],
    packet_type: Annotated[str, typer.Option("--type", help="Packet type (a load map of that client).")],
    name: Annotated[str | None, typer.Option(help="File name in the drop zone (default: the file's own).")] = None,
    force: Annotated[bool, typer.Option(help="Drop even if the client or packet type is not configured.")] = False,
) -> None:
    """Place FILE in the client's incoming area with a .sha256 sidecar, as a client would upload it."""
    from herald.dropzone import DropZoneError, open_dropzone

    settings = load_settings()
    if not force:
        deployment, configured = resolve_client(settings, client)
        if deployment.load_map(client, packet_type) is None:
            fail(f"client {client!r} has no load map {packet_type!r}; it has: {', '.join(configured.load_maps)}")
    try:
        zone_path = open_dropzone(settings.dropzone).put(file, client, packet_type, name)
    except DropZoneError as exc:
        fail(str(exc))
    console.print(f"dropped {file} → {settings.dropzone.url}/{zone_path} (+ .sha256)", highlight=False)
