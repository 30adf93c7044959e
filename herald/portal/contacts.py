"""The portal's contacts: search, a contact's detail (consent history, suppressions, last
messages), block/unblock, and the missed contacts with their reasons.

Every function takes an explicit ``client_id`` and every query filters on it. Reads go through
:mod:`herald.portal.reads`; ``hide_contact_details`` masks phone numbers and email addresses in
what is returned (staff who may not see them). Block and unblock are the very functions
``herald block`` / ``herald unblock`` call (:mod:`herald.compliance.manual`), in one warehouse
transaction: an opt-out is never lifted by staff. After the write the DuckDB snapshot is
published again, so the portal shows the change at once.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import phonenumbers

from herald.clock import utcnow
from herald.compliance.manual import Address, BlockError, block, read_address, unblock
from herald.config import load_deployment
from herald.contacts.phones import mask_email, mask_phone
from herald.portal.reads import PortalReader, PortalReadError, publish_snapshot, reader_for
from herald.settings import Settings
from herald.warehouse.connection import Warehouse

log = logging.getLogger("herald.portal.contacts")
SEARCH_LIMIT = 50
LAST_MESSAGES = 10
MIN_PHONE_DIGITS = 4
CONTACT_COLUMNS = "contact_id, external_id, first_name, last_name, phone_e164, email, updated_at"


class ContactNotFound(LookupError):
    """No contact of that id for this client (another client's contact reads the same)."""


@dataclass(frozen=True)
class ContactRow:
    contact_id: str
    external_id: str | None
    first_name: str | None
    last_name: str | None
    phone: str | None  # E.164, or masked
    email: str | None  # lower-cased, or masked
    updated_at: datetime | None

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p)


def _row(row: tuple[Any, ...], hide: bool) -> ContactRow:
    contact_id, external_id, first, last, phone, email, updated_at = row
    if hide:
        phone, email = mask_phone(phone) or None, mask_email(email) or None
    return ContactRow(contact_id, external_id, first, last, phone, email, updated_at)


def _mask(channel: str, address: str | None, hide: bool) -> str | None:
    if not hide or not address:
        return address
    return mask_phone(address) if channel == "sms" else mask_email(address)


def _region(settings: Settings, client_id: str) -> str:
    client = load_deployment(settings.config_dir).clients.get(client_id)
    return client.default_region if client is not None else "US"


def phone_query(text: str, region: str) -> str | None:
    """The E.164 form of a typed phone number (any format the client's region reads), or None."""
    if "@" in text or not re.search(r"\d", text):
        return None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _like(text: str) -> str:
    """``text`` as a LIKE pattern matching it anywhere (its own % _ \\ taken literally)."""
    return "%" + re.sub(r"([\\\\%_])", r"\\\1", text) + "%"


def search_contacts(
    settings: Settings,
    client_id: str,
    query: str,
    hide_contact_details: bool = False,
    limit: int = SEARCH_LIMIT,
    reader: PortalReader | None = None,
) -> list[ContactRow]:
    """The client's contacts matching ``query``: a phone number in any format (matched on its
    E.164 form; a few digits match inside numbers), an email address (or part of one), or a name
    (first, last or both, any case). Newest first."""
    text = " ".join(query.split())[:200]
    if not text:
        return []
    e164 = phone_query(text, _region(settings, client_id))
    digits = re.sub(r"\D", "", text)
    if e164:
        where, params = "phone_e164 = ?", [e164]
    elif "@" in text:
        where, params = "lower(email) like ? escape '\\'", [_like(text.lower())]
    elif len(digits) >= MIN_PHONE_DIGITS and re.fullmatch(r"[\d\s().+-]+", text):
        where, params = "phone_e164 like ? escape '\\'", [_like(digits)]
    else:
        where = (
            "(lower(coalesce(first_name, '') || ' ' || coalesce(last_name, '')) like ? escape '\\' "
            "or lower(coalesce(external_id, '')) = ?)"
        )
        params = [_like(text.lower()), text.lower()]
    reader = reader or reader_for(settings.warehouse)
    with reader.session() as s:
        if not s.has_table("marts.contacts"):
            return []
        rows = s.query(
            f"select {CONTACT_COLUMNS} from marts.contacts where client_id = ? and {where} "
            "order by updated_at desc, contact_id limit ?",
            [client_id, *params, int(limit)],
        ).rows
    return [_row(r, hide_contact_details) for r in rows]


@dataclass
class ContactDetail:
    contact: ContactRow
    consent_history: list[dict[str, Any]] = field(default_factory=list)  # oldest first
    suppressions: list[dict[str, Any]] = field(default_factory=list)
    last_messages: list[dict[str, Any]] = field(default_factory=list)  # newest first
    as_of: datetime | None = None  # the snapshot's time (DuckDB); None: live

    @property
    def is_opted_out(self) -> bool:
        return any(s["reason"] == "opt_out" for s in self.suppressions)


def contact_detail(
    settings: Settings,
    client_id: str,
    contact_id: str,
    hide_contact_details: bool = False,
    reader: PortalReader | None = None,
) -> ContactDetail:
    """One contact of the client: its consent history, the suppressions of its addresses (the
    client's and every client's), and its last messages. :class:`ContactNotFound` otherwise."""
    hide = hide_contact_details
    reader = reader or reader_for(settings.warehouse)
    with reader.session() as s:
        found = (
            s.query(
                f"select {CONTACT_COLUMNS} from marts.contacts where client_id = ? and contact_id = ?",
                [client_id, contact_id],
            ).rows
            if s.has_table("marts.contacts")
            else []
        )
        if not found:
            raise ContactNotFound(f"no contact {contact_id!r} for this client")
        _, _, _, _, phone, email, _ = found[0]
        detail = ContactDetail(_row(found[0], hide), as_of=s.as_of)
        addresses = [a for a in (phone, email.lower() if email else None) if a] or [""]
        marks = ", ".join("?" * len(addresses))
        consent = s.query(
            "select occurred_at, channel, address, kind, scope, consent_level, source, evidence "
            f"from herald_ops.consent_events where client_id = ? and (contact_id = ? or address in ({marks})) "
            "order by occurred_at, recorded_at, event_id",
            [client_id, contact_id, *addresses],
        )
        detail.consent_history = consent.dicts()
        suppressions = s.query(
            "select channel, address, scope, reason, source, note, created_at, client_id = '*' as is_all_clients "
            f"from herald_ops.suppressions where client_id in (?, '*') and address in ({marks}) "
            "order by created_at, reason",
            [client_id, *addresses],
        )
        detail.suppressions = suppressions.dicts()
        if s.has_table("marts.messages"):
            detail.last_messages = s.query(
                "select message_key, campaign, step, channel, to_address_masked, status, failure_reason, "
                "enqueued_at, sent_at from marts.messages where client_id = ? and contact_id = ? "
                "order by coalesce(sent_at, enqueued_at) desc, message_key limit ?",
                [client_id, contact_id, LAST_MESSAGES],
            ).dicts()
    for item in [*detail.consent_history, *detail.suppressions]:
        item["address"] = _mask(item["channel"], item["address"], hide)
    if hide:  # the reply's text may hold the number or address; evidence names its source only
        for item in detail.consent_history:
            item["evidence"] = None
    return detail


@dataclass(frozen=True)
class BlockChange:
    address_masked: str
    channel: str
    count: int  # blocks: queued messages cancelled; unblocks: blocks lifted
    opted_out: bool  # the address stays suppressed by an opt-out (only the person lifts it)


def _change(settings: Settings, client_id: str, address: str, reason: str, actor: str, lift: bool) -> BlockChange:
    deployment = load_deployment(settings.config_dir)
    client = deployment.clients.get(client_id)
    if client is None:
        raise BlockError(f"unknown client {client_id!r}")
    parsed: Address = read_address(address, client.default_region)
    if not reason.strip():
        raise BlockError("a reason support can read is needed, e.g. 'asked by phone on 3 May'")
    warehouse = Warehouse(settings.warehouse)
    with warehouse.session() as s:  # one transaction: the change, its audit entry, the cancellations
        count = (unblock if lift else block)(s, client_id, parsed, reason, actor, utcnow())
        opted_out = bool(
            s.scalar(
                "select count(*) from herald_ops.suppressions where client_id in (?, '*') "
                "and channel in (?, '*') and address = ? and reason = 'opt_out'",
                [client_id, parsed.channel, parsed.value],
            )
        )
    _republish(settings)
    return BlockChange(parsed.masked, parsed.channel, count, opted_out)


def _republish(settings: Settings) -> None:
    """Publish the snapshot so the portal shows the change (the write is committed either way)."""
    try:
        publish_snapshot(settings.warehouse)
    except PortalReadError as exc:
        log.warning("the change is saved; the portal shows it after the next run: %s", exc)


def block_contact(settings: Settings, client_id: str, address: str, reason: str, actor: str) -> BlockChange:
    """Block ``address`` (a phone number in any format or an email address) for the client,
    exactly as ``herald block`` does: queued messages to it are cancelled, the change audited."""
    return _change(settings, client_id, address, reason, actor, lift=False)


def unblock_contact(settings: Settings, client_id: str, address: str, reason: str, actor: str) -> BlockChange:
    """Lift the client's manual block of ``address`` as ``herald unblock`` does. An address that
    opted out and has no manual block is refused (:class:`BlockError`); one with both keeps
    its opt-out (``opted_out`` says so)."""
    return _change(settings, client_id, address, reason, actor, lift=True)


MISSED_COLUMNS = (
    "message_key, contact_id, first_name, last_name, campaign, step, channel, to_address_masked, "
    "missed_status, reason, missed_at"
)


def missed_contacts(
    settings: Settings,
    client_id: str,
    since: datetime | None = None,
    limit: int = 200,
    reader: PortalReader | None = None,
) -> list[dict[str, Any]]:
    """Messages of the client that did not reach their recipient, newest first, with the reason
    (marts.missed_contacts: addresses are already masked there)."""
    reader = reader or reader_for(settings.warehouse)
    with reader.session() as s:
        if not s.has_table("marts.missed_contacts"):
            return []
        where, params = "client_id = ?", [client_id]
        if since is not None:
            where, params = where + " and missed_at >= ?", [*params, since]
        return s.query(
            f"select {MISSED_COLUMNS} from marts.missed_contacts where {where} "
            "order by missed_at desc, message_key limit ?",
            [*params, int(limit)],
        ).dicts()
