"""`herald segment preview`: a segment's size and first members, read-only."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from herald.cli.common import client_item, console, fail, load_settings

app = typer.Typer(help="Work with the configured segments.", no_args_is_help=True)


@app.command("preview")
def segment_preview(
    client: Annotated[str, typer.Argument(help="Client id (a folder under config/clients).")],
    name: Annotated[str, typer.Argument(help="Segment name (clients/<client>/segments/<name>.yaml).")],
    limit: Annotated[int, typer.Option(help="How many members to show.", min=0)] = 10,
) -> None:
    """Evaluate a segment read-only over the marts and print its size and first members
    (phones and emails masked). Writes nothing."""
    from herald.segments import SegmentError, evaluate_segment
    from herald.segments.preview import preview_members
    from herald.warehouse.connection import Warehouse, WarehouseError

    settings = load_settings()
    _, configured, segment = client_item(settings, client, "segment", name)
    warehouse = Warehouse(settings.warehouse)
    try:
        ids = evaluate_segment(warehouse, configured, segment)
        members = preview_members(warehouse, client, ids[:limit])
    except (SegmentError, WarehouseError) as exc:
        fail(str(exc))
    console.print(
        f"segment {client}/{name} ({segment.type}): {len(ids)} member{'s' if len(ids) != 1 else ''}", highlight=False
    )
    if not members:
        return
    table = Table(box=None, padding=(0, 1), header_style="bold")
    for column in ("contact_id", "external_id", "phone", "email", "name"):
        table.add_column(column)
    for m in members:
        table.add_row(m.contact_id, m.external_id, m.phone, m.email, m.name)
    console.print(table)
    if len(ids) > len(members):
        console.print(f"… {len(ids) - len(members)} more", style="dim")
