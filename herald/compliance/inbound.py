"""Applying inbound replies: opt-out, opt-in, HELP, appointment confirmations.

``apply_inbound`` takes every ``herald_raw.inbound_messages`` row that has no
``herald_ops.inbound_processing`` row yet and applies it in the caller's transaction, so a reply
is either fully applied (suppression, consent event, cancelled messages, the one answer, audit
rows, its processing row) or not at all, and applying twice does nothing new.

What a reply does (the client is the one whose SMS sender number it was sent to; the keyword
classifier is :mod:`herald.compliance.keywords`):

- **opt-out** (and a *probable* opt-out under the client's ``suppress`` policy): suppress the
  address for the client — scope ``all`` under revoke-all, else the message type of the last
  message the client sent to it (``all`` when there is none) — record the consent event, cancel
  every queued or held message of that client to that number within the scope, and queue
  exactly one confirmation, sent at once (the claim exempts it from the opt-out). An address
  already opted out for that scope gets no second confirmation (``already_suppressed``).
- **probable opt-out** under ``clarify``: one clarifying question; nothing is suppressed.
- **opt-in** from an opted-out address: lift the client's *opt-out* suppressions for it (never
  bounces, complaints or manual blocks), record the consent event, confirm once. From an
  address that was not opted out, only the consent event is recorded: no answer, so a stray
  START never starts a conversation nobody asked for.
- **PAUSE / RESUME** (preference keywords, herald.compliance.preferences): marketing paused for
  30 days for every contact of the client with this number, or the pause lifted; one answer
  saying until when. STOP still opts out of every text (CTIA): PAUSE never suppresses.
- **HELP**: one answer naming the program, a help contact, rates and how to opt out (sent even
  to an opted-out address).
- **C / R**: one ``appointment_responses`` row per matching contact; no answer (the client's
  staff follow up on a reschedule request; a confirmation needs no reply).
- anything else: recorded as ``no_action`` — or, outside the client's business hours and when
  it has an ``auto_reply``, answered once per closed period (``auto_replied``,
  :mod:`herald.conversations.autoresponder`).

Every reply writes one ``inbound_processing`` row and at least one audit row (subject: the
masked address).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import phonenumbers

from herald.billing.credits import release_unsent
from herald.compliance.audit import audit
from herald.compliance.consent import expires_at as consent_expiry
from herald.compliance.consent import record_consent
from herald.compliance.keywords import KeywordPolicy, ReplyKind, classify_reply
from herald.compliance.wording import help_reply, opt_in_confirmation, opt_out_confirmation
from herald.config.models import Client, Deployment
from herald.contacts.phones import mask_phone
from herald.conversations.autoresponder import AUTO_REPLY, queue_auto_reply
from herald.delivery.outbox import OUTBOX, SUPPRESSIONS, OutboxMessage, enqueue
from herald.messages.sms import sms_info
from herald.warehouse.connection import Session
from herald.warehouse.schema import MARTS_SCHEMA, OPS_SCHEMA, RAW_SCHEMA, column_names

ACTOR = "inbound_replies"
SOURCE = "sms_keyword"
CHANNEL = "sms"
REPLY_CAMPAIGN = "_replies"  # the campaign name of every answer to a reply

INBOUND_MESSAGES = f"{RAW_SCHEMA}.inbound_messages"
INBOUND_PROCESSING = f"{OPS_SCHEMA}.inbound_processing"
APPOINTMENT_RESPONSES = f"{OPS_SCHEMA}.appointment_responses"
CONTACTS = f"{MARTS_SCHEMA}.contacts"

OPT_OUT_CONFIRMATION = "opt_out_confirmation"
OPT_IN_CONFIRMATION = "opt_in_confirmation"
HELP_REPLY = "help_reply"
OPT_OUT_CLARIFICATION = "opt_out_clarification"
PREFERENCE_REPLY = "preference_reply"  # the answer to PAUSE / RESUME
CANCELLABLE_STATUSES = ("queued", "held")
CLARIFY_TEXT = "Did you mean to stop messages from {client_name}? Reply STOP to opt out."


@dataclass(frozen=True)
class InboundResult:
    """What applying one inbound message did (addresses masked: safe to log)."""

    inbound_id: str
    client_id: str | None
    contact_ids: tuple[str, ...]
    kind: str
    keyword_class: str | None
    matched: str | None
    action: str
    scope: str | None = None
    messages_cancelled: int = 0
    reply_message_key: str | None = None
    from_masked: str = ""


@dataclass(frozen=True)
class _Inbound:
    inbound_id: str
    channel: str
    from_address: str
    to_address: str
    body: str
    received_at: datetime


def to_e164(value: str | None, region: str = "US") -> str | None:
    """A phone number as E.164, or None when it is not one."""
    if not value:
        return None
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def reply_message_key(inbound_id: str) -> str:
    """The deterministic outbox key of the one answer to an inbound message."""
    return hashlib.md5(f"reply|{inbound_id}".encode()).hexdigest()


def clients_by_sender(deployment: Deployment) -> dict[str, Client]:
    """Each client's SMS sender numbers (E.164) → the client: its own ``senders.sms_from`` and
    the number its secondary provider sends from (``providers.sms.secondary_sender``), since a
    STOP may answer a message that went out through the secondary. A client's own number wins
    over another's secondary."""
    found: dict[str, Client] = {}
    for client in deployment.clients.values():
        sender = to_e164(client.config.senders.sms_from, client.default_region)
        if sender:
            found[sender] = client
    for client in deployment.clients.values():
        sms = client.config.providers.sms
        secondary = to_e164(sms.secondary_sender, client.default_region) if sms else None
        if secondary:
            found.setdefault(secondary, client)
    return found


def pending_inbound(session: Session) -> list[_Inbound]:
    _, rows = session.query(
        f"""select m.inbound_id, m.channel, m.from_address, m.to_address, m.body, m.received_at
            from {INBOUND_MESSAGES} as m
            where not exists (select 1 from {INBOUND_PROCESSING} as p where p.inbound_id = m.inbound_id)
            order by m.received_at, m.inbound_id"""
    )
    return [_Inbound(*r) for r in rows]


def apply_inbound(session: Session, deployment: Deployment, now: datetime) -> list[InboundResult]:
    """Applies every inbound message not processed yet, oldest first, in ``session``'s
    transaction; returns what each one did."""
    senders = clients_by_sender(deployment)
    has_contacts = _table_exists(session, MARTS_SCHEMA, "contacts")
    results = []
    for message in pending_inbound(session):
        result = _Applier(session, deployment, senders, has_contacts, message, now).apply()
        _record_processing(session, message, result, now)
        results.append(result)
    if any(r.messages_cancelled for r in results):
        release_unsent(session, now, actor="inbound")  # paid-for messages an opt-out withdrew
    return results


def _table_exists(session: Session, schema: str, table: str) -> bool:
    return bool(
        session.scalar(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?", [schema, table]
        )
    )


def _record_processing(session: Session, message: _Inbound, result: InboundResult, now: datetime) -> None:
    values = {
        "inbound_id": message.inbound_id,
        "client_id": result.client_id,
        "contact_id": result.contact_ids[0] if result.contact_ids else None,
        "kind": result.kind,
        "keyword_class": result.keyword_class,
        "matched": result.matched,
        "action": result.action,
        "scope": result.scope,
        "messages_cancelled": result.messages_cancelled,
        "reply_message_key": result.reply_message_key,
        "processed_at": now,
    }
    columns = column_names(INBOUND_PROCESSING)
    session.execute(
        f"insert into {INBOUND_PROCESSING} ({', '.join(columns)}) values ({', '.join('?' * len(columns))})",
        [values[c] for c in columns],
    )


def _placeholders(n: int) -> str:
    return ", ".join("?" * n)


class _Applier:
    """Applies one inbound message."""

    def __init__(
        self,
        session: Session,
        deployment: Deployment,
        senders: dict[str, Client],
        has_contacts: bool,
        message: _Inbound,
        now: datetime,
    ) -> None:
        self.s, self.deployment, self.senders, self.has_contacts = session, deployment, senders, has_contacts
        self.m, self.now = message, now
        self.masked = mask_phone(message.from_address)

    # -- entry ---------------------------------------------------------------------------

    def apply(self) -> InboundResult:
        m = self.m
        if m.channel != CHANNEL:
            return self._ignored(f"ignored: {m.channel} replies are not handled")
        client = self.senders.get(to_e164(m.to_address) or "")
        if client is None:
            return self._ignored(f"ignored: no client sends from {mask_phone(m.to_address)}")
        self.client = client
        self.client_id = client.config.client_id
        self.address = to_e164(m.from_address, client.default_region) or m.from_address
        self.masked = mask_phone(self.address)
        self.contacts = self._contacts()
        compliance = client.config.compliance
        self.c = classify_reply(m.body, KeywordPolicy(probable_opt_out=compliance.probable_opt_out))
        kind = self.c.kind
        if kind == ReplyKind.OPT_OUT or (
            kind == ReplyKind.PROBABLE_OPT_OUT and compliance.probable_opt_out == "suppress"
        ):
            return self._opt_out(revoke_all=compliance.revoke_all)
        if kind == ReplyKind.PROBABLE_OPT_OUT:
            return self._clarify()
        # YES / START, or a bare Y (never C, an appointment's confirmation), answers a pending opt-in
        answers_optin = kind == ReplyKind.OPT_IN or (kind == ReplyKind.CONFIRM and m.body.strip().upper() == "Y")
        if answers_optin and (done := self._double_opt_in()):
            return done
        if kind == ReplyKind.OPT_IN:
            return self._opt_in()
        if kind == ReplyKind.HELP:
            return self._help()
        if kind in (ReplyKind.PAUSE, ReplyKind.RESUME):
            return self._pause(kind == ReplyKind.PAUSE)
        if kind in (ReplyKind.CONFIRM, ReplyKind.RESCHEDULE):
            if client.takes_appointments:
                return self._appointment("confirmed" if kind == ReplyKind.CONFIRM else "reschedule_requested")
            # a "C" or "Y" to a roofer's offer answers no appointment: an ordinary reply
            self.c = replace(self.c, kind=ReplyKind.OTHER, keyword_class=None)
            kind = ReplyKind.OTHER
        self._audit("inbound_reply", "no keyword: nothing to apply", {"inbound_id": m.inbound_id})
        if kind == ReplyKind.OTHER:
            return self._auto_reply() or self._result("no_action")
        return self._result("no_action")

    # -- helpers -------------------------------------------------------------------------

    def _contacts(self) -> tuple[str, ...]:
        if not self.has_contacts:
            return ()
        _, rows = self.s.query(
            f"select contact_id from {CONTACTS} where client_id = ? and phone_e164 = ? order by contact_id",
            [self.client_id, self.address],
        )
        return tuple(str(r[0]) for r in rows)

    @property
    def contact_id(self) -> str | None:
        return self.contacts[0] if self.contacts else None

    def _result(self, action: str, **kw: object) -> InboundResult:
        return InboundResult(
            inbound_id=self.m.inbound_id,
            client_id=self.client_id,
            contact_ids=self.contacts,
            kind=str(self.c.kind),
            keyword_class=self.c.keyword_class,
            matched=self.c.matched,
            action=action,
            from_masked=self.masked,
            **kw,  # type: ignore[arg-type]
        )

    def _ignored(self, action: str) -> InboundResult:
        # Nothing is known about the sender: the reply is kept (raw) and the reason recorded.
        audit(
            self.s,
            ACTOR,
            "inbound_reply",
            None,
            None,
            self.masked,
            action,
            {"inbound_id": self.m.inbound_id, "to": mask_phone(self.m.to_address)},
            now=self.now,
        )
        return InboundResult(self.m.inbound_id, None, (), "other", None, None, action, from_masked=self.masked)

    def _audit(self, action: str, reason: str, detail: dict[str, object]) -> None:
        audit(
            self.s,
            ACTOR,
            action,
            self.client_id,
            self.contact_id,
            self.masked,
            reason,
            {"inbound_id": self.m.inbound_id, "contacts": list(self.contacts), **detail},
            now=self.now,
        )

    def _consent(self, kind: str, scope: str) -> None:
        for contact_id in self.contacts or (None,):
            record_consent(
                self.s,
                client_id=self.client_id,
                channel=CHANNEL,
                address=self.address,
                kind=kind,
                scope=scope,
                source=SOURCE,
                source_key=self.m.inbound_id,
                occurred_at=self.m.received_at,
                recorded_at=self.now,
                contact_id=contact_id,
                evidence=self.m.body,
                # a START is a grant like any other: the client's consent.expires_after applies
                expires_at=consent_expiry(self.client, scope, self.m.received_at) if kind == "opt_in" else None,
            )
        self._audit("consent_change", f"{kind} by SMS keyword", {"kind": kind, "scope": scope, "text": self.m.body})

    def _reply(self, message_type: str, body: str) -> str:
        """Queues the one answer to this inbound message, due now; returns its key."""
        key = reply_message_key(self.m.inbound_id)
        info = sms_info(body)
        message = OutboxMessage(
            message_key=key,
            client_id=self.client_id,
            campaign=REPLY_CAMPAIGN,
            step=message_type,
            variant="",
            occurrence=self.m.inbound_id,
            contact_id=self.contact_id or "",
            message_type=message_type,
            category="transactional",
            channel=CHANNEL,
            to_address=self.address,
            sender=to_e164(self.client.config.senders.sms_from, self.client.default_region),
            send_after=self.now,
            body_text=body,
            sms_segments=info.segments,
            sms_encoding=info.encoding,
        )
        enqueue(self.s, [message], self.now)
        self._audit("send", f"{message_type} queued", {"message_key": key, "message_type": message_type})
        return key

    def _last_sent_type(self) -> str | None:
        return self.s.scalar(
            f"""select message_type from {OUTBOX}
                where client_id = ? and channel = ? and to_address = ? and status = 'sent' and campaign <> ?
                order by sent_at desc, message_key desc limit 1""",
            [self.client_id, CHANNEL, self.address, REPLY_CAMPAIGN],
        )

    def _opted_out_for(self, scope: str) -> bool:
        return bool(
            self.s.scalar(
                f"""select count(*) from {SUPPRESSIONS}
                    where client_id in (?, '*') and channel in (?, '*') and address = ? and reason = 'opt_out'
                      and scope in ('all', ?)""",
                [self.client_id, CHANNEL, self.address, scope],
            )
        )

    def _cancel(self, scope: str) -> list[str]:
        """Cancels the client's queued and held messages to this number within ``scope``
        (never the opt-out confirmation itself); messages already 'sending' are stopped by the
        claim's re-check or are already with the provider."""
        where = (
            f"client_id = ? and channel = ? and to_address = ? and status in ({_placeholders(len(CANCELLABLE_STATUSES))})"
            " and message_type <> ?"
        )
        params: list[object] = [self.client_id, CHANNEL, self.address, *CANCELLABLE_STATUSES, OPT_OUT_CONFIRMATION]
        if scope != "all":
            where += " and message_type = ?"
            params.append(scope)
        _, rows = self.s.query(f"select message_key from {OUTBOX} where {where} order by message_key", params)
        keys = [r[0] for r in rows]
        if keys:
            self.s.execute(
                f"update {OUTBOX} set status = 'cancelled', status_reason = ?, updated_at = ? "
                f"where message_key in ({_placeholders(len(keys))}) and status in ({_placeholders(len(CANCELLABLE_STATUSES))})",
                [f"opted out: {self.m.body}", self.now, *keys, *CANCELLABLE_STATUSES],
            )
            self._audit("cancel", f"opted out: {self.m.body}", {"message_keys": keys, "scope": scope})
        return keys

    # -- actions -------------------------------------------------------------------------

    def _opt_out(self, revoke_all: bool) -> InboundResult:
        scope = "all" if revoke_all else (self._last_sent_type() or "all")
        already = self._opted_out_for(scope)
        self.s.insert_rows(
            SUPPRESSIONS,
            column_names(SUPPRESSIONS),
            [(self.client_id, CHANNEL, self.address, scope, "opt_out", SOURCE, self.m.body, self.contact_id, self.now)],
            ignore_existing=True,
        )
        self._consent("opt_out", scope)
        if not already:
            self._audit("suppression", f"opt-out by SMS: {self.m.body}", {"scope": scope, "reason": "opt_out"})
        cancelled = self._cancel(scope)
        if already:
            return self._result("already_suppressed", scope=scope, messages_cancelled=len(cancelled))
        key = self._reply(OPT_OUT_CONFIRMATION, opt_out_confirmation(self.client, self.deployment.herald))
        return self._result("suppressed", scope=scope, messages_cancelled=len(cancelled), reply_message_key=key)

    def _clarify(self) -> InboundResult:
        body = CLARIFY_TEXT.format(client_name=self.client.config.name)
        key = self._reply(OPT_OUT_CLARIFICATION, body)
        return self._result("clarification_sent", reply_message_key=key)

    def _opt_in(self) -> InboundResult:
        _, rows = self.s.query(
            f"""select scope from {SUPPRESSIONS}
                where client_id = ? and channel in (?, '*') and address = ? and reason = 'opt_out' order by scope""",
            [self.client_id, CHANNEL, self.address],
        )
        lifted = [r[0] for r in rows]
        self._consent("opt_in", "all")
        if not lifted:
            return self._result("opt_in_recorded", scope="all")
        self.s.execute(
            f"delete from {SUPPRESSIONS} where client_id = ? and channel in (?, '*') and address = ? and reason = 'opt_out'",
            [self.client_id, CHANNEL, self.address],
        )
        self._audit("unsuppression", f"opt-in by SMS: {self.m.body}", {"scopes_lifted": lifted})
        key = self._reply(OPT_IN_CONFIRMATION, opt_in_confirmation(self.client, self.deployment.herald))
        return self._result("restored", scope="all", reply_message_key=key)

    def _double_opt_in(self) -> InboundResult | None:
        """YES (or Y) from a number with a pending opt-in from the hosted form confirms it: the
        reply is the proof (herald/compliance/optin.py). None when nothing is pending."""
        from herald.compliance import optin

        request_id = optin.pending_request(self.s, self.client_id, CHANNEL, self.address)
        if request_id is None:
            return None
        confirmation = f"replied {self.m.body!r} by SMS (inbound {self.m.inbound_id})"
        optin.confirm_request(self.s, self.deployment, request_id, confirmation, self.m.received_at, self.now,
                              source_key=self.m.inbound_id)  # fmt: skip
        # as START does: the person's own opt-in lifts the client's opt-out suppressions (never
        # bounces, complaints or manual blocks)
        _, rows = self.s.query(
            f"""select scope from {SUPPRESSIONS}
                where client_id = ? and channel in (?, '*') and address = ? and reason = 'opt_out' order by scope""",
            [self.client_id, CHANNEL, self.address],
        )
        if rows:
            self.s.execute(
                f"delete from {SUPPRESSIONS} where client_id = ? and channel in (?, '*') and address = ? "
                "and reason = 'opt_out'",
                [self.client_id, CHANNEL, self.address],
            )
            self._audit("unsuppression", f"double opt-in confirmed by SMS: {self.m.body}",
                        {"scopes_lifted": [r[0] for r in rows]})  # fmt: skip
        return self._result("optin_confirmed", scope="all")

    def _help(self) -> InboundResult:
        key = self._reply(HELP_REPLY, help_reply(self.client, self.deployment.herald))
        return self._result("helped", reply_message_key=key)

    def _auto_reply(self) -> InboundResult | None:
        """The client's after-hours auto-reply (herald.conversations.autoresponder), at most
        once per contact per closed period; None when none was queued."""
        key = queue_auto_reply(
            self.s, self.deployment, self.client, address=self.address, contact_id=self.contact_id,
            sender=to_e164(self.client.config.senders.sms_from, self.client.default_region),
            received_at=self.m.received_at, now=self.now,
        )  # fmt: skip
        if key is None:
            return None
        self._audit("send", f"{AUTO_REPLY} queued", {"message_key": key, "message_type": AUTO_REPLY})
        return self._result("auto_replied", reply_message_key=key)

    def _pause(self, pause: bool) -> InboundResult:
        """PAUSE / RESUME: the same preferences the preference page changes (marketing paused for
        KEYWORD_PAUSE_DAYS, or the pause lifted) for every contact of the client with this number,
        and one answer saying so."""
        from datetime import timedelta

        from herald.compliance.preferences import KEYWORD_PAUSE_DAYS, apply_preferences, current_preferences, paused

        if not self.contacts:
            self._audit("preference_change", "no contact has this number", {"keyword": self.c.matched})
            return self._result(f"ignored: no contact of {self.client_id} has this number")
        until = (self.m.received_at + timedelta(days=KEYWORD_PAUSE_DAYS)).date() if pause else None
        topics = [t.name for t in self.client.config.topics]
        cancelled: list[str] = []
        for contact_id in self.contacts:
            new = paused(current_preferences(self.s, self.client_id, contact_id), until)
            cancelled += apply_preferences(
                self.s, client_id=self.client_id, contact_id=contact_id, new=new, topics=topics, source=SOURCE,
                event_id=f"{self.m.inbound_id}:{contact_id}", occurred_at=self.m.received_at, now=self.now,
                evidence=self.m.body, actor=ACTOR,
            )[1]  # fmt: skip
        name = self.client.config.name
        if until is not None:
            body = (f"{name}: offers and news are paused until {until.strftime('%-d %B %Y')}. Reminders continue. "
                    "Reply RESUME to get them again, STOP to opt out.")  # fmt: skip
        else:
            body = f"{name}: offers and news can reach you again. Reply PAUSE to pause them, STOP to opt out."
        key = self._reply(PREFERENCE_REPLY, body)
        return self._result("paused" if pause else "resumed", reply_message_key=key, messages_cancelled=len(cancelled))

    def _appointment(self, response: str) -> InboundResult:
        if not self.contacts:
            self._audit("appointment_response", "no contact has this number", {"response": response})
            return self._result(f"ignored: no contact of {self.client_id} has this number")
        rows = [(self.m.inbound_id, self.client_id, c, response, self.m.received_at) for c in self.contacts]
        self.s.insert_rows(APPOINTMENT_RESPONSES, column_names(APPOINTMENT_RESPONSES), rows, ignore_existing=True)
        self._audit("appointment_response", response, {"response": response})
        return self._result(response)


def summarize(results: Sequence[InboundResult]) -> dict[str, int]:
    """Inbound messages per kind."""
    counts: dict[str, int] = {}
    for r in results:
        counts[r.kind] = counts.get(r.kind, 0) + 1
    return counts
