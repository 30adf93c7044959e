"""`herald campaign preview` and `herald campaign send`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

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


def _local_time(text: str | None, time_zone: str) -> datetime:
    """``--start``/``--at``: an ISO date-time in the client's zone (default: now) → naive UTC."""
    from zoneinfo import ZoneInfo

    if not text:
        return datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    try:
        local = datetime.fromisoformat(text)
    except ValueError:
        fail(f"{text!r} is not a date and time; write it like 2026-12-07T09:00 (the client's local time)", 2)
    if local.tzinfo is None:
        local = local.replace(tzinfo=ZoneInfo(time_zone))
    return local.astimezone(UTC).replace(tzinfo=None)


def _rate(value: float) -> float:
    if not 0 <= value <= 1:
        raise typer.BadParameter("a share between 0 and 1, like 0.15")
    return value


@app.command("simulate")
def campaign_simulate(
    client: Annotated[str, typer.Argument(help="Client id (a folder under config/clients).")],
    name: Annotated[str, typer.Argument(help="Campaign name.")],
    days: Annotated[int, typer.Option(help="How many days to run the journey for.", min=1, max=90)] = 14,
    start: Annotated[
        str | None, typer.Option(help="When it starts, in the client's local time (2026-12-07T09:00). Default: now.")
    ] = None,
    every: Annotated[
        str, typer.Option(help="How often a send pass runs on the simulated clock (a duration: 6h, 1d).")
    ] = "12h",
    delivery_rate: Annotated[float, typer.Option(help="Share of messages delivered.", callback=_rate)] = 0.97,
    open_rate: Annotated[float, typer.Option(help="Share of delivered emails opened.", callback=_rate)] = 0.40,
    click_rate: Annotated[float, typer.Option(help="Share of delivered messages clicked.", callback=_rate)] = 0.15,
    reply_rate: Annotated[float, typer.Option(help="Share of delivered messages replied to.", callback=_rate)] = 0.05,
    confirm_rate: Annotated[
        float, typer.Option(help="Share of delivered reminders confirmed (C).", callback=_rate)
    ] = 0.50,
    goal_rate: Annotated[
        float, typer.Option(help="Share of messaged contacts who reach the goal stage.", callback=_rate)
    ] = 0.10,
) -> None:
    """Run a campaign's journey over N days on a simulated clock and print its funnel per step.

    The send's own plan runs (the same dbt models, ledger and renderer) on a scratch copy of the
    warehouse, with a pass every --every; between passes, simulated recipients answer: messages
    are delivered or bounce, opened, clicked, replied to, confirmed, and some contacts reach the
    goal stage — at the given rates, the same way for the same message every time. Nothing is
    sent and nothing real is written. The campaign starts fresh on the copy, alone."""
    from herald.campaigns.links import links_from_env
    from herald.campaigns.simulate import Engagement, simulate
    from herald.config.campaigns import parse_duration
    from herald.warehouse.connection import WarehouseError
    from herald.warehouse.dbt_run import DbtRunError

    settings = load_settings()
    deployment, configured, campaign = client_item(settings, client, "campaign", name)
    try:
        step = parse_duration(every)
    except ValueError as exc:
        fail(f"--every: {exc}", 2)
    if step < timedelta(minutes=15):
        fail("--every must be at least 15m (the send schedule's own pace)", 2)
    begin = _local_time(start, configured.time_zone)
    rates = Engagement(delivery_rate, open_rate, click_rate, reply_rate, confirm_rate, goal_rate)
    console.print(
        f"simulating {client}/{name} for {days} days from {begin:%Y-%m-%d %H:%M} UTC, a pass every {every}, "
        f"on a scratch copy of the warehouse (nothing is sent)",
        highlight=False,
    )
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task("passes", total=None)

        def advance(outcome, total: int) -> None:
            bar.update(task, total=total, advance=1, description=f"pass at {outcome.at:%Y-%m-%d %H:%M}")

        try:
            result = simulate(
                settings.warehouse, deployment, settings.config_dir, links_from_env(settings.home), client, campaign,
                start=begin, days=days, every=step, rates=rates, progress=advance,
            )  # fmt: skip
        except (WarehouseError, DbtRunError) as exc:
            fail(str(exc))
    print_simulation(result)


def print_simulation(result) -> None:
    """The funnel a marketer reads: per step, who reached it, what it sent, the paths taken,
    who waits there now, who left and why."""
    enrolled = sum(result.enrollments.values())
    e = result.engagement
    sent = sum(n for status, n in result.messages.items() if status != "cancelled")
    rate = f"{e['delivered'] / sent:.1%}" if sent else "—"
    console.print(
        f"\n{enrolled} enrolled · {sent} messages sent, {e['delivered']} delivered ({rate}), {e['opened']} opened, "
        f"{e['clicked']} clicked, {e['replied']} replied, {e['confirmed']} confirmed, {e['goal']} reached the goal",
        highlight=False,
    )
    if result.messages.get("cancelled"):
        console.print(f"{result.messages['cancelled']} queued messages cancelled by an exit", highlight=False)
    table = Table(box=None, padding=(0, 2), header_style="bold")
    for column in ("step", "reached", "sent", "waiting now", "paths taken", "exited (why)", "completed"):
        table.add_column(column, justify="left" if column in ("step", "paths taken", "exited (why)") else "right")
    for row in result.funnel:
        exits = f"{row['exited']} ({row['exit_reasons']})" if row["exited"] else ""
        table.add_row(
            row["step"], str(row["reached"]), str(row["messaged"] or ""), str(row["waiting_now"] or ""),
            row["paths_taken"] or "", exits, str(row["completed"] or ""),
        )  # fmt: skip
    console.print(table)
    status = ", ".join(f"{n} {s}" for s, n in sorted(result.enrollments.items()))
    console.print(f"enrollments at the end: {status or 'none'}", highlight=False)
