"""The ``herald`` entry point: herald's own commands (:mod:`herald.cli`) plus the three that
start Dagster — ``tick`` (one daemon iteration in-process, see docs/tick.md), ``dev`` (the UI
and daemon) and ``demo`` (sample packets through every sensor and job)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from herald.cli import app
from herald.cli.common import (
    add_command,
    console,
    err,
    fail,
    load_deployment,
    load_settings,
    set_tick_runner,
    warehouse_errors,
)
from herald.paths import PROJECT_ROOT, WORKSPACE_YAML
from herald.settings import Settings
from orchestration.instance import ensure_dagster_home

if TYPE_CHECKING:  # importing Dagster takes seconds: only tick, dev and demo pay for it
    from herald.config import Deployment
    from orchestration.tick import TickReport, TickRunResult

MAX_IDLE_TICKS = 10
DAEMON_RUNNING_EXIT = 3
INTERRUPTED_EXIT = 130


def tick_log(settings: Settings) -> Path:
    return settings.home / "logs" / "tick.log"


def run_line(result: TickRunResult) -> str:
    """``SUCCESS ingest_packet_job partition p1 abcd1234 in 2.1s``, and for a failed run the
    first line of its error after a colon (the whole error is in the tick log)."""
    colour = "green" if result.status == "SUCCESS" else "red"
    part = f" partition {result.partition}" if result.partition else ""
    line = (f"  [{colour}]{result.status}[/{colour}] {result.job_name}{part} [dim]{result.run_id[:8]}[/dim] "
            f"in {result.seconds:.1f}s")  # fmt: skip
    if result.error:
        line += f": {escape(result.error)}"
    return line


def tick_once(settings: Settings, force: bool, quiet: bool = False) -> TickReport:
    """One tick, a console line per run; Dagster's and dbt's own output go to the tick log."""
    from orchestration.tick import DaemonRunningError, TickInterrupted, run_tick

    home = ensure_dagster_home(settings.dagster_home)

    def started(run_id: str, job_name: str) -> None:
        if not quiet:
            console.print(f"  ▶ {job_name} [dim]{run_id[:8]}[/dim] running…")

    def ended(result: TickRunResult) -> None:
        if not quiet:
            console.print(run_line(result), highlight=False)

    log_path = tick_log(settings)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with (
            log_path.open("a", encoding="utf-8") as log,
            contextlib.redirect_stderr(log),
            contextlib.redirect_stdout(log),
        ):
            return run_tick(WORKSPACE_YAML, home, force=force, on_run_start=started, on_run_end=ended)
    except DaemonRunningError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(DAEMON_RUNNING_EXIT) from None
    except TickInterrupted:
        err.print("interrupted: the run in progress is marked failed; the next `herald tick` runs the rest")
        raise typer.Exit(INTERRUPTED_EXIT) from None


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
    settings = load_settings()
    reports = [tick_once(settings, force, quiet=as_json)]
    while until_idle and reports[-1].runs and reports[-1].ok and len(reports) < MAX_IDLE_TICKS:
        reports.append(tick_once(settings, force=True, quiet=as_json))
    ok = all(r.ok for r in reports)
    if as_json:
        print(json.dumps(
            [{"ok": r.ok, "runs": [run.__dict__ for run in r.runs], "errors": r.errors, "ticks": r.ticks,
              "timings": r.timings} for r in reports],
            default=str, indent=2,
        ))  # fmt: skip
    else:
        for report in reports:
            for t in report.ticks:
                console.print(f"  {t.get('name')}: {t.get('status')} {t.get('skip_reason') or ''}", highlight=False)
            for e in report.errors:
                err.print(f"[red]error:[/red] {e}", highlight=False, markup=False)
            console.print(f"tick done: {len(report.runs)} run{'s' if len(report.runs) != 1 else ''}")
    if not ok:
        err.print(f"some runs failed: their logs are in {tick_log(settings)} and the Dagster UI")
    raise typer.Exit(0 if ok else 1)


def dev(
    port: Annotated[int, typer.Option(help="Port for the Dagster UI.")] = 3000,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
) -> None:
    """Start the Dagster UI (and daemon) on this project."""
    settings = load_settings()
    ensure_dagster_home(settings.dagster_home)
    dagster = shutil.which("dagster", path=str(Path(sys.executable).parent)) or "dagster"
    console.print(f"Dagster UI on http://{host}:{port} (DAGSTER_HOME={settings.dagster_home})")
    raise typer.Exit(
        subprocess.call([dagster, "dev", "-w", str(WORKSPACE_YAML), "-h", host, "-p", str(port)], cwd=PROJECT_ROOT)
    )


DEMO_STEPS = (
    "packet_arrival_sensor → one ingest run per packet",
    "packet_landed_sensor → one dbt build for the landed packets",
    "contacts_refreshed_sensor → segments re-evaluated over the new contacts",
    "campaign_triggers_sensor → packet-triggered campaigns planned, rendered, delivered (sandbox)",
)
# The scheduled campaigns fired at demo time, as `herald campaign send` fires them.
DEMO_SENDS = (("northfield_college", "admitted_nurture"), ("lakeside_realty", "new_listings"))
# After the clock moves on: the pass advance_journeys_schedule runs every 15 minutes, requested for
# the nurture (its rule is `once`, so it enrolls nobody again; it walks every enrollment on).
DEMO_ADVANCE = ("northfield_college", "admitted_nurture")


def demo(
    scale: Annotated[int, typer.Option(help="Multiply the sample packets' row counts.", min=1)] = 1,
    fresh: Annotated[
        bool, typer.Option(help="Start from an empty HERALD_HOME (deletes warehouse, zone, runs).")
    ] = False,
) -> None:
    """Generate realistic sample packets for the example clients, drop them, run the sensors and
    jobs in-process on a simulated clock (sends now, receipts, clicks, replies, journeys three
    days on), and print a per-packet report and the story of what happened."""
    from herald.billing.credits import delivery_pricing
    from herald.campaigns.requests import clear_send_request, write_send_request
    from herald.cli.campaign import print_messages
    from herald.clock import ClockError, realnow, set_clock, utcnow
    from herald.demo.packets import demo_packets, drop_packets
    from herald.demo.summary import (
        demo_story,
        land_demo_replies,
        print_compliance,
        print_packet_report,
        print_segments,
    )
    from herald.demo.timeline import deliver_between, demo_advance, demo_start, local_date, local_label
    from herald.dropzone import open_dropzone
    from herald.packets.api import ensure_home_key
    from herald.providers.factory import delivery_options_from_env, providers_from_env
    from herald.warehouse.connection import Warehouse
    from herald.warehouse.migrate import upgrade

    settings = load_settings()
    if fresh and settings.home.exists():
        shutil.rmtree(settings.home)
    deployment = load_deployment(settings)
    started = time.perf_counter()
    reports = []
    with warehouse_errors():  # the schema first, as `herald db upgrade` (every run would do it too)
        migrated = upgrade(Warehouse(settings.warehouse))
    if migrated:
        console.print(f"warehouse schema: {', '.join(f'{m.how} {m.migration.label}' for m in migrated)}",
                      highlight=False)  # fmt: skip

    def step(number: int, what: str) -> None:
        console.print(f"[bold]tick {number}[/bold]: {what}", highlight=False)
        reports.append(tick_once(settings, force=True))

    def send_now(number: int, what: str, sends: tuple[tuple[str, str], ...], label: str) -> None:
        paths = [write_send_request(settings.home, c, name, label) for c, name in sends if name in
                 getattr(deployment.clients.get(c), "campaigns", {})]  # fmt: skip
        step(number, what)
        for path in paths:
            clear_send_request(path)

    start = demo_start(realnow())
    try:
        set_clock(start, settings.home)
    except ClockError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, markup=False)
        raise typer.Exit(2) from None
    for client_id, client in deployment.clients.items():
        if client.config.ingest_api:  # the example config ships no key: one per demo home
            key_path = ensure_home_key(settings.home, client_id)
            console.print(f"ingest API key for {client_id}: in {key_path}", highlight=False)
    console.print(f"clock: simulated — {local_label(start)}, a time every example client may message "
                  f"(kept in {settings.home / 'clock_offset'}; `herald demo --fresh` starts again)", highlight=False)  # fmt: skip
    packets = demo_packets(deployment, scale=scale, today=local_date(start))
    for line in drop_packets(open_dropzone(settings.dropzone), packets, time.strftime("%Y%m%d%H%M%S")):
        console.print(line)
    for number, what in enumerate(DEMO_STEPS, start=1):
        step(number, what)
    # three patients answer their reminder (applied first in the next tick, so the send pass that
    # follows already ends their journeys: an opt-out, a confirmation)
    warehouse = Warehouse(settings.warehouse)
    replies = land_demo_replies(warehouse, settings.home)
    number = len(DEMO_STEPS) + 1
    send_now(number, f"inbound_events_sensor → {len(replies)} sample replies ("
             + ", ".join(f'"{text}"' for text in replies) + ") and the sandbox's; manual_send_sensor → the college "
             "nurture and the realtor's announcement fired now (as `herald campaign send`)",
             DEMO_SENDS, f"demo-{local_date(start)}")  # fmt: skip
    number += 1
    step(number, "provider_events_sensor, inbound_events_sensor → the sandbox's receipts, clicks and replies")
    later = demo_advance(start)
    # the days between: the outbox sends each message queued for them at its time, as
    # messages_due_sensor would (as each falls due), so no journey moves on from a message unsent
    options = replace(delivery_options_from_env(), pricing=delivery_pricing(deployment.herald))
    moments, caught_up = deliver_between(warehouse, providers_from_env(home=settings.home), settings.home,
                                         options, utcnow(), later)  # fmt: skip
    set_clock(later, settings.home)
    console.print(
        f"clock: moved on to {local_label(later)}, past the nurture's 3-day wait for a click; on the way the "
        f"outbox sent {caught_up} messages at their times ({moments} moments, as messages_due_sensor does)",
        highlight=False,
    )
    number += 1
    send_now(number, "a send pass (what advance_journeys_schedule runs every 15 minutes): waits over, timeouts "
             "reached, branches taken, follow-ups sent", (DEMO_ADVANCE,), f"demo-{local_date(later)}")  # fmt: skip
    number += 1
    step(number, "provider_events_sensor, inbound_events_sensor → receipts and clicks of the follow-ups")
    print_packet_report(console, warehouse, [r.partition for r in reports[0].runs if r.partition])
    print_segments(console, warehouse)
    print_messages(settings)
    print_compliance(console, warehouse)
    console.print("[bold]what happened[/bold] (every number from the marts):")
    for line in demo_story(warehouse, deployment):
        console.print(line, highlight=False)
    print_demo_logins(settings, deployment)
    seconds = time.perf_counter() - started
    console.print(f'demo finished in {seconds:.1f}s. Try: herald sql "select count(*) from marts.contacts"')
    if not all(r.ok for r in reports):
        err.print(f"[red]some runs failed[/red]: their logs are in {tick_log(settings)} and the Dagster UI (make dev)")
        raise typer.Exit(1)


def print_demo_logins(settings: Settings, deployment: Deployment) -> None:
    """The portal's address and a sign-in for the operator and each example client's admin."""
    from herald.portal.demo_users import PASSWORD_FILE, demo_password, ensure_demo_logins

    with warehouse_errors():
        logins = ensure_demo_logins(settings.warehouse, settings.home, deployment.clients)
    console.print("[bold]the portal[/bold]: `herald serve`, then http://127.0.0.1:8000/app/ — sign in with the "
                  f"password {demo_password(settings.home)} (kept in {settings.home / PASSWORD_FILE}); two-factor "
                  "sign-in is set up at the first sign-in, with any authenticator app", highlight=False)  # fmt: skip
    for login in logins:
        scope = f"client {login.client_id}" if login.client_id else "every client"
        console.print(f"  {login.email:<48} {login.role.replace('_', ' ')}, {scope}", highlight=False, markup=False)


stack_app = typer.Typer(
    help="The production stack on this machine (make prod-up / prod-down): deploy/compose.yaml's processes — "
    "code server, daemon, webserver, herald serve — on PostgreSQL, with a moto S3 drop zone.",
    no_args_is_help=True,
)


def _stack_folder() -> Path:
    from orchestration.stack import stack_dir

    return stack_dir()


@stack_app.command("up")
def stack_up(
    free_ports: Annotated[
        bool, typer.Option("--free-ports", help="Listen on free ports instead of 3000 (UI), 4000 (code), 8000 (web).")
    ] = False,
    dropzone: Annotated[
        str, typer.Option(help="s3 (a moto server on 127.0.0.1) or folder; HERALD_DROPZONE_URL overrides both.")
    ] = "s3",
    database_prefix: Annotated[
        str, typer.Option(help="Databases <prefix>_dagster and <prefix>_warehouse on PostgreSQL.")
    ] = "herald_prod",
) -> None:
    """Start the stack and wait until every process answers; print where each one is."""
    from orchestration.stack import DEFAULT_ADMIN_URL, ENV_ADMIN_URL, StackError, UpOptions, env_file, up

    if dropzone not in ("s3", "folder"):
        fail(f"--dropzone must be s3 or folder, got {dropzone!r}", 2)
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,40}", database_prefix):
        fail(f"--database-prefix must be lower-case letters, digits and _, got {database_prefix!r}", 2)
    folder = _stack_folder()
    options = UpOptions(folder=folder, admin_url=os.environ.get(ENV_ADMIN_URL) or DEFAULT_ADMIN_URL,
                        database_prefix=database_prefix, free_ports=free_ports, dropzone=dropzone)  # fmt: skip
    started = time.perf_counter()
    try:
        state = up(options, say=lambda line: console.print(line, highlight=False, markup=False))
    except StackError as exc:
        fail(f"the stack did not start: {exc}")
    env_path = env_file(state)
    console.print(f"stack up in {time.perf_counter() - started:.1f}s from {folder}", highlight=False)
    console.print(f"  Dagster UI     {state.url('webserver')}", highlight=False)
    console.print(f"  herald serve   {state.url('web')}", highlight=False)
    console.print(f"  logs           {folder / 'logs'}", highlight=False)
    console.print(f"  herald against the stack: source {env_path}; stop it with: herald stack down", highlight=False)


@stack_app.command("down")
def stack_down(
    purge: Annotated[bool, typer.Option(help="Also drop the stack's databases and delete its folder.")] = False,
) -> None:
    """Stop every process of the stack (and the runs it launched); check that nothing is left."""
    from orchestration.stack import down

    folder = _stack_folder()
    left = down(folder, purge=purge, say=lambda line: console.print(line, highlight=False, markup=False))
    if left:
        fail(f"processes still running after SIGKILL: {', '.join(map(str, left))}")
    console.print("stack down: nothing left running", highlight=False)


@stack_app.command("restart")
def stack_restart(
    name: Annotated[str, typer.Argument(metavar="PROCESS", help="code-server, daemon, webserver or web.")],
    kill: Annotated[bool, typer.Option("--kill", help="SIGKILL instead of SIGTERM (as a crash would).")] = False,
) -> None:
    """Stop one process of the stack and start it again with the same command; wait until it answers."""
    from orchestration.stack import StackError, restart

    try:
        restart(_stack_folder(), name, kill=kill, say=lambda line: console.print(line, highlight=False, markup=False))
    except StackError as exc:
        fail(str(exc))


@stack_app.command("status")
def stack_status() -> None:
    """Each process of the stack: pid, running or not, address, log."""
    from rich.table import Table

    from orchestration.stack import StackState, alive

    folder = _stack_folder()
    state = StackState.load(folder)
    if state is None or not state.processes:
        console.print(f"no stack running from {folder}", highlight=False)
        raise typer.Exit(1)
    table = Table("process", "pid", "state", "address", "log")
    for p in state.processes:
        table.add_row(p.name, str(p.pid), "running" if alive(p.pid) else "[red]stopped[/red]", p.url, p.log)
    console.print(table)
    raise typer.Exit(0 if all(alive(p.pid) for p in state.processes) else 1)


def _forced_tick(settings: Settings) -> bool:
    return tick_once(settings, force=True).ok


def build_app() -> typer.Typer:
    """herald's typer app with tick, dev and demo added (once), and `campaign send` able to wait."""
    registered = {c.name or c.callback.__name__ for c in app.registered_commands if c.callback}
    for command in (tick, dev, demo):
        if command.__name__ not in registered:
            add_command(app, command)
    if not any(g.name == "stack" for g in app.registered_groups):
        app.add_typer(stack_app, name="stack")
    set_tick_runner(_forced_tick)
    return app


def main() -> None:
    """``herald``: every command of :mod:`herald.cli`, plus tick, dev and demo."""
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    build_app()()


if __name__ == "__main__":
    main()
