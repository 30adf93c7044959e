"""The send-window rule in Python: the twin of ``marts.message_plan``'s window step, for messages
that do not go through the plan (a manual reply from ``herald reply``).

The rule (docs/compliance.md, quiet hours): the recipient's zones are their own time zone, else their
ZIP's, else every zone of their phone's area code, else the client's; each zone's window on a
local day is the client's own hours (policy and business hours, send days, closed days and
holidays: herald.compliance.calendars, ``herald_ops.campaign_send_windows`` and ``closed_days``)
intersected with the law of the recipient's state (``herald_ops.legal_windows``; the federal
rule where the state has none). A message goes at the earliest moment at or after the time it
is due that lies inside the window of *every* zone, looking eight local days ahead — the same
candidates the SQL considers (the due time itself, or the opening of some zone's window), so
both sides agree to the minute. Local wall times become UTC with ``zoneinfo`` (DST-correct).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from herald.compliance.calendars import SendCalendar
from herald.compliance.regions import phone_region, postal_region
from herald.compliance.windows import FEDERAL, legal_window_rows

SEARCH_DAYS = 8  # as the plan's day_offsets: a week and a day covers every weekly rule
LegalRow = tuple[str, int, int, int]  # (jurisdiction, ISO day of week, start minute, end minute)
ClientMinutes = Callable[[int], tuple[int, int]] | Mapping[int, tuple[int, int]] | SendCalendar


def _local_to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    """A naive local wall time in ``zone`` → naive UTC (fold=0: the first of a repeated hour)."""
    return local.replace(tzinfo=zone).astimezone(UTC).replace(tzinfo=None)


def _utc_to_local(at_utc: datetime, zone: ZoneInfo) -> datetime:
    return at_utc.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)


def _law(legal_rows: Iterable[LegalRow], state: str | None) -> dict[int, tuple[int, int]]:
    """ISO day → (start, end) minutes of the law that applies: the state's rule, else federal."""
    federal: dict[int, tuple[int, int]] = {}
    own: dict[int, tuple[int, int]] = {}
    for jurisdiction, day, start, end in legal_rows:
        if jurisdiction == FEDERAL:
            federal[day] = (start, end)
        elif state is not None and jurisdiction == state:
            own[day] = (start, end)
    return {day: own.get(day, federal[day]) for day in federal}


def zone_intervals(
    at_utc: datetime, zone_name: str, state: str | None, client_minutes: ClientMinutes, legal_rows: Iterable[LegalRow]
) -> list[tuple[datetime, datetime]]:
    """One zone's allowed [opens, closes) intervals in naive UTC, for the local days from the
    one ``at_utc`` falls on through the next ``SEARCH_DAYS - 1``."""
    zone = ZoneInfo(zone_name)
    law = _law(legal_rows, state)
    first_day = _utc_to_local(at_utc, zone).replace(hour=0, minute=0, second=0, microsecond=0)
    intervals = []
    for offset in range(SEARCH_DAYS):
        day = first_day + timedelta(days=offset)
        iso_day = day.isoweekday()
        if isinstance(client_minutes, SendCalendar):  # hours per date: closed days have none
            own = client_minutes.minutes(day.date())
        elif isinstance(client_minutes, Mapping):
            own = client_minutes.get(iso_day)
        else:
            own = client_minutes(iso_day)
        if own is None:
            continue
        start = max(own[0], law[iso_day][0])
        end = min(own[1], law[iso_day][1])
        if start < end:
            intervals.append(
                (_local_to_utc(day + timedelta(minutes=start), zone), _local_to_utc(day + timedelta(minutes=end), zone))
            )
    return intervals


def next_allowed_moment(
    at_utc: datetime,
    zones: Sequence[str],
    state: str | None,
    client_minutes: ClientMinutes,
    legal_rows: Iterable[LegalRow] | None = None,
) -> datetime | None:
    """The earliest naive-UTC instant at or after ``at_utc`` inside the window of every zone in
    ``zones``, or None when there is none within ``SEARCH_DAYS`` local days.

    ``client_minutes`` gives the client's own (start, end) minutes after local midnight per ISO
    day of week (a callable, e.g. ``partial(client_window, deployment, client_id)``, or a dict),
    or per date (a :class:`~herald.compliance.calendars.SendCalendar`, closed days included);
    ``legal_rows`` the calling-hours law (default: ``legal_window_rows()``)."""
    if not zones:
        raise ValueError("a recipient needs at least one time zone")
    rows = tuple(legal_window_rows() if legal_rows is None else legal_rows)
    by_zone = {z: zone_intervals(at_utc, z, state, client_minutes, rows) for z in dict.fromkeys(zones)}
    candidates = {at_utc} | {opens for intervals in by_zone.values() for opens, _ in intervals if opens > at_utc}
    for moment in sorted(candidates):
        if all(any(opens <= moment < closes for opens, closes in intervals) for intervals in by_zone.values()):
            return moment
    return None


def recipient_zones(
    contact_time_zone: str | None, postal_code: str | None, phone_e164: str | None, client_time_zone: str
) -> tuple[tuple[str, ...], str | None]:
    """(time zones, US state or None) of a recipient, as the plan picks them: their own zone,
    else their ZIP's, else every zone of their phone's area code, else the client's; the state
    from the ZIP, else from the area code."""
    postal_zone, postal_state = postal_region(postal_code) if postal_code else (None, None)
    phone_zones, phone_state = phone_region(phone_e164) if phone_e164 else ((), None)
    if contact_time_zone:
        zones: tuple[str, ...] = (contact_time_zone,)
    elif postal_zone:
        zones = (postal_zone,)
    elif phone_zones:
        zones = tuple(phone_zones)
    else:
        zones = (client_time_zone,)
    return zones, postal_state or phone_state
