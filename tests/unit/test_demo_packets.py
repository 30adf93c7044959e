"""The demo / benchmark packets look like what the example clients send, and match their load maps."""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
from collections import Counter
from datetime import date, datetime
from pathlib import Path

import phonenumbers
import pytest

from herald.config.loader import load_deployment
from herald.config.models import FieldColumn, LoadMap
from herald.demo import DEFAULT_REFERENCE_DATE, SamplePacket, demo_packets, sized_packet, write_packets

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
EMAIL_RE = re.compile(r"^[^@\s,]+@[^@\s,]+\.[a-z]{2,}$", re.IGNORECASE)
DENTAL = ("bright_smiles_dental", "appointments")
REALTOR = ("lakeside_realty", "buyer_leads")
LEADS = ("northfield_college", "leads")
EVENTS = ("northfield_college", "funnel_events")
ROOFING = ("summit_roofing", "homeowners")
EXPECTED_ROWS = {DENTAL: 300, REALTOR: 240, LEADS: 400, EVENTS: 500, ROOFING: 625}


@pytest.fixture(scope="module")
def deployment():
    return load_deployment(CONFIG_DIR)


@pytest.fixture(scope="module")
def packets(deployment) -> dict[tuple[str, str], SamplePacket]:
    return {(p.client_id, p.packet_type): p for p in demo_packets(deployment)}


def load_map(deployment, key: tuple[str, str]) -> LoadMap:
    return deployment.clients[key[0]].load_maps[key[1]]


def parse(packet: SamplePacket, lm: LoadMap) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (physical line number, fields) per data row, read the way a user would."""
    reader = csv.reader(
        io.StringIO(packet.content.decode(packet.encoding), newline=""),
        delimiter=lm.format.delimiter,
        quotechar=lm.format.quote_char,
    )
    header = next(reader)
    return header, [(reader.line_num, row) for row in reader]


def records(packet: SamplePacket, lm: LoadMap) -> list[dict[str, str]]:
    """Well-formed rows as {canonical field or attribute: value}."""
    _header, rows = parse(packet, lm)
    keys = [t.field if isinstance(t, FieldColumn) else t.attribute for t in lm.columns.values()]
    return [dict(zip(keys, row, strict=False)) for line, row in rows if line not in packet.bad_lines]


def bad_rows(packet: SamplePacket, lm: LoadMap) -> dict[int, str]:
    """Lines landing must reject: wrong field count, or a required field left empty."""
    header, rows = parse(packet, lm)
    required = [header.index(c) for f, c in lm.field_columns().items() if f in lm.required]
    found = {}
    for line, row in rows:
        if len(row) != len(header):
            found[line] = "ragged"
        elif any(not row[i].strip() for i in required):
            found[line] = "empty required"
    return found


def e164(raw: str) -> str | None:
    try:
        number = phonenumbers.parse(raw, "US")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def test_one_packet_per_example_load_map_with_the_documented_row_counts(deployment, packets):
    configured = {(c, t) for c, client in deployment.clients.items() for t in client.load_maps}
    assert set(packets) == configured == set(EXPECTED_ROWS)
    for key, expected in EXPECTED_ROWS.items():
        _header, rows = parse(packets[key], load_map(deployment, key))
        assert packets[key].rows == len(rows) == expected, key


@pytest.mark.parametrize("key", list(EXPECTED_ROWS))
def test_header_is_the_load_map_columns_with_its_delimiter(deployment, packets, key):
    lm = load_map(deployment, key)
    packet = packets[key]
    first_line = packet.content.decode(packet.encoding).splitlines()[0]
    assert first_line == lm.format.delimiter.join(lm.columns)
    header, rows = parse(packet, lm)
    assert header == list(lm.columns)
    assert all(len(row) == len(header) for line, row in rows if line not in packet.bad_lines)


def test_realtor_file_is_windows_1252_with_semicolons_and_accents(packets):
    packet = packets[REALTOR]
    assert packet.encoding == "windows-1252"
    assert any(b >= 0x80 for b in packet.content)
    with pytest.raises(UnicodeDecodeError):
        packet.content.decode("utf-8")
    text = packet.content.decode("windows-1252")
    assert "José;Peña" in text and "Zoë;Lefèvre" in text
    assert text.splitlines()[0].count(";") == 13  # 14 columns, including the texting consent


def test_college_leads_start_with_a_utf8_bom_and_other_files_do_not(packets):
    assert packets[LEADS].content.startswith(codecs.BOM_UTF8)
    assert packets[LEADS].encoding == "utf-8-sig"
    packets[LEADS].content.decode("utf-8")  # valid UTF-8 after the BOM
    for key in (DENTAL, REALTOR, EVENTS, ROOFING):
        assert not packets[key].content.startswith(codecs.BOM_UTF8)


@pytest.mark.parametrize("key", list(EXPECTED_ROWS))
def test_bad_lines_are_exactly_the_rows_landing_must_reject(deployment, packets, key):
    packet = packets[key]
    assert bad_rows(packet, load_map(deployment, key)).keys() == packet.bad_lines.keys()


def test_dental_has_one_ragged_row_and_one_row_without_its_cell_phone(deployment, packets):
    found = bad_rows(packets[DENTAL], load_map(deployment, DENTAL))
    assert sorted(found.values()) == ["empty required", "ragged"]
    reasons = packets[DENTAL].bad_lines
    assert any("ragged" in r for r in reasons.values()) and any("Cell Phone" in r for r in reasons.values())


def test_dental_has_the_same_people_written_differently(deployment, packets):
    rows = records(packets[DENTAL], load_map(deployment, DENTAL))
    by_number: dict[str, set[str]] = {}
    for row in rows:
        if e164(row["phone"]):
            by_number.setdefault(e164(row["phone"]), set()).add(row["phone"])
    assert sum(len(raw) > 1 for raw in by_number.values()) >= 10  # same number, different spelling
    by_email: dict[str, set[str]] = {}
    for row in rows:
        if row["email"]:
            by_email.setdefault(row["email"].lower(), set()).add(row["email"])
    assert any(len(raw) > 1 for raw in by_email.values())  # same email, different case


def test_demo_files_carry_realistic_mess(deployment, packets):
    dental = records(packets[DENTAL], load_map(deployment, DENTAL))
    phones = {r["phone"] for r in dental}
    assert {"555-12", "n/a", "123-456-7890"} <= phones
    assert {"jane@", "bob at example.com"} <= {r["email"] for r in dental}
    assert any(r["email"] == "" for r in dental) and any(r["balance_due"] == "" for r in dental)
    assert any(re.fullmatch(r"0\d{4}", r["postal_code"]) for r in dental)
    assert {r["insurance_verified"] for r in dental} >= {"Yes", "No", "Y", "N", "true"}
    for row in dental:
        at = datetime.strptime(row["appointment_at"], "%m/%d/%Y %I:%M %p")
        assert at.date() > DEFAULT_REFERENCE_DATE

    realtor = records(packets[REALTOR], load_map(deployment, REALTOR))
    assert any(re.fullmatch(r"\$\d{1,3}(,\d{3})+", r["list_price"]) for r in realtor)
    assert any(re.fullmatch(r"0\d{4}", r["postal_code"]) for r in realtor)
    assert any("|" in r["interests"] for r in realtor)
    assert any(";" in r["property_address"] for r in realtor)  # a delimiter inside a quoted value
    assert {"555-12", "n/a", "jane@"} & ({r["phone"] for r in realtor} | {r["email"] for r in realtor})

    leads = records(packets[LEADS], load_map(deployment, LEADS))
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", r["intake_date"]) for r in leads)
    assert all(re.fullmatch(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})?", r["last_portal_login_at"]) for r in leads)
    assert any(";" in r["interests"] for r in leads)
    emails = Counter(r["email"].lower() for r in leads)
    assert any(n > 1 for n in emails.values())


@pytest.mark.parametrize(
    ("key", "phone_share", "email_share"),
    [(DENTAL, 0.9, 0.5), (REALTOR, 0.8, 0.8), (LEADS, None, 0.9), (ROOFING, 0.9, 0.5)],
)
def test_demo_data_clears_the_configured_validation_thresholds(deployment, packets, key, phone_share, email_share):
    rows = records(packets[key], load_map(deployment, key))
    if phone_share is not None:
        assert sum(e164(r["phone"]) is not None for r in rows) / len(rows) >= phone_share
    valid_emails = sum(bool(EMAIL_RE.match(r["email"])) for r in rows)
    assert email_share <= valid_emails / len(rows) < 1


def test_contractor_homeowners_are_625_people_most_with_signed_texting_consent(deployment, packets):
    homeowners = records(packets[ROOFING], load_map(deployment, ROOFING))
    assert len({r["external_id"] for r in homeowners}) == len(homeowners) == 625  # each homeowner once
    phones = [e164(r["phone"]) for r in homeowners]
    assert phones.count(None) == 2 and len(set(phones) - {None}) == 623  # two typed wrong in the CRM
    signed = [r for r in homeowners if r["sms_consent"] in ("Y", "Yes")]
    declined = [r for r in homeowners if r["sms_consent"] in ("N", "No", "")]
    assert len(signed) + len(declined) == 625 and 0.8 < len(signed) / 625 < 0.95 and declined
    # the evidence goes with the consent: when and on which form, for every signed homeowner only
    assert all(r["sms_opt_in_on"] and r["sms_opt_in_source"] for r in signed)
    assert not any(r["sms_opt_in_on"] or r["sms_opt_in_source"] for r in declined)


def test_funnel_events_follow_the_leads_through_the_stages(deployment, packets):
    lead_ids = {r["external_id"] for r in records(packets[LEADS], load_map(deployment, LEADS))}
    events = records(packets[EVENTS], load_map(deployment, EVENTS))
    stages = ["", "inquiry", "applied", "admitted", "enrolled"]
    assert {e["external_id"] for e in events} <= lead_ids
    assert {e["funnel_type"] for e in events} == {"sales", "service-delivery"}
    assert {e["to_stage"] for e in events} == set(stages[1:])
    for event in events:
        assert stages.index(event["from_stage"]) + 1 == stages.index(event["to_stage"])
        assert datetime.fromisoformat(event["occurred_at"]).date() <= DEFAULT_REFERENCE_DATE


def test_same_seed_gives_identical_bytes(deployment, packets):
    again = {(p.client_id, p.packet_type): p for p in demo_packets(deployment, seed=7)}
    assert {k: p.content for k, p in again.items()} == {k: p.content for k, p in packets.items()}
    other = {(p.client_id, p.packet_type): p.content for p in demo_packets(deployment, seed=8)}
    assert all(other[k] != p.content for k, p in packets.items())


def test_demo_dates_follow_the_reference_date(deployment):
    today = date(2027, 3, 1)
    dental = {(p.client_id, p.packet_type): p for p in demo_packets(deployment, today=today)}[DENTAL]
    for row in records(dental, load_map(deployment, DENTAL)):
        assert datetime.strptime(row["appointment_at"], "%m/%d/%Y %I:%M %p").date() > today


@pytest.mark.parametrize("key", list(EXPECTED_ROWS))
def test_sized_packet_has_exactly_the_rows_and_ragged_lines_asked_for(deployment, key):
    lm = load_map(deployment, key)
    packet = sized_packet(deployment, *key, rows=1000, bad_rows=3)
    header, rows = parse(packet, lm)
    assert header == list(lm.columns)
    assert packet.rows == len(rows) == 1000
    ragged = [line for line, row in rows if len(row) != len(header)]
    assert len(ragged) == 3 and ragged == sorted(packet.bad_lines)
    assert min(ragged) > 2 and max(ragged) < 1001 and min(b - a for a, b in itertools.pairwise(ragged)) > 100
    assert bad_rows(packet, lm) == dict.fromkeys(ragged, "ragged")  # nothing else is wrong

    good = records(packet, lm)
    if "phone" in lm.field_columns():
        numbers = [e164(r["phone"]) for r in good]
        assert None not in numbers and len(set(numbers)) == len(numbers)
    if "email" in lm.field_columns():
        assert all(EMAIL_RE.match(r["email"]) for r in good)
    if lm.entity == "contacts":
        assert len({r["external_id"] for r in good}) == len(good)


def test_sized_funnel_events_walk_the_sized_leads_through_every_stage(deployment):
    leads = records(sized_packet(deployment, *LEADS, rows=250), load_map(deployment, LEADS))
    events = records(sized_packet(deployment, *EVENTS, rows=1000), load_map(deployment, EVENTS))
    assert {e["external_id"] for e in events} == {r["external_id"] for r in leads}
    assert Counter(e["to_stage"] for e in events) == dict.fromkeys(("inquiry", "applied", "admitted", "enrolled"), 250)
    assert all(datetime.fromisoformat(e["occurred_at"]).date() < DEFAULT_REFERENCE_DATE for e in events)


def test_sized_packet_is_deterministic_and_clean_without_bad_rows(deployment):
    first = sized_packet(deployment, *REALTOR, rows=1000, seed=3)
    assert first.content == sized_packet(deployment, *REALTOR, rows=1000, seed=3).content
    assert first.content != sized_packet(deployment, *REALTOR, rows=1000, seed=4).content
    assert first.bad_lines == {} and bad_rows(first, load_map(deployment, REALTOR)) == {}
    first.content.decode("windows-1252")
    with pytest.raises(ValueError):
        sized_packet(deployment, *REALTOR, rows=2, bad_rows=3)
    with pytest.raises(KeyError):
        sized_packet(deployment, "nobody", "leads", rows=1)


def test_write_packets_lays_files_out_by_client_and_packet_type(packets, tmp_path):
    paths = write_packets(packets.values(), tmp_path)
    for path, packet in zip(paths, packets.values(), strict=False):
        assert path == tmp_path / packet.client_id / packet.packet_type / packet.file_name
        assert path.read_bytes() == packet.content


def test_drop_packets_puts_each_packet_in_a_zone_under_a_stamped_name(packets, tmp_path):
    from herald.demo.packets import drop_packets
    from herald.dropzone.local import LocalDropZone

    zone = LocalDropZone(tmp_path / "zone")
    chosen = [packets[DENTAL], packets[LEADS]]
    lines = list(drop_packets(zone, chosen, "20261201093000"))
    dental_name = f"{Path(packets[DENTAL].file_name).stem}-20261201093000.csv"
    assert lines[0] == f"dropped bright_smiles_dental/appointments/{dental_name} (300 rows, utf-8)"
    assert lines[1].endswith("(400 rows, utf-8-sig)")
    pending = {p.zone_path.rsplit("/", 1)[-1]: p for p in zone.list_pending()}
    assert dental_name in pending and len(pending) == 2
    assert pending[dental_name].size_bytes == len(packets[DENTAL].content)
