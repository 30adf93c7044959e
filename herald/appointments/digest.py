"""The daily staff digest: one email to a client's front desk listing tomorrow's unconfirmed
appointments, so someone can call those patients.

It follows the low-credit alert (herald.billing.alerts): the email goes to the client's
``contact.email`` through the email provider, from its ``senders.email_from``, under a
deterministic message key (one per client and local day), and each digest is one
``herald_ops.staff_digests`` row, so it is sent once per client per local day. It is due from
``confirmations.digest.send_at`` on the client's local clock (client.yaml, default 17:00) and
lists the appointments of the next local day whose ``confirmation_state`` in
marts.appointment_confirmations is ``unconfirmed``, ``high_risk`` or ``pending`` (no answer yet),
each with the patient's first name and last initial and the local time. A day without any is
recorded (``empty``) and not emailed; an email that could not be sent is tried again by the
next run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from herald.config.models import Deployment
from herald.providers.base import OutboundMessage, Provider, ProviderError
from herald.warehouse.connection import Session
from herald.warehouse.schema import MARTS_SCHEMA, OPS_SCHEMA, column_names

STAFF_DIGESTS = f"{OPS_SCHEMA}.staff_digests"
DIGEST_COLUMNS = column_names(STAFF_DIGESTS)
CONFIRMATIONS = f"{MARTS_SCHEMA}.appointment_confirmations"
CONTACTS = f"{MARTS_SCHEMA}.contacts"
SENT, FAILED, NO_CONTACT, EMPTY = "sent", "failed", "no_contact", "empty"
# the states of an appointment nobody has confirmed yet (and that is neither cancelled nor past)
UNCONFIRMED_STATES = ("unconfirmed", "high_risk", "pending")


@dataclass(frozen=True)
class DigestAppointment:
    """One unconfirmed appointment as the digest shows it (no phone, no email, no full name)."""

    appointment_key: str
    patient: str  # first name and last initial
    appointment_at: datetime  # naive UTC
    local_time: datetime  # the client's wall clock
    confirmation_state: str
    appointment_type: str | None = None
    provider_name: str | None = None


@dataclass(frozen=True)
class StaffDigest:
    """One client's digest for one local day, and what became of its email."""

    client_id: str
    digest_date: date  # the client's local day it is sent on
    appointment_date: date  # the local day its appointments are on (the next one)
    appointments: list[DigestAppointment] = field(default_factory=list)
    message_key: str = ""
    email_status: str = ""  # sent | failed | no_contact | empty ('' before any attempt)
    email_error: str | None = None
    subject: str = ""
    text: str = ""

    @property
    def appointment_count(self) -> int:
        return len(self.appointments)


def mask_name(first_name: str | None, last_name: str | None) -> str:
    """``Maria``, ``Garcia`` → ``Maria G.``; a missing part is left out; neither → ``(no name)``."""
    first = (first_name or "").strip()
    last = (last_name or "").strip()
    shown = " ".join(part for part in (first, f"{last[:1].upper()}." if last else "") if part)
    return shown or "(no name)"


def digest_key(client_id: str, digest_date: date) -> str:
    """The digest email's deterministic message key (one per client and local day)."""
    digest = hashlib.sha256(f"staff_digest|{client_id}|{digest_date.isoformat()}".encode()).hexdigest()[:32]
    return f"staff-digest-{digest}"


def local_now(deployment: Deployment, client_id: str, now: datetime) -> datetime:
    """``now`` (naive UTC) on the client's wall clock (naive)."""
    zone = ZoneInfo(deployment.clients[client_id].time_zone)
    return now.replace(tzinfo=ZoneInfo("UTC")).astimezone(zone).replace(tzinfo=None)


def is_due(deployment: Deployment, client_id: str, now: datetime) -> bool:
    """Whether the client's local clock has reached its digest's ``send_at``."""
    hours, minutes = deployment.clients[client_id].config.confirmations.digest.send_at.split(":")
    return local_now(deployment, client_id, now).time() >= time(int(hours), int(minutes))


def unconfirmed_appointments(session: Session, time_zone: str, client_id: str, day: date) -> list[DigestAppointment]:
    """The client's appointments on local ``day`` nobody has confirmed, earliest first."""
    zone = ZoneInfo(time_zone)

    def utc(d: date) -> datetime:
        return datetime.combine(d, time()).replace(tzinfo=zone).astimezone(ZoneInfo("UTC")).replace(tzinfo=None)

    states = ", ".join("?" for _ in UNCONFIRMED_STATES)
    _, found = session.query(
        f"select a.appointment_key, c.first_name, c.last_name, a.appointment_at, a.confirmation_state, "
        f"p.appointment_type, p.provider_name "
        f"from {CONFIRMATIONS} a "
        f"left join {CONTACTS} c on c.contact_id = a.contact_id "
        f"left join {MARTS_SCHEMA}.appointments p on p.appointment_key = a.appointment_key "
        f"where a.client_id = ? and a.confirmation_state in ({states}) "
        f"and a.appointment_at >= ? and a.appointment_at < ? "
        f"order by a.appointment_at, a.appointment_key",
        [client_id, *UNCONFIRMED_STATES, utc(day), utc(day + timedelta(days=1))],
    )
    return [
        DigestAppointment(
            key, mask_name(first, last), at, at.replace(tzinfo=ZoneInfo("UTC")).astimezone(zone).replace(tzinfo=None),
            state, kind, provider,
        )
        for key, first, last, at, state, kind, provider in found
    ]  # fmt: skip


def compose(deployment: Deployment, client_id: str, now: datetime, session: Session) -> StaffDigest:
    """The client's digest for its local day at ``now`` (not sent, not recorded)."""
    client = deployment.clients[client_id]
    today = local_now(deployment, client_id, now).date()
    tomorrow = today + timedelta(days=1)
    listed = unconfirmed_appointments(session, client.time_zone, client_id, tomorrow)
    n = len(listed)
    noun = "appointment" if n == 1 else "appointments"
    subject = f"{client.config.name}: {n} unconfirmed {noun} tomorrow ({tomorrow:%a %b} {tomorrow.day})"
    lines = [f"Hello {client.config.name},", ""]
    if listed:
        lines.append(f"{n} unconfirmed {noun} tomorrow, {tomorrow:%A %B} {tomorrow.day} ({client.time_zone}):")
        lines.append("")
        for a in listed:
            detail = ", ".join(x for x in (a.appointment_type, a.provider_name) if x)
            risk = " — high risk" if a.confirmation_state == "high_risk" else ""
            lines.append(f"- {a.local_time:%H:%M}  {a.patient}" + (f" ({detail})" if detail else "") + risk)
        lines += ["", "They have not answered their reminder (C to confirm, R to reschedule)."]
    else:
        lines.append(f"Every appointment tomorrow, {tomorrow:%A %B} {tomorrow.day}, is confirmed.")
    return StaffDigest(client_id, today, tomorrow, listed, digest_key(client_id, today), "", None, subject,
                       "\n".join(lines) + "\n")  # fmt: skip


def _send(provider: Provider | None, message: OutboundMessage) -> tuple[str, str | None]:
    if provider is None:
        return FAILED, "no email provider is configured"
    try:
        provider.send(message)
    except (ProviderError, ValueError) as exc:
        return FAILED, str(exc)
    return SENT, None


def send_digests(
    session: Session,
    deployment: Deployment,
    providers: Mapping[str, Provider],
    now: datetime,
    client_ids: Sequence[str] | None = None,
    *,
    ignore_send_at: bool = False,
) -> list[StaffDigest]:
    """Sends each enabled client's digest whose ``send_at`` has come on its local clock and that
    was not sent yet today (or whose email failed); returns the digests it recorded."""
    _, found = session.query(f"select client_id, digest_date, email_status from {STAFF_DIGESTS}")
    known = {(c, d if isinstance(d, date) else date.fromisoformat(str(d))): s for c, d, s in found}
    recorded: list[StaffDigest] = []
    for client_id in client_ids if client_ids is not None else sorted(deployment.clients):
        client = deployment.clients[client_id]
        if not client.config.confirmations.digest.enabled:
            continue
        if not ignore_send_at and not is_due(deployment, client_id, now):
            continue
        today = local_now(deployment, client_id, now).date()
        previous = known.get((client_id, today))
        if previous is not None and previous != FAILED:
            continue  # already sent (or recorded as empty) today
        digest = compose(deployment, client_id, now, session)
        if not digest.appointments:
            status, error = EMPTY, None
        elif not client.config.contact.email:
            status, error = NO_CONTACT, f"{client_id} has no contact.email in its client.yaml"
        else:
            message = OutboundMessage(
                digest.message_key, "email", client.config.contact.email,
                sender=client.config.senders.email_from, subject=digest.subject, text=digest.text,
            )  # fmt: skip
            status, error = _send(providers.get("email"), message)
        digest = replace(digest, email_status=status, email_error=error)
        if previous is not None:
            session.execute(f"delete from {STAFF_DIGESTS} where client_id = ? and digest_date = ?", [client_id, today])
        values = {
            "client_id": client_id, "digest_date": today, "appointment_date": digest.appointment_date,
            "appointment_count": digest.appointment_count, "message_key": digest.message_key,
            "email_status": status, "email_error": error, "created_at": now,
        }  # fmt: skip
        session.insert_rows(STAFF_DIGESTS, DIGEST_COLUMNS, [tuple(values[c] for c in DIGEST_COLUMNS)])
        recorded.append(digest)
    return recorded
