"""The portal's Inbox under ``/app/c/<client_id>/inbox``: the conversations with filters (unread,
open, closed, assigned to me), one conversation (its messages, internal notes, the contact's
context, reply with quick replies, open/close, assign, mark unread), and the Inbox settings
(quick replies, the after-hours auto-reply).

Every route depends on :func:`herald.web.portal.client_user` (another client's user gets 404,
and so does another client's conversation id); every action on
:func:`herald.web.portal.acting_user` (a viewer gets 403) and the CSRF check; the settings'
changes on :func:`herald.web.portal.admin_user`. The pages read through the portal's reader
(the snapshot on DuckDB: a run holding the warehouse never makes them wait) and the portal store
(:func:`herald.web.portal.db`: users, audit rows, each user's read marks); an action writes the
warehouse (:func:`db` here, the Inbox's state and the outbox) and then republishes the snapshot.
A view's audit row is written before the page is read, an action's once its warehouse change
committed. A reply goes through ``herald reply``'s path
(:func:`herald.portal.inbox.send_reply`), whose ``send`` row is in the reply's own transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, Response

from herald.clock import utcnow
from herald.conversations.reply import ReplyError
from herald.portal import accounts, inbox
from herald.portal import audit as portal_audit
from herald.portal.accounts import User
from herald.portal.reads import PortalReadError, current_snapshot, publish_snapshot, reader_for
from herald.warehouse.connection import Session, Warehouse, WarehouseError
from herald.web.context import WebContext, web_context
from herald.web.portal import (
    PREFIX,
    WRITE_WAIT_SECONDS,
    ActingUser,
    AdminUser,
    ClientUser,
    _duckdb_lock,
    action_route,
    guarded,
    not_found,
    redirect,
    render,
    router,
    unavailable,
)
from herald.web.portal import db as portal_db

log = logging.getLogger("herald.web.portal_inbox")
LATER = "The change is saved; it may take a moment to show here (a run is updating the data)."
NOTICES = {
    "replied": "Reply queued: Herald sends it at the next allowed moment for the contact.",
    "again": "That reply was already queued this minute: it is sent once.",
    "noted": "Note added (only your team sees it).",
    "open": "Conversation reopened.",
    "closed": "Conversation closed.",
    "assigned": "Assignment saved.",
    "unread": "Marked unread.",
    "quick-saved": "Quick reply saved.",
    "quick-deleted": "Quick reply deleted.",
    "auto-saved": "After-hours auto-reply saved.",
    "auto-reset": "After-hours auto-reply is back to the configured one.",
}


@contextmanager
def db(context: WebContext) -> Iterator[Session]:
    """One transaction on the warehouse, where the Inbox's state and the outbox live (on DuckDB
    under the server's lock of the live file, waiting a few seconds for a run, then 503). The
    Inbox's tables missing (a warehouse not upgraded to migration 0008) is a 503 with the fix in
    the log, not a 500. The portal's accounts and audit rows are in the portal store
    (:func:`herald.web.portal.db`, ``portal_db`` here): never open both at once."""
    warehouse = Warehouse(context.settings.warehouse)
    try:
        with (
            _duckdb_lock if warehouse.engine == "duckdb" else nullcontext(),
            warehouse.session(lock_wait_seconds=WRITE_WAIT_SECONDS) as s,
        ):
            yield s
    except WarehouseError as exc:
        log.warning("the Inbox could not use the warehouse: %s", str(exc)[:300])
        raise unavailable() from exc
    except Exception as exc:
        text = str(exc)
        if ("inbox_" in text or "auto_reply_settings" in text) and "not exist" in text:
            log.error("the Inbox's tables are missing: run `herald db upgrade`")
            raise unavailable() from exc
        raise


def _snapshot_ready(request: Request) -> None:
    """On DuckDB, the first page before any snapshot publishes one (the live file opened
    read-only, so not inside the portal's own write session: its lock, not both at once)."""
    target = web_context(request).settings.warehouse
    if target.engine == "duckdb" and current_snapshot(target) is None:
        try:
            with _duckdb_lock:
                if current_snapshot(target) is None:
                    publish_snapshot(target)
        except PortalReadError as exc:
            log.warning("the Inbox could not publish its first snapshot: %s", str(exc)[:300])
            raise unavailable() from exc
    try:
        inbox.inbox_snapshot_ready(web_context(request).settings, _duckdb_lock)
    except inbox.InboxNotUpgraded as exc:
        log.error("the Inbox's tables are missing: %s", exc)
        raise unavailable() from exc


def _republish(request: Request) -> bool:
    """After an Inbox write committed: the snapshot again, so the next page shows the change
    (False: a run held the warehouse; the change is saved and shows a moment later)."""
    settings = web_context(request).settings
    if settings.warehouse.engine != "duckdb":
        return True
    with _duckdb_lock:
        return inbox.republish(settings)


def _notice(key: str) -> str | None:
    """The notice of ``key``; ``<key>.later``: saved, not in the snapshot yet (a run held it)."""
    name, _, later = key.partition(".")
    text = NOTICES.get(name)
    return f"{text} {LATER}" if text and later == "later" else text


def local_time(time_zone: str) -> Any:
    """A template function: a naive UTC time as the client's local time, e.g. 'Mon 7 Dec 09:05 CST'."""
    zone = ZoneInfo(time_zone)

    def show(value: datetime | None) -> str:
        if value is None:
            return ""
        at = value.replace(tzinfo=UTC).astimezone(zone)
        return f"{at:%a} {at.day} {at:%b %Y %H:%M} {at.tzname()}"

    return show


def _render(request: Request, name: str, client_id: str, values: dict[str, Any], status: int = 200) -> Response:
    """The page with ``local`` (times in the client's time zone: the front desk's clock)."""
    client = web_context(request).deployment.clients[client_id]
    return render(request, name, {"client_id": client_id, "local": local_time(client.time_zone), **values}, status)


def _who(user: User) -> str:
    return portal_audit.actor(user.email)


def _audit(request: Request, user: User, action: str, client_id: str, subject: str,
           detail: dict[str, Any] | None = None, contact_id: str | None = None) -> None:  # fmt: skip
    """One portal audit row, in the portal store."""
    with portal_db(web_context(request)) as s:
        portal_audit.record(s, _who(user), action, client_id, subject, detail, contact_id=contact_id)


def _users(request: Request, client_id: str) -> list[User]:
    """The client's portal users (the portal store)."""
    with portal_db(web_context(request)) as s:
        return accounts.list_users(s, client_id)


def _guard(fn: Any) -> Any:
    """A domain call: no such conversation → 404, an unreadable warehouse → 503."""
    return guarded(fn, missing=inbox.ConversationNotFound, busy=PortalReadError, logger=log,
                   what="the Inbox could not read the warehouse")  # fmt: skip


# --- the list ----------------------------------------------------------------------------------


@router.get("/c/{client_id}/inbox", response_class=HTMLResponse)
def inbox_page(request: Request, client_id: str, user: ClientUser, filter: str = "all") -> Response:
    chosen = filter if filter in inbox.FILTERS else "all"
    settings = web_context(request).settings
    _audit(request, user, portal_audit.VIEW, client_id, request.url.path, {"filter": chosen})
    users = _users(request, client_id)
    _snapshot_ready(request)
    with portal_db(web_context(request)) as store:  # the user's read marks; the rest from the snapshot
        rows, as_of = _guard(lambda: inbox.list_conversations(settings, store, client_id, user, chosen, users))
    values = {"rows": rows, "filter": chosen, "filters": inbox.FILTERS, "as_of": as_of}
    return _render(request, "inbox.html", client_id, values)


# --- one conversation --------------------------------------------------------------------------


def _conversation_page(
    request: Request, client_id: str, conversation_id: str, user: User, *, error: str | None = None,
    notice: str | None = None, draft: str = "", quick: str = "", status: int = 200,
) -> Response:  # fmt: skip
    context = web_context(request)
    settings, client = context.settings, context.deployment.clients[client_id]
    now = utcnow()
    _snapshot_ready(request)
    found = _guard(lambda: inbox.check_conversation(settings, client_id, conversation_id))  # 404 before an audit row
    _audit(request, user, portal_audit.VIEW, client_id, request.url.path, contact_id=found.contact_id)
    team = inbox.assignable_users(_users(request, client_id))
    thread = _guard(lambda: inbox.read_thread(settings, client_id, conversation_id, user, now))
    with portal_db(context) as store:
        inbox.mark_read(store, client_id, conversation_id, user.user_id, now)
    names = _names(settings, client_id, thread.conversation.contact_id) if quick and not draft else (None, None)
    with reader_for(settings.warehouse).session() as s:
        quick_replies = inbox.quick_replies(s, client_id)
        if quick and not draft:
            try:
                draft = inbox.render_quick_reply(s, client, quick, thread.contact, *names) or ""
            except inbox.InboxError as exc:
                error, status = f"The quick reply cannot be used: {exc}.", 400
    assignee = next((u for u in team if u.user_id == thread.conversation.assigned_user_id), None)
    can_reply = user.can_act and thread.conversation.channel == "sms" and thread.conversation.contact_id is not None
    values = {"t": thread, "c": thread.conversation, "contact": thread.contact, "can_act": user.can_act,
              "can_reply": can_reply, "quick_replies": quick_replies, "team": team, "assignee": assignee,
              "error": error, "notice": notice, "draft": draft, "reply_max": inbox.REPLY_MAX_CHARS,
              "note_max": inbox.NOTE_MAX_CHARS}  # fmt: skip
    return _render(request, "conversation.html", client_id, values, status)


def _names(settings: Any, client_id: str, contact_id: str | None) -> tuple[str | None, str | None]:
    """The contact's first and last name, for a quick reply's variables."""
    if not contact_id:
        return None, None
    with reader_for(settings.warehouse).session() as r:
        rows = r.query("select first_name, last_name from marts.contacts where client_id = ? and contact_id = ?",
                       [client_id, contact_id]).rows  # fmt: skip
    return (rows[0][0], rows[0][1]) if rows else (None, None)


@router.get("/c/{client_id}/inbox/settings", response_class=HTMLResponse)
def inbox_settings_page(request: Request, client_id: str, user: ClientUser) -> Response:
    return _settings_page(request, client_id, user, audit=True)


@router.get("/c/{client_id}/inbox/{conversation_id}", response_class=HTMLResponse)
def conversation_page(
    request: Request, client_id: str, conversation_id: str, user: ClientUser,
    notice: str = "", quick: str = "",
) -> Response:  # fmt: skip
    return _conversation_page(request, client_id, conversation_id, user, notice=_notice(notice),
                              quick=quick[:40] if user.can_act else "")  # fmt: skip


def _back(client_id: str, conversation_id: str, notice: str, shown: bool = True) -> Response:
    from urllib.parse import quote

    notice = notice if shown else f"{notice}.later"
    return redirect(f"{PREFIX}/c/{client_id}/inbox/{quote(conversation_id, safe='')}?notice={notice}")


@action_route("/c/{client_id}/inbox/{conversation_id}/reply")
def reply(
    request: Request, client_id: str, conversation_id: str, user: ActingUser,
    text: Annotated[str, Form(max_length=4000)] = "",
) -> Response:  # fmt: skip
    context = web_context(request)
    try:
        _snapshot_ready(request)
        with db(context) as s:
            message, is_new = _guard(lambda: inbox.send_reply(
                context.settings, s, context.deployment, client_id, conversation_id, user, text, _who(user),
                utcnow()))  # fmt: skip
    except ReplyError as exc:
        return _conversation_page(request, client_id, conversation_id, user, status=400, draft=text,
                                  error=f"Nothing was sent: {exc}.")  # fmt: skip
    # the warehouse's `send` row (reply.py) is in the reply's transaction; this one is the portal's
    shown = _republish(request)
    _audit(request, user, portal_audit.INBOX_REPLY, client_id, conversation_id,
           {"message_key": message.message_key, "new": is_new}, contact_id=message.contact_id)  # fmt: skip
    return _back(client_id, conversation_id, "replied" if is_new else "again", shown)


@action_route("/c/{client_id}/inbox/{conversation_id}/note")
def note(
    request: Request, client_id: str, conversation_id: str, user: ActingUser,
    text: Annotated[str, Form(max_length=4000)] = "",
) -> Response:  # fmt: skip
    def run(s: Any) -> tuple[str, dict[str, Any] | None]:
        inbox.add_note(s, client_id, conversation_id, user, text, utcnow())
        return portal_audit.INBOX_NOTE, None

    return _action(request, client_id, conversation_id, user, "noted", run)


@action_route("/c/{client_id}/inbox/{conversation_id}/status")
def status(
    request: Request, client_id: str, conversation_id: str, user: ActingUser,
    status: Annotated[str, Form(max_length=20)] = "",
) -> Response:  # fmt: skip
    def run(s: Any) -> tuple[str, dict[str, Any] | None]:
        inbox.set_status(s, client_id, conversation_id, status, _who(user), utcnow())
        return portal_audit.INBOX_STATUS, {"status": status}

    return _action(request, client_id, conversation_id, user, status if status in ("open", "closed") else "", run)


@action_route("/c/{client_id}/inbox/{conversation_id}/assign")
def assign(
    request: Request, client_id: str, conversation_id: str, user: ActingUser,
    user_id: Annotated[str, Form(max_length=100)] = "",
) -> Response:  # fmt: skip
    team = _users(request, client_id)

    def run(s: Any) -> tuple[str, dict[str, Any] | None]:
        target = inbox.assign(s, client_id, conversation_id, user_id or None, team, _who(user), utcnow())
        return portal_audit.INBOX_ASSIGN, {"assigned_to": target.email if target else None}

    return _action(request, client_id, conversation_id, user, "assigned", run)


@action_route("/c/{client_id}/inbox/{conversation_id}/unread")
def unread(request: Request, client_id: str, conversation_id: str, user: ActingUser) -> Response:
    # the read mark is portal state: the portal store (with its audit row), not the warehouse
    _snapshot_ready(request)
    _guard(lambda: inbox.check_conversation(web_context(request).settings, client_id, conversation_id))
    with portal_db(web_context(request)) as store:
        inbox.mark_unread(store, client_id, conversation_id, user.user_id)
        portal_audit.record(store, _who(user), portal_audit.INBOX_UNREAD, client_id, conversation_id)
    return redirect(f"{PREFIX}/c/{client_id}/inbox?filter=unread")


def _commit(request: Request, client_id: str, user: User, run: Any, refused: Any,
            check: Any = None) -> tuple[Any, bool]:  # fmt: skip
    """``run`` makes a change in one warehouse transaction (``check`` first) and returns its audit
    action, subject and detail, written to the portal store once the change committed; the
    snapshot is then republished. An InboxError is ``refused``'s page and changes nothing.
    Returns (the refusal's page or None when the change is made, whether the change shows yet)."""
    try:
        _snapshot_ready(request)
        if check is not None:
            check()
        with db(web_context(request)) as s:
            action, subject, detail = run(s)
    except inbox.InboxError as exc:
        return refused(exc), True
    shown = _republish(request)
    _audit(request, user, action, client_id, subject, detail)
    return None, shown


def _action(request: Request, client_id: str, conversation_id: str, user: User, notice: str, run: Any,
            back: bool = True) -> Any:  # fmt: skip
    """An action on a conversation of the client (404 when it has none of that id): ``run`` makes
    the change in one warehouse transaction and names its audit action and detail; a refusal is
    shown on the page and changes nothing."""
    settings = web_context(request).settings

    def refused(reason: Any) -> Response:
        return _conversation_page(request, client_id, conversation_id, user, status=400,
                                  error=f"Nothing was changed: {reason}.")  # fmt: skip

    def change(s: Session) -> tuple[str, str, dict[str, Any] | None]:
        action, detail = run(s)
        return action, conversation_id, detail

    if not notice:
        return refused("choose open or closed")

    def check() -> Any:
        return _guard(lambda: inbox.check_conversation(settings, client_id, conversation_id))

    refusal, shown = _commit(request, client_id, user, change, refused, check=check)
    if refusal is not None:
        return refusal
    return _back(client_id, conversation_id, notice, shown) if back else None


# --- settings: quick replies, after-hours auto-reply ------------------------------------------


def _settings_page(request: Request, client_id: str, user: User, *, audit: bool = False, error: str | None = None,
                   notice: str | None = None, form: dict[str, str] | None = None, status: int = 200) -> Response:  # fmt: skip
    context = web_context(request)
    client = context.deployment.clients[client_id]
    if audit:
        _audit(request, user, portal_audit.VIEW, client_id, request.url.path)
    _snapshot_ready(request)
    with reader_for(context.settings.warehouse).session() as s:  # the snapshot on DuckDB: no wait for a run
        replies = inbox.quick_replies(s, client_id)
        auto = inbox.auto_reply_view(s, context.deployment, client)
    is_admin = user.role in ("operator", "client_admin")
    values = {"replies": replies, "auto": auto, "is_admin": is_admin, "variables": inbox.QUICK_VARIABLES,
              "error": error, "notice": notice, "form": form or {}, "quick_max": inbox.QUICK_BODY_MAX_CHARS,
              "auto_max": inbox.AUTO_REPLY_MAX_CHARS}  # fmt: skip
    return _render(request, "inbox_settings.html", client_id, values, status)


def _settings_action(request: Request, client_id: str, user: User, notice: str, run: Any,
                     form: dict[str, str] | None = None) -> Response:  # fmt: skip
    def refused(exc: inbox.InboxError) -> Response:
        return _settings_page(request, client_id, user, status=400, error=f"Nothing was saved: {exc}.", form=form)

    refusal, shown = _commit(request, client_id, user, run, refused)
    if refusal is not None:
        return refusal
    return _settings_page(request, client_id, user, notice=_notice(notice if shown else f"{notice}.later"))


@action_route("/c/{client_id}/inbox/settings/quick-replies")
def add_quick_reply(
    request: Request, client_id: str, user: AdminUser,
    title: Annotated[str, Form(max_length=400)] = "", body: Annotated[str, Form(max_length=4000)] = "",
) -> Response:  # fmt: skip
    client = web_context(request).deployment.clients[client_id]

    def run(s: Any) -> tuple[str, str, dict[str, Any]]:
        reply_id = inbox.save_quick_reply(s, client, title, body, _who(user), utcnow())
        return portal_audit.QUICK_REPLY_SAVED, reply_id, {"title": title[:80]}

    return _settings_action(request, client_id, user, "quick-saved", run, {"title": title, "body": body})


@action_route("/c/{client_id}/inbox/settings/quick-replies/{reply_id}/delete")
def delete_quick_reply(request: Request, client_id: str, reply_id: str, user: AdminUser) -> Response:
    def run(s: Any) -> tuple[str, str, dict[str, Any]]:
        title = inbox.delete_quick_reply(s, client_id, reply_id)
        if title is None:
            raise not_found()
        return portal_audit.QUICK_REPLY_DELETED, reply_id, {"title": title}

    return _settings_action(request, client_id, user, "quick-deleted", run)


@action_route("/c/{client_id}/inbox/settings/auto-reply")
def auto_reply(
    request: Request, client_id: str, user: AdminUser,
    enabled: Annotated[str, Form(max_length=10)] = "", text: Annotated[str, Form(max_length=4000)] = "",
    reset: Annotated[str, Form(max_length=10)] = "",
) -> Response:  # fmt: skip
    client = web_context(request).deployment.clients[client_id]
    on = enabled in ("on", "1", "yes")

    def run(s: Any) -> tuple[str, str, dict[str, Any]]:
        if reset:
            inbox.reset_auto_reply(s, client_id)
        else:
            inbox.save_auto_reply(s, client, on, text, _who(user), utcnow())
        detail = {"reset": True} if reset else {"enabled": on, "text": text.strip()[:640] or None}
        return portal_audit.AUTO_REPLY_CHANGED, "auto_reply", detail

    return _settings_action(request, client_id, user, "auto-reset" if reset else "auto-saved", run,
                            {"text": text, "enabled": "on" if on else ""})  # fmt: skip
