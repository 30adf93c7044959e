"""What happens to a sandbox message after it is accepted: delivery receipts, opens, clicks and
replies, landed exactly like a real provider's webhooks.

The fate of a message is a pure function of its key and the rates (:func:`sandbox_outcome`):
the key is hashed into [0, 1) once per question (delivered? which error? replied? which reply?
opened? clicked?), so a test can predict every row and a retried message meets the same fate.

The events have the shapes :mod:`herald.web.twilio` and :mod:`herald.web.resend` land:

- SMS (``source`` twilio, ``kind`` sms_status, id ``<MessageSid>:<status>``): ``queued`` at
  the send time, ``sent`` half the receipt delay later, then ``delivered`` — or
  ``undelivered`` / ``failed`` with a Twilio ``ErrorCode`` (30003, 30005, 30006, 30007, 30008)
  — at send time + the delay.
- email (``source`` resend, ``kind`` email_event, a Svix-like ``msg_`` id): ``email.sent``,
  then ``email.delivered`` or a permanent ``email.bounced``; a delivered email may then be
  ``email.opened`` and ``email.clicked`` (a click implies an open).
- an SMS reply (a delivered text, at the reply rate) is landed as a Twilio inbound SMS through
  the sink's ``append_inbound`` (:mod:`herald.compliance.landing` in embedded mode). ``STOP``
  is among the replies only when enabled.

Every event's time is the send time plus the receipt delay (the sink lands it at once); the
same event ids as a provider's retries, so landing twice stores once.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from herald.compliance.landing import InboundMessage
from herald.events.landing import EventSink, ProviderEvent
from herald.providers.base import OutboundMessage

# Twilio error codes a carrier reports on a status callback, and the status they come with
SMS_FAILURES: tuple[tuple[str, str], ...] = (
    ("30003", "undelivered"),  # unreachable destination handset
    ("30005", "undelivered"),  # unknown destination handset
    ("30006", "undelivered"),  # landline or unreachable carrier
    ("30007", "undelivered"),  # filtered by the carrier
    ("30008", "failed"),  # unknown error
)
REPLIES: tuple[str, ...] = ("Thanks!", "C", "What time again?", "ok see you then", "R")
STOP_REPLY = "STOP"
TWILIO_API_VERSION = "2010-04-01"
SANDBOX_ACCOUNT_SID = "AC" + "0" * 32
_LINK = re.compile(r"""href\s*=\s*["'](https?://[^"']+)["']""", re.IGNORECASE)


@dataclass(frozen=True)
class SandboxRates:
    """The sandbox's world: shares in [0, 1] and the receipt delay in seconds."""

    sms_failure_rate: float = 0.03  # texts undelivered / failed
    email_bounce_rate: float = 0.03  # emails bounced (permanent)
    reply_rate: float = 0.05  # delivered texts answered
    open_rate: float = 0.4  # delivered emails opened
    click_rate: float = 0.1  # delivered emails clicked (each also opened)
    receipt_delay_seconds: float = 2.0
    stop_replies: bool = False  # STOP among the replies

    def __post_init__(self) -> None:
        for name in ("sms_failure_rate", "email_bounce_rate", "reply_rate", "open_rate", "click_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
        if self.receipt_delay_seconds < 0:
            raise ValueError("receipt_delay_seconds must not be negative")

    @property
    def replies(self) -> tuple[str, ...]:
        return (*REPLIES, STOP_REPLY) if self.stop_replies else REPLIES


@dataclass(frozen=True)
class SandboxOutcome:
    """The fate of one message: ``delivered``, else the failure (status and error code)."""

    delivered: bool
    status: str  # sms: delivered | undelivered | failed; email: delivered | bounced
    error_code: str | None = None
    reply: str | None = None  # sms: the body of the recipient's answer
    opened: bool = False  # email
    clicked: bool = False  # email


def unit_hash(message_key: str, question: str) -> float:
    """The key hashed into [0, 1), independently per question."""
    digest = hashlib.sha256(f"{question}|{message_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _pick(message_key: str, question: str, choices: tuple[Any, ...]) -> Any:
    return choices[min(int(unit_hash(message_key, question) * len(choices)), len(choices) - 1)]


def sandbox_outcome(channel: str, message_key: str, rates: SandboxRates) -> SandboxOutcome:
    """What happens to the message ``message_key`` on ``channel`` under ``rates`` (pure)."""
    if channel == "sms":
        if unit_hash(message_key, "fate") < rates.sms_failure_rate:
            code, status = _pick(message_key, "error", SMS_FAILURES)
            return SandboxOutcome(False, status, code)
        reply = None
        if unit_hash(message_key, "reply") < rates.reply_rate:
            reply = _pick(message_key, "reply_text", rates.replies)
        return SandboxOutcome(True, "delivered", reply=reply)
    if unit_hash(message_key, "fate") < rates.email_bounce_rate:
        return SandboxOutcome(False, "bounced", "bounce")
    engaged = unit_hash(message_key, "engagement")
    return SandboxOutcome(
        True, "delivered", opened=engaged < max(rates.open_rate, rates.click_rate), clicked=engaged < rates.click_rate
    )


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds") + "Z"


def sms_events(message: OutboundMessage, sid: str, sent_at: datetime, rates: SandboxRates) -> list[ProviderEvent]:
    """The Twilio status callbacks of one accepted text, as :mod:`herald.web.twilio` lands them."""
    outcome = sandbox_outcome("sms", message.message_key, rates)
    delay = timedelta(seconds=rates.receipt_delay_seconds)
    steps = [("queued", sent_at), ("sent", sent_at + delay / 2), (outcome.status, sent_at + delay)]
    events = []
    for n, (state, at) in enumerate(steps):
        payload = {
            "AccountSid": SANDBOX_ACCOUNT_SID, "ApiVersion": TWILIO_API_VERSION, "MessageSid": sid, "SmsSid": sid,
            "MessageStatus": state, "SmsStatus": state, "From": message.sender or "", "To": message.to,
        }  # fmt: skip
        if state == outcome.status and outcome.error_code:
            payload["ErrorCode"] = outcome.error_code
        events.append(ProviderEvent(f"{sid}:{state}", "twilio", "sms_status", payload,
                                    at + timedelta(microseconds=n), sid))  # fmt: skip
    return events


def sms_reply(message: OutboundMessage, sent_at: datetime, rates: SandboxRates) -> InboundMessage | None:
    """The recipient's answer to a delivered text, as a Twilio inbound SMS (None: no answer)."""
    outcome = sandbox_outcome("sms", message.message_key, rates)
    if outcome.reply is None or not message.sender:
        return None
    sid = "SM" + hashlib.sha256(f"sandbox_reply:{message.message_key}".encode()).hexdigest()[:32]
    at = sent_at + timedelta(seconds=rates.receipt_delay_seconds) + timedelta(milliseconds=1)
    return InboundMessage(sid, message.to, message.sender, outcome.reply, at, "sms", "twilio")


def _svix_id(email_id: str, type_: str) -> str:
    return "msg_" + hashlib.sha256(f"{email_id}|{type_}".encode()).hexdigest()[:27]


def email_events(
    message: OutboundMessage, email_id: str, sent_at: datetime, rates: SandboxRates
) -> list[ProviderEvent]:
    """The Resend webhooks of one accepted email, as :mod:`herald.web.resend` lands them."""
    outcome = sandbox_outcome("email", message.message_key, rates)
    delay = timedelta(seconds=rates.receipt_delay_seconds)
    base = {
        "email_id": email_id, "from": message.sender or "", "to": [message.to], "subject": message.subject or "",
        "created_at": _iso(sent_at),
    }  # fmt: skip
    steps: list[tuple[str, datetime, dict[str, Any]]] = [("email.sent", sent_at, {})]
    if not outcome.delivered:
        bounce = {"type": "Permanent", "subType": "General", "message": "the recipient's mail server rejected it"}
        steps.append(("email.bounced", sent_at + delay, {"bounce": bounce}))
    else:
        steps.append(("email.delivered", sent_at + delay, {}))
        if outcome.opened:
            steps.append(("email.opened", sent_at + 2 * delay, {}))
        if outcome.clicked:
            links = _LINK.findall(message.html or "")
            click = {"link": links[0] if links else "", "timestamp": _iso(sent_at + 3 * delay)}
            steps.append(("email.clicked", sent_at + 3 * delay, {"click": click}))
    events = []
    for n, (type_, at, extra) in enumerate(steps):
        at = at + timedelta(microseconds=n)
        payload = {"type": type_, "created_at": _iso(at), "data": {**base, **extra}}
        events.append(ProviderEvent(_svix_id(email_id, type_), "resend", "email_event", payload, at, email_id))
    return events


class SandboxReceipts:
    """Lands the sandbox's events through a sink (opened on first use, kept, thread-safe)."""

    def __init__(self, sink: EventSink | Callable[[], EventSink], rates: SandboxRates | None = None) -> None:
        self.rates = rates or SandboxRates()
        self._sink_or_factory = sink
        self._sink: EventSink | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SandboxReceipts(rates={self.rates!r})"

    def sink(self) -> EventSink:
        with self._lock:
            if self._sink is None:
                source = self._sink_or_factory
                self._sink = source() if callable(source) else source
            assert self._sink is not None
            return self._sink

    def emit(self, message: OutboundMessage, provider_message_id: str, sent_at: datetime) -> None:
        """Lands what happens to ``message`` (accepted at ``sent_at``, naive UTC)."""
        sink = self.sink()
        if message.channel == "sms":
            sink.append(*sms_events(message, provider_message_id, sent_at, self.rates))
            reply = sms_reply(message, sent_at, self.rates)
            if reply is not None:
                sink.append_inbound(reply)
        else:
            sink.append(*email_events(message, provider_message_id, sent_at, self.rates))
