"""Deterministic sample packets (CSV files) for the example clients.

The *shape* of every file comes from the client's load map: the header row is exactly the
load map's ``columns`` (in order), written with its ``format.delimiter`` and ``format.quote_char``
through :mod:`csv` (so a delimiter inside a value is quoted). Only the *values* come from here,
per canonical field, or per attribute name and type. Change a load map and the generated files
follow it.

* :func:`demo_packets` — a few hundred realistic rows per example packet, with the mess real
  clients send: duplicate people written differently, invalid phones and emails, blank optional
  cells, US dates, "$425,000" prices, Yes/No/Y/N/true booleans, windows-1252 and a UTF-8 BOM, one
  ragged row and one row missing a required value (both listed in ``bad_lines``).
* :func:`sized_packet` — exactly ``rows`` clean rows (1,000 or 1,000,000) plus ``bad_rows``
  ragged ones at spread-out, recorded lines, generated chunk by chunk for benchmarks.
* :func:`write_packets` — lays packets out as ``<folder>/<client_id>/<packet_type>/<file_name>``.

Phone numbers in demo packets are in the 555-0100…555-0199 range, which NANP reserves for
fiction (libphonenumber still calls them valid), and emails use the reserved example.com/.net/.org
domains, so demo data never reaches a real person. ``sized_packet`` needs more distinct numbers than
that range holds, so it uses other exchanges: valid, possibly real — never send them to a live provider.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import random
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Callable, Iterable, Sequence

from herald.config.models import AttributeColumn, Client, Deployment, FieldColumn, LoadMap

DEFAULT_REFERENCE_DATE = date(2026, 12, 1)
"""The "today" demo data is relative to (appointments after it, showings and logins before it)."""

SIZED_CHUNK_ROWS = 20_000


@dataclass
class SamplePacket:
    client_id: str
    packet_type: str
    file_name: str
    content: bytes
    rows: int
    """Data rows, excluding the header (ragged and otherwise bad rows included)."""
    bad_lines: dict[int, str] = field(default_factory=dict)
    """Physical line number (the header is line 1) → why landing should reject that row."""
    encoding: str = "utf-8"
    """How ``content`` is encoded: ``utf-8``, ``utf-8-sig`` (with a BOM) or ``windows-1252``."""

    @property
    def text(self) -> str:
        """``content`` decoded (a BOM is dropped)."""
        return self.content.decode(self.encoding)


# --------------------------------------------------------------------------------------------
# Per-client flavour
# --------------------------------------------------------------------------------------------

PHONE_STYLES: dict[str, str] = {
    "paren": "({a}) {e}-{l}",
    "dash": "{a}-{e}-{l}",
    "dot": "{a}.{e}.{l}",
    "intl": "+1 {a} {e} {l}",
    "e164": "+1{a}{e}{l}",
    "digits": "{a}{e}{l}",
    "one": "1-{a}-{e}-{l}",
}

# Every US area code here validates with libphonenumber for 555-0100…555-0199 (checked).
US_AREA_CODES: tuple[str, ...] = tuple(
    "201 202 203 205 206 207 208 209 210 212 213 214 215 216 217 218 219 224 225 228 229 231 234 239 240 "
    "248 251 252 253 254 256 260 262 267 269 270 276 281 301 302 303 304 305 307 308 309 310 312 313 314 "
    "315 316 317 318 319 320 321 323 330 334 336 337 339 347 351 352 360 361 385 386 401 402 404 405 406 "
    "407 408 409 410 412 413 414 415 417 419 423 424 425 430 432 434 435 440 443 469 470 475 478 479 480 "
    "484 501 502 503 504 505 507 508 509 510 512 513 515 516 517 518 520 530 540 541 551 559 561 562 563 "
    "567 570 571 573 574 575 580 585 586 601 602 603 605 606 607 608 609 610 612 614 615 616 617 618 619 "
    "620 623 626 630 631 636 641 646 650 651 660 661 662 678 682 701 702 703 704 706 707 708 712 713 714 "
    "715 716 717 718 719 720 724 727 731 732 734 737 740 754 757 760 763 765 770 772 773 774 775 781 785 "
    "786 801 802 803 804 805 806 808 810 812 813 814 815 816 817 818 828 830 831 832 843 845 847 848 850 "
    "856 857 858 859 860 862 863 864 865 870 872 878 901 903 904 906 907 908 909 910 912 913 914 915 916 "
    "917 918 919 920 925 928 931 936 937 940 941 947 949 951 952 954 956 970 971 972 973 978 979 980 985 "
    "989".split()
)

EMAIL_DOMAINS = ("example.com", "example.net", "example.org", "mail.example.com", "inbox.example.net")
INVALID_PHONES = ("555-12", "n/a", "123-456-7890")
# (first name, email) of rows whose email is malformed
INVALID_EMAILS = (("Jane", "jane@"), ("Bob", "bob at example.com"), ("Chris", "chris.p@example,com"))
STAGES = ("inquiry", "applied", "admitted", "enrolled")


@dataclass(frozen=True)
class _Profile:
    id_prefix: str
    id_digits: int
    encoding: str
    line_terminator: str
    area_codes: tuple[tuple[str, int], ...]  # (area code, weight) of the client's region
    phone_styles: tuple[str, ...]  # weighted by repetition
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    zips: tuple[str, ...]
    date_style: str = "iso"  # "us": 12/03/2026 and 12/03/2026 9:30 AM; "iso": 2026-12-03 and 2026-12-03T09:30:00
    booleans: tuple[tuple[str, str], ...] = (("true", "false"),)
    file_stem: str = ""


_AUSTIN_FIRST = (
    "James", "Maria", "José", "Sofía", "Emily", "Michael", "Ana", "Daniel", "Olivia", "Luis", "Isabella",
    "David", "Camila", "Ethan", "Grace", "Carlos", "Priya", "Minh", "Jasmine", "Noah", "Ava", "Mateo",
    "Lucía", "Robert", "Hannah", "Andrés", "Chloe", "Samuel", "Valeria", "William", "Aaliyah", "Kevin",
    "Mei", "Tyler", "Ximena", "Brandon", "Fatima", "Elijah", "Renée", "Diego", "Megan", "Jorge", "Linda",
)
_AUSTIN_LAST = (
    "García", "Martínez", "Rodríguez", "Hernández", "López", "González", "Pérez", "Sánchez", "Ramírez",
    "Flores", "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson",
    "Taylor", "Thomas", "Moore", "Jackson", "Nguyen", "Tran", "Patel", "Kim", "O'Brien", "Muñoz", "Peña",
    "Castillo", "Reyes", "Morales", "Ortiz", "Gutiérrez", "Walker", "Hall", "Young", "King", "Wright",
    "Scott", "Green", "Baker", "Adams", "Nelson", "Hill", "Campbell", "Mitchell", "Roberts", "Carter",
)
_AUSTIN_ZIPS = (
    "78701", "78702", "78703", "78704", "78705", "78723", "78727", "78731", "78741", "78744", "78745",
    "78748", "78749", "78750", "78751", "78753", "78757", "78759", "78613", "78641", "78660", "78664",
    "78665", "78681", "78717", "78726",
)

# Everything here must encode in windows-1252 (é ñ ë è ü ø å ’ – all do).
_DENVER_FIRST = (
    "José", "Zoë", "Renée", "François", "Chloé", "Inés", "Jürgen", "Björn", "Ángel", "Noémie", "Raphaël",
    "Søren", "Amélie", "Ryan", "Megan", "Jessica", "Matthew", "Ashley", "Andrew", "Lauren", "Joshua",
    "Sarah", "Christopher", "Rachel", "Justin", "Katie", "Brian", "Amanda", "Kyle", "Emma", "Logan",
    "Madison", "Connor", "Natalie", "Tyler", "Brooke", "Dylan", "Hailey",
)
_DENVER_LAST = (
    "Peña", "Lefèvre", "Côté", "Dubois", "Müller", "Åström", "Domínguez", "Núñez", "Gómez", "Schäfer",
    "Ødegaard", "Brontë", "O’Connor", "Anderson", "Thompson", "Martin", "Lee", "Clark", "Lewis", "Robinson",
    "Walker", "Allen", "Wright", "Hughes", "Foster", "Bennett", "Sullivan", "Russell", "Hayes", "Fischer",
    "Olson", "Peterson", "Larson", "Gallagher", "Murphy", "Lindqvist", "Vasquez", "Romero",
)
_DENVER_ZIPS = (
    "80202", "80203", "80205", "80206", "80209", "80210", "80211", "80212", "80218", "80220", "80230",
    "80238", "80401", "80110", "80120", "80012", "80226", "80002", "80003", "80301", "80302", "80304",
)
# Out-of-state buyers keep their home ZIP (leading zeros!) and home area code.
_RELOCATING = (
    ("617", "02134"), ("617", "02139"), ("857", "02116"), ("201", "07030"), ("203", "06511"),
    ("413", "01002"), ("413", "01060"), ("212", "10025"), ("415", "94110"),
)

_NY_FIRST = (
    "Ava", "Liam", "Sophia", "Jayden", "Mia", "Ethan", "Aaliyah", "Daniel", "Isabella", "Kevin", "Zoë",
    "Łukasz", "Thảo", "Siobhán", "Chidi", "Ana-Sofía", "Mohammed", "Priya", "Wei", "Yuki", "Jamal",
    "Gabriela", "Noah", "Emma", "Darius", "Nia", "Mateo", "Fatoumata", "Aditya", "Hana", "Tomás", "Olivia",
    "Malik", "Sakura", "Ibrahim", "Leah", "Xavier", "Maya", "Jordan", "Camille",
)
_NY_LAST = (
    "Nguyễn", "Kowalski", "O'Sullivan", "Okafor", "Rodríguez", "Thompson", "Chen", "Wang", "Kim", "Park",
    "Singh", "Shah", "Johnson", "Williams", "Brown", "Davis", "Cohen", "Goldberg", "Rossi", "Russo",
    "Diallo", "Mensah", "Haddad", "Khan", "Ali", "Murphy", "Kelly", "Sullivan", "Ramos", "Cruz", "Dvořák",
    "Jovanović", "Müller", "Andersson", "Tanaka", "Sato", "Baptiste", "Pierre", "Jean-Louis", "Washington",
)
_NY_ZIPS = ("10025", "10027", "11201", "11215", "10463", "11375", "10301", "12203", "14607", "07030", "02134")

_GENERIC = _Profile(
    id_prefix="C", id_digits=6, encoding="utf-8", line_terminator="\n",
    area_codes=(("512", 1), ("303", 1), ("617", 1), ("212", 1), ("720", 1), ("737", 1), ("857", 1)),
    phone_styles=("paren", "dash", "intl"), first_names=_AUSTIN_FIRST, last_names=_AUSTIN_LAST,
    zips=_AUSTIN_ZIPS + _DENVER_ZIPS,
)

_PROFILES: dict[tuple[str, str], _Profile] = {
    ("bright_smiles_dental", "appointments"): _Profile(
        id_prefix="P", id_digits=6, encoding="utf-8", line_terminator="\r\n",
        area_codes=(("512", 6), ("737", 3), ("210", 1), ("254", 1), ("830", 1)),
        phone_styles=("paren",) * 5 + ("dash", "dash", "dot", "intl", "digits"),
        first_names=_AUSTIN_FIRST, last_names=_AUSTIN_LAST, zips=_AUSTIN_ZIPS, date_style="us",
        booleans=(("Yes", "No"),) * 3 + (("Y", "N"), ("true", "false")), file_stem="appointments",
    ),
    ("lakeside_realty", "buyer_leads"): _Profile(
        id_prefix="LR-", id_digits=5, encoding="windows-1252", line_terminator="\r\n",
        area_codes=(("303", 5), ("720", 5), ("970", 1), ("719", 1)),
        phone_styles=("dash",) * 4 + ("paren", "paren", "intl", "dot"),
        first_names=_DENVER_FIRST, last_names=_DENVER_LAST, zips=_DENVER_ZIPS, date_style="us",
        booleans=(("Yes", "No"),) * 2 + (("Y", "N"), ("true", "false")), file_stem="buyer_leads",
    ),
    ("northfield_college", "leads"): _Profile(
        id_prefix="NF", id_digits=6, encoding="utf-8-sig", line_terminator="\n",
        area_codes=(("212", 3), ("646", 2), ("718", 3), ("917", 2), ("347", 2), ("516", 1), ("914", 1),
                    ("518", 1), ("585", 1), ("201", 1), ("973", 1)),
        phone_styles=("e164",) * 3 + ("paren", "dot", "dash"),
        first_names=_NY_FIRST, last_names=_NY_LAST, zips=_NY_ZIPS, date_style="iso",
        booleans=(("true", "false"),) * 4 + (("TRUE", "FALSE"),), file_stem="leads",
    ),
    ("northfield_college", "funnel_events"): _Profile(
        id_prefix="NF", id_digits=6, encoding="utf-8", line_terminator="\n",
        area_codes=(("212", 1), ("646", 1), ("718", 1)), phone_styles=("e164",),
        first_names=_NY_FIRST, last_names=_NY_LAST, zips=_NY_ZIPS, date_style="iso", file_stem="funnel_events",
    ),
}


def _profile(client_id: str, packet_type: str) -> _Profile:
    return _PROFILES.get((client_id, packet_type), _GENERIC)


_POOLS: dict[str, tuple[str, ...]] = {
    "appointment_type": ("Cleaning",) * 6 + ("Exam", "Exam", "Filling", "Crown Prep", "Root Canal",
                                             "Whitening Consult", "Ortho Consult", "Emergency", "X-Rays"),
    "provider_name": ("Dr. Anika Rao, DDS", "Dr. Marcus Hale, DDS", "Dr. Elena Ruiz, DMD", "Jenna Ortiz, RDH",
                      "Kim Tran, RDH"),
    "location_name": ("South Congress", "South Congress", "Round Rock", "Cedar Park"),
    "property_city": ("Denver", "Denver", "Denver", "Aurora", "Lakewood", "Boulder", "Golden", "Littleton",
                      "Englewood", "Arvada", "Highlands Ranch"),
    "listing_status": ("For Sale",) * 5 + ("Coming Soon", "Price Reduced", "Price Reduced", "Pending",
                                           "Under Contract – Backup Offers", "Short Sale", "Auction"),
    "program": ("B.S. Nursing", "B.S. Nursing", "B.A. Psychology", "B.S. Computer Science",
                "Business Administration, MBA", "B.S. Biology", "A.A.S. Cybersecurity",
                "M.Ed. Curriculum & Instruction", "B.F.A. Graphic Design", "Undeclared"),
    "lead_source": ("Website", "Website", "College Fair", "Google Ads", "Instagram", "Referral", "Campus Visit",
                    "Common App", "Niche.com", "High School Counselor"),
    "time_zone": ("America/Chicago", "America/Denver", "America/New_York", "America/Los_Angeles"),
    "funnel_type": ("sales",) * 6 + ("service-delivery",),
}
_TAGS: dict[str, tuple[str, ...]] = {
    "buyer_leads": ("garage", "yard", "basement", "mountain views", "walkable", "good schools", "home office",
                    "pool", "new construction", "pet friendly", "light rail"),
    "leads": ("athletics", "study abroad", "honors program", "on-campus housing", "financial aid", "ROTC",
              "music", "research", "internships"),
    "": ("email", "sms", "newsletter", "events", "offers", "updates"),
}
_STREETS = (
    "Larimer St", "Blake St", "E Colfax Ave", "Downing St", "Gaylord St", "Tennyson St", "Federal Blvd",
    "Pearl St", "S Broadway", "Lowell Blvd", "Quebec St", "Holly St", "Yosemite St", "Cherry Creek Dr",
    "Wadsworth Blvd", "Kipling St", "W Alameda Ave", "E Evans Ave", "Sheridan Blvd", "Zuni St",
)

# --------------------------------------------------------------------------------------------
# Value helpers
# --------------------------------------------------------------------------------------------

_ASCII = str.maketrans({"ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "ß": "ss", "æ": "ae", "đ": "d", "’": "", "'": ""})


def _ascii(name: str) -> str:
    """A name as it would appear in an email address: ``Peña`` → ``pena``."""
    folded = unicodedata.normalize("NFKD", name.translate(_ASCII))
    return "".join(c for c in folded if c.isascii() and c.isalnum()).lower()


def _fmt_phone(area: str, exchange: str, line: str, style: str) -> str:
    return PHONE_STYLES[style].format(a=area, e=exchange, l=line)


def _email(rng: random.Random, first: str, last: str) -> str:
    f, l = _ascii(first), _ascii(last)
    local = rng.choice((f"{f}.{l}", f"{f}.{l}", f"{f[:1]}{l}", f"{f}{l}{rng.randint(1, 99)}", f"{f}_{l}"))
    return f"{local}@{rng.choice(EMAIL_DOMAINS)}"


def _recase(email: str, rng: random.Random) -> str:
    """The same address in other letter case (as a second system would type it)."""
    local, _, domain = email.partition("@")
    if rng.random() < 0.5:
        return email.upper()
    return ".".join(p.capitalize() for p in local.split(".")) + "@" + domain.capitalize()


def _restyle(person: dict, rng: random.Random) -> str:
    """The person's phone in a different style than the one first written."""
    style = rng.choice([s for s in ("paren", "dot", "intl", "dash", "digits") if s != person["style"]])
    return _fmt_phone(person["area"], person["exchange"], person["line"], style)


def _us_date(d: date) -> str:
    return f"{d.month:02d}/{d.day:02d}/{d.year}"


def _us_datetime(dt: datetime) -> str:
    hour = dt.hour % 12 or 12
    return f"{_us_date(dt.date())} {hour}:{dt.minute:02d} {'AM' if dt.hour < 12 else 'PM'}"


def _date(d: date, style: str) -> str:
    return _us_date(d) if style == "us" else d.isoformat()


def _timestamp(dt: datetime, style: str) -> str:
    return _us_datetime(dt) if style == "us" else dt.isoformat(timespec="seconds")


def _future_slot(rng: random.Random, today: date, days: int = 45) -> datetime:
    while True:
        day = today + timedelta(days=rng.randint(1, days))
        if day.weekday() < 5 or (day.weekday() == 5 and rng.random() < 0.3):
            break
    minutes = rng.randrange(8 * 60, 17 * 60, rng.choice((30, 30, 15)))
    return datetime.combine(day, time(minutes // 60, minutes % 60))


def _past_moment(rng: random.Random, today: date, days: int = 120) -> datetime:
    start = datetime.combine(today, time()) - timedelta(days=days)
    return start + timedelta(seconds=rng.randrange(days * 86_400))


def _price(rng: random.Random) -> str:
    value = rng.randrange(279, 1_650) * 1_000 + rng.choice((0, 0, 0, 500, -100))
    return rng.choice((f"${value:,}",) * 6 + (str(value), str(value), f"${value:,}.00"))


def _money(rng: random.Random) -> str:
    amount = rng.choice((0.0, 0.0, 0.0, 25.0, 40.0, 85.5, round(rng.uniform(10, 1500), 2)))
    return rng.choice((f"{amount:.2f}", f"${amount:,.2f}", f"${amount:,.2f}"))


def _tags(rng: random.Random, pool: Sequence[str], separator: str, low: int = 1, high: int = 3) -> str:
    usable = [t for t in pool if separator not in t]
    return separator.join(rng.sample(usable, rng.randint(low, min(high, len(usable)))))


def _bool(rng: random.Random, prof: _Profile, truth: bool | None = None) -> str:
    yes, no = rng.choice(prof.booleans)
    return yes if (rng.random() < 0.5 if truth is None else truth) else no


class _Values:
    """Clean, valid values for any load-map column, by canonical field or attribute name and type."""

    def __init__(self, rng: random.Random, prof: _Profile, today: date, packet_type: str):
        self.rng, self.prof, self.today, self.packet_type = rng, prof, today, packet_type

    def phone(self) -> str:
        rng = self.rng
        area = rng.choices([a for a, _ in self.prof.area_codes], [w for _, w in self.prof.area_codes])[0]
        exchange = rng.choice([e for e in range(201, 1000) if e % 100 != 11 and e != 555])
        return _fmt_phone(area, str(exchange), f"{rng.randrange(10_000):04d}", rng.choice(self.prof.phone_styles))

    def field(self, name: str) -> str:
        rng, prof = self.rng, self.prof
        if name == "external_id":
            return f"{prof.id_prefix}{rng.randrange(10 ** prof.id_digits):0{prof.id_digits}d}"
        if name == "first_name":
            return rng.choice(prof.first_names)
        if name == "last_name":
            return rng.choice(prof.last_names)
        if name == "email":
            return _email(rng, rng.choice(prof.first_names), rng.choice(prof.last_names))
        if name == "phone":
            return self.phone()
        if name == "postal_code":
            return rng.choice(prof.zips)
        if name == "appointment_at":
            return _timestamp(_future_slot(rng, self.today), prof.date_style)
        if name == "property_address":
            return f"{rng.randint(100, 9999)} {rng.choice(_STREETS)}"
        if name == "list_price":
            return _price(rng)
        if name in ("sms_consent", "email_consent"):
            return _bool(rng, prof)
        if name in ("from_stage", "to_stage"):
            return rng.choice(STAGES)
        if name == "occurred_at":
            return _timestamp(_past_moment(rng, self.today), prof.date_style)
        if name in _POOLS:
            return rng.choice(_POOLS[name])
        return rng.choice(("alpha", "beta", "gamma", "delta"))

    def attribute(self, column: AttributeColumn) -> str:
        rng, name = self.rng, column.attribute
        if column.type == "boolean":
            return _bool(rng, self.prof)
        if column.type == "numeric":
            if "gpa" in name:
                return f"{rng.uniform(2.2, 4.0):.2f}"
            if "price" in name:
                return _price(rng)
            return _money(rng)
        if column.type == "date":
            if "intake" in name or "start" in name:
                return self.intake()
            return _date(_past_moment(rng, self.today, 60).date(), self.prof.date_style)
        if column.type == "timestamp":
            return _timestamp(_past_moment(rng, self.today, 60), self.prof.date_style)
        if column.type == "array":
            return _tags(rng, _TAGS.get(self.packet_type, _TAGS[""]), column.separator)
        return rng.choice(("standard", "premium", "basic", "other"))

    def intake(self) -> str:
        year = self.today.year + 1
        return _date(self.rng.choice((date(year, 1, 19), date(year, 5, 24), date(year, 8, 30), date(year, 8, 30))),
                     self.prof.date_style)

    def column(self, target: FieldColumn | AttributeColumn) -> str:
        return self.field(target.field) if isinstance(target, FieldColumn) else self.attribute(target)


def _key(target: FieldColumn | AttributeColumn | str) -> str:
    if isinstance(target, str):
        return target
    return target.field if isinstance(target, FieldColumn) else target.attribute


class _PhoneBook:
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


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _encode_chunks(load_map: LoadMap, chunks: Iterable[Iterable[Sequence[str]]], prof: _Profile) -> bytes:
    """Header + rows through :mod:`csv` with the load map's delimiter and quote char, encoded."""
    out = io.BytesIO()
    codec = "utf-8" if prof.encoding == "utf-8-sig" else prof.encoding
    if prof.encoding == "utf-8-sig":
        out.write(codecs.BOM_UTF8)
    buf = io.StringIO(newline="")
    writer = csv.writer(
        buf,
        delimiter=load_map.format.delimiter,
        quotechar=load_map.format.quote_char,
        lineterminator=prof.line_terminator,
        quoting=csv.QUOTE_MINIMAL,
    )
    writer.writerow(list(load_map.columns))
    for chunk in chunks:
        writer.writerows(chunk)
        out.write(buf.getvalue().encode(codec))
        buf.seek(0)
        buf.truncate()
    out.write(buf.getvalue().encode(codec))
    return out.getvalue()


def _render(load_map: LoadMap, records: Sequence[dict[str, str]], values: _Values) -> list[list[str]]:
    """One list per record in load-map column order; columns the record lacks get a clean value."""
    targets = list(load_map.columns.values())
    return [[rec[_key(t)] if _key(t) in rec else values.column(t) for t in targets] for rec in records]


def _required_columns(load_map: LoadMap) -> set[str]:
    fields = load_map.field_columns()
    return {fields[f] for f in load_map.required if f in fields}


def _make_ragged(row: list[str], load_map: LoadMap) -> str:
    """Turn ``row`` into one field too many, the way an unquoted comma does; returns the reason."""
    headers = list(load_map.columns)
    required = _required_columns(load_map)
    width = len(headers)
    for i, header in enumerate(headers):
        value = row[i]
        if header not in required and ", " in value:
            head, tail = value.split(", ", 1)
            row[i : i + 1] = [head, " " + tail]
            return (
                f"ragged row: {width + 1} fields but the header has {width} "
                f"(unquoted comma in {header!r}: {value!r})"
            )
    row.append("EXTRA")
    return f"ragged row: {width + 1} fields but the header has {width} (a stray trailing value)"


# --------------------------------------------------------------------------------------------
# Demo scenarios
# --------------------------------------------------------------------------------------------


def _pick(rng: random.Random, candidates: list[int], k: int, taken: set[int]) -> list[int]:
    free = [c for c in candidates if c not in taken]
    chosen = rng.sample(free, min(k, len(free)))
    taken.update(chosen)
    return chosen


def _dental(client: Client, rng: random.Random, scale: int, today: date) -> dict[str, SamplePacket]:
    packet_type = "appointments"
    load_map = client.load_maps.get(packet_type)
    if load_map is None:
        return {}
    prof = _profile(client.client_id, packet_type)
    values = _Values(rng, prof, today, packet_type)
    phones = _PhoneBook(rng, prof.area_codes)
    total, repeats, reregistered = 300 * scale, 12 * scale, 5 * scale
    n_people = total - repeats - reregistered
    ids = iter(rng.sample(range(1_000, 10 ** prof.id_digits), n_people + reregistered))

    people = []
    for _ in range(n_people):
        first, last = rng.choice(prof.first_names), rng.choice(prof.last_names)
        area, exchange, line = phones.new()
        style = rng.choice(prof.phone_styles)
        zip_code = rng.choice(prof.zips) if rng.random() > 0.04 else ""
        if zip_code and rng.random() < 0.02:
            zip_code += f"-{rng.randrange(10_000):04d}"  # ZIP+4
        people.append({
            "external_id": f"{prof.id_prefix}{next(ids):0{prof.id_digits}d}",
            "first_name": first, "last_name": last,
            "area": area, "exchange": exchange, "line": line, "style": style,
            "phone": _fmt_phone(area, exchange, line, style),
            "email": _email(rng, first, last) if rng.random() > 0.12 else "",
            "postal_code": zip_code,
            "insurance_verified": _bool(rng, prof) if rng.random() > 0.08 else "",
        })

    records: list[dict[str, str]] = []
    for index, person in enumerate(people):
        records.append({**person, "person": index})
    dup_people = rng.sample(range(n_people), repeats + reregistered)
    for n, index in enumerate(dup_people):
        person = people[index]
        record = {**person, "person": index, "phone": _restyle(person, rng)}
        if person["email"]:
            record["email"] = _recase(person["email"], rng)
        if n >= repeats:  # the same person registered again under a new patient id
            record["external_id"] = f"{prof.id_prefix}{next(ids):0{prof.id_digits}d}"
        records.append(record)
    for record in records:
        record["appointment_at_dt"] = _future_slot(rng, today)
        record["appointment_at"] = _us_datetime(record["appointment_at_dt"])
        record["appointment_type"] = rng.choice(_POOLS["appointment_type"])
        record["provider_name"] = rng.choice(_POOLS["provider_name"])
        record["location_name"] = rng.choice(_POOLS["location_name"])
        record["balance_due"] = _money(rng) if rng.random() > 0.1 else ""
        if rng.random() < 0.03:
            record["last_name"] = record["last_name"].upper()
        if rng.random() < 0.02:
            record["first_name"] += " "
    records.sort(key=lambda r: (r["appointment_at_dt"], r["external_id"]))

    # Mess goes on rows of people who appear once, so each kind stays easy to point at.
    counts: dict[int, int] = {}
    for record in records:
        counts[record["person"]] = counts.get(record["person"], 0) + 1
    singles = [i for i, r in enumerate(records) if counts[r["person"]] == 1]
    taken: set[int] = set()
    for row, bad in zip(_pick(rng, singles, 3 * scale, taken), INVALID_PHONES * scale):
        records[row]["phone"] = bad
    for row, (first, bad) in zip(_pick(rng, singles, 2 * scale, taken), INVALID_EMAILS[:2] * scale):
        records[row].update(first_name=first, email=bad)
    for row, zip_code in zip(_pick(rng, singles, 3 * scale, taken), ("02134", "01701", "06511") * scale):
        records[row]["postal_code"] = zip_code
    ragged_row, empty_row = _pick(rng, singles, 2, taken)

    rows = _render(load_map, records, values)
    bad_lines = {ragged_row + 2: _make_ragged(rows[ragged_row], load_map)}
    phone_column = load_map.column_for("phone")
    if phone_column is not None:
        rows[empty_row][list(load_map.columns).index(phone_column)] = ""
        bad_lines[empty_row + 2] = f"required field 'phone' (column {phone_column!r}) is empty"
    return {packet_type: _packet(client, load_map, prof, rows, bad_lines, today)}


def _realtor(client: Client, rng: random.Random, scale: int, today: date) -> dict[str, SamplePacket]:
    packet_type = "buyer_leads"
    load_map = client.load_maps.get(packet_type)
    if load_map is None:
        return {}
    prof = _profile(client.client_id, packet_type)
    values = _Values(rng, prof, today, packet_type)
    phones = _PhoneBook(rng, prof.area_codes)
    total, duplicates = 240 * scale, 10 * scale
    n_people = total - duplicates
    relocating = set(rng.sample(range(2, n_people), 8 * scale))
    ids = sorted(rng.sample(range(10_000, 10 ** prof.id_digits), total))

    people = []
    for index in range(n_people):
        if index == 0:
            first, last = "José", "Peña"
        elif index == 1:
            first, last = "Zoë", "Lefèvre"
        else:
            first, last = rng.choice(prof.first_names), rng.choice(prof.last_names)
        home_area, zip_code = rng.choice(_RELOCATING) if index in relocating else (None, rng.choice(prof.zips))
        area, exchange, line = phones.new(home_area)
        style = rng.choice(prof.phone_styles)
        people.append({
            "first_name": first, "last_name": last,
            "area": area, "exchange": exchange, "line": line, "style": style,
            "phone": _fmt_phone(area, exchange, line, style) if rng.random() > 0.06 else "",
            "email": _email(rng, first, last) if rng.random() > 0.04 else "",
            "postal_code": zip_code if rng.random() > 0.03 else "",
        })
    order = list(range(n_people)) + rng.sample(range(n_people), duplicates)  # re-entered by another agent
    records = []
    for n, index in enumerate(order):
        person = people[index]
        record = {**person, "person": index}
        if n >= n_people:
            record["phone"] = _restyle(person, rng) if person["phone"] else ""
            record["email"] = _recase(person["email"], rng) if person["email"] else ""
        address = f"{rng.randint(100, 9999)} {rng.choice(_STREETS)}"
        extra = rng.random()
        if extra < 0.08:
            address += f"; Unit {rng.randint(1, 30)}{rng.choice('ABCD')}"  # the delimiter inside a value
        elif extra < 0.16:
            address += f" #{rng.randint(101, 1450)}"
        record.update(
            property_address=address,
            property_city=rng.choice(_POOLS["property_city"]),
            list_price=_price(rng),
            listing_status=rng.choice(_POOLS["listing_status"]),
            is_pre_approved=_bool(rng, prof) if rng.random() > 0.1 else "",
            interests=_tags(rng, _TAGS[packet_type], _separator(load_map, "interests", "|"), 0, 3),
            last_showing_on=_us_date(today - timedelta(days=rng.randint(1, 90))) if rng.random() > 0.3 else "",
        )
        records.append(record)
    middle = records[2:n_people]
    rng.shuffle(middle)  # José and Zoë stay first; re-entries stay last (the newest lead ids)
    records[2:n_people] = middle
    for record, lead_id in zip(records, ids):
        record["external_id"] = f"{prof.id_prefix}{lead_id}"

    counts: dict[int, int] = {}
    for record in records:
        counts[record["person"]] = counts.get(record["person"], 0) + 1
    singles = [i for i, r in enumerate(records) if counts[r["person"]] == 1 and i > 1 and r["phone"] and r["email"]]
    taken: set[int] = set()
    for row, bad in zip(_pick(rng, singles, 3 * scale, taken), INVALID_PHONES * scale):
        records[row]["phone"] = bad
    for row, (first, bad) in zip(_pick(rng, singles, 2 * scale, taken), INVALID_EMAILS[:2] * scale):
        records[row].update(first_name=first, email=bad)
    rows = _render(load_map, records, values)
    return {packet_type: _packet(client, load_map, prof, rows, {}, today)}


def _separator(load_map: LoadMap, attribute: str, default: str) -> str:
    for target in load_map.columns.values():
        if isinstance(target, AttributeColumn) and target.attribute == attribute:
            return target.separator
    return default


def _college(client: Client, rng: random.Random, scale: int, today: date) -> dict[str, SamplePacket]:
    leads_map = client.load_maps.get("leads")
    events_map = client.load_maps.get("funnel_events")
    if leads_map is None and events_map is None:
        return {}
    prof = _profile(client.client_id, "leads")
    values = _Values(rng, prof, today, "leads")
    phones = _PhoneBook(rng, prof.area_codes)
    total, duplicates = 400 * scale, 12 * scale
    n_people = total - duplicates
    ids = sorted(rng.sample(range(1_000, 10 ** prof.id_digits), total))

    people = []
    for _ in range(n_people):
        first, last = rng.choice(prof.first_names), rng.choice(prof.last_names)
        area, exchange, line = phones.new()
        style = rng.choice(prof.phone_styles)
        mobile = _fmt_phone(area, exchange, line, style) if rng.random() < 0.55 else ""
        people.append({
            "first_name": first, "last_name": last, "email": _email(rng, first, last),
            "area": area, "exchange": exchange, "line": line, "style": style, "phone": mobile,
        })
    order = list(range(n_people)) + rng.sample(range(n_people), duplicates)  # inquired twice
    records = []
    for n, index in enumerate(order):
        person = people[index]
        record = {**person, "person": index}
        if n >= n_people:
            record["email"] = _recase(person["email"], rng)
            record["phone"] = _restyle(person, rng) if person["phone"] and rng.random() < 0.5 else ""
        login = _past_moment(rng, today, 30) if rng.random() > 0.25 else None
        record.update(
            program=rng.choice(_POOLS["program"]),
            lead_source=rng.choice(_POOLS["lead_source"]),
            gpa=rng.choice((f"{rng.uniform(2.3, 4.0):.2f}", f"{rng.uniform(2.5, 4.0):.1f}", "4.0"))
            if rng.random() > 0.15 else "",
            intake_date=values.intake(),
            campus_tour_booked=_bool(rng, prof, rng.random() < 0.35) if rng.random() > 0.1 else "",
            interests=_tags(rng, _TAGS["leads"], _separator(leads_map, "interests", ";") if leads_map else ";", 0, 3),
            last_portal_login_at=login.isoformat(timespec="seconds") if login else "",
        )
        records.append(record)
    for record, lead_id in zip(records, ids):
        record["external_id"] = f"{prof.id_prefix}{lead_id:0{prof.id_digits}d}"

    counts: dict[int, int] = {}
    for record in records:
        counts[record["person"]] = counts.get(record["person"], 0) + 1
    singles = [i for i, r in enumerate(records) if counts[r["person"]] == 1]
    taken: set[int] = set()
    for row, (first, bad) in zip(_pick(rng, singles, 3 * scale, taken), INVALID_EMAILS * scale):
        records[row].update(first_name=first, email=bad)
    international = ("+44 20 7946 0958", "+52 55 5555 0142", "+91 98765 43210")
    for row, number in zip(_pick(rng, singles, 3 * scale, taken), international * scale):
        records[row]["phone"] = number
    for row in _pick(rng, singles, scale, taken):
        records[row]["phone"] = "n/a"

    packets: dict[str, SamplePacket] = {}
    if leads_map is not None:
        rows = _render(leads_map, records, values)
        packets["leads"] = _packet(client, leads_map, prof, rows, {}, today)
    if events_map is not None:
        packets["funnel_events"] = _funnel_events(client, events_map, records, rng, scale, today)
    return packets


def _funnel_events(
    client: Client, load_map: LoadMap, leads: list[dict[str, str]], rng: random.Random, scale: int, today: date
) -> SamplePacket:
    prof = _profile(client.client_id, "funnel_events")
    values = _Values(rng, prof, today, "funnel_events")
    total, resent = 500 * scale, 2 * scale
    wanted = total - resent
    now = datetime.combine(today, time())
    events: list[dict] = []
    for lead in rng.sample(leads, len(leads)):
        if len(events) >= wanted:
            break
        funnel = rng.choice(_POOLS["funnel_type"])
        depth = rng.choices((1, 2, 3, 4), (35, 30, 20, 15))[0]
        moment = _past_moment(rng, today, 150)
        previous = ""
        for stage in STAGES[:depth]:
            if moment >= now or len(events) >= wanted:
                break
            events.append({
                "external_id": lead["external_id"], "funnel_type": funnel, "from_stage": previous,
                "to_stage": stage, "at": moment, "email": lead["email"], "phone": lead["phone"],
            })
            previous = stage
            moment += timedelta(days=rng.randint(3, 35), seconds=rng.randrange(86_400))
    while len(events) < wanted:  # not reachable with 400 leads, kept for odd configs
        lead = rng.choice(leads)
        events.append({"external_id": lead["external_id"], "funnel_type": "sales", "from_stage": "",
                       "to_stage": "inquiry", "at": _past_moment(rng, today, 150)})
    events += [dict(e) for e in rng.sample(events, resent)]  # the LMS re-sent a few events verbatim
    events.sort(key=lambda e: (e["at"], e["external_id"]))
    for event in events:
        event["occurred_at"] = event["at"].isoformat(sep=" ", timespec="seconds")
    rows = _render(load_map, events, values)
    return _packet(client, load_map, prof, rows, {}, today)


def _packet(
    client: Client, load_map: LoadMap, prof: _Profile, rows: list[list[str]], bad_lines: dict[int, str], today: date
) -> SamplePacket:
    stem = prof.file_stem or load_map.packet_type
    return SamplePacket(
        client_id=client.client_id,
        packet_type=load_map.packet_type,
        file_name=f"{stem}_{today.isoformat()}.csv",
        content=_encode_chunks(load_map, [rows], prof),
        rows=len(rows),
        bad_lines=dict(sorted(bad_lines.items())),
        encoding=prof.encoding,
    )


_SCENARIOS: dict[str, Callable[[Client, random.Random, int, date], dict[str, SamplePacket]]] = {
    "bright_smiles_dental": _dental,
    "lakeside_realty": _realtor,
    "northfield_college": _college,
}


def demo_packets(
    deployment: Deployment, seed: int = 7, scale: int = 1, *, today: date = DEFAULT_REFERENCE_DATE
) -> list[SamplePacket]:
    """Realistic, messy sample packets for every load map in ``deployment``.

    The three example clients get their hand-written scenarios (300 dental appointments, 240 realtor
    buyer leads, 400 college leads and 500 funnel events, times ``scale``); any other load map gets
    100 × ``scale`` clean rows from :func:`sized_packet`. Same arguments → identical bytes.
    """
    if scale < 1:
        raise ValueError(f"scale must be at least 1, got {scale}")
    packets: list[SamplePacket] = []
    for client_id in sorted(deployment.clients):
        client = deployment.clients[client_id]
        scenario = _SCENARIOS.get(client_id)
        built = scenario(client, random.Random(f"{seed}:{client_id}"), scale, today) if scenario else {}
        for packet_type in sorted(client.load_maps):
            if packet_type in built:
                packets.append(built[packet_type])
            else:
                packet = sized_packet(deployment, client_id, packet_type, rows=100 * scale, seed=seed, today=today)
                packet.file_name = f"{packet_type}_{today.isoformat()}.csv"
                packets.append(packet)
    return packets


# --------------------------------------------------------------------------------------------
# Sized packets (tests and benchmarks)
# --------------------------------------------------------------------------------------------

_PRIMES = (101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167, 173, 179, 181, 191, 193, 197)
_FIRST_P, _LAST_P, _DOMAIN_P = 211, 307, 5

Source = Callable[[int, int], list[str]]


def _cycle(pool: Sequence[str]) -> Source:
    size = len(pool)

    def take(start: int, stop: int) -> list[str]:
        offset = start % size
        repeated = list(pool) * (math.ceil((stop - start + offset) / size) + 1)
        return repeated[offset : offset + stop - start]

    return take


def _spread(rows: int, count: int) -> list[int]:
    """``count`` distinct row indexes spread evenly over ``rows``."""
    return [((2 * j + 1) * rows) // (2 * count) for j in range(count)]


def _sized_sources(load_map: LoadMap, prof: _Profile, rng: random.Random, today: date) -> list[Source]:
    values = _Values(rng, prof, today, load_map.packet_type)
    funnel = load_map.entity == "funnel_events"
    per_person = len(STAGES) if funnel else 1
    firsts = [rng.choice(prof.first_names) for _ in range(_FIRST_P)]
    lasts = [rng.choice(prof.last_names) for _ in range(_LAST_P)]
    ascii_firsts, ascii_lasts = [_ascii(n) or "x" for n in firsts], [_ascii(n) or "x" for n in lasts]
    digits = max(prof.id_digits + 1, 7)  # one width for every size, so funnel events and leads ids match
    id_format = prof.id_prefix.replace("%", "%%") + f"%0{digits}d"
    # phones: a bijection row → (area, exchange, line), scrambled so neighbours differ
    areas = [a for a, _ in prof.area_codes]
    exchanges = [str(e) for e in range(201, 1000) if e % 100 != 11 and e != 555]
    space = len(areas) * len(exchanges) * 10_000
    golden = int(space * 0.6180339887)  # a multiplier near space/φ scatters consecutive rows widely
    step = next(m for m in range(golden, golden + space) if math.gcd(m, space) == 1)
    shift = rng.randrange(space)
    styles = [rng.choice(prof.phone_styles) for _ in range(7)]

    def people(start: int, stop: int) -> range | map:
        return range(start, stop) if per_person == 1 else map(per_person.__rfloordiv__, range(start, stop))

    def external_id(start: int, stop: int) -> list[str]:
        return [id_format % (p + 1) for p in people(start, stop)]

    def first_name(start: int, stop: int) -> list[str]:
        return [firsts[p % _FIRST_P] for p in people(start, stop)]

    def last_name(start: int, stop: int) -> list[str]:
        return [lasts[p % _LAST_P] for p in people(start, stop)]

    def email(start: int, stop: int) -> list[str]:
        return [
            f"{ascii_firsts[p % _FIRST_P]}.{ascii_lasts[p % _LAST_P]}{p + 1}@{EMAIL_DOMAINS[p % _DOMAIN_P]}"
            for p in people(start, stop)
        ]

    templates = [PHONE_STYLES[s].replace("{a}", "%s").replace("{e}", "%s").replace("{l}", "%04d") for s in styles]
    n_exchanges = len(exchanges)

    def phone(start: int, stop: int) -> list[str]:
        out = []
        for p in people(start, stop):
            n, line = divmod((p * step + shift) % space, 10_000)
            area, exchange = divmod(n, n_exchanges)
            out.append(templates[p % 7] % (areas[area], exchanges[exchange], line))
        return out

    stage_pairs = [("" if k == 0 else STAGES[k - 1], STAGES[k]) for k in range(len(STAGES))]
    gaps = [timedelta(0)] + [timedelta(days=rng.randint(3, 20), seconds=rng.randrange(86_400)) for _ in STAGES[1:]]
    lead_time = sum(gaps, timedelta())  # every stage change stays before ``today``
    moments = [_past_moment(rng, today, 150) - lead_time for _ in range(_PRIMES[-1])]
    stamped = [
        [(moment + sum(gaps[: k + 1], timedelta())).isoformat(sep=" ", timespec="seconds") for k in range(len(STAGES))]
        for moment in moments
    ]

    def from_stage(start: int, stop: int) -> list[str]:
        return [stage_pairs[i % per_person][0] for i in range(start, stop)]

    def to_stage(start: int, stop: int) -> list[str]:
        return [stage_pairs[i % per_person][1] for i in range(start, stop)]

    def funnel_type(start: int, stop: int) -> list[str]:
        return ["service-delivery" if p % 7 == 6 else "sales" for p in people(start, stop)]

    def occurred_at(start: int, stop: int) -> list[str]:
        size = len(stamped)
        return [stamped[(i // per_person) % size][i % per_person] for i in range(start, stop)]

    by_field: dict[str, Source] = {
        "external_id": external_id, "first_name": first_name, "last_name": last_name, "email": email,
        "phone": phone,
    }
    if funnel:
        by_field.update(from_stage=from_stage, to_stage=to_stage, funnel_type=funnel_type, occurred_at=occurred_at)
    sources: list[Source] = []
    for n, target in enumerate(load_map.columns.values()):
        if isinstance(target, FieldColumn) and target.field in by_field:
            sources.append(by_field[target.field])
        else:
            prime = _PRIMES[n % len(_PRIMES)]
            sources.append(_cycle([values.column(target) for _ in range(prime)]))
    return sources


def sized_packet(
    deployment: Deployment,
    client_id: str,
    packet_type: str,
    rows: int,
    bad_rows: int = 0,
    seed: int = 1,
    *,
    today: date = DEFAULT_REFERENCE_DATE,
) -> SamplePacket:
    """Exactly ``rows`` data rows for one load map: all valid except ``bad_rows`` ragged ones.

    Ids, emails and phones are unique per person (per row; per lead of four stage events for a
    ``funnel_events`` map, whose ids are those of a sized contacts packet of the same client:
    events 1..4N follow leads 1..N), every required field is filled, and the ragged rows (one extra field)
    sit at evenly spread positions recorded in ``bad_lines``. Built chunk by chunk, so a million
    rows stay fast and never exist as a list of dicts.
    """
    load_map = deployment.load_map(client_id, packet_type)
    if load_map is None:
        raise KeyError(f"no load map {packet_type!r} for client {client_id!r}")
    if rows < 0 or not 0 <= bad_rows <= rows:
        raise ValueError(f"need 0 <= bad_rows <= rows, got rows={rows}, bad_rows={bad_rows}")
    prof = _profile(client_id, packet_type)
    rng = random.Random(f"{seed}:{client_id}:{packet_type}:sized")
    sources = _sized_sources(load_map, prof, rng, today)
    bad_at = _spread(rows, bad_rows) if bad_rows else []
    width = len(load_map.columns)
    reason = f"ragged row: {width + 1} fields but the header has {width} (a stray trailing value)"

    def chunks() -> Iterable[list[tuple[str, ...]]]:
        pending = iter(bad_at)
        next_bad = next(pending, None)
        for start in range(0, rows, SIZED_CHUNK_ROWS):
            stop = min(rows, start + SIZED_CHUNK_ROWS)
            chunk = list(zip(*(source(start, stop) for source in sources)))
            while next_bad is not None and next_bad < stop:
                chunk[next_bad - start] += ("EXTRA",)
                next_bad = next(pending, None)
            yield chunk

    suffix = f"_{bad_rows}bad" if bad_rows else ""
    return SamplePacket(
        client_id=client_id,
        packet_type=packet_type,
        file_name=f"{prof.file_stem or packet_type}_{rows}rows{suffix}.csv",
        content=_encode_chunks(load_map, chunks(), prof),
        rows=rows,
        bad_lines={i + 2: reason for i in bad_at},
        encoding=prof.encoding,
    )


def write_packets(packets: Iterable[SamplePacket], folder: Path) -> list[Path]:
    """Write each packet to ``folder/<client_id>/<packet_type>/<file_name>``; returns the paths."""
    paths: list[Path] = []
    for packet in packets:
        path = Path(folder) / packet.client_id / packet.packet_type / packet.file_name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(packet.content)
        paths.append(path)
    return paths
