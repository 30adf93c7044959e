"""Manual replies (``herald reply CLIENT CONTACT "text"``): a person at the client answers a
contact by SMS through the same outbox, rules and logging as every automated message.

- to the contact's valid phone (``marts.contacts``); refused when it has none, or when the
  number is suppressed for the client (an opt-out of any scope, or any suppression of scope
  'all': a manual block, ...);
- the PHI guard (:func:`herald.compliance.phi.find_phi`) refuses a text with obvious PHI, with
  the reason (masked);
- due at the next allowed moment for the recipient (:mod:`herald.compliance.send_window`, the
  message plan's rule), so a reply typed at 22:00 goes in the morning; ``herald tick`` (its
  messages_due_sensor) sends it once it is due;
- keyed md5('manual|<client>|<contact>|<text>|<minute>'): a double submit sends once;
- no opt-out wording is appended: it is a conversation, not a campaign message;
- audited (``send``) with who queued it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import phonenumbers

from herald.compliance.audit import audit
from herald.compliance.calendars import calendar_for
from herald.compliance.phi import find_phi, phi_reason
from herald.compliance.send_window import next_allowed_moment, recipient_zones
from herald.compliance.windows import legal_window_rows
from herald.config.models import Client, Deployment
from herald.contacts.phones import mask_phone
from herald.delivery.outbox import OUTBOX, SUPPRESSIONS, OutboxMessage, enqueue
from herald.messages.sms import sms_info
from herald.warehouse.connection import Session
from herald.warehouse.schema import MARTS_SCHEMA

MANUAL_CAMPAIGN = "_manual"
MANUAL_STEP = "reply"
MESSAGE_TYPE = "conversation_reply"
CHANNEL = "sms"
CONTACTS = f"{MARTS_SCHEMA}.contacts"


class ReplyError(ValueError):
    """The reply cannot be sent; the message says why, for the person who typed it."""


@dataclass(frozen=True)
class _Recipient:
    contact_id: str
    phone: str | None
    time_zone: str | None
    postal_code: str | None


def manual_message_key(client_id: str, contact_id: str, text: str, now: datetime) -> str:
    """md5('manual|client|contact|text|minute'): the same text to the same contact within the
    same minute is one message."""
    return hashlib.md5(f"manual|{client_id}|{contact_id}|{text}|{_minute(now)}".encode()).hexdigest()


def _minute(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M")


def _e164(value: str, region: str) -> str | None:
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def find_recipient(session: Session, client: Client, contact_id_or_phone: str) -> _Recipient:
    """The contact by its id, else by its phone number (any format the client's region reads)."""
    select = f"select contact_id, case when is_phone_valid then phone_e164 end, time_zone, postal_code from {CONTACTS}"
    _, rows = session.query(f"{select} where client_id = ? and contact_id = ?", [client.client_id, contact_id_or_phone])
    if not rows:
        phone = _e164(contact_id_or_phone, client.default_region)
        if phone is not None:
            _, rows = session.query(
                f"{select} where client_id = ? and phone_e164 = ? order by is_phone_valid desc, contact_id limit 1",
                [client.client_id, phone],
            )
    if not rows:
        raise ReplyError(
            f"{client.client_id} has no contact {contact_id_or_phone!r} (give a contact_id or the contact's phone number)"
        )
    return _Recipient(*rows[0])


def _suppression(session: Session, client_id: str, address: str) -> str | None:
    """Why the number must not get a conversation message: an opt-out of any scope, or any
    suppression covering every message type; None when it may."""
    _, rows = session.query(
        f"""select reason, scope from {SUPPRESSIONS}
            where client_id in (?, '*') and channel in (?, '*') and address = ? and (reason = 'opt_out' or scope = 'all')
            order by reason, scope limit 1""",
        [client_id, CHANNEL, address],
    )
    return f"{rows[0][0]} ({rows[0][1]})" if rows else None


def queue_reply(
    session: Session, deployment: Deployment, client_id: str, contact_id_or_phone: str, text: str, actor: str,
    now: datetime,
) -> tuple[OutboxMessage, bool]:  # fmt: skip
    """Queues a manual SMS reply; returns it and whether it is new (False: the same text was
    already queued for the contact in this minute — a double submit)."""
    client = deployment.clients.get(client_id)
    if client is None:
        raise ReplyError(f"unknown client {client_id!r}; configured: {', '.join(deployment.clients)}")
    body = text.strip()
    if not body:
        raise ReplyError("the reply is empty")
    sender = client.config.senders.sms_from and _e164(client.config.senders.sms_from, client.default_region)
    if not sender:
        raise ReplyError(f"{client_id} has no SMS sender number (senders.sms_from in client.yaml)")
    recipient = find_recipient(session, client, contact_id_or_phone)
    if recipient.phone is None:
        raise ReplyError(f"contact {recipient.contact_id} of {client_id} has no valid phone number: nothing was sent")
    masked = mask_phone(recipient.phone)
    suppressed = _suppression(session, client_id, recipient.phone)
    if suppressed:
        raise ReplyError(f"{masked} is suppressed for {client_id} ({suppressed}): nothing was sent")
    findings = find_phi(body, block_clinical_terms=not client.config.compliance.phi_clinical_terms_allowed)
    if findings:
        raise ReplyError(f"refused by the {phi_reason(findings)}; rewrite the reply without it")
    zones, state = recipient_zones(recipient.time_zone, recipient.postal_code, recipient.phone, client.time_zone)
    calendar = calendar_for(deployment, client_id, year=now.year)  # the client's own: hours, send days, closed days
    send_after = next_allowed_moment(now, zones, state, calendar, legal_window_rows())
    if send_after is None:
        raise ReplyError(f"no moment in the next week is inside the send window of {', '.join(zones)} for {client_id}")
    info = sms_info(body)
    message = OutboxMessage(
        message_key=manual_message_key(client_id, recipient.contact_id, body, now),
        client_id=client_id,
        campaign=MANUAL_CAMPAIGN,
        step=MANUAL_STEP,
        variant="",
        occurrence=_minute(now),
        contact_id=recipient.contact_id,
        message_type=MESSAGE_TYPE,
        category="transactional",
        channel=CHANNEL,
        to_address=recipient.phone,
        sender=sender,
        send_after=send_after,
        body_text=body,
        sms_segments=info.segments,
        sms_encoding=info.encoding,
    )
    is_new = enqueue(session, [message], now) == 1
    if is_new:
        audit(session, actor, "send", client_id, recipient.contact_id, masked, "manual reply queued",
              {"message_key": message.message_key, "send_after": send_after, "zones": list(zones), "state": state},
              now=now)  # fmt: skip
    return message, is_new


def enqueue_reply(
    session: Session, deployment: Deployment, client_id: str, contact_id_or_phone: str, text: str, actor: str,
    now: datetime,
) -> OutboxMessage:  # fmt: skip
    """Queues a manual SMS reply in ``session``'s transaction (see the module docstring);
    raises :class:`ReplyError` with the reason when it may not be sent."""
    return queue_reply(session, deployment, client_id, contact_id_or_phone, text, actor, now)[0]


def queued_status(session: Session, message_key: str) -> tuple[str, datetime] | None:
    """(status, send_after) of a queued reply, for the command's answer."""
    _, rows = session.query(f"select status, send_after from {OUTBOX} where message_key = ?", [message_key])
    return (rows[0][0], rows[0][1]) if rows else None
