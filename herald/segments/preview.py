"""Masked previews of segment members (materialization metadata, ``herald segment preview``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from herald.contacts.phones import mask_email, mask_phone
from herald.warehouse.connection import Warehouse


@dataclass(frozen=True)
class MemberPreview:
    contact_id: str
    external_id: str
    phone: str  # masked
    email: str  # masked
    name: str


def preview_members(warehouse: Warehouse, client_id: str, contact_ids: Sequence[str]) -> list[MemberPreview]:
    """The given members as masked rows, in the order given (ids not in the marts are skipped)."""
    if not contact_ids:
        return []
    with warehouse.session(read_only=True) as s:
        _, rows = s.query(
            "select contact_id, external_id, phone_e164, email, first_name, last_name from marts.contacts "
            f"where client_id = ? and contact_id in ({', '.join('?' for _ in contact_ids)})",
            [client_id, *contact_ids],
        )
    by_id = {str(r[0]): r for r in rows}
    previews = []
    for contact_id in contact_ids:
        row = by_id.get(contact_id)
        if row is None:
            continue
        name = " ".join(str(part) for part in row[4:6] if part)
        previews.append(MemberPreview(contact_id, row[1] or "", mask_phone(row[2]), mask_email(row[3]), name))
    return previews


def preview_markdown(previews: Sequence[MemberPreview]) -> str:
    """A Markdown table of contact id, masked phone and masked email."""
    lines = ["| contact_id | phone | email |", "|---|---|---|"]
    lines += [f"| {p.contact_id} | {p.phone} | {p.email} |" for p in previews]
    if not previews:
        lines.append("| (no members) | | |")
    return "\n".join(lines)
