"""`herald webhooks list|test|enable CLIENT`: a client's outbound webhook subscriptions."""

from __future__ import annotations

import getpass
import os
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Column, Table

from herald.cli.common import console, fail, load_settings, resolve_client, warehouse_errors
from herald.clock import utcnow as _clock_now

app = typer.Typer(
    help="A client's outbound webhooks (client.yaml `webhooks`): list them, send a signed test ping, re-enable one.",
    no_args_is_help=True,
)
ClientArg = Annotated[str, typer.Argument(metavar="CLIENT", help="Client id.")]


def _when(value: object) -> str:
    return "-" if value is None else str(value)[:19]


@app.command("list", short_help="Each subscription of the client, its deliveries and state")
def list_command(client: ClientArg) -> None:
    """Each subscription of the client: URL, events, whether its secret is set, when it started,
    its deliveries (pending, delivered, failed) and whether a 410 Gone disabled it."""
    from herald.warehouse.connection import Warehouse, WarehouseError
    from herald.webhooks.config import subscription_id
    from herald.webhooks.dispatch import subscription_status

    settings = load_settings()
    _, configured = resolve_client(settings, client)
    subs = configured.config.webhooks
    if not subs:
        console.print(f"{client} has no webhooks (add `webhooks:` to its client.yaml)", highlight=False)
        return
    ids = [subscription_id(client, s.url) for s in subs]
    status: dict = {}
    try:  # no warehouse yet: the subscriptions are shown as not dispatched yet
        with Warehouse(settings.warehouse).session(read_only=True) as s:
            status = subscription_status(s, ids)
    except WarehouseError:
        status = {}
    from herald.webhooks.config import EVENT_TYPES

    table = Table(
        Column("url", no_wrap=True), "events", "secret", "since", "pending", "delivered", "failed", "last attempt",
        "state",
    )  # fmt: skip
    for sub, sid in zip(subs, ids, strict=True):
        st = status.get(sid, {})
        secret = (
            "set" if os.environ.get(sub.secret_env, "").startswith("whsec_") else f"[red]{sub.secret_env} not set[/red]"
        )
        state = f"[red]disabled[/red]: {escape(st['disabled_reason'])}" if st.get("disabled_at") else "active"
        if not st:
            state = "not dispatched yet"
        events = "all" if len(sub.events) == len(EVENT_TYPES) else ", ".join(sub.events)
        table.add_row(
            escape(sub.url), events, secret, _when(st.get("created_at")), str(st.get("pending", 0)),
            str(st.get("delivered", 0)), str(st.get("failed", 0)), _when(st.get("last_attempt_at")), state,
        )  # fmt: skip
    console.print(table)


@app.command("test", short_help="Send a signed ping to each subscription of the client")
def test_command(client: ClientArg) -> None:
    """Send a signed `webhook.ping` to each subscription of the client and print what it answered
    (nothing is written to the warehouse). Exits 1 when an endpoint did not answer 2xx."""
    from herald.webhooks.dispatch import ping
    from herald.webhooks.signing import WebhookSecretError

    settings = load_settings()
    _, configured = resolve_client(settings, client)
    subs = configured.config.webhooks
    if not subs:
        fail(f"{client} has no webhooks (add `webhooks:` to its client.yaml)")
    ok = True
    for sub in subs:
        try:
            code, error, ms, text = ping(client, sub)
        except WebhookSecretError as exc:
            ok = False
            console.print(f"{escape(sub.url)}: [red]not sent[/red]: {escape(str(exc))}", highlight=False)
            continue
        good = code is not None and 200 <= code < 300
        ok &= good
        answer = f"HTTP {code}" if code is not None else f"no answer ({error})"
        mark = "[green]ok[/green]" if good else "[red]failed[/red]"
        body = f" {escape(text.strip()[:200])}" if text.strip() else ""
        console.print(f"{escape(sub.url)}: {mark} {answer} in {ms} ms{body}", highlight=False)
    if not ok:
        raise typer.Exit(1)


@app.command("enable", short_help="Re-enable a subscription a 410 Gone disabled")
def enable_command(
    client: ClientArg,
    url: Annotated[str, typer.Argument(metavar="URL", help="The subscription's URL as in client.yaml.")],
) -> None:
    """Re-enable a subscription a 410 Gone disabled (audited with your user name); its pending
    deliveries resume on the next dispatch."""

    from herald.warehouse.connection import Warehouse
    from herald.webhooks.dispatch import enable_subscription

    settings = load_settings()
    _, configured = resolve_client(settings, client)
    if url not in {s.url for s in configured.config.webhooks}:
        fail(
            f"{client} has no webhook {url!r}; it has: {', '.join(s.url for s in configured.config.webhooks) or 'none'}"
        )
    warehouse = Warehouse(settings.warehouse)
    with warehouse_errors():
        warehouse.ensure_schema()
        with warehouse.session() as s:
            changed = enable_subscription(s, client, url, f"cli:{getpass.getuser()}", _clock_now())
    console.print(f"{url}: {'enabled' if changed else 'was not disabled'}", highlight=False)
