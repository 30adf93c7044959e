"""The ``herald`` command line. The one module in ``herald/`` that starts Dagster (lazily:
``config check``, ``drop`` and ``sql`` never import it)."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import datetime
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from herald.settings import Settings, SettingsError

app = typer.Typer(
    help="Herald: packets in, consented messages out, analytics back. Settings come from HERALD_* variables "
    "(see .env.example).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Work with the configuration-as-code directory.", no_args_is_help=True)
app.add_typer(config_app, name="config")
dropzone_app = typer.Typer(help="Work with the drop zone (HERALD_DROPZONE_URL).", no_args_is_help=True)
app.add_typer(dropzone_app, name="dropzone")
segment_app = typer.Typer(help="Work with the configured segments.", no_args_is_help=True)
app.add_typer(segment_app, name="segment")
campaign_app = typer.Typer(help="Preview and send the configured campaigns.", no_args_is_help=True)
app.add_typer(campaign_app, name="campaign")

# Bound to the real terminal: `herald tick` sends Dagster's and dbt's own output to a log file.
# soft_wrap: a line is never broken at the terminal width, so scripts can read the output.
# Piped output (scripts, CI logs) gets a wide page instead of rich's 80-column default.
PIPE_WIDTH = 160
console = Console(file=sys.__stdout__, soft_wrap=True, width=None if sys.__stdout__.isatty() else PIPE_WIDTH)
err = Console(file=sys.__stderr__, soft_wrap=True, width=None if sys.__stderr__.isatty() else PIPE_WIDTH)
MAX_IDLE_TICKS = 10


def _deployment(settings: Settings) -> Any:
    """The validated configuration, or the problems and exit 1."""
    from herald.config import ConfigError, load_deployment

    try:
        return load_deployment(settings.config_dir)
    except ConfigError as exc:
        err.print(f"[red]error:[/red] the configuration has problems (run `herald config check`):\n{exc}")
        raise typer.Exit(1) from None


def _known_client(deployment: Any, client: str) -> Any:
    """The client's configuration, or an error naming the configured clients and exit 1."""
    configured = deployment.clients.get(client)
    if configured is None:
        err.print(f"[red]error:[/red] unknown client {client!r}; configured: {', '.join(deployment.clients)}")
        raise typer.Exit(1)
    return configured


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


@config_app.command("check")
def config_check(
    directory: Annotated[Optional[Path], typer.Argument(help="Config directory (default: HERALD_CONFIG_DIR or config/).")] = None,
) -> None:
    """Validate herald.yaml, every client.yaml and every load map; list each problem as
    `<file>: <field>: <message>`."""
    from herald.config import check_config

    directory = directory or _settings().config_dir
    deployment, problems = check_config(directory)
    if problems:
        for problem in problems:
            console.print(str(problem), markup=False, highlight=False)
        err.print(f"[red]{len(problems)} problem{'s' if len(problems) != 1 else ''}[/red] in {directory}")
        raise typer.Exit(1)
    assert deployment is not None
    maps = sum(len(c.load_maps) for c in deployment.clients.values())
    from herald.config.summary import deployment_summary

    console.print(
        f"config OK: {len(deployment.clients)} clients ({', '.join(deployment.clients)}), {maps} load maps in {directory}",
        highlight=False,
    )
    for line in deployment_summary(deployment):
        console.print(f"  {line}", highlight=False, markup=False)


@dropzone_app.command("check")
def dropzone_check() -> None:
    """Connect with the current settings and print what is there: clients and waiting packets,
    or a clear error (bad credentials, unknown host key, missing bucket)."""
    from herald.dropzone import DropZoneError, open_dropzone

    settings = _settings()
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
        err.print(f"[red]error:[/red] {settings.dropzone.url}: {exc}")
        raise typer.Exit(1) from None
    console.print(f"drop zone OK: {described}", highlight=False)
    console.print(f"clients: {', '.join(clients) or '(none yet)'}", highlight=False)
    if not pending:
        console.print("no packets waiting")
        return
    table = Table(box=None, padding=(0, 1), header_style="bold")
    for name in ("waiting packet", "bytes", "modified (UTC)", "checksum", "manifest rows"):
        table.add_column(name)
    for p in pending:
        table.add_row(
            p.zone_path, str(p.size_bytes), p.modified_at.strftime("%Y-%m-%d %H:%M:%S"), p.checksum_source,
            "" if p.manifest_rows is None else str(p.manifest_rows),
        )
    console.print(table)


@app.command()
def drop(
    file: Annotated[Path, typer.Argument(help="The packet file to drop.", exists=True, dir_okay=False, readable=True)],
    client: Annotated[str, typer.Option("--client", help="Client id (a folder under config/clients).")],
    packet_type: Annotated[str, typer.Option("--type", help="Packet type (a load map of that client).")],
    name: Annotated[Optional[str], typer.Option(help="File name in the drop zone (default: the file's own).")] = None,
    force: Annotated[bool, typer.Option(help="Drop even if the client or packet type is not configured.")] = False,
) -> None:
    """Place FILE in the client's incoming area with a .sha256 sidecar, as a client would upload it."""
    from herald.config import ConfigError, load_deployment
    from herald.dropzone import DropZoneError, open_dropzone

    settings = _settings()
    if not force:
        try:
            deployment = load_deployment(settings.config_dir)
        except ConfigError as exc:
            err.print(f"[red]error:[/red] the configuration has problems (run `herald config check`):\n{exc}")
            raise typer.Exit(1) from None
        if client not in deployment.clients:
            err.print(f"[red]error:[/red] unknown client {client!r}; configured: {', '.join(deployment.clients)}")
            raise typer.Exit(1)
        if deployment.load_map(client, packet_type) is None:
            known = ", ".join(deployment.clients[client].load_maps)
            err.print(f"[red]error:[/red] client {client!r} has no load map {packet_type!r}; it has: {known}")
            raise typer.Exit(1)
    try:
        zone_path = open_dropzone(settings.dropzone).put(file, client, packet_type, name)
    except DropZoneError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(f"dropped {file} → {settings.dropzone.url}/{zone_path} (+ .sha256)", highlight=False)


def _print_rows(columns: list[str], rows: list[tuple[Any, ...]], fmt: str) -> None:
    if fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)
    elif fmt == "json":
        print(json.dumps([dict(zip(columns, r)) for r in rows], default=str, indent=2))
    else:
        table = Table(*columns, show_lines=False)
        for row in rows:
            table.add_row(*["" if v is None else str(v) for v in row])
        console.print(table)
        console.print(f"({len(rows)} row{'s' if len(rows) != 1 else ''})", style="dim")


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="A read-only SQL query.")],
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
) -> None:
    """Print the result of a read-only query on the warehouse (DuckDB or PostgreSQL)."""
    from herald.warehouse.connection import Warehouse, WarehouseError

    if fmt not in ("table", "csv", "json"):
        err.print(f"[red]error:[/red] --format must be table, csv or json, not {fmt!r}")
        raise typer.Exit(2)
    warehouse = Warehouse(_settings().warehouse)
    try:
        with warehouse.session(read_only=True) as s:
            columns, rows = s.query(query)
    except WarehouseError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    except Exception as exc:  # the engine's own message says what is wrong with the query
        err.print(f"[red]error:[/red] {type(exc).__name__}: {str(exc).strip()}")
        raise typer.Exit(1) from None
    _print_rows(columns, rows, fmt)


def _tick(settings: Settings, force: bool, quiet: bool = False) -> Any:
    from herald.paths import WORKSPACE_YAML
    from orchestration.instance import ensure_dagster_home
    from orchestration.tick import DaemonRunningError, TickInterrupted, run_tick

    home = ensure_dagster_home(settings.dagster_home)

    def started(run_id: str, job_name: str) -> None:
        if not quiet:
            console.print(f"  ▶ {job_name} [dim]{run_id[:8]}[/dim] running…")

    def ended(result: Any) -> None:
        if not quiet:
            colour = "green" if result.status == "SUCCESS" else "red"
            part = f" partition {result.partition}" if result.partition else ""
            console.print(
                f"  [{colour}]{result.status}[/{colour}] {result.job_name}{part} [dim]{result.run_id[:8]}[/dim] "
                f"in {result.seconds:.1f}s"
            )

    # Dagster's run logs and dbt's output go to a file: the console shows one line per run.
    log_path = settings.home / "logs" / "tick.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with log_path.open("a", encoding="utf-8") as log, contextlib.redirect_stderr(log), contextlib.redirect_stdout(log):
            return run_tick(WORKSPACE_YAML, home, force=force, on_run_start=started, on_run_end=ended)
    except DaemonRunningError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(3) from None
    except TickInterrupted:
        err.print("interrupted: the run in progress is marked failed; the next `herald tick` runs the rest")
        raise typer.Exit(130) from None


@app.command()
def tick(
    force: Annotated[bool, typer.Option(help="Evaluate sensors even within their minimum interval.")] = False,
    until_idle: Annotated[
        bool,
        typer.Option(
            "--until-idle",
            help=f"Tick again (forced) while the last tick ran something, at most {MAX_IDLE_TICKS} times: "
            "a dropped packet goes all the way to the marts in one command.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the tick reports as JSON.")] = False,
) -> None:
    """Evaluate every sensor and due schedule once, run what they request, wait, and print each run."""
    settings = _settings()
    reports = [_tick(settings, force, quiet=as_json)]
    while until_idle and reports[-1].runs and reports[-1].ok and len(reports) < MAX_IDLE_TICKS:
        reports.append(_tick(settings, force=True, quiet=as_json))
    ok = all(r.ok for r in reports)
    if as_json:
        print(json.dumps(
            [{"ok": r.ok, "runs": [run.__dict__ for run in r.runs], "errors": r.errors, "ticks": r.ticks,
              "timings": r.timings} for r in reports],
            default=str, indent=2,
        ))
    else:
        for report in reports:
            for t in report.ticks:
                console.print(f"  {t.get('name')}: {t.get('status')} {t.get('skip_reason') or ''}", highlight=False)
            for e in report.errors:
                err.print(f"[red]error:[/red] {e}")
            console.print(f"tick done: {len(report.runs)} run{'s' if len(report.runs) != 1 else ''}")
    if not ok:
        err.print(f"some runs failed: their logs are in {settings.home / 'logs' / 'tick.log'} and the Dagster UI")
    raise typer.Exit(0 if ok else 1)


@app.command()
def dev(
    port: Annotated[int, typer.Option(help="Port for the Dagster UI.")] = 3000,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
) -> None:
    """Start the Dagster UI (and daemon) on this project."""
    from herald.paths import PROJECT_ROOT, WORKSPACE_YAML
    from orchestration.instance import ensure_dagster_home

    settings = _settings()
    ensure_dagster_home(settings.dagster_home)
    dagster = shutil.which("dagster", path=str(Path(sys.executable).parent)) or "dagster"
    console.print(f"Dagster UI on http://{host}:{port} (DAGSTER_HOME={settings.dagster_home})")
    raise typer.Exit(
        subprocess.call([dagster, "dev", "-w", str(WORKSPACE_YAML), "-h", host, "-p", str(port)], cwd=PROJECT_ROOT)
    )


@app.command()
def demo(
    scale: Annotated[int, typer.Option(help="Multiply the sample packets' row counts.")] = 1,
    fresh: Annotated[bool, typer.Option(help="Start from an empty HERALD_HOME (deletes warehouse, zone, runs).")] = False,
) -> None:
    """Generate realistic sample packets for the example clients, drop them, run the sensors and
    jobs in-process, and print a per-packet report."""
    from herald.demo.packets import demo_packets
    from herald.dropzone import open_dropzone

    settings = _settings()
    if fresh and settings.home.exists():
        shutil.rmtree(settings.home)
    deployment = _deployment(settings)
    started = time.perf_counter()
    zone = open_dropzone(settings.dropzone)
    packets = demo_packets(deployment, scale=scale, today=datetime.date.today())
    stamp = time.strftime("%Y%m%d%H%M%S")
    with tempfile.TemporaryDirectory() as tmp:
        for packet in packets:
            local = Path(tmp) / packet.file_name
            local.write_bytes(packet.content)
            name = f"{Path(packet.file_name).stem}-{stamp}{Path(packet.file_name).suffix}"
            zone.put(local, packet.client_id, packet.packet_type, name)
            console.print(f"dropped {packet.client_id}/{packet.packet_type}/{name} ({packet.rows} rows, {packet.encoding})")
    steps = [
        "packet_arrival_sensor → one ingest run per packet",
        "packet_landed_sensor → one dbt build for the landed packets",
        "contacts_refreshed_sensor → segments re-evaluated over the new contacts",
        "campaign_triggers_sensor → packet-triggered campaigns planned, rendered, delivered (sandbox)",
    ]
    reports = []
    for number, what in enumerate(steps, start=1):
        console.print(f"[bold]tick {number}[/bold]: {what}")
        reports.append(_tick(settings, force=True))
    replies = _demo_replies(settings, deployment)
    if replies:
        console.print(f"[bold]tick {len(steps) + 1}[/bold]: inbound_events_sensor → {len(replies)} sample replies "
                      "applied (" + ", ".join(f'"{text}"' for text in replies) + ")")
        reports.append(_tick(settings, force=True))
    _print_packet_report(settings, [r.partition for r in reports[0].runs if r.partition])
    _print_segments(settings)
    _print_messages(settings)
    _print_compliance(settings)
    console.print(f"demo finished in {time.perf_counter() - started:.1f}s. Try: herald sql \"select count(*) from marts.contacts\"")
    if not all(r.ok for r in reports):
        err.print(
            f"[red]some runs failed[/red]: their logs are in {settings.home / 'logs' / 'tick.log'} and the Dagster UI (make dev)"
        )
        raise typer.Exit(1)


DEMO_REPLIES = ("Stop texting me pls", "C", "HELP")


def _demo_replies(settings: Settings, deployment: Any) -> list[str]:
    """Three reminder recipients answer, as they would by SMS: an opt-out in free text, an
    appointment confirmation and a HELP request (landed like the provider webhook will land them)."""
    from datetime import datetime, timezone

    from herald.compliance.landing import InboundMessage, append_inbound
    from herald.warehouse.connection import Warehouse

    with Warehouse(settings.warehouse).session(read_only=True) as s:
        _, rows = s.query(
            "select distinct client_id, to_address, sender from herald_ops.outbox "
            "where channel = 'sms' and campaign <> '_replies' and sender is not null order by to_address limit 3"
        )
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    for (client_id, to_address, sender), text in zip(rows, DEMO_REPLIES):
        append_inbound(settings.home, InboundMessage(f"demo-{client_id}-{to_address}-{text}", to_address, sender, text, now))
    return list(DEMO_REPLIES[: len(rows)])


def _print_compliance(settings: Settings) -> None:
    """Replies applied, and who the rules held back: deferrals, caps, consent, suppressions."""
    from herald.warehouse.connection import Warehouse

    with Warehouse(settings.warehouse).session(read_only=True) as s:
        _, replies = s.query(
            "select p.kind, coalesce(p.keyword_class, ''), p.action, p.messages_cancelled, o.step, o.status "
            "from herald_ops.inbound_processing p left join herald_ops.outbox o on o.message_key = p.reply_message_key "
            "order by p.processed_at, p.inbound_id"
        )
        _, held_back = s.query(
            "select case when status = 'planned' then 'deferred to the recipient''s send window' else reason end, "
            "count(*) from marts.message_plan where (status = 'planned' and is_deferred) or reason like 'frequency cap%' "
            "or reason like 'no consent%' or reason like 'suppressed%' group by 1 order by 2 desc"
        )
    for kind, keyword_class, action, cancelled, reply_step, reply_status in replies:
        detail = f" ({keyword_class})" if keyword_class else ""
        extra = f", {cancelled} queued message{'s' if cancelled != 1 else ''} cancelled" if cancelled else ""
        answer = f", {reply_step.replace('_', ' ')} {reply_status}" if reply_step else ""
        console.print(f"reply {kind}{detail}: {action}{extra}{answer}", highlight=False)
    for reason, n in held_back:
        console.print(f"compliance: {reason} ({n})", highlight=False)


def _print_segments(settings: Settings) -> None:
    from herald.warehouse.connection import Warehouse

    with Warehouse(settings.warehouse).session(read_only=True) as s:
        _, rows = s.query(
            "select client_id, segment_name, count(*) from marts.segment_members group by 1, 2 order by 1, 2"
        )
    if rows:
        console.print("segments: " + ", ".join(f"{c}/{name} {n}" for c, name, n in rows), highlight=False)


def _print_packet_report(settings: Settings, packet_ids: list[str]) -> None:
    from herald.reports.packets import packet_reports
    from herald.warehouse.connection import Warehouse

    reports = packet_reports(Warehouse(settings.warehouse), packet_ids or None)
    table = Table(box=None, padding=(0, 1), header_style="bold")
    table.add_column("client/packet type", no_wrap=True)
    for name in ("status", "rows", "landed", "rejected", "contacts new/upd", "ms"):
        table.add_column(name, justify="left" if name == "status" else "right")
    for r in reports:
        contacts = "—" if r.contacts_created is None else f"{r.contacts_created}/{r.contacts_updated}"
        table.add_row(
            f"{r.client_id}/{r.packet_type}", r.status, str(r.rows_in_file), str(r.rows_landed),
            str(r.rows_rejected), contacts, str(sum(r.step_ms.values())),
        )
    console.print(table)
    for r in reports:
        console.print(f"[bold]{r.packet_id}[/bold] ({r.file_name})", highlight=False)
        if r.status_reason and r.status != "landed":
            console.print(f"  {r.status}: {r.status_reason}", highlight=False)
        console.print("  time per step (ms): " + " · ".join(f"{k} {v}" for k, v in r.step_ms.items()), highlight=False)
        for line, reason in r.first_rejects:
            console.print(f"  line {line} rejected: {reason}", highlight=False)
        shown = len(r.first_rejects)
        if r.rows_rejected > shown:
            top = "; ".join(f"{n}× {reason}" for reason, n in r.top_reject_reasons[:3])
            console.print(f"  … {r.rows_rejected - shown} more rejected rows; most common: {top}", highlight=False)


@segment_app.command("preview")
def segment_preview(
    client: Annotated[str, typer.Argument(help="Client id (a folder under config/clients).")],
    name: Annotated[str, typer.Argument(help="Segment name (clients/<client>/segments/<name>.yaml).")],
    limit: Annotated[int, typer.Option(help="How many members to show.", min=0)] = 10,
) -> None:
    """Evaluate a segment read-only over the marts and print its size and first members
    (phones and emails masked). Writes nothing."""
    from herald.segments import SegmentError, evaluate_segment
    from rich.markup import escape

    from herald.segments.preview import preview_members
    from herald.warehouse.connection import Warehouse, WarehouseError

    settings = _settings()
    _, configured, segment = _client_item(settings, client, "segment", name)
    warehouse = Warehouse(settings.warehouse)
    try:
        ids = evaluate_segment(warehouse, configured, segment)
        members = preview_members(warehouse, client, ids[:limit])
    except (SegmentError, WarehouseError) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    console.print(f"segment {client}/{name} ({segment.type}): {len(ids)} member{'s' if len(ids) != 1 else ''}", highlight=False)
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


def _client_item(settings: Settings, client: str, kind: str, name: str) -> tuple[Any, Any, Any]:
    """(deployment, client, its segment or campaign ``name``), or a clear error and exit 1."""

    deployment = _deployment(settings)
    configured = _known_client(deployment, client)
    items = configured.segments if kind == "segment" else configured.campaigns
    if name not in items:
        err.print(f"[red]error:[/red] client {client!r} has no {kind} {name!r}; it has: {', '.join(items) or 'none'}")
        raise typer.Exit(1)
    return deployment, configured, items[name]


@campaign_app.command("preview")
def campaign_preview(
    client: Annotated[str, typer.Argument(help="Client id (a folder under config/clients).")],
    name: Annotated[str, typer.Argument(help="Campaign name (clients/<client>/campaigns/<name>.yaml).")],
    limit: Annotated[int, typer.Option(help="How many recipients to render.", min=1)] = 3,
) -> None:
    """Render the campaign for its first recipients exactly as it would go out (channel rule,
    A/B variant, template, opt-out and unsubscribe wording), sending and writing nothing."""
    from datetime import datetime, timezone

    from rich.markup import escape

    from herald.campaigns.links import links_from_env
    from herald.campaigns.preview import preview_campaign
    from herald.contacts.phones import mask_email, mask_phone
    from herald.warehouse.connection import Warehouse, WarehouseError

    settings = _settings()
    deployment, _, campaign = _client_item(settings, client, "campaign", name)
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    try:
        size, previews = preview_campaign(
            Warehouse(settings.warehouse), deployment, settings.config_dir, links_from_env(settings.home),
            client, campaign, limit, now,
        )  # fmt: skip
    except WarehouseError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
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
            console.print(f"  ({m.sms_segments} segment{'s' if m.sms_segments != 1 else ''}, {m.sms_encoding})", highlight=False)
            console.print("  " + escape(m.body_text or "").replace("\n", "\n  "), highlight=False)
        else:
            console.print(f"  Subject: {escape(m.subject or '')}", highlight=False)
            for header, value in m.headers.items():
                console.print(f"  {header}: {escape(value)}", highlight=False)
            console.print("  " + escape(m.body_text or "").replace("\n", "\n  "), highlight=False)


@campaign_app.command("send")
def campaign_send(
    client: Annotated[str, typer.Argument(help="Client id.")],
    name: Annotated[str, typer.Argument(help="Campaign name.")],
    occurrence: Annotated[
        Optional[str],
        typer.Option(help="Name of this send; the same name never sends twice. Default: manual-<today>."),
    ] = None,
    wait: Annotated[bool, typer.Option(help="Run it now with `herald tick` (off: leave it to a running Dagster).")] = True,
) -> None:
    """Send a campaign now, to its whole audience, as one named occurrence (through the same
    plan, outbox, rules and delivery as a scheduled send). Repeating an occurrence sends nothing new."""
    from datetime import date

    from herald.campaigns.requests import clear_send_request, write_send_request

    settings = _settings()
    _client_item(settings, client, "campaign", name)
    label = occurrence or f"manual-{date.today().isoformat()}"
    path = write_send_request(settings.home, client, name, label)
    if not wait:
        console.print(f"requested {client}/{name} occurrence {label}: the manual_send_sensor starts it", highlight=False)
        return
    report = _tick(settings, force=True)
    clear_send_request(path)
    _print_messages(settings, client)
    if not report.ok:
        err.print(f"some runs failed: their logs are in {settings.home / 'logs' / 'tick.log'} and the Dagster UI")
        raise typer.Exit(1)


def _print_messages(settings: Settings, client_id: str | None = None) -> None:
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


@app.command()
def inbound(
    from_number: Annotated[str, typer.Argument(metavar="FROM", help="The recipient's phone number (who replies).")],
    to_number: Annotated[str, typer.Argument(metavar="TO", help="The client's SMS sender number (who receives the reply).")],
    text: Annotated[str, typer.Argument(metavar="TEXT", help='The reply, e.g. "STOP", "HELP", "C".')],
    inbound_id: Annotated[
        Optional[str], typer.Option("--id", help="The message id (as a Twilio MessageSid); default: a new one. "
                                    "The same id is applied once.")
    ] = None,
) -> None:
    """Simulate an SMS reply arriving (what the Twilio webhook does): it is landed under
    $HERALD_HOME/landing/inbound, never written to the warehouse here; `herald tick` applies it
    (opt-out, opt-in, HELP, C to confirm, R to reschedule)."""
    import uuid

    from herald.compliance.inbound import to_e164
    from herald.compliance.landing import InboundMessage, append_inbound
    from herald.contacts.phones import mask_phone

    settings = _settings()
    numbers = {}
    for label, value in (("FROM", from_number), ("TO", to_number)):
        numbers[label] = to_e164(value)
        if numbers[label] is None:
            err.print(f"[red]error:[/red] {label} {value!r} is not a phone number (write it as +15125550142)")
            raise typer.Exit(2)
    message = InboundMessage(
        inbound_id=inbound_id or f"SIM{uuid.uuid4().hex}",
        from_address=numbers["FROM"],
        to_address=numbers["TO"],
        body=text,
        received_at=datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None),
        provider="cli",
    )
    path = append_inbound(settings.home, message)
    console.print(
        f"landed reply {message.inbound_id} from {mask_phone(message.from_address)} to {message.to_address} "
        f"in {path.parent}: `herald tick` applies it (inbound_events_sensor → apply_replies_job)",
        highlight=False,
    )


def _block_change(client: str, address: str, reason: str, lift: bool) -> None:
    import getpass
    from datetime import datetime, timezone

    from herald.compliance.manual import BlockError, block, read_address, unblock
    from herald.warehouse.connection import Warehouse

    settings = _settings()
    deployment = _deployment(settings)
    configured = _known_client(deployment, client)
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    actor = f"cli:{getpass.getuser()}"
    try:
        parsed = read_address(address, configured.default_region)
        warehouse = Warehouse(settings.warehouse)
        warehouse.ensure_schema()
        with warehouse.session() as s:
            count = (unblock if lift else block)(s, client, parsed, reason, actor, now)
    except BlockError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    if lift:
        console.print(f"unblocked {parsed.masked} for {client} ({count} block{'s' if count != 1 else ''} lifted)", highlight=False)
    else:
        console.print(f"blocked {parsed.masked} for {client} ({parsed.channel}): {count} queued message"
                      f"{'s' if count != 1 else ''} cancelled; reason kept for support", highlight=False)


@app.command("block")
def block_command(
    client: Annotated[str, typer.Argument(help="Client id.")],
    address: Annotated[str, typer.Argument(help="Phone number (any format) or email address.")],
    reason: Annotated[str, typer.Option(help="Why, for whoever follows up (kept with the block and audited).")],
) -> None:
    """Block every message of a client to a phone number or email address (a customer's request
    to support); cancels what is queued. Audited with your user name."""
    _block_change(client, address, reason, lift=False)


@app.command("unblock")
def unblock_command(
    client: Annotated[str, typer.Argument(help="Client id.")],
    address: Annotated[str, typer.Argument(help="Phone number or email address.")],
    reason: Annotated[str, typer.Option(help="Why the block is lifted (audited).")],
) -> None:
    """Lift a manual block (an opt-out stays: only the person lifts it, by texting START)."""
    _block_change(client, address, reason, lift=True)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (behind a proxy, keep 127.0.0.1).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run the web service: Twilio and Resend webhooks, the unsubscribe (/u/...) and confirmation
    (/c/...) pages and /healthz. It lands what it hears under $HERALD_HOME/landing (a table on
    PostgreSQL) for `herald tick`; it never writes an embedded warehouse. Set HERALD_PUBLIC_URL
    to the https address providers and recipients reach, TWILIO_AUTH_TOKEN and
    RESEND_WEBHOOK_SECRET for the webhooks."""
    from herald.config import ConfigError
    from herald.web.app import create_app
    from herald.web.server import serve as run_server

    settings = _settings()
    try:
        web_app = create_app(settings)
    except ConfigError as exc:
        err.print(f"[red]error:[/red] the configuration has problems (run `herald config check`):\n{exc}")
        raise typer.Exit(1) from None
    except SettingsError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    run_server(web_app, host, port)


@app.command("reply")
def reply_command(
    client: Annotated[str, typer.Argument(metavar="CLIENT", help="Client id.")],
    contact: Annotated[str, typer.Argument(metavar="CONTACT", help="The contact's contact_id, or its phone number (any format).")],
    text: Annotated[str, typer.Argument(metavar="TEXT", help='The message, e.g. "See you at 3pm!".')],
) -> None:
    """Send a manual SMS to a contact, through the same outbox, rules and logging as every
    message: refused when the contact has no valid phone, is suppressed, or the text holds PHI;
    queued for the next moment inside the recipient's send window; no opt-out line is added (it
    is a conversation). The same text to the same contact within a minute is sent once. Audited
    with your user name; `herald tick` (the delivery schedule) sends it."""
    import getpass
    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo

    from herald.contacts.phones import mask_phone
    from herald.conversations.reply import ReplyError, queue_reply
    from herald.warehouse.connection import Warehouse

    settings = _settings()
    deployment = _deployment(settings)
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    warehouse = Warehouse(settings.warehouse)
    warehouse.ensure_schema()
    try:
        with warehouse.session() as s:
            if not s.scalar("select count(*) from information_schema.tables where table_schema = 'marts' and table_name = 'contacts'"):
                raise ReplyError("there are no contacts yet (marts.contacts): land a packet first")
            message, is_new = queue_reply(s, deployment, client, contact, text, f"cli:{getpass.getuser()}", now)
    except ReplyError as exc:
        err.print(f"[red]refused:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    zone = deployment.clients[client].time_zone
    local = message.send_after.replace(tzinfo=timezone.utc).astimezone(ZoneInfo(zone))
    when = "now" if message.send_after <= now else f"at {local:%a %Y-%m-%d %H:%M} {zone} ({message.send_after:%H:%M} UTC)"
    verb = "queued" if is_new else "already queued (the same text this minute: not sent twice)"
    console.print(
        f"{verb}: reply {message.message_key} to {mask_phone(message.to_address)} (contact {message.contact_id}), "
        f"goes out {when}; `herald tick` (the delivery schedule) sends it",
        highlight=False,
    )

@app.command("api-key")
def api_key(client: Annotated[str, typer.Argument(help="Client id.")]) -> None:
    """Make a new ingest API key for a client: prints the key (give it to the client's system,
    once) and the hash to add to its client.yaml under ingest_api.key_sha256."""
    from herald.packets.api import new_api_key

    settings = _settings()

    deployment = _deployment(settings)
    _known_client(deployment, client)
    key, digest = new_api_key()
    console.print(f"API key for {client} (shown once): {key}", highlight=False)
    console.print(f"add to clients/{client}/client.yaml:\n  ingest_api:\n    key_sha256: [\"{digest}\"]", highlight=False)


@app.command("report")
def report_command(
    client: Annotated[str, typer.Argument(help="Client id.")],
    period: Annotated[str, typer.Option(help="The last N days (30d) or weeks (4w), counting today in the client's time zone.")] = "30d",
    fmt: Annotated[str, typer.Option("--format", help="html, pdf, xlsx or csv (a folder with one CSV per table).")] = "html",
    output: Annotated[Optional[Path], typer.Option(help="Where to write (default: ./<client>-report-<date>.<ext>; csv: ./<client>-report-<date>-csv/).")] = None,
) -> None:
    """Write a client's report over the analytics marts: headline numbers, charts (delivered over
    time, response rate by campaign, A/B results, attribution by channel) and tables."""
    from herald.reports.client_report import (
        FORMATS, ReportError, build_report, default_output, fmt_int, parse_period, write_report,
    )
    from herald.warehouse.connection import Warehouse, WarehouseError
    from rich.markup import escape

    try:
        period_days = parse_period(period)
    except ReportError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    if fmt not in FORMATS:
        err.print(f"[red]error:[/red] --format must be one of {', '.join(FORMATS)}, not {escape(repr(fmt))}", highlight=False)
        raise typer.Exit(2)
    settings = _settings()
    deployment = _deployment(settings)
    try:
        report = build_report(Warehouse(settings.warehouse), deployment, client, period_days)
        path = write_report(report, fmt, output or default_output(client, fmt, report.end_date))
    except (ReportError, WarehouseError) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    console.print(
        f"wrote {path} ({fmt}): {client}, {report.start_date} to {report.end_date}, "
        f"delivered {fmt_int(report.headline.delivered)}",
        highlight=False,
        markup=False,
    )


# -- credits (issue 7) ---------------------------------------------------------------------
credits_app = typer.Typer(help="Buy credits for a client and see balances (herald_ops.credit_ledger).", no_args_is_help=True)
app.add_typer(credits_app, name="credits")


@credits_app.command("add")
def credits_add(
    client: Annotated[str, typer.Argument(metavar="CLIENT", help="Client id.")],
    amount: Annotated[str, typer.Argument(metavar="AMOUNT", help="Credits bought, e.g. 1000 or 12.5.")],
    note: Annotated[str, typer.Option(help="What the purchase is (an invoice number); kept and audited.")],
) -> None:
    """Record a credit purchase for a client (audited with your user name). From its first
    purchase a client is metered: each message is debited when a delivery run claims it (an SMS
    per segment, an email per message; herald.yaml `pricing`) and held when the balance is short."""
    import getpass
    from datetime import datetime, timezone

    from herald.billing.credits import CreditError, add_credits, balances, credits, show
    from herald.warehouse.connection import Warehouse

    settings = _settings()
    deployment = _deployment(settings)
    _known_client(deployment, client)
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    warehouse = Warehouse(settings.warehouse)
    warehouse.ensure_schema()
    try:
        with warehouse.session() as s:
            add_credits(s, client, amount, note, f"cli:{getpass.getuser()}", now)
            balance = balances(s, client)[client]
    except CreditError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    console.print(f"added {show(credits(amount))} credits to {client}: "
                  f"balance {show(balance.balance)}", highlight=False)  # fmt: skip


@credits_app.command("balance")
def credits_balance(
    client: Annotated[Optional[str], typer.Argument(metavar="[CLIENT]", help="Client id (default: every metered client).")] = None,
) -> None:
    """Show each metered client's balance, credits bought and spent, and its last purchase."""
    from herald.billing.credits import balances, show
    from herald.warehouse.connection import Warehouse

    settings = _settings()
    warehouse = Warehouse(settings.warehouse)
    warehouse.ensure_schema()
    with warehouse.session(read_only=True) as s:
        found = balances(s, client)
    if not found:
        console.print(f"{client or 'no client'} has no credits yet (unmetered until `herald credits add`)", highlight=False)
        return
    table = Table("client", "balance", "bought", "spent", "last purchase")
    for b in found.values():
        last = f"{show(b.last_purchase_amount)} on {b.last_purchase_at:%Y-%m-%d %H:%M} UTC" if b.last_purchase_at else "-"
        table.add_row(b.client_id, show(b.balance), show(b.purchased), show(b.spent), last)
    console.print(table)


def main() -> None:
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    app()


if __name__ == "__main__":
    main()
