"""`herald users add/list/disable/reset-2fa` (the portal's accounts) and `herald audit`."""

from __future__ import annotations

import getpass
import os
from contextlib import ExitStack
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from herald.cli.common import console, fail, load_settings, resolve_client, warehouse_errors

if TYPE_CHECKING:
    from herald.portal.store import PortalStore

app = typer.Typer(help="Portal users (/app): add, list, disable, reset two-factor sign-in.", no_args_is_help=True)
ENV_PASSWORD = "HERALD_PORTAL_PASSWORD"


def _store() -> PortalStore:
    """The portal's own tables: the warehouse on PostgreSQL (its pending migrations applied), the
    portal store beside the embedded DuckDB file (made on first use)."""
    from herald.portal.store import PortalStore

    settings = load_settings()
    store = PortalStore(settings.warehouse)
    with warehouse_errors():
        store.ensure()
    return store


def _cli_actor() -> str:
    return f"cli:{getpass.getuser()}"


@app.command("add")
def users_add(
    email: Annotated[str, typer.Argument(metavar="EMAIL", help="The address the user signs in with.")],
    role: Annotated[str, typer.Option(help="operator | client_admin | staff | viewer.")],
    client: Annotated[str | None, typer.Option(help="The user's client (every role but operator).")] = None,
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    hide_contact_details: Annotated[
        bool, typer.Option("--hide-contact-details", help="Staff only: phones and emails shown masked.")
    ] = False,
) -> None:
    """Add a portal user. The password is read from HERALD_PORTAL_PASSWORD or asked for (at least
    12 characters); two-factor sign-in is set up at the first sign-in. Bootstrap the first
    operator with `herald users add you@example.com --role operator`."""
    from herald.portal import audit as portal_audit
    from herald.portal.accounts import ROLES, AccountError, add_user, check_password_policy

    if role not in ROLES:
        fail(f"--role must be one of {', '.join(ROLES)}, not {role!r}")
    settings = load_settings()
    if client:
        resolve_client(settings, client)
    password = os.environ.get(ENV_PASSWORD)
    if not password:
        if not os.isatty(0):
            fail(f"no password: set {ENV_PASSWORD} or run in a terminal to be asked")
        password = getpass.getpass("Password for the new user: ")
        if getpass.getpass("The same password again: ") != password:
            fail("the two passwords are not the same")
    try:
        check_password_policy(password)
    except AccountError as exc:
        fail(str(exc))
    store = _store()
    try:
        with warehouse_errors(), store.session() as s:
            user = add_user(s, email, password, role, client, display_name=name,
                            hide_contact_details=hide_contact_details)  # fmt: skip
            portal_audit.record(s, _cli_actor(), portal_audit.USER_ADDED, user.client_id, user.email, {"role": role})
    except AccountError as exc:
        fail(str(exc))
    scope = f"client {user.client_id}" if user.client_id else "every client"
    console.print(f"added {user.email} ({user.role}, {scope}); two-factor sign-in is set up at the first sign-in")


@app.command("list")
def users_list(client: Annotated[str | None, typer.Option(help="Only this client's users.")] = None) -> None:
    """List portal users: email, role, client, 2FA, last sign-in, status."""
    from herald.portal.accounts import list_users

    settings = load_settings()
    if client:
        resolve_client(settings, client)
    store = _store()
    with warehouse_errors(), store.session(read_only=True) as s:
        users = list_users(s, client)
    table = Table("email", "role", "client", "2fa", "last sign-in (UTC)", "status")
    for u in users:
        status = (
            "disabled" if u.disabled_at else ("locked" if u.locked_until and u.is_locked(datetime.now()) else "active")
        )
        table.add_row(u.email, u.role, u.client_id or "(all)", "on" if u.has_2fa else "not set up",
                      u.last_login_at.strftime("%Y-%m-%d %H:%M") if u.last_login_at else "never", status)  # fmt: skip
    console.print(table)
    console.print(f"{len(users)} user(s)")


def _change(email: str, what: str) -> None:
    from herald.portal import accounts
    from herald.portal import audit as portal_audit

    store = _store()
    with warehouse_errors(), store.session() as s:
        user = accounts.find_user(s, email)
        if user is None:
            fail(f"no portal user has the email {email.strip().lower()!r} (see `herald users list`)")
        if what == "disable":
            accounts.disable_user(s, user.user_id)
            portal_audit.record(s, _cli_actor(), portal_audit.USER_DISABLED, user.client_id, user.email)
        else:
            accounts.reset_2fa(s, user.user_id)
            portal_audit.record(s, _cli_actor(), portal_audit.TWO_FACTOR_RESET, user.client_id, user.email)


@app.command("disable")
def users_disable(email: Annotated[str, typer.Argument(metavar="EMAIL")]) -> None:
    """Disable a portal user: no more sign-ins, and every open session ends."""
    _change(email, "disable")
    console.print(f"disabled {email.strip().lower()}; their sessions are ended")


@app.command("reset-2fa")
def users_reset_2fa(email: Annotated[str, typer.Argument(metavar="EMAIL")]) -> None:
    """Forget a user's authenticator and recovery codes (a lost phone): they set up two-factor
    sign-in again at their next sign-in, after their password."""
    _change(email, "reset-2fa")
    console.print(f"two-factor sign-in of {email.strip().lower()} is reset; they set it up at the next sign-in")


def _since(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        fail(f"--since {value!r} is not a date or time; use e.g. 2026-12-01 or 2026-12-01T09:30")


def audit_command(
    client: Annotated[str | None, typer.Option(help="Only this client's rows.")] = None,
    user: Annotated[str | None, typer.Option(help="Only this actor: a portal user's email or e.g. cli:alice.")] = None,
    since: Annotated[str | None, typer.Option(help="Only rows at or after this UTC date/time (ISO).")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. portal_login_failed.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="At most this many rows, newest first.")] = 200,
) -> None:
    """Show the audit log (herald_ops.audit_log): who read or did what, for which client, when.
    On the embedded DuckDB the portal's rows not yet moved into the warehouse are shown too."""
    from herald.portal.audit import query_merged
    from herald.portal.store import PortalStore
    from herald.warehouse.connection import Warehouse

    settings = load_settings()
    when = _since(since)
    filters = {"client_id": client, "user": user, "since": when, "action": action, "limit": limit}
    store = PortalStore(settings.warehouse)
    warehouse = Warehouse(settings.warehouse)
    with warehouse_errors(), ExitStack() as stack:
        sessions = []
        path = settings.warehouse.duckdb_path
        if not store.separate or (path is not None and path.exists()):
            sessions.append(stack.enter_context(warehouse.session(read_only=True)))
        if store.exists():
            sessions.append(stack.enter_context(store.session(read_only=True)))
        rows = query_merged(sessions, **filters)
    table = Table("when (UTC)", "actor", "action", "client", "subject", "detail")
    for r in rows:
        detail = ", ".join(f"{k}={v}" for k, v in sorted(r.detail.items()))
        table.add_row(r.occurred_at.strftime("%Y-%m-%d %H:%M:%S"), r.actor, r.action, r.client_id or "",
                      r.subject or "", detail)  # fmt: skip
    console.print(table)
    console.print(f"{len(rows)} row(s)")
