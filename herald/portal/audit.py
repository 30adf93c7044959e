"""What portal users read and do, in ``herald_ops.audit_log`` (:func:`herald.compliance.audit.audit`).

``actor`` is ``portal:<email>`` (``portal:unknown`` for a sign-in with an email nobody has);
``action`` one of :data:`ACTIONS`; ``subject`` what was read or acted on (a page path, a user's
email; never a contact's address in clear). ``herald audit`` reads the rows back.

The session passed in is the portal's store (:mod:`herald.portal.store`): the warehouse on
PostgreSQL; on the embedded DuckDB a spool of the same table in the portal's own file, moved into
the warehouse's log between runs. :func:`query_merged` reads the log and the spool together.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict, Unpack

from herald.clock import realnow
from herald.compliance.audit import AUDIT_LOG, audit
from herald.contacts.phones import mask_email
from herald.warehouse.connection import Session

DEFAULT_LIMIT = 200  # audit rows a query answers unless told

LOGIN = "portal_login"
LOGIN_FAILED = "portal_login_failed"
LOCKOUT = "portal_lockout"
LOGOUT = "portal_logout"
TWO_FACTOR_ENROLLED = "portal_2fa_enrolled"
RECOVERY_CODE_USED = "portal_recovery_code_used"
RESET_REQUESTED = "portal_reset_requested"
PASSWORD_RESET = "portal_password_reset"
VIEW = "portal_view"
USER_ADDED = "portal_user_added"
USER_DISABLED = "portal_user_disabled"
TWO_FACTOR_RESET = "portal_2fa_reset"
PACKET_UPLOADED = "portal_packet_uploaded"
ACTIONS = (LOGIN, LOGIN_FAILED, LOCKOUT, LOGOUT, TWO_FACTOR_ENROLLED, RECOVERY_CODE_USED, RESET_REQUESTED,
           PASSWORD_RESET, VIEW, USER_ADDED, USER_DISABLED, TWO_FACTOR_RESET, PACKET_UPLOADED)  # fmt: skip
# the Inbox (herald/web/portal_inbox.py)
INBOX_REPLY = "portal_inbox_reply"
INBOX_NOTE = "portal_inbox_note"
INBOX_STATUS = "portal_inbox_status"
INBOX_ASSIGN = "portal_inbox_assign"
INBOX_UNREAD = "portal_inbox_unread"
QUICK_REPLY_SAVED = "portal_quick_reply_saved"
QUICK_REPLY_DELETED = "portal_quick_reply_deleted"
AUTO_REPLY_CHANGED = "portal_auto_reply_changed"
ACTIONS += (INBOX_REPLY, INBOX_NOTE, INBOX_STATUS, INBOX_ASSIGN, INBOX_UNREAD, QUICK_REPLY_SAVED, QUICK_REPLY_DELETED,
            AUTO_REPLY_CHANGED)  # fmt: skip
UNKNOWN_ACTOR = "portal:unknown"


def actor(email: str | None) -> str:
    return f"portal:{email}" if email else UNKNOWN_ACTOR


# the Reports page (herald/web/portal_reports.py)
REPORT_DOWNLOADED = "portal_report_downloaded"
ACTIONS += (REPORT_DOWNLOADED,)


def record(
    session: Session,
    who: str,
    action: str,
    client_id: str | None,
    subject: str | None = None,
    detail: Mapping[str, Any] | None = None,
    *,
    contact_id: str | None = None,
    reason: str | None = None,
    now: datetime | None = None,
) -> str:
    """One audit row, in ``session``'s transaction (with the change it records), at the real time
    (who read what, when, is a fact of the real world, not of a demo's shifted business clock)."""
    return audit(session, who, action, client_id, contact_id, subject, reason, detail, now=now or realnow())


def masked_login(email: str) -> str:
    """An email typed at the sign-in form, masked (it may be nobody's, or a typo of a password)."""
    return mask_email(email.strip()[:254]) or "(empty)"


@dataclass(frozen=True)
class AuditRow:
    occurred_at: datetime
    actor: str
    action: str
    client_id: str | None
    contact_id: str | None
    subject: str | None
    reason: str | None
    detail: dict[str, Any]


def _fetch(
    session: Session,
    *,
    client_id: str | None = None,
    user: str | None = None,
    since: datetime | None = None,
    action: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[tuple[str, AuditRow]]:
    where, params = ["1 = 1"], []
    if client_id:
        where.append("client_id = ?")
        params.append(client_id)
    if user:
        where.append("(actor = ? or actor = ?)")
        params += [user, actor(user.strip().lower())]
    if since:
        where.append("occurred_at >= ?")
        params.append(since)
    if action:
        where.append("action = ?")
        params.append(action)
    _, rows = session.query(
        f"select audit_id, occurred_at, actor, action, client_id, contact_id, subject, reason, detail from {AUDIT_LOG} "
        f"where {' and '.join(where)} order by occurred_at desc, audit_id limit {int(limit)}",
        params,
    )
    found = []
    for r in rows:
        try:
            detail = json.loads(r[8]) if r[8] else {}
        except (TypeError, ValueError):
            detail = {"text": str(r[8])}
        found.append((r[0], AuditRow(r[1], r[2], r[3], r[4], r[5], r[6], r[7], detail)))
    return found


class AuditFilters(TypedDict, total=False):
    """What :func:`query` and :func:`query_merged` select by (each optional; ``limit`` 200)."""

    client_id: str | None
    user: str | None
    since: datetime | None
    action: str | None
    limit: int


def query(session: Session, **filters: Unpack[AuditFilters]) -> list[AuditRow]:
    """Audit rows, newest first. ``user`` matches the actor exactly or as ``portal:<user>``."""
    return [row for _, row in _fetch(session, **filters)]


def query_merged(sessions: Sequence[Session], **filters: Unpack[AuditFilters]) -> list[AuditRow]:
    """:func:`query` over several stores at once (the warehouse's log and the portal store's spool
    on the embedded DuckDB), newest first, each ``audit_id`` once (a row being moved from the
    spool can be in both for a moment; the first session's copy wins)."""
    seen: dict[str, AuditRow] = {}
    for session in sessions:
        for audit_id, row in _fetch(session, **filters):
            seen.setdefault(audit_id, row)
    ordered = sorted(seen.items(), key=lambda item: item[0])
    ordered.sort(key=lambda item: item[1].occurred_at, reverse=True)
    return [row for _, row in ordered[: filters.get("limit", DEFAULT_LIMIT)]]
