"""Manual blocks (support's per-customer block): support stops every message to an address, with
the reason visible to whoever follows up, and can lift it again. Each change is audited with
who made it, and a block cancels the client's queued messages to the address at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from herald.billing.credits import release_unsent
from herald.compliance.audit import audit
from herald.contacts.phones import mask_email, mask_phone
from herald.delivery.outbox import OUTBOX, SUPPRESSIONS
from herald.warehouse.connection import Session
from herald.warehouse.schema import column_names

MANUAL_BLOCK = "manual_block"
CANCELLABLE = ("queued", "held")


class BlockError(ValueError):
    """The address cannot be read as a phone number or an email address."""


@dataclass(frozen=True)
class Address:
    channel: str  # sms | email
    value: str  # E.164 or lower-cased email

    @property
    def masked(self) -> str:
        return mask_phone(self.value) if self.channel == "sms" else mask_email(self.value)


def read_address(text: str, default_region: str) -> Address:
    """A phone number (any format the region reads) or an email address, normalized."""
    raw = text.strip()
    if "@" in raw:
        try:
            return Address("email", validate_email(raw, check_deliverability=False).normalized.lower())
        except EmailNotValidError as exc:
            raise BlockError(f"{raw!r} is not a valid email address: {exc}") from None
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise BlockError(f"{raw!r} is neither a valid phone number (region {default_region}) nor an email address")
    return Address("sms", phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def block(session: Session, client_id: str, address: Address, reason: str, actor: str, now: datetime) -> int:
    """Blocks ``address`` for the client on its channel (every message type); returns how many
    queued or held messages were cancelled."""
    if not reason.strip():
        raise BlockError("a block needs a reason support can read, e.g. --reason 'asked by phone on 3 May'")
    row = (client_id, address.channel, address.value, "all", MANUAL_BLOCK, "manual", reason, None, now)
    session.execute(
        f"delete from {SUPPRESSIONS} where client_id = ? and channel = ? and address = ? and scope = 'all' and reason = ?",
        [client_id, address.channel, address.value, MANUAL_BLOCK],
    )
    session.insert_rows(SUPPRESSIONS, column_names(SUPPRESSIONS), [row], ignore_existing=True)
    where = "client_id = ? and channel = ? and to_address = ? and status in (?, ?)"
    params = [client_id, address.channel, address.value, *CANCELLABLE]
    cancelled = int(session.scalar(f"select count(*) from {OUTBOX} where {where}", params))
    session.execute(
        f"update {OUTBOX} set status = 'cancelled', status_reason = ?, updated_at = ? where {where}",
        [f"blocked by support: {reason}", now, *params],
    )
    audit(session, actor, "manual_override", client_id, None, address.masked, f"block: {reason}",
          {"channel": address.channel, "cancelled": cancelled}, now=now)  # fmt: skip
    if cancelled:
        release_unsent(session, now, actor=actor)  # a paid-for message waiting for a retry is refunded now
    return cancelled


def unblock(session: Session, client_id: str, address: Address, reason: str, actor: str, now: datetime) -> int:
    """Lifts the client's manual block of ``address`` (never an opt-out: only the person can
    lift that, by texting START); returns how many blocks were lifted. An address with no manual
    block but an opt-out is refused with :class:`BlockError` (nothing changes, nothing audited):
    staff asked to "unblock" someone who opted out must hear why it cannot be done."""
    where = "client_id = ? and channel = ? and address = ? and reason = ?"
    params = [client_id, address.channel, address.value, MANUAL_BLOCK]
    lifted = int(session.scalar(f"select count(*) from {SUPPRESSIONS} where {where}", params))
    if not lifted and session.scalar(
        f"select count(*) from {SUPPRESSIONS} where client_id in (?, '*') and channel in (?, '*') "
        "and address = ? and reason = 'opt_out'",
        [client_id, address.channel, address.value],
    ):
        how = "by texting START" if address.channel == "sms" else "by opting in again themselves"
        raise BlockError(f"{address.masked} opted out; staff cannot lift an opt-out (only the person can, {how})")
    session.execute(f"delete from {SUPPRESSIONS} where {where}", params)
    audit(session, actor, "manual_override", client_id, None, address.masked, f"unblock: {reason}",
          {"channel": address.channel, "lifted": lifted}, now=now)  # fmt: skip
    return lifted
