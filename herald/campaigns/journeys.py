"""Journeys: the enrollment ledger a send pass moves forward.

Each send run is a *pass*: it records the moment it plans at (``herald_ops.plan_runs``), dbt
walks every enrollment still going and every new one through its campaign's steps
(``intermediate.int_journey__walk``), plans the messages the walk reached
(``marts.message_plan``) and says what became of each enrollment
(``marts.journey_transitions``). :func:`apply_transitions` then writes that to the ledger in the
run's transaction:

- ``herald_ops.enrollments``: one row per campaign × contact × enrollment, with the step the
  contact is at, its status (active, waiting, completed, exited), when it is due again and the
  exit reason;
- ``herald_ops.enrollment_events``: the trail, one row per step passed (entered, a message, a
  path taken, a wait, a carry-over by the daily limit, an exit, the end), with deterministic ids,
  so applying the same pass twice records nothing twice;
- an enrollment that exited has its queued and held messages cancelled (the outbox's one cancel
  path), and the exit is audited.

The pass is idempotent end to end: message keys are deterministic per enrollment and step, the
plan appends a key once, the outbox enqueues a key once, and a pass that crashed before this
function ran is simply walked again from the ledger as it was.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from herald.compliance.audit import audit
from herald.delivery.outbox import cancel_messages
from herald.warehouse.connection import Session
from herald.warehouse.schema import OPS_SCHEMA, column_names

ENROLLMENTS = f"{OPS_SCHEMA}.enrollments"
ENROLLMENT_EVENTS = f"{OPS_SCHEMA}.enrollment_events"
PLAN_RUNS = f"{OPS_SCHEMA}.plan_runs"
TRANSITIONS = "marts.journey_transitions"
# the dbt models of a pass, in order: the clock, what contacts did, who enters, the walk, the
# messages it reached (the plan's stages, then the plan), what became of each enrollment
PLAN_MODELS = (
    "int_journey__clock",
    "int_journey__contact_events",
    "int_journey__new_enrollments",
    "int_journey__walk",
    "int_message_plan__candidates",
    "int_message_plan__judged",
    "int_message_plan__timed",
    "int_message_plan__limited",
    "int_message_plan__capped",
    "message_plan",
    "journey_transitions",
)
# the walk's outcome → the trail's event
EVENT_OF_OUTCOME = {
    "message": "message",
    "moved": "path",
    "waiting": "waiting",
    "carried_over": "carried_over",
    "exited": "exited",
    "completed": "completed",
}


@dataclass
class JourneyReport:
    enrolled: int = 0
    events: int = 0
    exited: int = 0
    completed: int = 0
    waiting: int = 0
    carried_over: int = 0
    cancelled: int = 0
    exit_reasons: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        text = (
            f"{self.enrolled} enrolled, {self.waiting} waiting, {self.carried_over} carried over by a daily limit, "
            f"{self.completed} completed, {self.exited} exited ({self.cancelled} queued messages cancelled)"
        )
        return text + "".join(f"\n  exited: {reason} ({n})" for reason, n in self.exit_reasons.most_common(5))


def record_plan_run(session: Session, run_id: str, as_of: datetime, now: datetime) -> None:
    """The clock this pass plans at (a simulation passes its own ``as_of``)."""
    session.execute(f"delete from {PLAN_RUNS} where run_id = ?", [run_id])
    session.insert_rows(PLAN_RUNS, column_names(PLAN_RUNS), [(run_id, as_of, now)])


def _event_id(*parts: Any) -> str:
    return hashlib.md5("|".join("" if p is None else str(p) for p in parts).encode()).hexdigest()


def _transitions(session: Session) -> list[dict[str, Any]]:
    found = session.scalar(
        "select count(*) from information_schema.tables where table_schema = 'marts' "
        "and table_name = 'journey_transitions'"
    )
    if not found:
        return []
    names, rows = session.query(f"select * from {TRANSITIONS} order by enrollment_id, hop")
    return [dict(zip(names, row, strict=False)) for row in rows]


def _ledger_row(final: dict[str, Any], now: datetime) -> tuple:
    """The enrollment as its final transition leaves it."""
    outcome = final["outcome"]
    step, step_at = final["step"], final["arrived_at"]
    if outcome in ("message", "moved"):  # walked as far as a pass goes: continue from the next step
        step, step_at = final["next_step"], final["next_arrived_at"]
    ended = outcome in ("completed", "exited")
    wait_reason = final["reason"] if final["status"] in ("waiting", "active") and not ended else None
    rule = final["enrollment_rule"] or "every_occurrence"
    return (
        final["enrollment_id"], final["client_id"], final["campaign"], final["contact_id"], final["occurrence"],
        rule, final["config_version"] or "", final["entered_at"],
        None if ended else step, None if ended else step_at, final["status"],
        None if ended else final["next_at"], wait_reason,
        final["reason"] if outcome == "exited" else None, final["as_of"] if ended else None, now,
    )  # fmt: skip


def apply_transitions(session: Session, requested_by: str, now: datetime) -> JourneyReport:
    """Write the last pass's ``marts.journey_transitions`` to the ledger and its trail (in the
    session's transaction); cancel the queued messages of enrollments that exited."""
    report = JourneyReport()
    rows = _transitions(session)
    if not rows:
        return report
    events: list[tuple] = []
    finals: list[dict[str, Any]] = []
    for row in rows:
        if row["is_new"] and row["hop"] == 0:
            report.enrolled += 1
            events.append(
                (
                    _event_id(row["enrollment_id"], None, "enrolled", row["entered_at"]), row["enrollment_id"],
                    row["client_id"], row["campaign"], row["contact_id"], None, "enrolled", None,
                    f"entered ({row['enrollment_rule'] or 'every_occurrence'})", None, row["entered_at"], now,
                )
            )  # fmt: skip
        event = EVENT_OF_OUTCOME.get(row["outcome"], row["outcome"])
        # when it happened: a path when it was taken (the event, the timeout), an exit by the
        # criteria when the pass saw it, anything else when the contact reached the step
        occurred = row["arrived_at"] if row["arrived_at"] is not None else row["as_of"]
        if row["outcome"] == "moved" and row["next_arrived_at"] is not None:
            occurred = row["next_arrived_at"]
        elif row["outcome"] == "exited":
            occurred = min(occurred, row["as_of"])
        events.append(
            (
                _event_id(row["enrollment_id"], row["step"], event, row["path"], occurred), row["enrollment_id"],
                row["client_id"], row["campaign"], row["contact_id"], row["step"], event, row["path"], row["reason"],
                row["message_key"], occurred, now,
            )
        )  # fmt: skip
        if row["is_final"]:
            finals.append(row)
    # the trail: insert the events not recorded yet (a repeated pass repeats its ids)
    ids = [e[0] for e in events]
    known: set[str] = set()
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        _, found = session.query(
            f"select event_id from {ENROLLMENT_EVENTS} where event_id in ({', '.join('?' * len(chunk))})", chunk
        )
        known |= {r[0] for r in found}
    fresh = list({e[0]: e for e in events if e[0] not in known}.values())
    report.events = session.insert_rows(ENROLLMENT_EVENTS, column_names(ENROLLMENT_EVENTS), fresh) if fresh else 0
    # the ledger: replace each walked enrollment's row
    ledger = [_ledger_row(f, now) for f in finals]
    keys = [r[0] for r in ledger]
    for start in range(0, len(keys), 1000):
        chunk = keys[start : start + 1000]
        session.execute(f"delete from {ENROLLMENTS} where enrollment_id in ({', '.join('?' * len(chunk))})", chunk)
    session.insert_rows(ENROLLMENTS, column_names(ENROLLMENTS), ledger)
    for final in finals:
        status = final["status"]
        if final["outcome"] == "carried_over":
            report.carried_over += 1
        elif status == "waiting":
            report.waiting += 1
        elif status == "completed":
            report.completed += 1
        elif status == "exited":
            report.exited += 1
            report.exit_reasons[final["reason"]] += 1
            cancelled = cancel_messages(
                session,
                "client_id = ? and campaign = ? and contact_id = ? and occurrence = ?",
                [final["client_id"], final["campaign"], final["contact_id"], final["occurrence"]],
                f"journey exited: {final['reason']}",
                now,
            )
            report.cancelled += len(cancelled)
            audit(
                session, requested_by, "journey_exit", final["client_id"], final["contact_id"],
                f"{final['campaign']} enrollment", final["reason"] or "exited",
                {"enrollment_id": final["enrollment_id"], "cancelled": cancelled},
            )  # fmt: skip
    return report
