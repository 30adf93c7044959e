"""Clean, valid cell values for a client's profile: names folded into emails, phones in the
client's styles, US or ISO dates, prices and money as people type them, tag lists, booleans."""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta

from herald.config.models import AttributeColumn, FieldColumn
from herald.demo.profiles import (
    EMAIL_DOMAINS,
    PHONE_STYLES,
    POOLS,
    STAGES,
    STREETS,
    TAGS,
    US_AREA_CODES,
    Profile,
)

_ASCII = str.maketrans({"ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "ß": "ss", "æ": "ae", "đ": "d", "’": "", "'": ""})


def ascii_name(name: str) -> str:
    """A name as it would appear in an email address: ``Peña`` → ``pena``."""
    folded = unicodedata.normalize("NFKD", name.translate(_ASCII))
    return "".join(c for c in folded if c.isascii() and c.isalnum()).lower()


def fmt_phone(area: str, exchange: str, line: str, style: str) -> str:
    return PHONE_STYLES[style].format(a=area, e=exchange, l=line)


def email_for(rng: random.Random, first: str, last: str) -> str:
    f, s = ascii_name(first), ascii_name(last)
    local = rng.choice((f"{f}.{s}", f"{f}.{s}", f"{f[:1]}{s}", f"{f}{s}{rng.randint(1, 99)}", f"{f}_{s}"))
    return f"{local}@{rng.choice(EMAIL_DOMAINS)}"


def recase(email: str, rng: random.Random) -> str:
    """The same address in other letter case (as a second system would type it)."""
    local, _, domain = email.partition("@")
    if rng.random() < 0.5:
        return email.upper()
    return ".".join(p.capitalize() for p in local.split(".")) + "@" + domain.capitalize()


def restyle(person: dict, rng: random.Random) -> str:
    """The person's phone in a different style than the one first written."""
    style = rng.choice([s for s in ("paren", "dot", "intl", "dash", "digits") if s != person["style"]])
    return fmt_phone(person["area"], person["exchange"], person["line"], style)


def us_date(d: date) -> str:
    return f"{d.month:02d}/{d.day:02d}/{d.year}"


def us_datetime(dt: datetime) -> str:
    hour = dt.hour % 12 or 12
    return f"{us_date(dt.date())} {hour}:{dt.minute:02d} {'AM' if dt.hour < 12 else 'PM'}"


def _date(d: date, style: str) -> str:
    return us_date(d) if style == "us" else d.isoformat()


def _timestamp(dt: datetime, style: str) -> str:
    return us_datetime(dt) if style == "us" else dt.isoformat(timespec="seconds")


def future_slot(rng: random.Random, today: date, days: int = 45) -> datetime:
    while True:
        day = today + timedelta(days=rng.randint(1, days))
        if day.weekday() < 5 or (day.weekday() == 5 and rng.random() < 0.3):
            break
    minutes = rng.randrange(8 * 60, 17 * 60, rng.choice((30, 30, 15)))
    return datetime.combine(day, time(minutes // 60, minutes % 60))


def past_moment(rng: random.Random, today: date, days: int = 120) -> datetime:
    start = datetime.combine(today, time()) - timedelta(days=days)
    return start + timedelta(seconds=rng.randrange(days * 86_400))


def price(rng: random.Random) -> str:
    value = rng.randrange(279, 1_650) * 1_000 + rng.choice((0, 0, 0, 500, -100))
    return rng.choice((f"${value:,}",) * 6 + (str(value), str(value), f"${value:,}.00"))


def money(rng: random.Random) -> str:
    amount = rng.choice((0.0, 0.0, 0.0, 25.0, 40.0, 85.5, round(rng.uniform(10, 1500), 2)))
    return rng.choice((f"{amount:.2f}", f"${amount:,.2f}", f"${amount:,.2f}"))


def tags(rng: random.Random, pool: Sequence[str], separator: str, low: int = 1, high: int = 3) -> str:
    usable = [t for t in pool if separator not in t]
    return separator.join(rng.sample(usable, rng.randint(low, min(high, len(usable)))))


def boolean(rng: random.Random, prof: Profile, truth: bool | None = None) -> str:
    yes, no = rng.choice(prof.booleans)
    return yes if (rng.random() < 0.5 if truth is None else truth) else no


class Values:
    """Clean, valid values for any load-map column, by canonical field or attribute name and type."""

    def __init__(self, rng: random.Random, prof: Profile, today: date, packet_type: str):
        self.rng, self.prof, self.today, self.packet_type = rng, prof, today, packet_type

    def phone(self) -> str:
        rng = self.rng
        area = rng.choices([a for a, _ in self.prof.area_codes], [w for _, w in self.prof.area_codes])[0]
        exchange = rng.choice([e for e in range(201, 1000) if e % 100 != 11 and e != 555])
        return fmt_phone(area, str(exchange), f"{rng.randrange(10_000):04d}", rng.choice(self.prof.phone_styles))

    def field(self, name: str) -> str:
        rng, prof = self.rng, self.prof
        if name == "external_id":
            return f"{prof.id_prefix}{rng.randrange(10**prof.id_digits):0{prof.id_digits}d}"
        if name == "first_name":
            return rng.choice(prof.first_names)
        if name == "last_name":
            return rng.choice(prof.last_names)
        if name == "email":
            return email_for(rng, rng.choice(prof.first_names), rng.choice(prof.last_names))
        if name == "phone":
            return self.phone()
        if name == "postal_code":
            return rng.choice(prof.zips)
        if name == "appointment_at":
            return _timestamp(future_slot(rng, self.today), prof.date_style)
        if name == "property_address":
            return f"{rng.randint(100, 9999)} {rng.choice(STREETS)}"
        if name == "list_price":
            return price(rng)
        if name in ("sms_consent", "email_consent"):
            return boolean(rng, prof)
        if name in ("from_stage", "to_stage"):
            return rng.choice(STAGES)
        if name == "occurred_at":
            return _timestamp(past_moment(rng, self.today), prof.date_style)
        if name in POOLS:
            return rng.choice(POOLS[name])
        return rng.choice(("alpha", "beta", "gamma", "delta"))

    def attribute(self, column: AttributeColumn) -> str:
        rng, name = self.rng, column.attribute
        if column.type == "boolean":
            return boolean(rng, self.prof)
        if column.type == "numeric":
            if "gpa" in name:
                return f"{rng.uniform(2.2, 4.0):.2f}"
            if "price" in name:
                return price(rng)
            return money(rng)
        if column.type == "date":
            if "intake" in name or "start" in name:
                return self.intake()
            return _date(past_moment(rng, self.today, 60).date(), self.prof.date_style)
        if column.type == "timestamp":
            return _timestamp(past_moment(rng, self.today, 60), self.prof.date_style)
        if column.type == "array":
            return tags(rng, TAGS.get(self.packet_type, TAGS[""]), column.separator)
        return rng.choice(("standard", "premium", "basic", "other"))

    def intake(self) -> str:
        year = self.today.year + 1
        return _date(
            self.rng.choice((date(year, 1, 19), date(year, 5, 24), date(year, 8, 30), date(year, 8, 30))),
            self.prof.date_style,
        )

    def column(self, target: FieldColumn | AttributeColumn) -> str:
        return self.field(target.field) if isinstance(target, FieldColumn) else self.attribute(target)


def key_of(target: FieldColumn | AttributeColumn | str) -> str:
    if isinstance(target, str):
        return target
    return target.field if isinstance(target, FieldColumn) else target.attribute


class PhoneBook:
    """Distinct fictional numbers (555-0100…555-0199), mostly from the client's own area codes."""

    def __init__(self, rng: random.Random, area_codes: Sequence[tuple[str, int]]):
        self.rng = rng
        self.weights = dict(area_codes)
        self.free: dict[str, list[int]] = {}

    def _lines(self, area: str) -> list[int]:
        if area not in self.free:
            self.free[area] = self.rng.sample(range(100), 100)
        return self.free[area]

    def new(self, area: str | None = None) -> tuple[str, str, str]:
        if area is None or not self._lines(area):
            local = [a for a in self.weights if self._lines(a)]
            if local:
                area = self.rng.choices(local, [self.weights[a] for a in local])[0]
            else:  # the region's fictional numbers are used up: borrow another US area code
                spare = [a for a in US_AREA_CODES if self._lines(a)]
                if not spare:
                    raise ValueError("demo scale too large for the fictional 555-01XX range; use sized_packet")
                area = self.rng.choice(spare)
        return area, "555", f"01{self._lines(area).pop():02d}"
