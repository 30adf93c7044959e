"""The after-hours auto-responder (for clinics that close at night): a client's ``auto_reply`` answers an inbound SMS
that is not a keyword (not STOP/START/HELP, not C/R), from a number that is not suppressed,
received outside the client's business hours — at most once per contact per closed period.

Business hours are the *open* hours in the client's time zone (``auto_reply.business_hours``,
else the client's ``send_window.business_hours``, else herald.yaml's send window); a closed
period runs from one day's closing time to the next day's opening. The answer's outbox key is
md5('autoreply|<client>|<address>|<start of the closed period>'), so a second message in the
same night enqueues nothing new, and the next night's first one is answered again.

A client admin may switch the auto-reply off or change its text in the portal's Inbox settings
(``herald_ops.auto_reply_settings``, :func:`effective_auto_reply`); the open hours stay the
configuration's.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from herald.config.models import AutoReply, Client, Deployment, SendWindow
from herald.delivery.outbox import SUPPRESSIONS, OutboxMessage, enqueue
from herald.messages.sms import sms_info
from herald.warehouse.connection import Session
from herald.warehouse.schema import OPS_SCHEMA

AUTO_REPLY = "auto_reply"  # step and message type of the answer
REPLY_CAMPAIGN = "_replies"  # as herald.compliance.inbound: every answer to a reply
CHANNEL = "sms"
AUTO_REPLY_SETTINGS = f"{OPS_SCHEMA}.auto_reply_settings"  # the portal's override of client.yaml's auto_reply


def effective_auto_reply(session: Session, client: Client) -> AutoReply | None:
    """The auto-reply in effect: client.yaml's ``auto_reply``, unless a client admin changed it
    in the portal (switched off: None; another text: that text, with the configured hours)."""
    configured = client.config.auto_reply
    _, rows = session.query(f"select enabled, text from {AUTO_REPLY_SETTINGS} where client_id = ?", [client.client_id])
    if not rows:
        return configured
    enabled, text = rows[0]
    text = text or (configured.text if configured is not None else None)
    if not enabled or not text:
        return None
    return AutoReply(text=text, business_hours=configured.business_hours if configured is not None else None)


def auto_reply_hours(client: Client, deployment: Deployment) -> SendWindow:
    """The client's open hours for the auto-responder."""
    config = client.config
    if config.auto_reply is not None and config.auto_reply.business_hours is not None:
        return config.auto_reply.business_hours
    return config.send_window.business_hours or deployment.herald.defaults.send_window


def closed_period_start(received_at_utc: datetime, hours: SendWindow, time_zone: str) -> datetime | None:
    """When the closed period ``received_at_utc`` (naive UTC) falls in began, as an aware local
    time (the closing time of that day or of the day before); None during open hours."""
    zone = ZoneInfo(time_zone)
    local = received_at_utc.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    minute = local.hour * 60 + local.minute
    start, end = hours.minutes(local.isoweekday())
    if start <= minute < end:
        return None
    if minute >= end:
        closed_at = midnight + timedelta(minutes=end)
    else:  # before today's opening: the period began at yesterday's closing
        yesterday = midnight - timedelta(days=1)
        closed_at = yesterday + timedelta(minutes=hours.minutes(yesterday.isoweekday())[1])
    return closed_at.replace(tzinfo=zone)


def auto_reply_key(client_id: str, address: str, closed_since: datetime) -> str:
    return hashlib.md5(f"autoreply|{client_id}|{address}|{closed_since.isoformat()}".encode()).hexdigest()


def is_suppressed(session: Session, client_id: str, address: str) -> bool:
    """Any suppression of the number for this client or all clients (opt-out of any scope,
    manual block, ...): the auto-responder never writes to it."""
    return bool(
        session.scalar(
            f"select count(*) from {SUPPRESSIONS} where client_id in (?, '*') and channel in (?, '*') and address = ?",
            [client_id, CHANNEL, address],
        )
    )


def queue_auto_reply(
    session: Session,
    deployment: Deployment,
    client: Client,
    *,
    address: str,
    contact_id: str | None,
    sender: str | None,
    received_at: datetime,
    now: datetime,
) -> str | None:
    """Queues the client's auto-reply to ``address`` (E.164) for an inbound non-keyword SMS
    received at ``received_at`` (naive UTC), due ``now``; returns its key when a new one was
    queued, None when the client has none, it is open, the number is suppressed or this closed
    period was answered already."""
    settings = effective_auto_reply(session, client)
    if settings is None:
        return None
    closed_since = closed_period_start(received_at, auto_reply_hours(client, deployment), client.time_zone)
    if closed_since is None or is_suppressed(session, client.client_id, address):
        return None
    key = auto_reply_key(client.client_id, address, closed_since)
    info = sms_info(settings.text)
    message = OutboxMessage(
        message_key=key,
        client_id=client.client_id,
        campaign=REPLY_CAMPAIGN,
        step=AUTO_REPLY,
        variant="",
        occurrence=closed_since.isoformat(),
        contact_id=contact_id or "",
        message_type=AUTO_REPLY,
        category="transactional",
        channel=CHANNEL,
        to_address=address,
        sender=sender,
        send_after=now,
        body_text=settings.text,
        sms_segments=info.segments,
        sms_encoding=info.encoding,
    )
    return key if enqueue(session, [message], now) else None
