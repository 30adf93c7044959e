"""Send calendars: which local days a client (or one of its campaigns) sends on, and its hours
on each — the one rule behind the plan's window step (through ``herald_ops.campaign_send_windows``
and ``herald_ops.closed_days``, written by herald.warehouse.config_tables) and its Python twin
(herald.compliance.send_window).

A day is closed when it is not one of ``send_days``, is one of ``closed_days``, or is a public
holiday of the ``holidays`` calendar (the ``holidays`` package, by country and subdivision). A
campaign's own ``send_window:`` replaces the client's key by key. A closed day is a *local* day of
the recipient (the plan looks at each of their time zones), and a message due on one waits for
the next allowed moment; its reason names the day and why, e.g. ``deferred: 2026-12-25 is a
holiday (Christmas Day, US)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import TYPE_CHECKING

from herald.config.calendars import DAY_LABELS, HolidayCalendar, SendWindow

if TYPE_CHECKING:
    from herald.config.models import Deployment

HOLIDAY_YEARS_BEFORE, HOLIDAY_YEARS_AFTER = 1, 2  # around the clock's year: the plan looks 8 days on


@dataclass(frozen=True)
class SendCalendar:
    """A client's or campaign's own hours per ISO day (None: not a send day) and its closed dates."""

    hours: tuple[tuple[int, int] | None, ...]  # index iso_day - 1
    closed: Mapping[date, str] = field(default_factory=dict)  # date → "a holiday (Christmas Day, US)"

    def minutes(self, day: date) -> tuple[int, int] | None:
        """(start, end) minutes after local midnight on ``day``, or None when the day is closed."""
        if day in self.closed:
            return None
        return self.hours[day.isoweekday() - 1]

    def closed_reason(self, day: date) -> str | None:
        """Why ``day`` is closed ('2026-12-25 is a holiday (Christmas Day, US)'), or None."""
        if day in self.closed:
            return f"{day.isoformat()} is {self.closed[day]}"
        if self.hours[day.isoweekday() - 1] is None:
            return f"{day.isoformat()} is {not_a_send_day(day.isoweekday())}"
        return None


def not_a_send_day(iso_day: int) -> str:
    return f"not a send day ({DAY_LABELS[iso_day - 1]})"


@lru_cache(maxsize=256)
def _holiday_dates(calendar: HolidayCalendar, first_year: int, last_year: int) -> tuple[tuple[date, str], ...]:
    return tuple(calendar.dates(range(first_year, last_year + 1)).items())


def holiday_reasons(calendar: HolidayCalendar, year: int) -> dict[date, str]:
    """Each public holiday around ``year`` → 'a holiday (<name>, <country[-subdivision]>)'."""
    found = _holiday_dates(calendar, year - HOLIDAY_YEARS_BEFORE, year + HOLIDAY_YEARS_AFTER)
    return {day: f"a holiday ({name}, {calendar.label})" for day, name in found}


def calendar_for(deployment: Deployment, client_id: str, campaign: str | None = None, *, year: int) -> SendCalendar:
    """The calendar of ``client_id`` (or of its ``campaign``, whose own ``send_window`` keys win):
    herald.yaml's safe window (the whole day under ``legal_minimum``) narrowed by the business
    hours, on the send days only, minus closed days and public holidays around ``year``."""
    client = deployment.clients[client_id]
    own = client.config.send_window
    override = client.campaigns[campaign].send_window if campaign in client.campaigns else None

    def pick(key: str):
        value = getattr(override, key) if override is not None else None
        return value if value is not None else getattr(own, key)

    business_hours: SendWindow | None = pick("business_hours")
    send_days = pick("send_days") or tuple(range(1, 8))
    hours: list[tuple[int, int] | None] = []
    for iso_day in range(1, 8):
        start, end = (
            (0, 24 * 60) if own.policy == "legal_minimum" else deployment.herald.defaults.send_window.minutes(iso_day)
        )
        if business_hours is not None:
            hours_start, hours_end = business_hours.minutes(iso_day)
            start, end = max(start, hours_start), min(end, hours_end)
        hours.append((start, end) if iso_day in send_days and start < end else None)
    closed: dict[date, str] = {}
    if (holidays := pick("holidays")) is not None:
        closed.update(holiday_reasons(holidays, year))
    for day in pick("closed_days") or ():
        closed[day.date] = "a closed day" if day.reason == "closed" else f"a closed day ({day.reason})"
    return SendCalendar(hours=tuple(hours), closed=closed)
