"""Segment membership snapshots: ``marts.segment_members`` holds the current members;
``herald_ops.segment_membership_events`` records every entry and exit (what the
``segment_entry`` trigger reads)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from herald.clock import utcnow as _clock_now
from herald.warehouse.connection import Session, Warehouse

MEMBERS_TABLE = "marts.segment_members"
EVENTS_TABLE = "herald_ops.segment_membership_events"
PREVIEW_SIZE = 5
_CHUNK = 500


@dataclass(frozen=True)
class SnapshotResult:
    size: int
    entered: int
    exited: int
    preview_ids: list[str] = field(default_factory=list)


def _utcnow() -> datetime:
    return _clock_now()


def snapshot_segment(
    warehouse: Warehouse, client_id: str, segment_name: str, contact_ids: Iterable[str], now: datetime | None = None
) -> SnapshotResult:
    """Make ``contact_ids`` the segment's members in one transaction: newcomers enter (with
    ``entered_at`` = now and an ``entered`` event), the departed exit (row deleted, ``exited``
    event), everyone else keeps their ``entered_at``. The same ids again change nothing."""
    now = now or _utcnow()
    wanted = set(contact_ids)
    with warehouse.session() as s:
        current = {
            str(r[0])
            for r in s.query(
                f"select contact_id from {MEMBERS_TABLE} where client_id = ? and segment_name = ?",
                [client_id, segment_name],
            )[1]
        }
        entered = sorted(wanted - current)
        exited = sorted(current - wanted)
        for chunk in _chunks(exited):
            s.execute(
                f"delete from {MEMBERS_TABLE} where client_id = ? and segment_name = ? "
                f"and contact_id in ({', '.join('?' for _ in chunk)})",
                [client_id, segment_name, *chunk],
            )
        s.execute(
            f"update {MEMBERS_TABLE} set snapshot_at = ? where client_id = ? and segment_name = ?",
            [now, client_id, segment_name],
        )
        s.insert_rows(
            MEMBERS_TABLE,
            ["client_id", "segment_name", "contact_id", "entered_at", "snapshot_at"],
            [(client_id, segment_name, c, now, now) for c in entered],
        )
        _events(s, client_id, segment_name, entered, "entered", now)
        _events(s, client_id, segment_name, exited, "exited", now)
    return SnapshotResult(
        size=len(wanted), entered=len(entered), exited=len(exited), preview_ids=sorted(wanted)[:PREVIEW_SIZE]
    )


def _events(s: Session, client_id: str, segment_name: str, ids: Sequence[str], event: str, now: datetime) -> None:
    s.insert_rows(
        EVENTS_TABLE,
        ["client_id", "segment_name", "contact_id", "event", "occurred_at"],
        [(client_id, segment_name, c, event, now) for c in ids],
    )


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]
