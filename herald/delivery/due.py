"""When the outbox next needs a delivery run, in one read-only query.

A delivery run has work when a ``queued`` message is due — its ``send_after`` (the send window
opening, a step's offset) and its ``next_attempt_at`` (a retry's backoff, an opt-out waiting to
be applied) both passed — or when a message a dead run left in ``sending`` is past its lease
(:func:`herald.delivery.engine.deliver_due` reconciles it). :func:`outbox_due` answers both,
and when the next such moment is, so a sensor can request a run the moment one is due instead
of polling on a timer.

:meth:`DueState.run_key` names what a run would process: the latest due moment among the
messages due now, how many there are and their latest change. A repeated look at the same
outbox gives the same key (a run is requested once); a message falling due, a message requeued
(a credit purchase, a retry) or a stale claim gives a new one. A message a run cannot send and
leaves untouched keeps the key, so it never makes a run per look.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from herald.delivery.outbox import OUTBOX
from herald.warehouse.connection import Session

# when a queued message may be claimed: the same rule as the claim (engine._claim)
_DUE_AT = "greatest(send_after, coalesce(next_attempt_at, send_after))"
_IS_DUE = "status = 'queued' and send_after <= ? and coalesce(next_attempt_at, send_after) <= ?"
_IS_STALE = "status = 'sending' and claimed_at <= ?"

DUE_SQL = f"""select
    min({_DUE_AT}) filter (where status = 'queued') as next_queued_at,
    min(claimed_at) filter (where status = 'sending') as oldest_claim_at,
    count(*) filter (where {_IS_DUE}) as due,
    max({_DUE_AT}) filter (where {_IS_DUE}) as latest_due_at,
    max(updated_at) filter (where {_IS_DUE}) as last_change_at,
    count(*) filter (where {_IS_STALE}) as stale,
    max(claimed_at) filter (where {_IS_STALE}) as latest_stale_claim_at
from {OUTBOX}
where status in ('queued', 'sending')"""


@dataclass(frozen=True)
class DueState:
    """What :func:`outbox_due` found at ``now`` (naive UTC)."""

    now: datetime
    due: int  # queued messages due now
    stale: int  # messages in 'sending' past their lease (a dead run's)
    next_due_at: datetime | None  # the earliest moment a run has work (<= now when it has now); None: never
    latest_due_at: datetime | None = None  # the latest due moment among the messages due now
    last_change_at: datetime | None = None  # their latest updated_at
    latest_stale_claim_at: datetime | None = None

    @property
    def has_work(self) -> bool:
        return bool(self.due or self.stale)

    def run_key(self) -> str | None:
        """Names the run that would deliver what is due now (None: nothing is)."""
        if not self.has_work:
            return None
        parts = [f"deliver:{_iso(self.latest_due_at)}", str(self.due), _iso(self.last_change_at)]
        if self.stale:
            parts += [f"stale{self.stale}", _iso(self.latest_stale_claim_at)]
        return ":".join(parts)

    def describe(self) -> str:
        """One line for a sensor's tick: what is due, or when the next message is."""
        if self.has_work:
            stale = f", {self.stale} left in sending by a dead run" if self.stale else ""
            return f"{self.due} messages due{stale}"
        if self.next_due_at is None:
            return "no queued message in the outbox"
        return f"no message due; the next one is due at {self.next_due_at:%Y-%m-%d %H:%M:%S} UTC"


def _iso(at: datetime | None) -> str:
    return at.isoformat(timespec="microseconds") if at is not None else "-"


def outbox_due(session: Session, now: datetime, lease_seconds: float) -> DueState:
    """The outbox's due state at ``now`` (naive UTC): one aggregate query over the ``queued``
    and ``sending`` rows (PostgreSQL's ``outbox_due`` index on status and send time serves it),
    after a look at the catalog for the table itself."""
    schema, table = OUTBOX.split(".")
    present = session.scalar(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?", [schema, table]
    )
    if not present:  # a fresh warehouse, before the first run created Herald's tables
        return DueState(now=now, due=0, stale=0, next_due_at=None)
    stale_before = now - timedelta(seconds=lease_seconds)
    _, rows = session.query(DUE_SQL, [now, now, now, now, now, now, stale_before, stale_before])
    next_queued, oldest_claim, due, latest_due, last_change, stale, latest_stale = rows[0]
    candidates = [t for t in (next_queued, oldest_claim and oldest_claim + timedelta(seconds=lease_seconds)) if t]
    return DueState(
        now=now,
        due=int(due or 0),
        stale=int(stale or 0),
        next_due_at=min(candidates) if candidates else None,
        latest_due_at=latest_due,
        last_change_at=last_change,
        latest_stale_claim_at=latest_stale,
    )
