"""When ``herald demo`` happens: its simulated clock (:mod:`herald.clock`).

The demo runs at a moment every example client may message its recipients — a weekday late
morning in the clinic's time zone (America/Chicago: 12:00 in New York, 10:00 in Denver, 09:00 on
the Pacific coast, inside every state's calling hours and the clinic's business hours) — so its
reminders and campaigns go out *now* instead of waiting for their send window. It then moves the
clock past the college nurture's three-day wait for a click, to the next such moment, so the
journeys take their paths.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from herald.clock import set_clock
from herald.delivery.engine import DeliveryOptions, deliver_due
from herald.providers.base import Provider
from herald.warehouse.connection import Warehouse

DEMO_TIME_ZONE = "America/Chicago"
DEMO_LOCAL_TIME = time(11, 0)
ADVANCE_AT_LEAST = timedelta(days=3, hours=1)  # past admitted_nurture's `wait_for: clicked` timeout (3d)
WEEKDAYS = range(5)  # Monday to Friday


def _to_utc(local: datetime) -> datetime:
    return local.astimezone(UTC).replace(tzinfo=None)


def next_demo_moment(after: datetime, time_zone: str = DEMO_TIME_ZONE, at: time = DEMO_LOCAL_TIME) -> datetime:
    """The first weekday ``at`` (local time in ``time_zone``) strictly after ``after`` (naive UTC),
    as naive UTC."""
    zone = ZoneInfo(time_zone)
    local = after.replace(tzinfo=UTC).astimezone(zone)
    day = local.date()
    while True:
        candidate = datetime.combine(day, at, tzinfo=zone)
        if candidate.weekday() in WEEKDAYS and _to_utc(candidate) > after:
            return _to_utc(candidate)
        day += timedelta(days=1)


def demo_start(real_now: datetime) -> datetime:
    """Where the demo's clock starts (naive UTC)."""
    return next_demo_moment(real_now)


def demo_advance(start: datetime) -> datetime:
    """Where the demo moves its clock after the first sends: the first demo moment at least
    :data:`ADVANCE_AT_LEAST` after ``start``."""
    return next_demo_moment(start + ADVANCE_AT_LEAST - timedelta(seconds=1))


def local_date(at: datetime, time_zone: str = DEMO_TIME_ZONE) -> date:
    """The demo's "today" (its packets' reference date) for a naive UTC moment."""
    return at.replace(tzinfo=UTC).astimezone(ZoneInfo(time_zone)).date()


def local_label(at: datetime, time_zone: str = DEMO_TIME_ZONE) -> str:
    """``Tuesday 8 December 2026, 11:00 America/Chicago``."""
    local = at.replace(tzinfo=UTC).astimezone(ZoneInfo(time_zone))
    return f"{local:%A} {local.day} {local:%B %Y, %H:%M} {time_zone}"


def deliver_between(
    warehouse: Warehouse,
    providers: Mapping[str, Provider],
    home: Path,
    options: DeliveryOptions,
    start: datetime,
    until: datetime,
) -> tuple[int, int]:
    """The outbox while the demo's clock jumps from ``start`` to ``until`` (naive UTC): every
    message queued for a time in between is delivered at that time, with the clock set to it,
    as a deployment's messages_due_sensor would have released it (the sandbox stamps its receipts
    then). Without this, the jump would skip those messages, and their journeys would move on
    from them unsent. Returns (moments the outbox ran at, messages sent)."""
    with warehouse.session(read_only=True) as s:
        _, rows = s.query(
            "select distinct send_after from herald_ops.outbox where status = 'queued' "
            "and send_after > ? and send_after < ? order by 1",
            [start, until],
        )
    sent = 0
    for (due,) in rows:
        set_clock(due, home)
        sent += deliver_due(warehouse, providers, now=due, options=options, inbound_home=home).sent
    return len(rows), sent
