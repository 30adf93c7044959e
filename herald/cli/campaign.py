"""`herald campaign preview` and `herald campaign send`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from herald.cli.common import client_item, console, err, fail, load_settings, plural, tick_runner
from herald.settings import Settings

app = typer.Typer(help="Preview and send the configured campaigns.", no_args_is_help=True)


@app.command("preview")
def campaign_preview(
    client: Annotated[str, typer.Argument(help="Client id (a folder under config/clients).")],
    name: Annotated[str, typer.Argument(help="Campaign name (clients/<client>/campaigns/<name>.yaml).")],
    contact: Annotated[str | None, typer.Option(help="Show this contact only (its contact id).")] = None,
    at: Annotated[
        str | None,
        typer.Option(
            help="Plan as if the campaign fired then, in the client's local time (2026-12-07T09:00). Default: now."
        ),
    ] = None,
    limit: Annotated[int, typer.Option(help="How many contacts to show.", min=1)] = 3,
) -> None:
    """Show what a send would do now (or --at a time), per contact: each message with its time,
    channel, A/B variant and rendered text, or why the contact is left out (consent, window,
    cap, daily limit, suppression) and where the journey leaves them.

    It runs the send's own plan (the same dbt models, rules and renderer) on a scratch copy of
    the warehouse, so the preview and the send agree; nothing is sent or written."""
    from herald.campaigns.links import links_from_env
    from herald.campaigns.preview import preview_plan
    from herald.warehouse.connection import WarehouseError
    from herald.warehouse.dbt_run import DbtRunError

    settings = load_settings()
    deployment, configured, campaign = client_item(settings, client, "campaign", name)
    moment = _local_time(at, configured.time_zone)
    with err.status(f"planning {client}/{name} on a scratch copy of the warehouse…"):
        try:
            preview = preview_plan(
                settings.warehouse, deployment, settings.config_dir, links_from_env(settings.home), client, campaign,
                moment,
            )  # fmt: skip
        except (WarehouseError, DbtRunError) as exc:
            fail(str(exc))
    print_preview(preview, configured.time_zone, contact, limit)


def _outcome_counts(rows) -> str:
    from collections import Counter

    counts = Counter(r.outcome for r in rows)
    return ", ".join(f"{n} {outcome}" for outcome, n in counts.most_common()) or "nothing"


def print_preview(preview, time_zone: str, contact: str | None, limit: int) -> None:
    from collections import Counter
    from zoneinfo import ZoneInfo

    from herald.contacts.phones import mask_email, mask_phone

    def local(moment: datetime | None) -> str:
        if moment is None:
            return ""
        return moment.replace(tzinfo=UTC).astimezone(ZoneInfo(time_zone)).strftime("%a %Y-%m-%d %H:%M %Z")

    rows = preview.rows
    console.print(
        f"campaign {preview.client_id}/{preview.campaign} as if it fired {local(preview.at)}: audience has "
        f"{plural(preview.audience, 'member')}; {_outcome_counts(rows)}",
        highlight=False,
    )
    reasons = Counter(r.reason for r in rows if r.outcome in ("excluded", "not enrolled", "held") and r.reason)
    for reason, n in reasons.most_common(8):
        console.print(f"  left out: {reason} ({n})", highlight=False)
    contacts = sorted({r.contact_id for r in rows})
    if contact is not None:
        if contact not in contacts:
            fail(f"contact {contact!r} is not in this campaign's plan (not in its audience, or no such contact)")
        contacts = [contact]
    shown = contacts[:limit]
    for contact_id in shown:
        console.print(f"\n[bold]{escape(contact_id)}[/bold]", highlight=False)
        for r in (r for r in rows if r.contact_id == contact_id):
            step = r.step or "(enrollment)"
            if r.outcome in ("planned", "held"):
                to = mask_phone(r.to_address or "") if r.channel == "sms" else mask_email(r.to_address or "")
                moved = f" ({r.deferral_reason})" if r.deferral_reason else " (moved into the send window)"
                when = local(r.send_after) + (moved if r.deferred else "")
                console.print(f"  {step} · {when} · {r.channel} to {to} · variant {r.variant}", highlight=False)
                if r.outcome == "held":
                    console.print(f"    [red]held[/red]: {escape(r.reason or '')}", highlight=False)
                    continue
                if r.channel == "sms":
                    console.print(f"    ({plural(r.sms_segments or 0, 'segment')})", highlight=False)
                else:
                    console.print(f"    Subject: {escape(r.subject or '')}", highlight=False)
                    for header, value in r.headers.items():
                        console.print(f"    {header}: {escape(str(value))}", highlight=False)
                console.print("    " + escape(r.body_text or "").replace("\n", "\n    "), highlight=False)
            elif r.outcome == "waiting":
                console.print(f"  {step} · waiting: {r.reason or ''} (next {local(r.send_after)})", highlight=False)
            else:
                console.print(f"  {step} · {r.outcome}: {r.reason or ''}", highlight=False)
    if len(contacts) > len(shown):
        console.print(f"\n… {len(contacts) - len(shown)} more contacts (--limit, --contact)", highlight=False)


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
        from herald.clock import utcnow

        return utcnow().replace(microsecond=0)
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
