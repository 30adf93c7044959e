"""Consent with proof: double opt-in from the hosted form, and consent events from the ingest API.

The web service (:mod:`herald.web.optin`) never writes the warehouse: it lands what a person
or a client's system told it as provider events (``herald_raw.provider_events``), and the events
run applies them here, each in the caller's transaction (all of it or none):

- ``optin_request`` (the form ``/optin/<client>`` was submitted): one ``consent_requests`` row,
  ``pending``, holding the proof of the request — the exact disclosure wording shown and its
  sha256, the channel, the topics, the time, the IP and user agent — and one confirmation
  request queued in the outbox as a transactional answer to the person's own request: a text
  "reply YES" or an email with a confirmation link. Nothing is granted yet.
- the confirmation — a YES (or Y) reply from that number (:mod:`herald.compliance.inbound`) or
  ``optin_confirm`` (the email's link was pressed): one ``confirm`` consent event per topic,
  level ``express_written``, with the whole proof as evidence and the client's expiry; the
  request becomes ``confirmed``.
- ``consent_event`` (the ingest API): the events a client's system sends, with its stated
  source and evidence, checked again before anything is written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from herald.compliance.audit import audit
from herald.compliance.consent import ConsentError, check_event, expires_at, record_consent, wording_hash
from herald.config.models import Client, Deployment
from herald.contacts.phones import mask_email, mask_phone
from herald.delivery.outbox import OutboxMessage, enqueue
from herald.messages.sms import sms_info
from herald.warehouse.connection import Session
from herald.warehouse.schema import MARTS_SCHEMA, OPS_SCHEMA, column_names

ACTOR = "consent_optin"
CONSENT_REQUESTS = f"{OPS_SCHEMA}.consent_requests"
CONTACTS = f"{MARTS_SCHEMA}.contacts"
OPTIN_CONFIRMATION = "optin_confirmation"  # the message type of the confirmation request
OPTIN_CAMPAIGN = "_replies"  # an answer to the person's own request (inbound.REPLY_CAMPAIGN)
OPTIN_SCOPE = "optin"  # the scope of a confirmation link's token (herald.messages.unsubscribe)
FORM_SOURCE = "web_form"
API_SOURCE = "api"
PENDING, CONFIRMED = "pending", "confirmed"

# kinds of landed events this module applies (herald.events.apply dispatches them here)
REQUEST_EVENT, CONFIRM_EVENT, API_EVENT = "optin_request", "optin_confirm", "consent_event"


def mask(channel: str, address: str) -> str:
    return mask_email(address) if channel == "email" else mask_phone(address)


def request_key(request_id: str) -> str:
    """The confirmation request's outbox key: one per form submission, however often applied."""
    return hashlib.md5(f"optin|{request_id}".encode()).hexdigest()


def disclosure_wording(client: Client, channel: str, topics: list[str]) -> str:
    """The exact text the form shows for these topics of the channel, in the configured order."""
    optin = client.config.optin
    if optin is None:
        return ""
    return "\n\n".join(d.text for d in optin.disclosures if d.channel == channel and d.topic in topics)


def sms_confirmation_text(client: Client) -> str:
    name = client.config.program_name or client.config.name
    return (
        f"{name}: reply YES to confirm you want to receive texts from {client.config.name}. "
        f"{client.config.message_frequency}. Msg & data rates may apply. Reply HELP for help, STOP to cancel."
    )


def email_confirmation(client: Client, url: str) -> tuple[str, str, str]:
    """(subject, text, html) of the confirmation email; the link is the only way to confirm."""
    from html import escape

    name = client.config.name
    subject = f"Please confirm your subscription to {name}"
    footer = client.config.postal_address or ""
    text = (
        f"You asked to receive emails from {name}. To confirm, open this link:\n\n{url}\n\n"
        f"If you did not ask for this, ignore this email: nothing will be sent to you.\n\n{footer}"
    ).strip()
    html = (
        f"<p>You asked to receive emails from {escape(name)}.</p>"
        f'<p><a href="{escape(url, quote=True)}">Confirm my subscription</a></p>'
        "<p>If you did not ask for this, ignore this email: nothing will be sent to you.</p>"
        f"<p>{escape(footer)}</p>"
    )
    return subject, text, html


@dataclass(frozen=True)
class Applied:
    """What applying one landed consent event did (no raw address: safe to log)."""

    action: str
    detail: str


def _contact_ids(s: Session, client_id: str, channel: str, address: str) -> list[str]:
    present = s.scalar(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [MARTS_SCHEMA, "contacts"],
    )
    if not present:
        return []
    column = "email" if channel == "email" else "phone_e164"
    _, rows = s.query(
        f"select contact_id from {CONTACTS} where client_id = ? and {column} = ? order by contact_id",
        [client_id, address],
    )
    return [str(r[0]) for r in rows]


def apply_request(
    s: Session, deployment: Deployment, event_id: str, payload: Mapping[str, Any], received_at: datetime, now: datetime
) -> Applied:
    """A submitted opt-in form: the pending request with its proof, and the confirmation request."""
    client = deployment.clients.get(str(payload.get("client_id") or ""))
    if client is None or client.config.optin is None:
        return Applied("ignored", f"no opt-in form for client {payload.get('client_id')!r}")
    channel, address = str(payload.get("channel") or ""), str(payload.get("address") or "")
    topics = [str(t) for t in payload.get("topics") or []]
    wording = str(payload.get("wording") or "")
    if channel not in ("sms", "email") or not address or not topics or not wording:
        return Applied("ignored", "an opt-in request without channel, address, topics or wording")
    if s.scalar(f"select count(*) from {CONSENT_REQUESTS} where request_id = ?", [event_id]):
        return Applied("already_requested", "this form submission is already recorded")
    key = request_key(event_id)
    values = {
        "request_id": event_id, "client_id": client.client_id, "channel": channel, "address": address,
        "topics": ",".join(topics), "wording": wording, "wording_sha256": wording_hash(wording),
        "ip": payload.get("ip"), "user_agent": payload.get("user_agent"), "page_url": payload.get("page_url"),
        "requested_at": received_at, "status": PENDING, "confirm_message_key": key, "confirmed_at": None,
        "confirmation": None, "recorded_at": now,
    }  # fmt: skip
    columns = column_names(CONSENT_REQUESTS)
    s.insert_rows(CONSENT_REQUESTS, columns, [tuple(values[c] for c in columns)], ignore_existing=True)
    contacts = _contact_ids(s, client.client_id, channel, address)
    common: dict[str, Any] = {
        "message_key": key, "client_id": client.client_id, "campaign": OPTIN_CAMPAIGN, "step": OPTIN_CONFIRMATION,
        "variant": "", "occurrence": event_id, "contact_id": contacts[0] if contacts else "",
        "message_type": OPTIN_CONFIRMATION, "category": "transactional", "channel": channel, "to_address": address,
        "send_after": now,
    }  # fmt: skip
    if channel == "sms":
        from herald.compliance.inbound import to_e164

        body = sms_confirmation_text(client)
        info = sms_info(body)
        message = OutboxMessage(**common, sender=to_e164(client.config.senders.sms_from, client.default_region),
                                body_text=body, sms_segments=info.segments, sms_encoding=info.encoding)  # fmt: skip
    else:
        subject, text, html = email_confirmation(client, str(payload.get("confirm_url") or ""))
        message = OutboxMessage(**common, sender=client.config.senders.email_from, subject=subject,
                                body_text=text, body_html=html)  # fmt: skip
    enqueue(s, [message], now)
    audit(s, ACTOR, "consent_change", client.client_id, contacts[0] if contacts else None, mask(channel, address),
          "double opt-in requested on the hosted form: pending until confirmed",
          {"request_id": event_id, "topics": topics, "wording_sha256": values["wording_sha256"],
           "message_key": key}, now=now)  # fmt: skip
    return Applied("optin_requested", f"{channel} topics {','.join(topics)}: pending, confirmation {key[:12]} queued")


def pending_request(s: Session, client_id: str, channel: str, address: str) -> str | None:
    """The newest pending request of this address (its id), or None."""
    _, rows = s.query(
        f"""select request_id from {CONSENT_REQUESTS}
            where client_id = ? and channel = ? and address = ? and status = ?
            order by requested_at desc, request_id desc limit 1""",
        [client_id, channel, address, PENDING],
    )
    return str(rows[0][0]) if rows else None


def confirm_request(
    s: Session, deployment: Deployment, request_id: str, confirmation: str, confirmed_at: datetime, now: datetime,
    source_key: str,
) -> Applied:  # fmt: skip
    """The person confirmed: one ``confirm`` event per topic with the whole proof as evidence."""
    columns = column_names(CONSENT_REQUESTS)
    _, rows = s.query(f"select {', '.join(columns)} from {CONSENT_REQUESTS} where request_id = ?", [request_id])
    if not rows:
        return Applied("ignored", "no such opt-in request")
    req = dict(zip(columns, rows[0], strict=True))
    if req["status"] != PENDING:
        return Applied("already_confirmed", "this opt-in was confirmed before")
    client = deployment.clients.get(req["client_id"])
    proof = {
        "form": req["page_url"], "wording": req["wording"], "wording_sha256": req["wording_sha256"],
        "requested_at": req["requested_at"].isoformat(sep=" "), "ip": req["ip"], "user_agent": req["user_agent"],
        "confirmed_at": confirmed_at.isoformat(sep=" "), "confirmation": confirmation, "request_id": request_id,
    }  # fmt: skip
    evidence = json.dumps(proof, ensure_ascii=False, sort_keys=True)
    contacts = _contact_ids(s, req["client_id"], req["channel"], req["address"]) or [None]
    topics = [t for t in str(req["topics"]).split(",") if t]
    for topic in topics:
        for contact_id in contacts:
            record_consent(
                s, client_id=req["client_id"], channel=req["channel"], address=req["address"], kind="confirm",
                scope=topic, source=FORM_SOURCE, source_key=source_key, occurred_at=confirmed_at, recorded_at=now,
                contact_id=contact_id, consent_level="express_written", evidence=evidence,
                expires_at=expires_at(client, topic, confirmed_at), wording_sha256=req["wording_sha256"],
            )  # fmt: skip
    s.execute(
        f"update {CONSENT_REQUESTS} set status = ?, confirmed_at = ?, confirmation = ? where request_id = ?",
        [CONFIRMED, confirmed_at, confirmation, request_id],
    )
    audit(s, ACTOR, "consent_change", req["client_id"], contacts[0], mask(req["channel"], req["address"]),
          f"double opt-in confirmed: {confirmation}",
          {"request_id": request_id, "topics": topics, "kind": "confirm"}, now=now)  # fmt: skip
    return Applied("optin_confirmed", f"{req['channel']} topics {','.join(topics)} confirmed")


def apply_link_confirm(
    s: Session, deployment: Deployment, event_id: str, payload: Mapping[str, Any], received_at: datetime, now: datetime
) -> Applied:
    """The confirmation email's link was pressed (the page's POST): its IP and user agent are the proof."""
    request_id = str(payload.get("request_id") or "")
    _, rows = s.query(f"select client_id from {CONSENT_REQUESTS} where request_id = ?", [request_id])
    if not rows or rows[0][0] != payload.get("client_id"):
        return Applied("ignored", "no such opt-in request for this client")
    confirmation = f"link pressed from IP {payload.get('ip') or '?'} with {payload.get('user_agent') or '?'}"
    return confirm_request(s, deployment, request_id, confirmation, received_at, now, source_key=event_id)


def apply_api_events(
    s: Session, deployment: Deployment, event_id: str, payload: Mapping[str, Any], received_at: datetime, now: datetime
) -> Applied:
    """Consent events a client's system sent through the ingest API: every one is checked again
    (the configuration may have changed since); one bad event records none of them."""
    client = deployment.clients.get(str(payload.get("client_id") or ""))
    if client is None:
        return Applied("ignored", f"unknown client {payload.get('client_id')!r}")
    events = list(payload.get("events") or [])
    try:
        for item in events:
            check_event(item["channel"], item["kind"], item["scope"], item.get("consent_level"))
            datetime.fromisoformat(item["occurred_at"])
    except (ConsentError, KeyError, TypeError, ValueError) as exc:  # kept, with why; nothing recorded
        return Applied("refused", f"consent events refused, none recorded: {exc}")
    for index, item in enumerate(events):
        occurred = datetime.fromisoformat(item["occurred_at"])
        evidence = json.dumps({"stated_source": item["source"], "evidence": item.get("evidence")}, ensure_ascii=False)
        record_consent(
            s, client_id=client.client_id, channel=item["channel"], address=item["address"], kind=item["kind"],
            scope=item["scope"], source=f"{API_SOURCE}:{item['source']}", source_key=f"{event_id}#{index}",
            occurred_at=occurred, recorded_at=now, contact_id=item.get("contact_id"),
            consent_level=item.get("consent_level"), evidence=evidence,
            expires_at=expires_at(client, item["scope"], occurred), wording_sha256=item.get("wording_sha256"),
        )  # fmt: skip
        audit(s, ACTOR, "consent_change", client.client_id, item.get("contact_id"),
              mask(item["channel"], item["address"]), f"{item['kind']} from the ingest API ({item['source']})",
              {"event_id": event_id, "scope": item["scope"]}, now=now)  # fmt: skip
    return Applied("consent_recorded", f"{len(events)} consent event(s) from the ingest API")
