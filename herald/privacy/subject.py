"""Who a privacy request is about: one client's contact, named by its contact id, phone number
or email address, and every table's rows that belong to it.

A person may be several contacts of a client (a packet row with a phone, another with only the
email): the subject is every contact of the client sharing the id, phone or email asked for, and
all their addresses. Nothing here writes.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime

from herald.compliance.manual import BlockError, read_address
from herald.warehouse.connection import Session
from herald.warehouse.schema import MARTS_SCHEMA, OPS_SCHEMA

SALT = f"{OPS_SCHEMA}.privacy_salt"
REQUESTS = f"{OPS_SCHEMA}.privacy_requests"
CONTACTS = f"{MARTS_SCHEMA}.contacts"
ERASED_PREFIX = "erased:"


class PrivacyError(ValueError):
    """A request Herald cannot carry out (unknown contact, bad identifier); nothing was changed."""


@dataclass(frozen=True)
class Subject:
    client_id: str
    contact_ids: tuple[str, ...]
    phones: tuple[str, ...]  # E.164
    emails: tuple[str, ...]  # lower-cased
    asked: str = field(repr=False)  # the identifier as normalized (a contact id, E.164 or email)

    @property
    def addresses(self) -> tuple[str, ...]:
        return self.phones + self.emails


def salt(session: Session, *, create: bool = False) -> str:
    """The deployment's erasure salt; made (random, 32 bytes) by the first erasure when ``create``."""
    value = session.scalar(f"select max(salt) from {SALT}")
    if value is None and create:
        value = secrets.token_hex(32)
        session.execute(f"insert into {SALT} (salt, created_at) values (?, ?)", [value, datetime.now()])
    return value or ""


def hashed(salt_value: str, value: str) -> str:
    """``'erased:' + sha256(salt + value)``: what the plan compares each recipient's address with
    (dbt macro ``sha256_hex``); irreversible without the salt, and a phone space is too large to
    guess against a salted hash kept apart from the data."""
    return ERASED_PREFIX + hashlib.sha256((salt_value + value).encode()).hexdigest()


def normalize(identifier: str, default_region: str) -> tuple[str, str]:
    """(kind, value): ``('contact_id', id)``, ``('sms', E.164)`` or ``('email', address)``. Anything
    that reads as neither a phone nor an email is taken as a contact id."""
    text = identifier.strip()
    if not text:
        raise PrivacyError("CONTACT is empty: give a contact id, a phone number or an email address")
    try:
        address = read_address(text, default_region)
    except BlockError:
        return "contact_id", text
    return address.channel, address.value


def _table_exists(session: Session, schema: str, table: str) -> bool:
    return bool(
        session.scalar(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, table],
        )
    )


def resolve(session: Session, client_id: str, identifier: str, default_region: str) -> Subject | None:
    """The client's contacts the identifier names (by id, phone or email), or None."""
    kind, value = normalize(identifier, default_region)
    if not _table_exists(session, MARTS_SCHEMA, "contacts"):
        return None
    column = {"contact_id": "contact_id", "sms": "phone_e164", "email": "lower(email)"}[kind]
    _, seeds = session.query(
        f"select contact_id, phone_e164, lower(email) from {CONTACTS} where client_id = ? and {column} = ?",
        [client_id, value],
    )
    if not seeds and kind == "contact_id":
        # a phone or email typed in a form read_address does not take, compared as written
        _, seeds = session.query(
            f"select contact_id, phone_e164, lower(email) from {CONTACTS} "
            "where client_id = ? and (phone_e164 = ? or lower(email) = lower(?))",
            [client_id, value, value],
        )
    if not seeds:
        return None
    phones = sorted({p for _, p, _ in seeds if p})
    emails = sorted({e for _, _, e in seeds if e})
    # every contact of the client sharing one of those addresses is the same person
    marks = ", ".join("?" * len(phones)) or "null"
    email_marks = ", ".join("?" * len(emails)) or "null"
    _, rows = session.query(
        f"select contact_id from {CONTACTS} where client_id = ? "
        f"and (phone_e164 in ({marks}) or lower(email) in ({email_marks}) or contact_id in ({', '.join('?' * len(seeds))}))",
        [client_id, *phones, *emails, *[c for c, _, _ in seeds]],
    )
    contact_ids = tuple(sorted({r[0] for r in rows}))
    return Subject(client_id, contact_ids, tuple(phones), tuple(emails), value)


def subject_hashes(salt_value: str, subject: Subject) -> list[str]:
    """The salted hashes of every identifier of the subject (what it was asked by, its contact
    ids, phones and emails): how a later request by any of them finds the erasure."""
    values = {subject.asked, *subject.contact_ids, *subject.addresses}
    return sorted(hashed(salt_value, v) for v in values)


def already_erased(session: Session, client_id: str, identifier: str, default_region: str) -> datetime | None:
    """When the person the identifier names was erased for the client, if they were."""
    _, value = normalize(identifier, default_region)
    salt_value = salt(session)
    if not salt_value:
        return None
    return session.scalar(
        f"select max(completed_at) from {REQUESTS} where client_id = ? and kind = 'erase' "
        "and status = 'done' and subject_hash like ?",
        [client_id, f"%{hashed(salt_value, value)}%"],
    )
