"""Where a recipient is: time zones and US state from a postal code or a phone number.

The recipient's local time (docs/compliance.md, quiet hours) comes from their own time zone or
postal code when known, else from the phone number (area-code presumption,
``phonenumbers.timezone``; a number mapping to several zones must be inside the window in all of
them), else the client's zone.
The state picks the state's calling-hours law. Both lookups use well-kept data: the
``zipcodes`` package (US ZIP → state, time zone) and libphonenumber's time-zone and geocoding
metadata. Results are cached in ``herald_raw.address_regions`` so the message plan (dbt) can
join them; :func:`refresh_regions` fills in what is missing before a plan is built.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

import phonenumbers
import zipcodes
from phonenumbers import timezone as phone_timezone

from herald.warehouse.connection import Session
from herald.warehouse.schema import RAW_SCHEMA, column_names

REGIONS = f"{RAW_SCHEMA}.address_regions"
_UNKNOWN_ZONE = "Etc/Unknown"

US_STATES = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA", "Colorado": "CO",
    "Connecticut": "CT", "Delaware": "DE", "District of Columbia": "DC", "Washington D.C.": "DC", "Florida": "FL",
    "Georgia": "GA", "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL", "Indiana": "IN", "Iowa": "IA", "Kansas": "KS",
    "Kentucky": "KY", "Louisiana": "LA", "Maine": "ME", "Maryland": "MD", "Massachusetts": "MA", "Michigan": "MI",
    "Minnesota": "MN", "Mississippi": "MS", "Missouri": "MO", "Montana": "MT", "Nebraska": "NE", "Nevada": "NV",
    "New Hampshire": "NH", "New Jersey": "NJ", "New Mexico": "NM", "New York": "NY", "North Carolina": "NC",
    "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK", "Oregon": "OR", "Pennsylvania": "PA", "Rhode Island": "RI",
    "South Carolina": "SC", "South Dakota": "SD", "Tennessee": "TN", "Texas": "TX", "Utah": "UT", "Vermont": "VT",
    "Virginia": "VA", "Washington": "WA", "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY",
    "Puerto Rico": "PR",
}  # fmt: skip
_STATE_CODES = frozenset(US_STATES.values())


@lru_cache(maxsize=100_000)
def phone_region(e164: str) -> tuple[tuple[str, ...], str | None]:
    """(time zones, US state code or None) of a phone number by its area code."""
    try:
        number = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return (), None
    zones = tuple(z for z in phone_timezone.time_zones_for_number(number) if z != _UNKNOWN_ZONE)
    state = None
    if phonenumbers.region_code_for_number(number) in ("US", "PR"):
        # imported on first use: its geographic metadata takes seconds to load, and every process
        # that imports the Dagster definitions imports this module
        from phonenumbers import geocoder

        place = geocoder.description_for_number(number, "en")  # "Florida" or "Chicago, IL"
        suffix = place.rsplit(", ", 1)[-1] if ", " in place else None
        state = suffix if suffix in _STATE_CODES else US_STATES.get(place)
    return zones, state


@lru_cache(maxsize=100_000)
def postal_region(postal_code: str) -> tuple[str | None, str | None]:
    """(time zone, US state code) of a US ZIP code (ZIP+4 accepted), or (None, None)."""
    code = postal_code.strip()[:5]
    if len(code) != 5 or not code.isdigit():
        return None, None
    try:
        found = zipcodes.matching(code)
    except (TypeError, ValueError):
        return None, None
    if not found:
        return None, None
    return found[0].get("timezone") or None, found[0].get("state") or None


def refresh_regions(session: Session, now: datetime) -> int:
    """Look up every contact phone and postal code not in ``address_regions`` yet."""
    _, phones = session.query(
        f"""select distinct c.phone_e164 from marts.contacts c
            where c.is_phone_valid and c.phone_e164 is not null
              and not exists (select 1 from {REGIONS} r where r.kind = 'phone' and r.address_value = c.phone_e164)"""
    )
    _, postals = session.query(
        f"""select distinct c.postal_code from marts.contacts c
            where c.postal_code is not null
              and not exists (select 1 from {REGIONS} r where r.kind = 'postal' and r.address_value = c.postal_code)"""
    )
    rows = []
    for (phone,) in phones:
        zones, state = phone_region(phone)
        rows.append(("phone", phone, ",".join(zones) or None, state, now))
    for (postal,) in postals:
        zone, state = postal_region(postal)
        rows.append(("postal", postal, zone, state, now))
    session.insert_rows(REGIONS, column_names(REGIONS), rows, ignore_existing=True)
    return len(rows)
