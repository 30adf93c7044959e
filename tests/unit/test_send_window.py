"""The send-window rule in Python (herald/compliance/send_window.py), the twin of the message
plan's: the law of the recipient's state ∩ the client's hours, in every zone of the recipient,
DST-correct; and how a recipient's zones and state are picked."""

from __future__ import annotations

from datetime import datetime

import pytest

from herald.compliance.send_window import next_allowed_moment, recipient_zones
from herald.config.models import SendWindow

SAFE_DEFAULT = SendWindow().minutes  # 9:00-20:00, Sundays from 12:00
LEGAL_MINIMUM = dict.fromkeys(range(1, 8), (0, 24 * 60))  # only the law
NEW_YORK, CHICAGO, BOISE, LOS_ANGELES = "America/New_York", "America/Chicago", "America/Boise", "America/Los_Angeles"


@pytest.mark.parametrize(
    ("case", "at_utc", "zones", "state", "client", "expected"),
    [
        # Florida (8-20) at 20:15 EST on Tuesday 24 Nov: the next morning
        ("FL safe default", datetime(2026, 11, 25, 1, 15), [NEW_YORK], "FL", SAFE_DEFAULT, datetime(2026, 11, 25, 14, 0)),
        ("FL legal minimum", datetime(2026, 11, 25, 1, 15), [NEW_YORK], "FL", LEGAL_MINIMUM, datetime(2026, 11, 25, 13, 0)),
        # federal law allows 20:15 elsewhere under legal_minimum; the safe default does not
        ("NY legal minimum", datetime(2026, 11, 25, 1, 15), [NEW_YORK], "NY", LEGAL_MINIMUM, datetime(2026, 11, 25, 1, 15)),
        # Texas: Sundays from noon (22 Nov 2026 is a Sunday; 10:00 CST = 16:00 UTC)
        ("TX Sunday", datetime(2026, 11, 22, 16, 0), [CHICAGO], "TX", LEGAL_MINIMUM, datetime(2026, 11, 22, 18, 0)),
        ("TX Monday", datetime(2026, 11, 23, 16, 0), [CHICAGO], "TX", LEGAL_MINIMUM, datetime(2026, 11, 23, 16, 0)),
        # Idaho's area code spans Mountain and Pacific time: 08:30 MST is 07:30 PST, so it waits
        # for 08:00 in Los Angeles
        ("ID morning", datetime(2026, 11, 23, 15, 30), [BOISE, LOS_ANGELES], "ID", LEGAL_MINIMUM,
         datetime(2026, 11, 23, 16, 0)),
        # 20:30 PST is 21:30 MST: Boise is closed, so the next morning, once both are open
        ("ID evening", datetime(2026, 11, 24, 4, 30), [BOISE, LOS_ANGELES], "ID", LEGAL_MINIMUM,
         datetime(2026, 11, 24, 16, 0)),
        ("ID safe default", datetime(2026, 11, 23, 15, 30), [BOISE, LOS_ANGELES], "ID", SAFE_DEFAULT,
         datetime(2026, 11, 23, 17, 0)),
        # spring forward (Sunday 8 March 2026): 21:30 CST on Saturday → Sunday noon CDT = 17:00 UTC
        ("spring forward, Sunday noon", datetime(2026, 3, 8, 3, 30), [CHICAGO], None, SAFE_DEFAULT,
         datetime(2026, 3, 8, 17, 0)),
        ("spring forward, 08:00 CDT", datetime(2026, 3, 8, 3, 30), [CHICAGO], None, LEGAL_MINIMUM,
         datetime(2026, 3, 8, 13, 0)),
        # fall back (Sunday 1 November 2026): 08:00 CST = 14:00 UTC
        ("fall back, 08:00 CST", datetime(2026, 11, 1, 4, 0), [CHICAGO], None, LEGAL_MINIMUM,
         datetime(2026, 11, 1, 14, 0)),
        # the client's business hours narrow the law
        ("business hours", datetime(2026, 11, 23, 15, 0), [CHICAGO], None, dict.fromkeys(range(1, 8), (10 * 60, 16 * 60)),
         datetime(2026, 11, 23, 16, 0)),
    ],
)  # fmt: skip
def test_the_next_allowed_moment(
    case: str, at_utc: datetime, zones: list[str], state: str | None, client, expected
) -> None:
    assert next_allowed_moment(at_utc, zones, state, client) == expected, case


def test_inside_the_window_it_goes_at_once_to_the_second() -> None:
    at = datetime(2026, 11, 23, 18, 7, 42)  # 12:07:42 CST on a Monday
    assert next_allowed_moment(at, [CHICAGO], "TX", SAFE_DEFAULT) == at


def test_the_window_closes_at_its_end_minute() -> None:
    # 20:00 CST is outside a 9-20 window: the next morning at 9:00
    assert next_allowed_moment(datetime(2026, 11, 24, 2, 0), [CHICAGO], None, SAFE_DEFAULT) == datetime(
        2026, 11, 24, 15, 0
    )


def test_a_client_closed_every_day_has_no_moment() -> None:
    closed = dict.fromkeys(range(1, 8), (0, 0))
    assert next_allowed_moment(datetime(2026, 11, 23, 15, 0), [CHICAGO], None, closed) is None


def test_zones_that_never_overlap_have_no_moment() -> None:
    # Honolulu 08:00 is 13:00 in New York... a 09:00-10:00 window never holds in both
    one_hour = dict.fromkeys(range(1, 8), (9 * 60, 10 * 60))
    assert next_allowed_moment(datetime(2026, 11, 23, 12, 0), [NEW_YORK, "Pacific/Honolulu"], None, one_hour) is None


def test_a_recipient_needs_a_zone() -> None:
    with pytest.raises(ValueError, match="time zone"):
        next_allowed_moment(datetime(2026, 11, 23, 12, 0), [], None, SAFE_DEFAULT)


@pytest.mark.parametrize(
    ("contact_zone", "postal", "phone", "expected"),
    [
        # their own zone first; the state still comes from the ZIP, else the area code
        ("America/Denver", "33101", "+12085550100", (("America/Denver",), "FL")),
        (None, "33101", "+12085550100", ((NEW_YORK,), "FL")),  # Miami ZIP
        (None, None, "+12085550100", ((BOISE, LOS_ANGELES), "ID")),  # every zone of the area code
        (None, "not-a-zip", "+15125550142", ((CHICAGO,), "TX")),
        (None, None, None, ((NEW_YORK,), None)),  # the client's zone
    ],
)
def test_recipient_zones(contact_zone, postal, phone, expected) -> None:
    assert recipient_zones(contact_zone, postal, phone, NEW_YORK) == expected
