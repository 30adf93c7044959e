"""`herald campaign preview` and `herald campaign send`."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated

import typer
from rich.markup import escape

from herald.cli.common import client_item, console, err, fail, load_settings, tick_runner
from herald.settings import Settings

app = typer.Typer(help="Preview and send the configured campaigns.", no_args_is_help=True)


@app.command("preview")
def campaign_preview(
    client: Annotated[str, typer.Argument(help="Client id (a folder under config/clients).")],
    name: Annotated[str, typer.Argument(help="Campaign name (clients/<client>/campaigns/<name>.yaml).")],
    limit: Annotated[int, typer.Option(help="How many recipients to render.", min=1)] = 3,
) -> None:
    """Render the campaign for its first recipients exactly as it would go out (channel rule,
    A/B variant, template, opt-out and unsubscribe wording), sending and writing nothing."""
    from datetime import datetime

    from herald.campaigns.links import links_from_env
    from herald.campaigns.preview import preview_campaign
    from herald.contacts.phones import mask_email, mask_phone
    from herald.warehouse.connection import Warehouse, WarehouseError

    settings = load_settings()
    deployment, _, campaign = client_item(settings, client, "campaign", name)
    now = datetime.now(UTC).replace(tzinfo=None)
    try:
        size, previews = preview_campaign(
            Warehouse(settings.warehouse), deployment, settings.config_dir, links_from_env(settings.home),
            client, campaign, limit, now,
        )  # fmt: skip
    except WarehouseError as exc:
        fail(str(exc))
    console.print(
        f"campaign {client}/{name} ({campaign.message_type}, {campaign.status}): audience "
        f"{campaign.audience} has {size} member{'s' if size != 1 else ''}; showing {len({p.contact_id for p in previews})}",
        highlight=False,
    )
    for p in previews:
        m = p.message
        if m is None:
            console.print(f"\n[bold]{p.contact_id}[/bold] step {p.step}: left out — {p.reason}", highlight=False)
            continue
        to = mask_phone(m.to_address) if m.channel == "sms" else mask_email(m.to_address)
        head = f"\n[bold]{p.contact_id}[/bold] step {p.step} · variant {m.variant} · {m.channel} to {to} · template {m.template}"
        console.print(head, highlight=False)
        if m.status == "held":
            console.print(f"  [red]held[/red]: {escape(m.status_reason or '')}", highlight=False)
        elif m.channel == "sms":
            console.print(
                f"  ({m.sms_segments} segment{'s' if m.sms_segments != 1 else ''}, {m.sms_encoding})", highlight=False
            )
            console.print("  " + escape(m.body_text or "").replace("\n", "\n  "), highlight=False)
        else:
            console.print(f"  Subject: {escape(m.subject or '')}", highlight=False)
            for header, value in m.headers.items():
                console.print(f"  {header}: {escape(value)}", highlight=False)
            console.print("  " + escape(m.body_text or "").replace("\n", "\n  "), highlight=False)


@app.command("send")
def campaign_send(
    client: Annotated[str, typer.Argument(help="Client id.")],
    name: Annotated[str, typer.Argument(help="Campaign name.")],
    occurrence: Annotated[
        str | None,
        typer.Option(help="Name of this send; the same name never sends twice. Default: manual-<today>."),
    ] = None,
    wait: Annotated[
        bool, typer.Option(help="Run it now with `herald tick` (off: leave it to a running Dagster).")
    ] = True,
) -> None:
    """Send a campaign now, to its whole audience, as one named occurrence (through the same
    plan, outbox, rules and delivery as a scheduled send). Repeating an occurrence sends nothing new."""
    from datetime import date

    from herald.campaigns.requests import clear_send_request, write_send_request

    settings = load_settings()
    client_item(settings, client, "campaign", name)
    label = occurrence or f"manual-{date.today().isoformat()}"
    path = write_send_request(settings.home, client, name, label)
    run_tick = tick_runner()
    if not wait or run_tick is None:
        console.print(
            f"requested {client}/{name} occurrence {label}: the manual_send_sensor starts it", highlight=False
        )
        return
    ok = run_tick(settings)
    clear_send_request(path)
    print_messages(settings, client)
    if not ok:
        err.print(f"some runs failed: their logs are in {settings.home / 'logs' / 'tick.log'} and the Dagster UI")
        raise typer.Exit(1)


def print_messages(settings: Settings, client_id: str | None = None) -> None:
    """Per campaign: planned, excluded (with reasons), and what the outbox did with the rest."""
    from herald.campaigns.summary import campaign_summaries
    from herald.warehouse.connection import Warehouse

    for c in campaign_summaries(Warehouse(settings.warehouse), client_id):
        console.print(
            f"campaign {c.client_id}/{c.campaign}: {c.planned} planned, {c.excluded} excluded · "
            f"{c.sent} sent, {c.deferred} deferred to their send window, {c.scheduled} scheduled later, "
            f"{c.held} held, {c.failed} failed, {c.suppressed} suppressed, {c.cancelled} cancelled",
            highlight=False,
        )
        for reason, n in c.exclusions:
            console.print(f"  excluded: {reason} ({n})", highlight=False)
        for reason, n in c.problems:
            console.print(f"  {reason} ({n})", highlight=False)
