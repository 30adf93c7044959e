"""Applying provider events: delivery statuses, bounces, complaints, opens and clicks, web
unsubscribes and appointment confirmations.

``apply_provider_events`` takes every ``herald_raw.provider_events`` row without a
``herald_ops.provider_event_processing`` row, oldest first, and applies it in the caller's
transaction: an event is fully applied (outbox columns, suppression, consent event, cancelled
messages, audit rows, its processing row) or not at all, and applying twice does nothing new.

**Statuses only move forward.** Providers retry and reorder callbacks, so an event changes
``provider_status`` only when its status ranks above the current one (:data:`STATUS_RANK`):

    queued < sending < sent < delivery_delayed < delivered < read
           < undelivered = failed = bounced < complained

A late ``sent`` after ``delivered`` is ``ignored_older``. Terminal failures rank above
``delivered``: an email can bounce asynchronously after its receiving server accepted it, and a
complaint always follows a delivery, so the failure is the later, truer word. For the same
reason a ``delivered`` arriving after ``failed`` / ``undelivered`` is ignored (a carrier's
failure receipt is final; Twilio never moves a message out of a terminal status). An ignored
event changes no status, timestamp or error — but its compliance effect (a hard bounce, a
complaint, a carrier STOP) is applied whatever the order, because a suppression must never
depend on which callback came first.

Opens and clicks set ``opened_at`` / ``clicked_at`` (the first one wins) and never change the
status. An event whose message id Herald does not know is kept as ``unmatched``.

What suppresses (each with an audit row; a revocation also with a consent event):

- Resend hard bounce (``bounce.type`` Permanent): the address for **every** client
  (``client_id '*'``), channel email, scope all, reason ``hard_bounce``, source ``provider``.
- Resend complaint: the address for that client, reason ``complaint`` + consent ``opt_out``;
  that client's queued/held emails to it are cancelled.
- Twilio ErrorCode 21610 (the recipient sent STOP to the carrier): the number for that client,
  scope all, reason ``opt_out``, source ``provider`` + consent ``opt_out``; queued/held texts
  cancelled.
- ``unsubscribe`` (the web page or RFC 8058 one-click): the contact's address(es) on the
  token's channel for the client, the token's scope, reason ``opt_out``, source ``web`` +
  consent ``opt_out``; the contact's queued/held messages on that channel cancelled.

``unsubscribe`` with ``channels`` (the preference page's "unsubscribe from everything") does the
above for each channel listed. ``preferences`` (the preference page's choices) replaces the
contact's preferences (herald.compliance.preferences) and appends one row per change.

``confirm`` (the web confirmation page) records an ``appointment_responses`` row.

``optin_request``, ``optin_confirm`` and ``consent_event`` (the hosted opt-in form, its email
link, the ingest API's consent events) are applied by :mod:`herald.compliance.optin`.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from herald.billing.credits import release_unsent
from herald.compliance import optin
from herald.compliance.audit import audit
from herald.compliance.consent import record_consent
from herald.config.models import Deployment
from herald.contacts.phones import mask_email, mask_phone
from herald.delivery.outbox import OUTBOX, SUPPRESSIONS, cancel_messages
from herald.warehouse.connection import Session
from herald.warehouse.schema import MARTS_SCHEMA, OPS_SCHEMA, RAW_SCHEMA, column_names

# landed consent events (the opt-in form, its confirmation link, the ingest API) → their applier
CONSENT_KINDS = {
    optin.REQUEST_EVENT: optin.apply_request,
    optin.CONFIRM_EVENT: optin.apply_link_confirm,
    optin.API_EVENT: optin.apply_api_events,
}
ACTOR = "provider_events"
PROVIDER_EVENTS = f"{RAW_SCHEMA}.provider_events"
PROCESSING = f"{OPS_SCHEMA}.provider_event_processing"
APPOINTMENT_RESPONSES = f"{OPS_SCHEMA}.appointment_responses"
CONTACTS = f"{MARTS_SCHEMA}.contacts"
CANCELLABLE_STATUSES = ("queued", "held")

# actions recorded in provider_event_processing
STATUS_UPDATED = "status_updated"
IGNORED_OLDER = "ignored_older"
SUPPRESSED = "suppressed"
ENGAGEMENT = "engagement_recorded"
UNSUBSCRIBED = "unsubscribed"
ALREADY_UNSUBSCRIBED = "already_unsubscribed"
CONFIRMED = "confirmed"
PREFERENCES_CHANGED = "preferences_changed"
UNMATCHED = "unmatched"
IGNORED = "ignored"

STATUS_RANK: dict[str, int] = {
    "queued": 0,
    "accepted": 0,
    "scheduled": 0,
    "sending": 1,
    "sent": 2,
    "delivery_delayed": 3,
    "delivered": 4,
    "read": 5,
    "undelivered": 6,
    "failed": 6,
    "bounced": 6,
    "complained": 7,
}
FAILURE_STATUSES = frozenset({"undelivered", "failed", "bounced"})
# the column each status stamps with the event's time (failures: provider_status_at)
STATUS_TIMESTAMP = {"delivered": "delivered_at", "bounced": "bounced_at", "complained": "complained_at"}

# Resend webhook ``type`` → the status it reports (None: engagement, no status)
RESEND_TYPES: dict[str, str | None] = {
    "email.scheduled": "scheduled",
    "email.sent": "sent",
    "email.delivery_delayed": "delivery_delayed",
    "email.delivered": "delivered",
    "email.bounced": "bounced",
    "email.complained": "complained",
    "email.failed": "failed",
    "email.opened": None,
    "email.clicked": None,
}
ENGAGEMENT_COLUMNS = {"email.opened": "opened_at", "email.clicked": "clicked_at"}

TWILIO_CARRIER_STOP = "21610"
# Twilio error codes seen on status callbacks, with what support should read.
TWILIO_ERRORS = {
    "21610": "recipient unsubscribed (replied STOP to the carrier)",
    "21211": "invalid 'To' phone number",
    "21614": "'To' number is not a mobile number",
    "30001": "queue overflow",
    "30002": "account suspended",
    "30003": "unreachable destination handset",
    "30004": "message blocked",
    "30005": "unknown destination handset",
    "30006": "landline or unreachable carrier",
    "30007": "message filtered by the carrier",
    "30008": "unknown error",
    "30032": "toll-free number not verified",
    "30034": "message from an unregistered 10DLC number",
}


def twilio_error_text(code: str | None) -> str | None:
    """``30003`` → ``30003: unreachable destination handset`` (None for no code)."""
    if not code or str(code).strip() in ("", "0"):
        return None
    code = str(code).strip()
    return f"{code}: {TWILIO_ERRORS.get(code, 'see https://www.twilio.com/docs/api/errors/' + code)}"


def is_forward(current: str | None, new: str) -> bool:
    """True when ``new`` ranks above ``current`` (nothing known yet: always forward)."""
    if current is None:
        return True
    return STATUS_RANK.get(new, -1) > STATUS_RANK.get(current, -1)


@dataclass(frozen=True)
class EventResult:
    """What applying one provider event did (no raw address: safe to log)."""

    event_id: str
    source: str
    kind: str
    action: str
    message_key: str | None = None
    detail: str | None = None
    messages_cancelled: int = 0


@dataclass
class ApplyReport:
    results: list[EventResult] = field(default_factory=list)

    @property
    def by_action(self) -> dict[str, int]:
        return dict(sorted(Counter(r.action for r in self.results).items()))

    @property
    def by_kind(self) -> dict[str, int]:
        return dict(sorted(Counter(r.kind for r in self.results).items()))

    @property
    def messages_cancelled(self) -> int:
        return sum(r.messages_cancelled for r in self.results)


@dataclass(frozen=True)
class _Event:
    event_id: str
    source: str
    kind: str
    provider_message_id: str | None
    payload: dict[str, Any]
    received_at: datetime


@dataclass(frozen=True)
class _Message:
    message_key: str
    client_id: str
    contact_id: str | None
    channel: str
    to_address: str
    provider_status: str | None


def _naive_utc(text: Any, default: datetime) -> datetime:
    if not text:
        return default
    try:
        value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return default
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def mask_address(channel: str, address: str) -> str:
    return mask_email(address) if channel == "email" else mask_phone(address)


def _placeholders(n: int) -> str:
    return ", ".join("?" * n)


def pending_events(session: Session) -> list[_Event]:
    _, rows = session.query(
        f"""select e.event_id, e.source, e.kind, e.provider_message_id, e.payload, e.received_at
            from {PROVIDER_EVENTS} as e
            where not exists (select 1 from {PROCESSING} as p where p.event_id = e.event_id)
            order by e.received_at, e.event_id"""
    )
    events = []
    for event_id, source, kind, pmid, payload, received_at in rows:
        data = payload if isinstance(payload, dict) else json.loads(payload or "{}")
        events.append(_Event(event_id, source, kind, pmid, data, received_at))
    return events


def apply_provider_events(session: Session, deployment: Deployment, now: datetime) -> ApplyReport:
    """Applies every provider event not processed yet, oldest first, in ``session``'s
    transaction; returns what each one did."""
    report = ApplyReport()
    has_contacts = bool(
        session.scalar(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [MARTS_SCHEMA, "contacts"],
        )
    )
    for event in pending_events(session):
        result = _Applier(session, deployment, has_contacts, event, now).apply()
        _record(session, result, now)
        report.results.append(result)
    if report.messages_cancelled:
        # paid-for messages a bounce, complaint or unsubscribe withdrew (a retry waiting, one held
        # back mid-batch): refunded here, not left for a delivery run that may not come soon
        release_unsent(session, now, actor="provider_events")
    return report


def _record(session: Session, result: EventResult, now: datetime) -> None:
    values = {
        "event_id": result.event_id, "message_key": result.message_key, "action": result.action,
        "detail": result.detail, "processed_at": now,
    }  # fmt: skip
    columns = column_names(PROCESSING)
    session.execute(
        f"insert into {PROCESSING} ({', '.join(columns)}) values ({_placeholders(len(columns))})",
        [values[c] for c in columns],
    )


class _Applier:
    """Applies one provider event."""

    def __init__(self, session: Session, deployment: Deployment, has_contacts: bool, event: _Event, now: datetime):
        self.s, self.deployment, self.has_contacts, self.e, self.now = session, deployment, has_contacts, event, now
        self.cancelled = 0

    def apply(self) -> EventResult:
        kind = self.e.kind
        if kind == "sms_status":
            return self._sms_status()
        if kind == "email_event":
            return self._email_event()
        if kind == "unsubscribe":
            return self._unsubscribe()
        if kind == "confirm":
            return self._confirm()
        if kind == "preferences":
            return self._preferences()
        if kind in CONSENT_KINDS:  # consent with proof: herald/compliance/optin.py
            done = CONSENT_KINDS[kind](self.s, self.deployment, self.e.event_id, self.e.payload,
                                       self.e.received_at, self.now)  # fmt: skip
            return self._result(done.action, detail=done.detail)
        return self._result(IGNORED, detail=f"unknown event kind {kind!r}")

    # -- helpers ---------------------------------------------------------------------------

    def _result(self, action: str, message: _Message | None = None, detail: str | None = None) -> EventResult:
        return EventResult(
            self.e.event_id, self.e.source, self.e.kind, action,
            message.message_key if message else None, detail, self.cancelled,
        )  # fmt: skip

    def _message(self, channel: str) -> _Message | None:
        if not self.e.provider_message_id:
            return None
        _, rows = self.s.query(
            # provider ids are unique across providers (Twilio SM..., Resend UUIDs); the sandbox
            # mimics them, so a callback simulated against a sandbox deployment applies too
            f"""select message_key, client_id, contact_id, channel, to_address, provider_status from {OUTBOX}
                where provider_message_id = ? and channel = ?
                order by case when provider = ? then 0 else 1 end, message_key limit 1""",
            [self.e.provider_message_id, channel, self.e.source],
        )
        return _Message(*rows[0]) if rows else None

    def _audit(self, action: str, client_id: str | None, contact_id: str | None, subject: str, reason: str,
               detail: dict[str, Any]) -> None:  # fmt: skip
        audit(self.s, ACTOR, action, client_id, contact_id, subject, reason,
              {"event_id": self.e.event_id, "source": self.e.source, **detail}, now=self.now)  # fmt: skip

    def _update_status(self, message: _Message, status: str, at: datetime, error: str | None) -> bool:
        """Moves the message's provider status forward; False when the event is older."""
        if not is_forward(message.provider_status, status):
            return False
        sets = ["provider_status = ?", "provider_status_at = ?", "updated_at = ?"]
        params: list[Any] = [status, at, self.now]
        if status in STATUS_TIMESTAMP:
            sets.append(f"{STATUS_TIMESTAMP[status]} = coalesce({STATUS_TIMESTAMP[status]}, ?)")
            params.append(at)
        if error:
            sets.append("delivery_error = ?")
            params.append(error)
        self.s.execute(f"update {OUTBOX} set {', '.join(sets)} where message_key = ?", [*params, message.message_key])
        return True

    def _status_outcome(self, message: _Message, status: str, at: datetime, error: str | None,
                        suppressed: bool) -> EventResult:  # fmt: skip
        moved = self._update_status(message, status, at, error)
        before = message.provider_status or "none"
        detail = f"{before} → {status}" if moved else f"{before} kept ({status} is not newer)"
        if error:
            detail += f"; {error}"
        if suppressed:
            return self._result(SUPPRESSED, message, detail)
        return self._result(STATUS_UPDATED if moved else IGNORED_OLDER, message, detail)

    def _suppress(self, client_id: str, channel: str, address: str, scope: str, reason: str, source: str,
                  contact_id: str | None, note: str) -> bool:  # fmt: skip
        """Inserts the suppression unless that exact one exists; True when it is new."""
        exists = self.s.scalar(
            f"""select count(*) from {SUPPRESSIONS}
                where client_id = ? and channel = ? and address = ? and scope = ? and reason = ?""",
            [client_id, channel, address, scope, reason],
        )
        if exists:
            return False
        values = {
            "client_id": client_id, "channel": channel, "address": address, "scope": scope, "reason": reason,
            "source": source, "note": note, "contact_id": contact_id, "created_at": self.now,
        }  # fmt: skip
        columns = column_names(SUPPRESSIONS)
        self.s.execute(
            f"insert into {SUPPRESSIONS} ({', '.join(columns)}) values ({_placeholders(len(columns))})",
            [values[c] for c in columns],
        )
        self._audit("suppression", None if client_id == "*" else client_id, contact_id,
                    mask_address(channel, address), reason,
                    {"channel": channel, "scope": scope, "client_scope": client_id, "note": note})  # fmt: skip
        return True

    def _revoke(self, client_id: str, channel: str, address: str, scope: str, source: str,
                contact_id: str | None, evidence: str) -> None:  # fmt: skip
        record_consent(
            self.s, client_id=client_id, channel=channel, address=address, kind="opt_out", scope=scope,
            source=source, source_key=self.e.event_id, occurred_at=self.e.received_at, recorded_at=self.now,
            contact_id=contact_id, evidence=evidence,
        )  # fmt: skip
        self._audit("consent_change", client_id, contact_id, mask_address(channel, address), f"opt_out: {evidence}",
                    {"kind": "opt_out", "channel": channel, "scope": scope})  # fmt: skip

    def _cancel(self, client_id: str, channel: str, addresses: list[str], contact_id: str | None, scope: str,
                reason: str) -> int:  # fmt: skip
        """Cancels the client's queued and held messages on ``channel`` to these addresses (or
        to the contact), within ``scope``; messages already ``sending`` are stopped by the
        claim's suppression re-check."""
        who, params = [], []
        if addresses:
            who.append(f"to_address in ({_placeholders(len(addresses))})")
            params += addresses
        if contact_id:
            who.append("contact_id = ?")
            params.append(contact_id)
        if not who:
            return 0
        where = f"client_id = ? and channel = ? and ({' or '.join(who)})"
        all_params: list[Any] = [client_id, channel, *params]
        if scope != "all":
            where += " and message_type = ?"
            all_params.append(scope)
        keys = cancel_messages(self.s, where, all_params, reason, self.now)
        if keys:
            subject = mask_address(channel, addresses[0]) if addresses else (contact_id or "")
            self._audit("cancel", client_id, contact_id, subject, reason, {"message_keys": keys, "scope": scope})
        self.cancelled += len(keys)
        return len(keys)

    # -- Twilio status callbacks -------------------------------------------------------------

    def _sms_status(self) -> EventResult:
        p = self.e.payload
        status = str(p.get("MessageStatus") or p.get("SmsStatus") or "").lower()
        if status not in STATUS_RANK:
            return self._result(IGNORED, detail=f"status {status!r} is not a delivery status")
        message = self._message("sms")
        if message is None:
            return self._result(UNMATCHED, detail=f"no outbox SMS has Twilio id {self.e.provider_message_id}")
        code = str(p.get("ErrorCode") or "").strip()
        suppressed = False
        if code == TWILIO_CARRIER_STOP:
            note = "carrier STOP reported by Twilio (error 21610)"
            suppressed = self._suppress(message.client_id, "sms", message.to_address, "all", "opt_out", "provider",
                                        message.contact_id, note)  # fmt: skip
            if suppressed:
                self._revoke(message.client_id, "sms", message.to_address, "all", "provider", message.contact_id, note)
                self._cancel(message.client_id, "sms", [message.to_address], None, "all",
                             "opted out: STOP sent to the carrier (Twilio 21610)")  # fmt: skip
        return self._status_outcome(message, status, self.e.received_at, twilio_error_text(code), suppressed)

    # -- Resend webhooks ---------------------------------------------------------------------

    def _email_event(self) -> EventResult:
        p = self.e.payload
        type_ = str(p.get("type") or "")
        data = p.get("data") or {}
        if type_ not in RESEND_TYPES:
            return self._result(IGNORED, detail=f"Resend event {type_!r} is not a delivery event")
        message = self._message("email")
        if message is None:
            return self._result(UNMATCHED, detail=f"no outbox email has Resend id {self.e.provider_message_id}")
        at = _naive_utc(p.get("created_at"), self.e.received_at)
        if type_ in ENGAGEMENT_COLUMNS:
            column = ENGAGEMENT_COLUMNS[type_]
            self.s.execute(
                f"update {OUTBOX} set {column} = coalesce({column}, ?), updated_at = ? where message_key = ?",
                [at, self.now, message.message_key],
            )
            return self._result(ENGAGEMENT, message, f"{column} {at.isoformat(sep=' ')}")
        status = RESEND_TYPES[type_]
        assert status is not None
        error, suppressed = None, False
        if type_ == "email.bounced":
            bounce = data.get("bounce") or {}
            kind = str(bounce.get("type") or "")
            error = "bounce " + "/".join(x for x in (kind, str(bounce.get("subType") or "")) if x)
            if bounce.get("message"):
                error += f": {bounce['message']}"
            if kind.lower() in ("permanent", "hard"):
                suppressed = self._suppress("*", "email", message.to_address, "all", "hard_bounce", "provider",
                                            message.contact_id, error)  # fmt: skip
        elif type_ == "email.complained":
            note = "spam complaint reported by Resend"
            error = "complaint"
            suppressed = self._suppress(message.client_id, "email", message.to_address, "all", "complaint",
                                        "provider", message.contact_id, note)  # fmt: skip
            if suppressed:
                self._revoke(message.client_id, "email", message.to_address, "all", "provider", message.contact_id,
                             note)  # fmt: skip
                self._cancel(message.client_id, "email", [message.to_address], None, "all",
                             "complained: marked as spam")  # fmt: skip
        elif type_ == "email.failed":
            error = str((data.get("failed") or {}).get("reason") or "failed") or None
        return self._status_outcome(message, status, at, error, suppressed)

    # -- the web pages -----------------------------------------------------------------------

    def _contact_addresses(self, client_id: str, contact_id: str, channel: str) -> list[str]:
        """The contact's current address on the channel (marts.contacts) and every address
        the client's outbox has used for them on it."""
        found: list[str] = []
        if self.has_contacts:
            column = "email" if channel == "email" else "phone_e164"
            value = self.s.scalar(
                f"select {column} from {CONTACTS} where client_id = ? and contact_id = ?", [client_id, contact_id]
            )
            if value:
                found.append(str(value))
        _, rows = self.s.query(
            f"select distinct to_address from {OUTBOX} where client_id = ? and contact_id = ? and channel = ? "
            "order by to_address",
            [client_id, contact_id, channel],
        )
        found += [r[0] for r in rows if r[0] not in found]
        return found

    def _unsubscribe(self) -> EventResult:
        p = self.e.payload
        client_id, contact_id = str(p.get("client_id") or ""), str(p.get("contact_id") or "")
        if client_id not in self.deployment.clients or not contact_id:
            return self._result(IGNORED, detail=f"unknown client {client_id!r} or no contact")
        channels = p.get("channels")
        if isinstance(channels, list):  # the preference page's "unsubscribe from everything"
            results = [
                self._unsubscribe_channel(client_id, contact_id, str(c)) for c in channels if c in ("email", "sms")
            ]
            done = [r for r in results if r.action == UNSUBSCRIBED]
            action = UNSUBSCRIBED if done else (ALREADY_UNSUBSCRIBED if results and all(
                r.action == ALREADY_UNSUBSCRIBED for r in results) else UNMATCHED)  # fmt: skip
            return self._result(action, detail="; ".join(r.detail or "" for r in results) or "no channel")
        return self._unsubscribe_channel(client_id, contact_id, str(p.get("channel") or "email"))

    def _unsubscribe_channel(self, client_id: str, contact_id: str, channel: str) -> EventResult:
        p = self.e.payload
        scope = str(p.get("scope") or "all")
        via = str(p.get("via") or "page")
        addresses = self._contact_addresses(client_id, contact_id, channel)
        if not addresses:
            self._audit("suppression", client_id, contact_id, contact_id, "unsubscribe: no address known",
                        {"channel": channel, "scope": scope, "via": via})  # fmt: skip
            return self._result(UNMATCHED, detail=f"no {channel} address known for contact {contact_id}")
        evidence = f"unsubscribed via the web page ({via})"
        new = [a for a in addresses
               if self._suppress(client_id, channel, a, scope, "opt_out", "web", contact_id, evidence)]  # fmt: skip
        for address in new:
            self._revoke(client_id, channel, address, scope, "web", contact_id, evidence)
        cancelled = self._cancel(client_id, channel, addresses, contact_id, scope, "unsubscribed via the web page")
        if not new:
            return self._result(ALREADY_UNSUBSCRIBED, detail=f"{channel} scope {scope}: already suppressed")
        return self._result(UNSUBSCRIBED, detail=f"{channel} scope {scope}: {len(new)} address(es) suppressed, "
                                                 f"{cancelled} message(s) cancelled")  # fmt: skip

    def _preferences(self) -> EventResult:
        """The preference page's choices (herald.compliance.preferences): the contact's new state."""
        from herald.compliance.preferences import PreferenceError, Preferences, apply_preferences

        p = self.e.payload
        client_id, contact_id = str(p.get("client_id") or ""), str(p.get("contact_id") or "")
        client = self.deployment.clients.get(client_id)
        if client is None or not contact_id:
            return self._result(IGNORED, detail=f"unknown client {client_id!r} or no contact")
        topics = [t.name for t in client.config.topics]
        try:
            new = Preferences.from_payload(p.get("preferences") or {}, topics)
        except PreferenceError as exc:
            return self._result(IGNORED, detail=f"preferences not applied: {exc}")
        changes, cancelled = apply_preferences(
            self.s, client_id=client_id, contact_id=contact_id, new=new, topics=topics,
            source=str(p.get("source") or "page"), event_id=self.e.event_id, occurred_at=self.e.received_at,
            now=self.now, evidence=f"the preference page ({p.get('via') or 'page'})", actor=ACTOR,
        )  # fmt: skip
        detail = "; ".join(f"{name}: {old} → {value}" for name, old, value in changes) or "nothing changed"
        self.cancelled += len(cancelled)
        if cancelled:
            detail += f"; {len(cancelled)} queued message(s) cancelled"
        return self._result(PREFERENCES_CHANGED, detail=detail)

    def _confirm(self) -> EventResult:
        p = self.e.payload
        client_id, contact_id = str(p.get("client_id") or ""), str(p.get("contact_id") or "")
        if client_id not in self.deployment.clients or not contact_id:
            return self._result(IGNORED, detail=f"unknown client {client_id!r} or no contact")
        self.s.insert_rows(
            APPOINTMENT_RESPONSES, column_names(APPOINTMENT_RESPONSES),
            [(self.e.event_id, client_id, contact_id, "confirmed", self.e.received_at)], ignore_existing=True,
        )  # fmt: skip
        self._audit("appointment_response", client_id, contact_id, contact_id, "confirmed via the web page",
                    {"response": "confirmed", "channel": p.get("channel")})  # fmt: skip
        return self._result(CONFIRMED, detail="appointment confirmed via the web page")


@dataclass(frozen=True)
class Unprocessed:
    """How many landed rows wait for processing, and the newest one's landing time."""

    count: int
    last_landed_at: datetime | None

    @property
    def run_key_part(self) -> str:
        return f"{self.last_landed_at.isoformat() if self.last_landed_at else 'none'}:{self.count}"


def unprocessed(session: Session, raw_table: str, processing_table: str, key: str) -> Unprocessed:
    """Rows of ``raw_table`` with no ``processing_table`` row of the same ``key`` (a read-only
    query: sensors use it in PostgreSQL mode, where the web service lands rows directly). Before
    Herald has created its tables (a fresh warehouse) there is nothing to process."""
    for table in (raw_table, processing_table):
        schema_name, table_name = table.split(".")
        present = session.scalar(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema_name, table_name],
        )
        if not present:
            return Unprocessed(0, None)
    _, rows = session.query(
        f"""select count(*), max(r.landed_at) from {raw_table} as r
            where not exists (select 1 from {processing_table} as p where p.{key} = r.{key})"""
    )
    count, last = rows[0]
    return Unprocessed(int(count or 0), last)
