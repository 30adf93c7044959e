"""The example clients' hand-written scenarios: a few hundred realistic rows per packet with the
mess real clients send (duplicate people written differently, invalid phones and emails, blank
optional cells, one ragged row and one row missing a required value, listed in ``bad_lines``).
Any other load map gets clean rows from :func:`herald.demo.sized.sized_packet`."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, datetime, time, timedelta

from herald.config.models import AttributeColumn, Client, Deployment, LoadMap
from herald.demo.csv_files import encode_csv, make_ragged, render_rows
from herald.demo.model import DEFAULT_REFERENCE_DATE, SamplePacket
from herald.demo.profiles import (
    INVALID_EMAILS,
    INVALID_PHONES,
    POOLS,
    RELOCATING,
    STAGES,
    STREETS,
    TAGS,
    Profile,
    profile_for,
)
from herald.demo.sized import sized_packet
from herald.demo.values import (
    PhoneBook,
    Values,
    boolean,
    email_for,
    fmt_phone,
    future_slot,
    money,
    past_moment,
    price,
    recase,
    restyle,
    tags,
    us_date,
    us_datetime,
)


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
    prof = profile_for(client.client_id, packet_type)
    values = Values(rng, prof, today, packet_type)
    phones = PhoneBook(rng, prof.area_codes)
    total, repeats, reregistered = 300 * scale, 12 * scale, 5 * scale
    n_people = total - repeats - reregistered
    ids = iter(rng.sample(range(1_000, 10**prof.id_digits), n_people + reregistered))

    people = []
    for _ in range(n_people):
        first, last = rng.choice(prof.first_names), rng.choice(prof.last_names)
        area, exchange, line = phones.new()
        style = rng.choice(prof.phone_styles)
        zip_code = rng.choice(prof.zips) if rng.random() > 0.04 else ""
        if zip_code and rng.random() < 0.02:
            zip_code += f"-{rng.randrange(10_000):04d}"  # ZIP+4
        people.append(
            {
                "external_id": f"{prof.id_prefix}{next(ids):0{prof.id_digits}d}",
                "first_name": first,
                "last_name": last,
                "area": area,
                "exchange": exchange,
                "line": line,
                "style": style,
                "phone": fmt_phone(area, exchange, line, style),
                "email": email_for(rng, first, last) if rng.random() > 0.12 else "",
                "postal_code": zip_code,
                "insurance_verified": boolean(rng, prof) if rng.random() > 0.08 else "",
            }
        )

    records: list[dict[str, str]] = []
    for index, person in enumerate(people):
        records.append({**person, "person": index})
    dup_people = rng.sample(range(n_people), repeats + reregistered)
    for n, index in enumerate(dup_people):
        person = people[index]
        record = {**person, "person": index, "phone": restyle(person, rng)}
        if person["email"]:
            record["email"] = recase(person["email"], rng)
        if n >= repeats:  # the same person registered again under a new patient id
            record["external_id"] = f"{prof.id_prefix}{next(ids):0{prof.id_digits}d}"
        records.append(record)
    for record in records:
        record["appointment_at_dt"] = future_slot(rng, today)
        record["appointment_at"] = us_datetime(record["appointment_at_dt"])
        record["appointment_type"] = rng.choice(POOLS["appointment_type"])
        record["provider_name"] = rng.choice(POOLS["provider_name"])
        record["location_name"] = rng.choice(POOLS["location_name"])
        record["balance_due"] = money(rng) if rng.random() > 0.1 else ""
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
    for row, bad in zip(_pick(rng, singles, 3 * scale, taken), INVALID_PHONES * scale, strict=False):
        records[row]["phone"] = bad
    for row, (first, bad) in zip(_pick(rng, singles, 2 * scale, taken), INVALID_EMAILS[:2] * scale, strict=False):
        records[row].update(first_name=first, email=bad)
    for row, zip_code in zip(_pick(rng, singles, 3 * scale, taken), ("02134", "01701", "06511") * scale, strict=False):
        records[row]["postal_code"] = zip_code
    ragged_row, empty_row = _pick(rng, singles, 2, taken)

    rows = render_rows(load_map, records, values)
    bad_lines = {ragged_row + 2: make_ragged(rows[ragged_row], load_map)}
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
    prof = profile_for(client.client_id, packet_type)
    values = Values(rng, prof, today, packet_type)
    phones = PhoneBook(rng, prof.area_codes)
    total, duplicates = 240 * scale, 10 * scale
    n_people = total - duplicates
    relocating = set(rng.sample(range(2, n_people), 8 * scale))
    ids = sorted(rng.sample(range(10_000, 10**prof.id_digits), total))

    people = []
    for index in range(n_people):
        if index == 0:
            first, last = "José", "Peña"
        elif index == 1:
            first, last = "Zoë", "Lefèvre"
        else:
            first, last = rng.choice(prof.first_names), rng.choice(prof.last_names)
        home_area, zip_code = rng.choice(RELOCATING) if index in relocating else (None, rng.choice(prof.zips))
        area, exchange, line = phones.new(home_area)
        style = rng.choice(prof.phone_styles)
        people.append(
            {
                "first_name": first,
                "last_name": last,
                "area": area,
                "exchange": exchange,
                "line": line,
                "style": style,
                "phone": fmt_phone(area, exchange, line, style) if rng.random() > 0.06 else "",
                "email": email_for(rng, first, last) if rng.random() > 0.04 else "",
                "postal_code": zip_code if rng.random() > 0.03 else "",
            }
        )
    order = list(range(n_people)) + rng.sample(range(n_people), duplicates)  # re-entered by another agent
    records = []
    for n, index in enumerate(order):
        person = people[index]
        record = {**person, "person": index}
        if n >= n_people:
            record["phone"] = restyle(person, rng) if person["phone"] else ""
            record["email"] = recase(person["email"], rng) if person["email"] else ""
        address = f"{rng.randint(100, 9999)} {rng.choice(STREETS)}"
        extra = rng.random()
        if extra < 0.08:
            address += f"; Unit {rng.randint(1, 30)}{rng.choice('ABCD')}"  # the delimiter inside a value
        elif extra < 0.16:
            address += f" #{rng.randint(101, 1450)}"
        record.update(
            property_address=address,
            property_city=rng.choice(POOLS["property_city"]),
            list_price=price(rng),
            listing_status=rng.choice(POOLS["listing_status"]),
            is_pre_approved=boolean(rng, prof) if rng.random() > 0.1 else "",
            interests=tags(rng, TAGS[packet_type], _separator(load_map, "interests", "|"), 0, 3),
            last_showing_on=us_date(today - timedelta(days=rng.randint(1, 90))) if rng.random() > 0.3 else "",
        )
        records.append(record)
    middle = records[2:n_people]
    rng.shuffle(middle)  # José and Zoë stay first; re-entries stay last (the newest lead ids)
    records[2:n_people] = middle
    for record, lead_id in zip(records, ids, strict=False):
        record["external_id"] = f"{prof.id_prefix}{lead_id}"

    counts: dict[int, int] = {}
    for record in records:
        counts[record["person"]] = counts.get(record["person"], 0) + 1
    singles = [i for i, r in enumerate(records) if counts[r["person"]] == 1 and i > 1 and r["phone"] and r["email"]]
    taken: set[int] = set()
    for row, bad in zip(_pick(rng, singles, 3 * scale, taken), INVALID_PHONES * scale, strict=False):
        records[row]["phone"] = bad
    for row, (first, bad) in zip(_pick(rng, singles, 2 * scale, taken), INVALID_EMAILS[:2] * scale, strict=False):
        records[row].update(first_name=first, email=bad)
    # the agents' hand-picked VIP buyers (a manual segment's members by lead id) are in the export,
    # each having signed the texting consent, so the listing announcement reaches them
    # (their own random stream: the rest of the file stays as it was without them)
    vips, vip_rng = _manual_ids(client), random.Random(f"{client.client_id}-vip")
    for row, lead_id in zip(_pick(vip_rng, singles, len(vips), taken), vips, strict=False):
        records[row].update(external_id=lead_id, sms_consent=boolean(vip_rng, prof, True))
    rows = render_rows(load_map, records, values)
    return {packet_type: _packet(client, load_map, prof, rows, {}, today)}


def _manual_ids(client: Client) -> list[str]:
    """The external ids a client's manual segments list (members that are not a phone or an email)."""
    return sorted(
        {
            member
            for segment in client.segments.values()
            if segment.type == "manual"
            for member in segment.members
            if "@" not in member and not member.lstrip().startswith("+")
        }
    )


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
    prof = profile_for(client.client_id, "leads")
    values = Values(rng, prof, today, "leads")
    phones = PhoneBook(rng, prof.area_codes)
    total, duplicates = 400 * scale, 12 * scale
    n_people = total - duplicates
    ids = sorted(rng.sample(range(1_000, 10**prof.id_digits), total))

    people = []
    for _ in range(n_people):
        first, last = rng.choice(prof.first_names), rng.choice(prof.last_names)
        area, exchange, line = phones.new()
        style = rng.choice(prof.phone_styles)
        mobile = fmt_phone(area, exchange, line, style) if rng.random() < 0.55 else ""
        people.append(
            {
                "first_name": first,
                "last_name": last,
                "email": email_for(rng, first, last),
                "area": area,
                "exchange": exchange,
                "line": line,
                "style": style,
                "phone": mobile,
            }
        )
    order = list(range(n_people)) + rng.sample(range(n_people), duplicates)  # inquired twice
    records = []
    for n, index in enumerate(order):
        person = people[index]
        record = {**person, "person": index}
        if n >= n_people:
            record["email"] = recase(person["email"], rng)
            record["phone"] = restyle(person, rng) if person["phone"] and rng.random() < 0.5 else ""
        login = past_moment(rng, today, 30) if rng.random() > 0.25 else None
        record.update(
            program=rng.choice(POOLS["program"]),
            lead_source=rng.choice(POOLS["lead_source"]),
            gpa=rng.choice((f"{rng.uniform(2.3, 4.0):.2f}", f"{rng.uniform(2.5, 4.0):.1f}", "4.0"))
            if rng.random() > 0.15
            else "",
            intake_date=values.intake(),
            campus_tour_booked=boolean(rng, prof, rng.random() < 0.35) if rng.random() > 0.1 else "",
            interests=tags(rng, TAGS["leads"], _separator(leads_map, "interests", ";") if leads_map else ";", 0, 3),
            last_portal_login_at=login.isoformat(timespec="seconds") if login else "",
        )
        records.append(record)
    for record, lead_id in zip(records, ids, strict=False):
        record["external_id"] = f"{prof.id_prefix}{lead_id:0{prof.id_digits}d}"

    counts: dict[int, int] = {}
    for record in records:
        counts[record["person"]] = counts.get(record["person"], 0) + 1
    singles = [i for i, r in enumerate(records) if counts[r["person"]] == 1]
    taken: set[int] = set()
    for row, (first, bad) in zip(_pick(rng, singles, 3 * scale, taken), INVALID_EMAILS * scale, strict=False):
        records[row].update(first_name=first, email=bad)
    international = ("+44 20 7946 0958", "+52 55 5555 0142", "+91 98765 43210")
    for row, number in zip(_pick(rng, singles, 3 * scale, taken), international * scale, strict=False):
        records[row]["phone"] = number
    for row in _pick(rng, singles, scale, taken):
        records[row]["phone"] = "n/a"

    packets: dict[str, SamplePacket] = {}
    if leads_map is not None:
        rows = render_rows(leads_map, records, values)
        packets["leads"] = _packet(client, leads_map, prof, rows, {}, today)
    if events_map is not None:
        packets["funnel_events"] = _funnel_events(client, events_map, records, rng, scale, today)
    return packets


def _contractor(client: Client, rng: random.Random, scale: int, today: date) -> dict[str, SamplePacket]:
    """625 homeowners (times ``scale``), each once, for a seed-style SMS campaign at 125 a day:
    most signed the contractor's texting consent (with its date and form), some declined or left
    it blank, and a few have a landline-style typo or no email."""
    packet_type = "homeowners"
    load_map = client.load_maps.get(packet_type)
    if load_map is None:
        return {}
    prof = profile_for(client.client_id, packet_type)
    values = Values(rng, prof, today, packet_type)
    phones = PhoneBook(rng, prof.area_codes)
    total = 625 * scale
    ids = sorted(rng.sample(range(10_000, 10**prof.id_digits), total))
    sources = ("web form", "web form", "job-site tablet", "paper estimate form")
    records = []
    for lead_id in ids:
        first, last = rng.choice(prof.first_names), rng.choice(prof.last_names)
        area, exchange, line = phones.new()
        consent = rng.random()
        signed = consent < 0.88
        opted_on = today - timedelta(days=rng.randint(20, 900))
        records.append(
            {
                "external_id": f"{prof.id_prefix}{lead_id}",
                "first_name": first,
                "last_name": last,
                "phone": fmt_phone(area, exchange, line, rng.choice(prof.phone_styles)),
                "email": email_for(rng, first, last) if rng.random() > 0.15 else "",
                "street_address": f"{rng.randint(100, 9999)} {rng.choice(STREETS)}",
                "home_city": rng.choice(POOLS["property_city"]),
                "postal_code": rng.choice(prof.zips),
                "roof_installed_year": str(rng.randint(1988, today.year - 1)),
                "last_service_on": us_date(today - timedelta(days=rng.randint(30, 2000))) if rng.random() > 0.4 else "",
                # 88% signed; the rest declined (N) or the field was left blank: neither is consent
                "sms_consent": boolean(rng, prof, True)
                if signed
                else (boolean(rng, prof, False) if consent < 0.95 else ""),
                "sms_opt_in_on": us_date(opted_on) if signed else "",
                "sms_opt_in_source": rng.choice(sources) if signed else "",
            }
        )
    taken: set[int] = set()
    for row, bad in zip(_pick(rng, list(range(total)), 2 * scale, taken), INVALID_PHONES * scale, strict=False):
        records[row]["phone"] = bad  # typed wrong in the CRM: landed, never texted
    rows = render_rows(load_map, records, values)
    return {packet_type: _packet(client, load_map, prof, rows, {}, today)}


def _funnel_events(
    client: Client, load_map: LoadMap, leads: list[dict[str, str]], rng: random.Random, scale: int, today: date
) -> SamplePacket:
    prof = profile_for(client.client_id, "funnel_events")
    values = Values(rng, prof, today, "funnel_events")
    total, resent = 500 * scale, 2 * scale
    wanted = total - resent
    now = datetime.combine(today, time())
    events: list[dict] = []
    for lead in rng.sample(leads, len(leads)):
        if len(events) >= wanted:
            break
        funnel = rng.choice(POOLS["funnel_type"])
        depth = rng.choices((1, 2, 3, 4), (35, 30, 20, 15))[0]
        moment = past_moment(rng, today, 150)
        previous = ""
        for stage in STAGES[:depth]:
            if moment >= now or len(events) >= wanted:
                break
            events.append(
                {
                    "external_id": lead["external_id"],
                    "funnel_type": funnel,
                    "from_stage": previous,
                    "to_stage": stage,
                    "at": moment,
                    "email": lead["email"],
                    "phone": lead["phone"],
                }
            )
            previous = stage
            moment += timedelta(days=rng.randint(3, 35), seconds=rng.randrange(86_400))
    while len(events) < wanted:  # not reachable with 400 leads, kept for odd configs
        lead = rng.choice(leads)
        events.append(
            {
                "external_id": lead["external_id"],
                "funnel_type": "sales",
                "from_stage": "",
                "to_stage": "inquiry",
                "at": past_moment(rng, today, 150),
            }
        )
    events += [dict(e) for e in rng.sample(events, resent)]  # the LMS re-sent a few events verbatim
    events.sort(key=lambda e: (e["at"], e["external_id"]))
    for event in events:
        event["occurred_at"] = event["at"].isoformat(sep=" ", timespec="seconds")
    rows = render_rows(load_map, events, values)
    return _packet(client, load_map, prof, rows, {}, today)


def _packet(
    client: Client, load_map: LoadMap, prof: Profile, rows: list[list[str]], bad_lines: dict[int, str], today: date
) -> SamplePacket:
    stem = prof.file_stem or load_map.packet_type
    return SamplePacket(
        client_id=client.client_id,
        packet_type=load_map.packet_type,
        file_name=f"{stem}_{today.isoformat()}.csv",
        content=encode_csv(load_map, [rows], prof),
        rows=len(rows),
        bad_lines=dict(sorted(bad_lines.items())),
        encoding=prof.encoding,
    )


_SCENARIOS: dict[str, Callable[[Client, random.Random, int, date], dict[str, SamplePacket]]] = {
    "bright_smiles_dental": _dental,
    "lakeside_realty": _realtor,
    "northfield_college": _college,
    "summit_roofing": _contractor,
}


def demo_packets(
    deployment: Deployment, seed: int = 7, scale: int = 1, *, today: date = DEFAULT_REFERENCE_DATE
) -> list[SamplePacket]:
    """Realistic, messy sample packets for every load map in ``deployment``.

    The four example clients get their hand-written scenarios (300 dental appointments, 240 realtor
    buyer leads, 400 college leads and 500 funnel events, 625 contractor homeowners, times
    ``scale``); any other load map gets
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
