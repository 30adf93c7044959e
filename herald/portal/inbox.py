"""The portal's Inbox: a client's conversations (``marts.conversations``) with filters, one
thread with the contact's context, replies, internal notes, open/closed, read/unread,
assignment, quick replies and the after-hours auto-reply override.

Where each part lives, and how it is read:

- **the conversations themselves** (dbt's ``marts.conversations`` and
  ``marts.conversation_messages``, the contact's marts) are read through
  :mod:`herald.portal.reads` (the snapshot on DuckDB, read-only transactions on PostgreSQL);
- **what staff do to them** (``herald_ops.inbox_threads``, ``inbox_entries``,
  ``inbox_quick_replies``, ``auto_reply_settings``: status, assignment, notes, the replies sent
  from here, quick replies, the auto-reply override) is written in the warehouse, beside the
  outbox a reply goes into and the tables privacy requests and the retention purge cover, in the
  caller's warehouse :class:`~herald.warehouse.connection.Session` (one transaction), and read
  through the same reader: those tables (and the outbox rows of the Inbox's replies) are in the
  snapshot, which the web layer republishes after each write (:func:`republish`). So on DuckDB
  the list and a conversation never wait behind a run holding the warehouse;
- **each user's read marks** (``herald_ops.inbox_reads``, written on every view) are portal
  state, in the portal store (:mod:`herald.portal.store`: SQLite beside the DuckDB file, the
  warehouse itself on PostgreSQL), as are the accounts and audit rows: the web layer passes a
  store session in, and the client's users.

A reply goes through :func:`herald.conversations.reply.queue_reply`, the very path of
``herald reply``: the outbox, the consent and opt-out rules, the PHI guard, the recipient's send
window, the double-submit key and the ``send`` audit row. The mart shows it after dbt's next
build; until then the thread shows it from ``inbox_entries`` with its outbox status (as of
the snapshot on DuckDB, live on PostgreSQL).

Every function takes an explicit ``client_id`` and every query filters on it: another
client's conversation id reads as :class:`ConversationNotFound`.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from herald.compliance.phi import find_phi, phi_reason
from herald.config.models import AutoReply, Client, Deployment
from herald.contacts.phones import mask_email, mask_phone
from herald.conversations.autoresponder import AUTO_REPLY_SETTINGS, auto_reply_hours
from herald.conversations.reply import ReplyError, queue_reply
from herald.delivery.outbox import OUTBOX, OutboxMessage
from herald.messages.render import TemplateError, default_renderer
from herald.portal import accounts
from herald.portal.reads import (
    PortalReader,
    PortalReadError,
    ReadSession,
    current_snapshot,
    publish_snapshot,
    reader_for,
)
from herald.settings import Settings
from herald.warehouse.connection import Session
from herald.warehouse.schema import OPS_SCHEMA

THREADS = f"{OPS_SCHEMA}.inbox_threads"
READS = f"{OPS_SCHEMA}.inbox_reads"
ENTRIES = f"{OPS_SCHEMA}.inbox_entries"
QUICK_REPLIES = f"{OPS_SCHEMA}.inbox_quick_replies"
FILTERS = {"all": "All", "unread": "Unread", "open": "Open", "closed": "Closed", "mine": "Assigned to me"}
OPEN, CLOSED = "open", "closed"
REPUBLISH_WAIT_SECONDS = 2.0  # how long the republish after an Inbox write waits for a run
LIST_LIMIT = 200
THREAD_LIMIT = 300
NOTE_MAX_CHARS = 2000
REPLY_MAX_CHARS = 1600  # Twilio's body limit
QUICK_TITLE_MAX_CHARS = 80
QUICK_BODY_MAX_CHARS = 640
AUTO_REPLY_MAX_CHARS = 640
UPCOMING_APPOINTMENTS = 5
QUICK_VARIABLES = ("first_name", "last_name", "client_name", "client_phone", "next_appointment")
log = logging.getLogger("herald.portal.inbox")
_snapshot_has_inbox: dict[Any, bool] = {}  # snapshot path → whether it holds the Inbox's tables
_republished_for: set[Any] = set()  # snapshots without the Inbox's tables a republish was tried for
_EMAIL_IN_TEXT = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_PHONE_IN_TEXT = re.compile(r"\+?\d[\d\s().-]{6,}\d")


class ConversationNotFound(LookupError):
    """No conversation of that id for this client (another client's reads the same)."""


class InboxNotUpgraded(RuntimeError):
    """The warehouse has no Inbox tables (not upgraded to migration 0008)."""


class InboxError(ValueError):
    """An Inbox action that cannot be done; the message says why, for the person who clicked."""


# --- state staff keep (herald_ops.inbox_*) -----------------------------------------------------


@dataclass(frozen=True)
class ThreadState:
    status: str | None
    status_changed_at: datetime | None
    assigned_user_id: str | None


def _rows(session: Session | ReadSession, table: str, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` (reading ``table``) in a warehouse or portal-store session, or through the
    portal's reader (the snapshot on DuckDB: a table it does not hold yet reads as empty)."""
    if isinstance(session, ReadSession):
        return session.query(sql, params).rows if session.has_table(table) else []
    return session.query(sql, params)[1]


def _states(session: Session | ReadSession, client_id: str, ids: list[str] | None = None) -> dict[str, ThreadState]:
    sql = f"select conversation_id, status, status_changed_at, assigned_user_id from {THREADS} where client_id = ?"
    params: list[Any] = [client_id]
    if ids is not None:
        if not ids:
            return {}
        sql += f" and conversation_id in ({', '.join('?' * len(ids))})"
        params += ids
    return {r[0]: ThreadState(r[1], r[2], r[3]) for r in _rows(session, THREADS, sql, params)}


def _read_marks(store: Session, client_id: str, user_id: str) -> dict[str, datetime]:
    """The user's read marks, from the portal store (:class:`herald.portal.store.PortalStore`)."""
    _, rows = store.query(
        f"select conversation_id, read_at from {READS} where client_id = ? and user_id = ?", [client_id, user_id]
    )
    return {r[0]: r[1] for r in rows}


def effective_status(mart_status: str, last_inbound_at: datetime | None, state: ThreadState | None) -> str:
    """What staff set last, unless the contact wrote after it (a new message reopens a closed
    conversation); otherwise the mart's (open: the latest inbound message is unanswered)."""
    if (
        state is not None
        and state.status in (OPEN, CLOSED)
        and state.status_changed_at is not None
        and (last_inbound_at is None or state.status_changed_at >= last_inbound_at)
    ):
        return state.status
    return mart_status


def is_unread(last_inbound_at: datetime | None, read_at: datetime | None) -> bool:
    return last_inbound_at is not None and (read_at is None or read_at < last_inbound_at)


def _upsert_thread(session: Session, client_id: str, conversation_id: str, now: datetime, **values: Any) -> None:
    """Sets ``values`` on the conversation's row (made when it has none); one statement, so two
    clicks at once cannot both insert."""
    columns = ["client_id", "conversation_id", *values, "updated_at"]
    updates = ", ".join(f"{c} = excluded.{c}" for c in [*values, "updated_at"])
    session.execute(
        f"insert into {THREADS} ({', '.join(columns)}) values ({', '.join('?' * len(columns))}) "
        f"on conflict (client_id, conversation_id) do update set {updates}",
        [client_id, conversation_id, *values.values(), now],
    )


def mark_read(store: Session, client_id: str, conversation_id: str, user_id: str, now: datetime) -> None:
    """The user read the conversation now (in the portal store: no run holds it)."""
    store.execute(
        f"insert into {READS} values (?, ?, ?, ?) "
        "on conflict (client_id, conversation_id, user_id) do update set read_at = excluded.read_at",
        [client_id, conversation_id, user_id, now],
    )


def mark_unread(store: Session, client_id: str, conversation_id: str, user_id: str) -> None:
    """Forget the user's read mark (in the portal store)."""
    store.execute(
        f"delete from {READS} where client_id = ? and conversation_id = ? and user_id = ?",
        [client_id, conversation_id, user_id],
    )


def set_status(session: Session, client_id: str, conversation_id: str, status: str, actor: str, now: datetime) -> None:
    if status not in (OPEN, CLOSED):
        raise InboxError(f"unknown status {status[:20]!r}: choose open or closed")
    _upsert_thread(session, client_id, conversation_id, now, status=status, status_changed_at=now,
                   status_changed_by=actor)  # fmt: skip


def assignable_users(users: list[accounts.User]) -> list[accounts.User]:
    """Of the client's users (:func:`herald.portal.accounts.list_users`, read from the portal
    store), those who may work a conversation (not disabled, not viewers)."""
    return [u for u in users if not u.is_disabled and u.can_act]


def assign(
    session: Session, client_id: str, conversation_id: str, user_id: str | None, team: list[accounts.User], actor: str,
    now: datetime,
) -> accounts.User | None:  # fmt: skip
    """Assign the conversation to a user of the same client (None: to nobody); returns the user."""
    target = None
    if user_id:
        target = next((u for u in assignable_users(team) if u.user_id == user_id and u.client_id == client_id), None)
        if target is None:
            raise InboxError("that person is not an active user of this client: choose someone from the list")
    _upsert_thread(session, client_id, conversation_id, now, assigned_user_id=target.user_id if target else None,
                   assigned_at=now, assigned_by=actor)  # fmt: skip
    return target


def add_note(session: Session, client_id: str, conversation_id: str, user: accounts.User, text: str,
             now: datetime) -> str:  # fmt: skip
    """An internal note on the conversation (never sent to the contact); returns its id."""
    body = text.strip()
    if not body:
        raise InboxError("the note is empty")
    if len(body) > NOTE_MAX_CHARS:
        raise InboxError(f"the note has {len(body)} characters; the limit is {NOTE_MAX_CHARS}")
    entry_id = uuid.uuid4().hex
    session.execute(
        f"insert into {ENTRIES} values (?, ?, ?, 'note', ?, ?, ?, null, ?)",
        [entry_id, client_id, conversation_id, user.user_id, user.email, body, now],
    )
    return entry_id


def republish(settings: Settings) -> bool:
    """After an Inbox write committed: publish the portal's snapshot so the next page shows it
    (DuckDB; nothing to do on PostgreSQL, read live). Call it where the process may open the
    live file (the web layer's DuckDB lock). False when a run held the warehouse for the whole
    :data:`REPUBLISH_WAIT_SECONDS`: the change is saved, and shows with the next snapshot (the
    next Inbox write's, or the run's own at its end)."""
    try:
        publish_snapshot(settings.warehouse, lock_wait_seconds=REPUBLISH_WAIT_SECONDS)
    except PortalReadError as exc:
        log.warning("an Inbox change is saved; the portal shows it with the next snapshot: %s", str(exc)[:300])
        return False
    return True


def inbox_snapshot_ready(settings: Settings, lock: Any) -> None:
    """On DuckDB, a snapshot without the Inbox's tables (published by an older Herald) while the
    warehouse may have them: publish one (one try; a run holding the warehouse leaves the old
    one, read as no staff state, until the next). ``lock``: the web layer's DuckDB lock, taken
    only to publish. Raises :class:`InboxNotUpgraded` when the warehouse has no Inbox tables."""
    target = settings.warehouse
    if target.engine != "duckdb":
        return
    path = current_snapshot(target)
    if path is None:
        return
    if path not in _snapshot_has_inbox:
        with reader_for(target).session() as r:
            _snapshot_has_inbox[path] = r.has_table(THREADS)
    if _snapshot_has_inbox[path]:
        return
    if path in _republished_for:
        raise InboxNotUpgraded(f"the warehouse has no {THREADS}: run `herald db upgrade`")
    _republished_for.add(path)  # one try per snapshot and process
    try:
        with lock:
            info = publish_snapshot(target, lock_wait_seconds=0)
    except PortalReadError as exc:
        log.warning("the Inbox reads a snapshot without its tables until the next one: %s", str(exc)[:300])
        return
    if info is not None:
        _snapshot_has_inbox[info.path] = THREADS in info.tables
        if THREADS not in info.tables:
            _republished_for.add(info.path)
            raise InboxNotUpgraded(f"the warehouse has no {THREADS}: run `herald db upgrade`")


# --- reading the conversations (marts, through the portal's reader) ---------------------------


@dataclass
class ConversationRow:
    conversation_id: str
    contact_id: str | None
    name: str
    channel: str
    address_masked: str | None
    last_activity_at: datetime
    last_direction: str | None
    last_kind: str | None
    last_body: str | None
    inbound_count: int
    outbound_count: int
    last_inbound_at: datetime | None
    mart_status: str
    status: str = ""
    unread: bool = False
    assigned_user_id: str | None = None
    assigned_email: str | None = None


_LIST_SQL = """
    select c.conversation_id, c.contact_id, k.first_name, k.last_name, c.channel, c.address_masked,
           c.last_activity_at, c.last_direction, c.last_kind, c.inbound_count, c.outbound_count,
           c.last_inbound_at, c.status
    from marts.conversations c
    left join marts.contacts k on k.client_id = c.client_id and k.contact_id = c.contact_id
    where c.client_id = ? {extra}
    order by c.last_activity_at desc, c.conversation_id
    limit ?"""


def _name(first: str | None, last: str | None) -> str:
    return " ".join(p for p in (first, last) if p)


def hide_in_text(text: str | None) -> str | None:
    """A message's text with phone numbers and email addresses in it masked (staff who may not
    see contact details)."""
    if not text:
        return text
    text = _EMAIL_IN_TEXT.sub(lambda m: mask_email(m.group(0)), text)
    return _PHONE_IN_TEXT.sub(lambda m: mask_phone(re.sub(r"[^\d+]", "", m.group(0))), text)


def _conversation_row(r: tuple[Any, ...]) -> ConversationRow:
    name = _name(r[2], r[3])
    return ConversationRow(r[0], r[1], name, r[4], r[5], r[6], r[7], r[8], None, int(r[9] or 0), int(r[10] or 0),
                           r[11], r[12])  # fmt: skip


def _conversation_rows(
    reader: PortalReader, client_id: str, ids: list[str] | None, limit: int
) -> tuple[list[ConversationRow], datetime | None]:
    with reader.session() as s:
        if not s.has_table("marts.conversations") or not s.has_table("marts.contacts"):
            return [], s.as_of
        extra, params = "", [client_id]
        if ids is not None:
            if not ids:
                return [], s.as_of
            extra = f"and c.conversation_id in ({', '.join('?' * len(ids))})"
            params += ids
        rows = s.query(_LIST_SQL.format(extra=extra), [*params, int(limit)]).rows
        found = [_conversation_row(r) for r in rows]
        if found and s.has_table("marts.conversation_messages"):
            marks = ", ".join("?" * len(found))
            last = s.query(
                "select conversation_id, body from (select conversation_id, body, row_number() over ("
                "partition by conversation_id order by occurred_at desc, conversation_message_id desc) as recency "
                f"from marts.conversation_messages where client_id = ? and conversation_id in ({marks})) t "
                "where recency = 1",
                [client_id, *(c.conversation_id for c in found)],
            ).rows
            bodies = dict(last)
            for c in found:
                c.last_body = bodies.get(c.conversation_id)
        return found, s.as_of


def check_conversation(settings: Settings, client_id: str, conversation_id: str,
                       reader: PortalReader | None = None) -> ConversationRow:  # fmt: skip
    """The client's conversation of that id; :class:`ConversationNotFound` otherwise."""
    found, _ = _conversation_rows(reader or reader_for(settings.warehouse), client_id, [conversation_id], 1)
    if not found:
        raise ConversationNotFound(f"no conversation {conversation_id!r} for this client")
    return found[0]


def list_conversations(
    settings: Settings,
    store: Session,
    client_id: str,
    user: accounts.User,
    filter_: str = "all",
    users: list[accounts.User] | None = None,
    limit: int = LIST_LIMIT,
    reader: PortalReader | None = None,
) -> tuple[list[ConversationRow], datetime | None]:
    """The client's conversations, latest activity first, with their status (staff's or the
    mart's), unread mark (for ``user``, from the portal ``store`` session) and assignee;
    ``filter_`` one of :data:`FILTERS`. ``users`` (the client's, from the portal store) name the
    assignees. Everything else is read through the portal's reader (the snapshot on DuckDB: a run
    holding the warehouse never makes the list wait). Returns them and the snapshot's time (None:
    live)."""
    if filter_ not in FILTERS:
        filter_ = "all"
    reader = reader or reader_for(settings.warehouse)
    with reader.session() as r:
        states = _states(r, client_id)
    ids = None
    if filter_ == "mine":
        ids = [cid for cid, st in states.items() if st.assigned_user_id == user.user_id]
    # the filters on status and unread need staff's state: read more than is shown, then filter
    fetch = limit if filter_ in ("all", "mine") else limit * 5
    rows, as_of = _conversation_rows(reader, client_id, ids, fetch)
    marks = _read_marks(store, client_id, user.user_id)
    emails = {u.user_id: u.email for u in users or []}
    for c in rows:
        state = states.get(c.conversation_id)
        c.status = effective_status(c.mart_status, c.last_inbound_at, state)
        c.unread = is_unread(c.last_inbound_at, marks.get(c.conversation_id))
        c.assigned_user_id = state.assigned_user_id if state else None
        c.assigned_email = emails.get(c.assigned_user_id or "")
        if user.hide_contact_details:
            c.last_body = hide_in_text(c.last_body)
    if filter_ == "unread":
        rows = [c for c in rows if c.unread]
    elif filter_ in (OPEN, CLOSED):
        rows = [c for c in rows if c.status == filter_]
    return rows[:limit], as_of


@dataclass
class ThreadItem:
    kind: str  # inbound | automated | reply | manual | note | pending
    occurred_at: datetime
    body: str | None
    status: str | None = None
    author: str | None = None
    message_type: str | None = None
    send_after: datetime | None = None


@dataclass
class ContactContext:
    contact_id: str
    name: str
    phone: str | None  # E.164, or masked
    email: str | None
    consent: list[dict[str, Any]] = field(default_factory=list)  # marts.consent_status rows
    suppressions: list[dict[str, Any]] = field(default_factory=list)
    appointments: list[dict[str, Any]] = field(default_factory=list)  # upcoming, soonest first
    last_messages: list[dict[str, Any]] = field(default_factory=list)  # marts.messages, newest first

    @property
    def is_opted_out(self) -> bool:
        return any(s["reason"] == "opt_out" for s in self.suppressions)


@dataclass
class Thread:
    conversation: ConversationRow
    items: list[ThreadItem]
    contact: ContactContext | None
    as_of: datetime | None


def _mask(channel: str, address: str | None, hide: bool) -> str | None:
    if not hide or not address:
        return address
    return mask_phone(address) if channel == "sms" else mask_email(address)


def _contact_context(s: Any, client_id: str, contact_id: str, hide: bool, now: datetime) -> ContactContext | None:
    if not s.has_table("marts.contacts"):
        return None
    rows = s.query(
        "select first_name, last_name, phone_e164, email from marts.contacts where client_id = ? and contact_id = ?",
        [client_id, contact_id],
    ).rows
    if not rows:
        return None
    first, last, phone, email = rows[0]
    email = email.lower() if email else None
    context = ContactContext(contact_id, _name(first, last), _mask("sms", phone, hide), _mask("email", email, hide))
    addresses = [a for a in (phone, email) if a] or [""]
    marks = ", ".join("?" * len(addresses))
    if s.has_table("marts.consent_status"):
        context.consent = s.query(
            "select channel, address, scope, status, consent_level, source, since from marts.consent_status "
            f"where client_id = ? and (contact_id = ? or address in ({marks})) order by channel, scope",
            [client_id, contact_id, *addresses],
        ).dicts()
    context.suppressions = s.query(
        "select channel, address, scope, reason, created_at, client_id = '*' as is_all_clients "
        f"from herald_ops.suppressions where client_id in (?, '*') and address in ({marks}) order by created_at",
        [client_id, *addresses],
    ).dicts()
    for item in [*context.consent, *context.suppressions]:
        item["address"] = _mask(item["channel"], item["address"], hide)
    if s.has_table("marts.appointments"):
        context.appointments = s.query(
            "select appointment_at, appointment_type, provider_name, location_name, status from marts.appointments "
            "where client_id = ? and contact_id = ? and appointment_at >= ? and status <> 'cancelled' "
            "order by appointment_at limit ?",
            [client_id, contact_id, now, UPCOMING_APPOINTMENTS],
        ).dicts()
    if s.has_table("marts.messages"):
        context.last_messages = s.query(
            "select campaign, step, channel, status, coalesce(sent_at, enqueued_at) as at from marts.messages "
            "where client_id = ? and contact_id = ? and campaign not in ('_manual', '_replies') "
            "order by coalesce(sent_at, enqueued_at) desc, message_key limit 5",
            [client_id, contact_id],
        ).dicts()
    return context


def read_thread(
    settings: Settings,
    client_id: str,
    conversation_id: str,
    user: accounts.User,
    now: datetime,
    reader: PortalReader | None = None,
) -> Thread:
    """One conversation of the client: its messages, the replies sent from the Inbox that the
    mart does not show yet (with their outbox status), internal notes, and the contact's
    context. :class:`ConversationNotFound` for an id the client does not have. All of it through
    the portal's reader (the snapshot on DuckDB, republished after each Inbox write)."""
    reader = reader or reader_for(settings.warehouse)
    hide = user.hide_contact_details
    found, as_of = _conversation_rows(reader, client_id, [conversation_id], 1)
    if not found:
        raise ConversationNotFound(f"no conversation {conversation_id!r} for this client")
    conversation = found[0]
    items: list[ThreadItem] = []
    contact = None
    with reader.session() as s:
        keys: set[str] = set()
        if s.has_table("marts.conversation_messages"):
            for m in s.query(
                "select kind, occurred_at, body, status, message_type, message_key, send_after "
                "from marts.conversation_messages where client_id = ? and conversation_id = ? "
                "order by occurred_at desc, conversation_message_id desc limit ?",
                [client_id, conversation_id, THREAD_LIMIT],
            ).dicts():
                keys.add(m["message_key"] or "")
                items.append(ThreadItem(m["kind"], m["occurred_at"], m["body"], m["status"],
                                        message_type=m["message_type"], send_after=m["send_after"]))  # fmt: skip
        if conversation.contact_id:
            contact = _contact_context(s, client_id, conversation.contact_id, hide, now)
        entries = _rows(s, ENTRIES,
            f"select kind, created_at, body, author_email, message_key from {ENTRIES} "
            "where client_id = ? and conversation_id = ? order by created_at desc limit ?",
            [client_id, conversation_id, THREAD_LIMIT],
        )  # fmt: skip
        pending = [e[4] for e in entries if e[0] == "reply" and e[4] and e[4] not in keys]
        live: dict[str, tuple[str, datetime]] = {}
        if pending:  # the snapshot's outbox holds the Inbox's replies (reads.PORTAL_SUBSETS)
            rows = _rows(s, OUTBOX,
                f"select message_key, status, send_after from {OUTBOX} where client_id = ? "
                f"and message_key in ({', '.join('?' * len(pending))})",
                [client_id, *pending],
            )  # fmt: skip
            live = {r[0]: (r[1], r[2]) for r in rows}
        state = _states(s, client_id, [conversation_id]).get(conversation_id)
    for kind, created_at, body, author, key in entries:
        if kind == "note":
            items.append(ThreadItem("note", created_at, body, author=author))
        elif key in live:  # sent from here, not in the mart yet
            status, send_after = live[key]
            items.append(ThreadItem("manual", created_at, body, status, author=author, send_after=send_after))
    items.sort(key=lambda i: i.occurred_at)
    if hide:  # a colleague's note may hold the number too
        for item in items:
            item.body = hide_in_text(item.body)
    conversation.status = effective_status(conversation.mart_status, conversation.last_inbound_at, state)
    conversation.assigned_user_id = state.assigned_user_id if state else None
    return Thread(conversation, items, contact, as_of)


# --- replying ----------------------------------------------------------------------------------


def send_reply(
    settings: Settings,
    session: Session,
    deployment: Deployment,
    client_id: str,
    conversation_id: str,
    user: accounts.User,
    text: str,
    actor: str,
    now: datetime,
    reader: PortalReader | None = None,
) -> tuple[OutboxMessage, bool]:
    """Reply to the conversation's contact by SMS through ``herald reply``'s path
    (:func:`~herald.conversations.reply.queue_reply`: refused with the reason when the contact has
    no valid phone, is suppressed or opted out, or the text holds PHI; due at the next allowed
    moment); records it in the thread and marks the conversation answered (closed). Returns the
    message and whether it is new (False: the same text this minute, a double submit)."""
    reader = reader or reader_for(settings.warehouse)
    found, _ = _conversation_rows(reader, client_id, [conversation_id], 1)
    if not found:
        raise ConversationNotFound(f"no conversation {conversation_id!r} for this client")
    conversation = found[0]
    if conversation.channel != "sms":
        raise ReplyError("this conversation is by email: the Inbox replies by SMS only")
    if not conversation.contact_id:
        raise ReplyError("this number is not one of the client's contacts: the Inbox can only reply to a contact")
    if len(text.strip()) > REPLY_MAX_CHARS:
        raise ReplyError(f"the reply has {len(text.strip())} characters; the limit is {REPLY_MAX_CHARS}")
    message, is_new = queue_reply(session, deployment, client_id, conversation.contact_id, text, actor, now)
    if is_new:
        session.execute(
            f"insert into {ENTRIES} values (?, ?, ?, 'reply', ?, ?, ?, ?, ?)",
            [uuid.uuid4().hex, client_id, conversation_id, user.user_id, user.email, message.body_text,
             message.message_key, now],
        )  # fmt: skip
        set_status(session, client_id, conversation_id, CLOSED, actor, now)
    return message, is_new


# --- quick replies -----------------------------------------------------------------------------


@dataclass(frozen=True)
class QuickReply:
    reply_id: str
    title: str
    body: str


def quick_replies(session: Session | ReadSession, client_id: str) -> list[QuickReply]:
    """The client's quick replies (a warehouse session, or the portal's reader)."""
    rows = _rows(session, QUICK_REPLIES,
        f"select reply_id, title, body from {QUICK_REPLIES} where client_id = ? order by title, reply_id", [client_id]
    )  # fmt: skip
    return [QuickReply(*r) for r in rows]


def _render(name: str, source: str, variables: dict[str, Any], contact_id: str) -> str:
    try:
        return default_renderer().render_sms(name, source, variables, contact_id, include_opt_out=False).body
    except TemplateError as exc:
        if exc.variable:
            raise InboxError(f"{{{{ {exc.variable} }}}} is not a variable; use {', '.join(QUICK_VARIABLES)}") from exc
        raise InboxError(f"the quick reply cannot be rendered: {exc.reason}") from exc


def sample_variables(client: Client) -> dict[str, str]:
    return {"first_name": "Ana", "last_name": "Example", "client_name": client.config.name,
            "client_phone": client.config.contact.phone if client.config.contact else "",
            "next_appointment": "Fri 4 Dec at 3:00 PM"}  # fmt: skip


def save_quick_reply(session: Session, client: Client, title: str, body: str, actor: str, now: datetime) -> str:
    """A new quick reply of the client, checked by rendering it with sample values first (an
    unknown variable or a syntax error is refused with the reason)."""
    title, body = " ".join(title.split()), body.strip()
    if not title or not body:
        raise InboxError("a quick reply needs a title and a text")
    if len(title) > QUICK_TITLE_MAX_CHARS or len(body) > QUICK_BODY_MAX_CHARS:
        raise InboxError(f"the title may have {QUICK_TITLE_MAX_CHARS} characters and the text {QUICK_BODY_MAX_CHARS}")
    _render(title, body, sample_variables(client), "(sample)")
    reply_id = uuid.uuid4().hex[:16]
    session.execute(f"insert into {QUICK_REPLIES} values (?, ?, ?, ?, ?, ?)",
                    [reply_id, client.client_id, title, body, actor, now])  # fmt: skip
    return reply_id


def delete_quick_reply(session: Session, client_id: str, reply_id: str) -> str | None:
    """Deletes the client's quick reply; returns its title (None: the client has none of that id)."""
    title = session.scalar(
        f"select title from {QUICK_REPLIES} where client_id = ? and reply_id = ?", [client_id, reply_id]
    )
    if title is not None:
        session.execute(f"delete from {QUICK_REPLIES} where client_id = ? and reply_id = ?", [client_id, reply_id])
    return title


def render_quick_reply(
    session: Session | ReadSession, client: Client, reply_id: str, contact: ContactContext | None, first_name: str | None = None,
    last_name: str | None = None,
) -> str | None:  # fmt: skip
    """The client's quick reply ``reply_id`` rendered for the contact (None: no such quick reply)."""
    found = next((q for q in quick_replies(session, client.client_id) if q.reply_id == reply_id), None)
    if found is None:
        return None
    upcoming = contact.appointments[0]["appointment_at"] if contact and contact.appointments else None
    when = ""
    if upcoming is not None:
        local = upcoming.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(client.time_zone))
        when = f"{local:%a} {local.day} {local:%b} at {local:%I:%M %p}".replace(" 0", " ")
    variables = {**sample_variables(client), "first_name": first_name or "", "last_name": last_name or "",
                 "next_appointment": when}  # fmt: skip
    return _render(found.title, found.body, variables, contact.contact_id if contact else "")


# --- after-hours auto-reply --------------------------------------------------------------------


@dataclass(frozen=True)
class AutoReplyView:
    configured: AutoReply | None  # client.yaml's
    enabled: bool  # in effect now
    text: str | None  # in effect now
    overridden: bool  # a client admin changed it in the portal
    updated_by: str | None
    updated_at: datetime | None
    hours: str  # the open hours, for people


def _hours_text(client: Client, deployment: Deployment) -> str:
    window = auto_reply_hours(client, deployment)
    weekdays = f"{window.start}–{window.end}"
    sunday = f"{window.sunday_start}–{window.end}"
    if weekdays == sunday:
        return f"every day {weekdays} ({client.time_zone})"
    return f"Mon–Sat {weekdays}, Sun {sunday} ({client.time_zone})"


def auto_reply_view(session: Session | ReadSession, deployment: Deployment, client: Client) -> AutoReplyView:
    """The auto-reply in effect (a warehouse session, or the portal's reader)."""
    configured = client.config.auto_reply
    rows = _rows(session, AUTO_REPLY_SETTINGS,
        f"select enabled, text, updated_by, updated_at from {AUTO_REPLY_SETTINGS} where client_id = ?",
        [client.client_id],
    )  # fmt: skip
    hours = _hours_text(client, deployment)
    if not rows:
        return AutoReplyView(configured, configured is not None, configured.text if configured else None, False,
                             None, None, hours)  # fmt: skip
    enabled, text, by, at = rows[0]
    text = text or (configured.text if configured else None)
    return AutoReplyView(configured, bool(enabled) and bool(text), text, True, by, at, hours)


def save_auto_reply(session: Session, client: Client, enabled: bool, text: str | None, actor: str,
                    now: datetime) -> None:  # fmt: skip
    """A client admin's override of client.yaml's auto_reply: on or off, and the text (empty:
    the configured text). The open hours stay the configuration's."""
    text = (text or "").strip() or None
    configured = client.config.auto_reply
    if text is not None and configured is not None and text == configured.text.strip():
        text = None
    if enabled and text is None and configured is None:
        raise InboxError("write the auto-reply's text: client.yaml has none to fall back on")
    if text is not None and len(text) > AUTO_REPLY_MAX_CHARS:
        raise InboxError(f"the auto-reply has {len(text)} characters; the limit is {AUTO_REPLY_MAX_CHARS}")
    findings = find_phi(text or "", block_clinical_terms=not client.config.compliance.phi_clinical_terms_allowed)
    if findings:
        raise InboxError(f"refused by the {phi_reason(findings)}; rewrite the text without it")
    session.execute(
        f"insert into {AUTO_REPLY_SETTINGS} values (?, ?, ?, ?, ?) on conflict (client_id) do update set "
        "enabled = excluded.enabled, text = excluded.text, updated_by = excluded.updated_by, "
        "updated_at = excluded.updated_at",
        [client.client_id, enabled, text, actor, now],
    )


def reset_auto_reply(session: Session, client_id: str) -> None:
    """Back to client.yaml's auto_reply."""
    session.execute(f"delete from {AUTO_REPLY_SETTINGS} where client_id = ?", [client_id])
