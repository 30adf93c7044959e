"""The retention purge: removes or blanks what Herald no longer needs to keep, per data type,
as ``herald.yaml``'s ``retention`` block says (defaults: consent 5 years,
opt-outs 7, message content 3, delivery logs 1), and documents each purge in
``herald_ops.audit_log``.

Invariants the purge keeps:
- the current consent state survives: the latest consent event of every client, channel,
  address and scope is never deleted, however old;
- a superseded consent event is kept for ``consent_days`` after it was superseded (not after it
  happened): an opt-in from 2018 revoked in 2024 is the evidence for every message sent until
  2024, so its clock starts in 2024;
- only opt-out suppressions expire; hard bounces, complaints and manual blocks are kept;
- an outbox row loses its content (subject, bodies, headers) but keeps its key, status and
  address: the message key is what makes a repeated enqueue add nothing. A message that may
  still go out (queued, sending, held) keeps its content;
- the audit log itself is never purged (HIPAA documentation: 6 years).

Everything happens in the caller's session, so the purge and its audit rows commit together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from herald.compliance.audit import audit
from herald.config.models import Retention
from herald.warehouse.connection import Session

ACTOR = "retention"
ACTION = "purge"
PURGED_BODY = "[purged]"

CONSENT_EVENTS = "herald_ops.consent_events"
SUPPRESSIONS = "herald_ops.suppressions"
OUTBOX = "herald_ops.outbox"
DELIVERY_ATTEMPTS = "herald_ops.delivery_attempts"
INBOUND_MESSAGES = "herald_raw.inbound_messages"
INBOX_ENTRIES = "herald_ops.inbox_entries"  # the portal Inbox's replies and internal notes

# Statuses after which a message will never be sent, so its content may go.
FINAL_STATUSES = ("sent", "failed", "suppressed", "cancelled")


@dataclass(frozen=True)
class PurgeRule:
    """One table's rule: which rows are past retention (``where``, one ``?`` = the cutoff),
    and the statement that purges them (its own ``?`` = the cutoff)."""

    table: str
    days_setting: str
    description: str
    count_sql: str
    purge_sql: str


# Consent events superseded before the cutoff: lead() is the next event of the same client,
# channel, address and scope in the order marts.consent_status reads them (the latest has none).
_SUPERSEDED_BEFORE_CUTOFF = f"""
    select event_id from (
        select
            event_id,
            lead(occurred_at) over (
                partition by client_id, channel, address, scope
                order by occurred_at, recorded_at, event_id
            ) as superseded_at
        from {CONSENT_EVENTS}
    ) as ranked
    where superseded_at < ?
"""

_FINAL = ", ".join(f"'{s}'" for s in FINAL_STATUSES)
_OUTBOX_DUE = f"""
    coalesce(sent_at, enqueued_at) < ?
    and status in ({_FINAL})
    and (subject is not null or body_text is not null or body_html is not null or headers is not null)
"""

RULES: tuple[PurgeRule, ...] = (
    PurgeRule(
        CONSENT_EVENTS,
        "consent_days",
        "consent events superseded before the cutoff (the latest per client, channel, address and scope is kept)",
        f"select count(*) from {CONSENT_EVENTS} where event_id in ({_SUPERSEDED_BEFORE_CUTOFF})",
        f"delete from {CONSENT_EVENTS} where event_id in ({_SUPERSEDED_BEFORE_CUTOFF})",
    ),
    PurgeRule(
        SUPPRESSIONS,
        "opt_out_days",
        "opt-out suppressions created before the cutoff (bounces, complaints and blocks are kept)",
        f"select count(*) from {SUPPRESSIONS} where reason = 'opt_out' and created_at < ?",
        f"delete from {SUPPRESSIONS} where reason = 'opt_out' and created_at < ?",
    ),
    PurgeRule(
        OUTBOX,
        "message_content_days",
        "subject, bodies and headers of finished messages sent (or enqueued) before the cutoff; rows and keys kept",
        f"select count(*) from {OUTBOX} where {_OUTBOX_DUE}",
        f"update {OUTBOX} set subject = null, body_text = null, body_html = null, headers = null where {_OUTBOX_DUE}",
    ),
    PurgeRule(
        DELIVERY_ATTEMPTS,
        "delivery_log_days",
        "delivery attempts finished before the cutoff",
        f"select count(*) from {DELIVERY_ATTEMPTS} where finished_at < ?",
        f"delete from {DELIVERY_ATTEMPTS} where finished_at < ?",
    ),
    PurgeRule(
        INBOUND_MESSAGES,
        "message_content_days",
        f"bodies of inbound messages received before the cutoff, replaced by '{PURGED_BODY}'",
        f"select count(*) from {INBOUND_MESSAGES} where received_at < ? and body <> '{PURGED_BODY}'",
        f"update {INBOUND_MESSAGES} set body = '{PURGED_BODY}' where received_at < ? and body <> '{PURGED_BODY}'",
    ),
    PurgeRule(
        INBOX_ENTRIES,
        "message_content_days",
        f"texts of the portal Inbox's replies and internal notes written before the cutoff, replaced by '{PURGED_BODY}'",
        f"select count(*) from {INBOX_ENTRIES} where created_at < ? and body <> '{PURGED_BODY}'",
        f"update {INBOX_ENTRIES} set body = '{PURGED_BODY}' where created_at < ? and body <> '{PURGED_BODY}'",
    ),
)

PURGED_TABLES: tuple[str, ...] = tuple(rule.table for rule in RULES)


def cutoff(now: datetime, days: int) -> datetime:
    """The moment before which data of a type kept ``days`` days is past retention."""
    return now - timedelta(days=days)


def purge(session: Session, retention: Retention, now: datetime) -> dict[str, int]:
    """Purges every table past its retention at ``now`` (naive UTC) and writes one
    ``herald_ops.audit_log`` row per table it purged rows from. Returns rows purged per table
    (every table, 0 included). A second run at the same moment purges nothing."""
    counts: dict[str, int] = {}
    for rule in RULES:
        days = getattr(retention, rule.days_setting)
        before = cutoff(now, days)
        count = int(session.scalar(rule.count_sql, [before]) or 0)
        counts[rule.table] = count
        if not count:
            continue
        session.execute(rule.purge_sql, [before])
        detail = {
            "rows": count,
            "cutoff": before.isoformat(),
            rule.days_setting: days,
            "rule": rule.description,
        }
        audit(session, ACTOR, ACTION, None, None, rule.table, "past retention", detail, now=now)
    return counts
