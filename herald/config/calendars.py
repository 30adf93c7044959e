"""Send windows and calendars as configuration: hours of the day, the days of the week a
client (or one campaign) sends on, the dates it is closed, and the public-holiday calendar
(the ``holidays`` package) whose days it keeps free of messages.

Kept apart from :mod:`herald.config.models` so that campaigns (``campaigns.py``) can carry a
window of their own; ``models.py`` re-exports :class:`SendWindow`.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from pydantic import Field, field_validator, model_validator

from herald.config.base import MappingProblems, Strict

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_LABELS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_FULL_NAMES = {label.lower(): name for label, name in zip(DAY_LABELS, DAY_NAMES, strict=True)}
_CLOCK_RE = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")
MAX_CLOSED_DAYS = 1_000
MAX_REASON_CHARS = 100


def clock_minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def check_clock(value: str) -> str:
    if not _CLOCK_RE.match(value):
        raise ValueError(f"{value!r} is not a time of day; write HH:MM on a 24-hour clock, e.g. '09:00'")
    return value


class SendWindow(Strict):
    """Local hours messages may go out (TCPA: 8:00-21:00 at the latest; Herald's default is
    narrower). A message due outside the window is deferred to the next allowed moment."""

    start: str = "09:00"
    end: str = "20:00"
    sunday_start: str = "12:00"

    _clock = field_validator("start", "end", "sunday_start")(check_clock)

    @model_validator(mode="after")
    def _ordered(self) -> SendWindow:
        for start in (self.start, self.sunday_start):
            if clock_minutes(start) >= clock_minutes(self.end):
                raise ValueError(f"the window must start before it ends ({start} is not before {self.end})")
        return self

    def minutes(self, iso_day_of_week: int) -> tuple[int, int]:
        """(start, end) minutes after local midnight on an ISO day of week (7 = Sunday)."""
        start = self.sunday_start if iso_day_of_week == 7 else self.start
        return clock_minutes(start), clock_minutes(self.end)


def _day(token: str, whole: Any) -> int:
    name = token.strip().lower()
    name = _FULL_NAMES.get(name, name)
    if name not in DAY_NAMES:
        within = f" (in {whole!r})" if whole != token.strip() else ""
        raise ValueError(
            f"{token.strip()!r}{within} is not a day of the week; use {', '.join(DAY_NAMES)} or a range such as mon-fri"
        )
    return DAY_NAMES.index(name) + 1


def parse_send_days(value: Any) -> tuple[int, ...]:
    """``mon-fri`` | ``[mon, wed, fri]`` | ``"mon-fri, sun"`` → sorted ISO days (1 = Monday).
    A range wraps past Sunday (``fri-mon``). Anything else is a ValueError naming the value."""
    items = value if isinstance(value, list) else [value]
    days: set[int] = set()
    for item in items:
        if not isinstance(item, str):
            raise ValueError(
                f"{item!r} is not a day of the week; use {', '.join(DAY_NAMES)} or a range such as mon-fri"
            )
        for part in item.split(","):
            if "-" in part:
                first, _, last = part.partition("-")
                start, end = _day(first, item), _day(last, item)
                span = (end - start) % 7
                days.update((start - 1 + i) % 7 + 1 for i in range(span + 1))
            else:
                days.add(_day(part, item))
    if not days:
        raise ValueError("send_days lists no day; name at least one, e.g. mon-fri")
    return tuple(sorted(days))


class ClosedDay(Strict):
    """A date the client sends nothing on, with the reason a deferred message gives."""

    date: date
    reason: str = Field(default="closed", min_length=1, max_length=MAX_REASON_CHARS)

    @field_validator("date", mode="before")
    @classmethod
    def _date(cls, value: Any) -> Any:
        if isinstance(value, datetime):
            raise ValueError(f"{value.isoformat()!r} is a date and time; write the date alone, e.g. 2026-12-24")
        if isinstance(value, date):
            return value
        text = str(value).strip()
        try:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                raise ValueError(text)
            return date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{value!r} is not a date; write YYYY-MM-DD, e.g. 2026-12-24") from None


@lru_cache(maxsize=1)
def _supported() -> dict[str, list[str]]:
    import holidays

    return holidays.list_supported_countries()


class HolidayCalendar(Strict):
    """Public holidays of a country (ISO 3166-1 alpha-2) and, optionally, one of its
    subdivisions (a state or province code, e.g. ``{country: US, subdivision: TX}``)."""

    country: str
    subdivision: str | None = None

    @field_validator("country")
    @classmethod
    def _country(cls, value: str) -> str:
        if value not in _supported():
            raise ValueError(f"unknown holiday country {value!r}; use a two-letter country code such as 'US'")
        return value

    @model_validator(mode="after")
    def _subdivision(self) -> HolidayCalendar:
        if self.subdivision is not None and self.subdivision not in _supported()[self.country]:
            known = ", ".join(_supported()[self.country][:12]) or "none"
            message = f"unknown subdivision {self.subdivision!r} of {self.country} (known: {known}, ...)"
            raise MappingProblems([("subdivision", message)])
        return self

    @property
    def label(self) -> str:
        return f"{self.country}-{self.subdivision}" if self.subdivision else self.country

    def dates(self, years: range) -> dict[date, str]:
        """Each holiday in ``years`` → its name (several on one day joined by '; ')."""
        import holidays

        found = holidays.country_holidays(self.country, subdiv=self.subdivision, years=list(years))
        return {day: str(name) for day, name in sorted(found.items())}


class CalendarRules(Strict):
    """The calendar part of a send window: ``send_days`` (default every day), ``closed_days``
    (dates, each a date or ``{date, reason}``) and ``holidays`` (a public-holiday calendar)."""

    send_days: tuple[int, ...] | None = None
    closed_days: list[ClosedDay] | None = Field(default=None, max_length=MAX_CLOSED_DAYS)
    holidays: HolidayCalendar | None = None

    @field_validator("send_days", mode="before")
    @classmethod
    def _send_days(cls, value: Any) -> Any:
        return None if value is None else parse_send_days(value)

    @field_validator("closed_days", mode="before")
    @classmethod
    def _closed_days(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"date": item} if not isinstance(item, dict) else item for item in value]
        return value
