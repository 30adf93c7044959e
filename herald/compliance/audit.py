"""``herald_ops.audit_log``: who or what changed consent, suppressed, cancelled or sent, when.

One row per action, written in the same transaction as the action itself, so the log never
claims something that was rolled back and never misses something that happened. ``subject``
names what was acted on without exposing it (a masked address, a message key); ``detail`` is
JSON text for whatever else an auditor needs.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from herald.clock import utcnow as _clock_now
from herald.warehouse.connection import Session
from herald.warehouse.schema import OPS_SCHEMA, column_names

AUDIT_LOG = f"{OPS_SCHEMA}.audit_log"
_COLUMNS = column_names(AUDIT_LOG)


def audit(
    session: Session,
    actor: str,
    action: str,
    client_id: str | None,
    contact_id: str | None,
    subject: str | None,
    reason: str | None,
    detail: Mapping[str, Any] | None = None,
    *,
    now: datetime | None = None,
) -> str:
    """Appends one audit row in ``session``'s transaction; returns its ``audit_id``."""
    audit_id = uuid.uuid4().hex
    values = {
        "audit_id": audit_id,
        "occurred_at": now or _clock_now(),
        "actor": actor,
        "action": action,
        "client_id": client_id,
        "contact_id": contact_id,
        "subject": subject,
        "reason": reason,
        "detail": json.dumps(dict(detail or {}), sort_keys=True, default=str),
    }
    session.execute(
        f"insert into {AUDIT_LOG} ({', '.join(_COLUMNS)}) values ({', '.join('?' * len(_COLUMNS))})",
        [values[c] for c in _COLUMNS],
    )
    return audit_id
