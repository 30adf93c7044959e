"""marts.appointments, marts.appointment_confirmations and the daily staff digest, on a real
warehouse of each engine: hand-made packet rows and answers in, one dbt build, then the digest
(herald.appointments.digest) read from the built marts and sent through the sandbox."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from herald.appointments.digest import STAFF_DIGESTS, digest_key, mask_name, send_digests
from herald.config.models import Deployment
from herald.providers.sandbox import SandboxEmailProvider
from herald.settings import Settings
from herald.warehouse.connection import Warehouse
from tests.dbt_harness import LOADED_AT, REPO_ROOT, Built, MartBuild, build_marts, failed_nodes, rows

ENGINES = ["duckdb", "postgres"]
CLINIC = "bright_smiles_dental"  # America/Chicago: UTC-5 from 10 March 2024
REALTY = "lakeside_realty"
AS_OF = datetime(2024, 3, 11, 18, 0)  # 13:00 on 11 March in Chicago

P1_AT = datetime(2024, 3, 9, 12, 0)
P2_AT = datetime(2024, 3, 11, 17, 0)
P3_AT = datetime(2024, 3, 11, 17, 30)

ATTRIBUTE_COLUMNS = [
    ("packet_id", "varchar"), ("client_id", "varchar"), ("line_number", "bigint"),
    ("packet_received_at", "timestamp"), ("attribute_name", "varchar"), ("raw_value", "varchar"),
    ("string_value", "varchar"), ("timestamp_value", "timestamp"),
]  # fmt: skip
SOURCE_COLUMNS = [("packet_id", "varchar"), ("line_number", "bigint"), ("contact_id", "varchar"),
                  ("client_id", "varchar")]  # fmt: skip
CONTACT_COLUMNS = [("contact_id", "varchar"), ("client_id", "varchar"), ("first_name", "varchar"),
                   ("last_name", "varchar")]  # fmt: skip

attribute_rows: list[tuple[Any, ...]] = []
source_rows: list[tuple[Any, ...]] = []


def packet_row(packet: str, line: int, received: datetime, contact: str, client: str = CLINIC, **values: Any) -> None:
    """One packet row: its appointment fields as typed attribute values, and its contact."""
    source_rows.append((packet, line, contact, client))
    for name, value in values.items():
        at = value if isinstance(value, datetime) else None
        text = None if at else value
        attribute_rows.append((packet, client, line, received, name, str(value), text, at))


# two appointments for c1; A3 cancelled by the second packet; A4 rescheduled by it
packet_row(
    "p1",
    1,
    P1_AT,
    "c1",
    appointment_id="A1",
    appointment_at=datetime(2024, 3, 15, 15, 0),
    appointment_type="cleaning",
    provider_name="Dr. Ruiz",
)
packet_row("p1", 2, P1_AT, "c1", appointment_id="A2", appointment_at=datetime(2024, 3, 20, 15, 0))
packet_row("p1", 3, P1_AT, "c2", appointment_id="A3", appointment_at=datetime(2024, 3, 12, 17, 0))
packet_row("p1", 4, P1_AT, "c3", appointment_id="A4", appointment_at=datetime(2024, 3, 16, 15, 0))
packet_row(
    "p1", 5, P1_AT, "c4", appointment_id="A5", appointment_at=datetime(2024, 3, 12, 15, 0), appointment_type="consult"
)  # 10:00 on the 12th, less than 24h away
packet_row("p1", 6, P1_AT, "c5", appointment_id="A6", appointment_at=datetime(2024, 3, 13, 20, 0))
packet_row("p1", 7, P1_AT, "c6", appointment_id="A7", appointment_at=datetime(2024, 3, 10, 15, 0))  # past
packet_row("p1", 8, P1_AT, "c10", appointment_id="A8", appointment_at=datetime(2024, 3, 12, 4, 0))  # 23:00 the 11th
packet_row("p1", 9, P1_AT, "c11", appointment_id="A9", appointment_at=datetime(2024, 3, 13, 4, 30))  # 23:30 the 12th
packet_row("p1", 10, P1_AT, "c12", appointment_id="A10", appointment_at=datetime(2024, 3, 12, 16, 0))
packet_row("p1", 11, P1_AT, "c13")  # no appointment on this row: not an appointment
packet_row(
    "p2",
    1,
    P2_AT,
    "c2",
    appointment_id="A3",
    appointment_at=datetime(2024, 3, 12, 17, 0),
    appointment_status="Cancelled",
)
packet_row("p2", 2, P2_AT, "c3", appointment_id="A4", appointment_at=datetime(2024, 3, 18, 16, 0))
# no appointment id mapped: the contact and the time key them; seen 30 minutes ago
packet_row("p3", 1, P3_AT, "c8", appointment_at=datetime(2024, 3, 25, 15, 0))
packet_row("p3", 2, P3_AT, "c8", appointment_at=datetime(2024, 3, 26, 15, 0))
# another client, whose high_risk_before is 72h
packet_row("r1", 1, P1_AT, "r1", client=REALTY, appointment_id="A1", appointment_at=datetime(2024, 3, 13, 20, 0))

RESPONSES = [
    ("in-1", CLINIC, "c1", "confirmed", datetime(2024, 3, 10, 10, 0)),  # A1 is c1's next appointment
    ("in-2", CLINIC, "c9", "confirmed", datetime(2024, 3, 10, 11, 0)),  # no appointment known
    ("in-3", CLINIC, "c12", "confirmed", datetime(2024, 3, 10, 9, 0)),
    ("in-4", CLINIC, "c5", "reschedule_requested", datetime(2024, 3, 9, 11, 0)),  # before A6 was known: unmatched
]
CLIENT_ROWS = [
    (CLINIC, "Bright Smiles Dental", "healthcare", "America/Chicago", "US", LOADED_AT),
    (REALTY, "Lakeside Realty", "real_estate", "America/Denver", "US", LOADED_AT),
]
SETTINGS = [(CLINIC, 1440, 1440, "17:00", True), (REALTY, 1440, 4320, "17:00", True)]
NAMES = {"c4": ("Maria", "Garcia"), "c11": ("Tom", None), "c12": ("Ann", "Lee"), "c10": ("Joe", "Park")}
CONTACTS = [
    (contact, client, *NAMES.get(contact, (None, None)))
    for contact, client in sorted({(r[2], r[3]) for r in source_rows} | {(r[2], r[1]) for r in RESPONSES})
]

BUILD = MartBuild(
    name="appointments",
    models=("appointments", "appointment_confirmations"),
    sources=(
        "herald_ops.clients",
        "herald_ops.appointment_responses",
        "herald_ops.confirmation_settings",
        "herald_ops.staff_digests",
    ),
    hand_made={
        "intermediate.int_attribute_values_typed": ATTRIBUTE_COLUMNS,
        "marts.contact_sources": SOURCE_COLUMNS,
        "marts.contacts": CONTACT_COLUMNS,
    },
    rows={
        "herald_ops.clients": CLIENT_ROWS,
        "herald_ops.appointment_responses": RESPONSES,
        "herald_ops.confirmation_settings": SETTINGS,
        "intermediate.int_attribute_values_typed": attribute_rows,
        "marts.contact_sources": source_rows,
        "marts.contacts": CONTACTS,
    },
    dbt_args=("--vars", json.dumps({"confirmations_as_of": AS_OF.isoformat(sep=" ")})),
)


@pytest.fixture(scope="module", params=ENGINES)
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    with build_marts(request, tmp_path_factory, BUILD) as result:
        yield result


def appointments(built: Built) -> dict[tuple[str, str], dict[str, Any]]:
    found = rows(built.warehouse, "select * from marts.appointments")
    return {(a["client_id"], a["appointment_id"] or f"{a['contact_id']}@{a['appointment_at']:%d %H:%M}"): a
            for a in found}  # fmt: skip


def states(built: Built) -> dict[tuple[str, str | None], str]:
    found = rows(built.warehouse, "select * from marts.appointment_confirmations")
    return {(c["client_id"], c["appointment_id"] or c["contact_id"]): c["confirmation_state"] for c in found}


def test_the_models_and_their_data_tests_pass(built: Built) -> None:
    assert failed_nodes(built) == {}
    statuses = {r["unique_id"] for r in built.run["results"]}
    assert {"model.herald.appointments", "model.herald.appointment_confirmations"} <= statuses
    assert any("unique_key_appointments" in t for t in statuses)


def test_each_packet_row_with_an_appointment_is_one_appointment(built: Built) -> None:
    got = appointments(built)
    assert len(got) == 13  # 11 with an id (A1..A10 of the clinic, A1 of the realty), 2 without
    # two appointments of one contact are two rows
    assert sorted(k[1] for k, a in got.items() if a["contact_id"] == "c1") == ["A1", "A2"]
    assert sorted(k[1] for k, a in got.items() if a["contact_id"] == "c8") == ["c8@25 15:00", "c8@26 15:00"]
    a1 = got[(CLINIC, "A1")]
    assert (a1["appointment_at"], a1["appointment_type"], a1["provider_name"], a1["status"]) == (
        datetime(2024, 3, 15, 15, 0), "cleaning", "Dr. Ruiz", "scheduled",
    )  # fmt: skip
    assert (a1["first_seen_packet_id"], a1["last_seen_at"]) == ("p1", P1_AT)
    # keys are deterministic: the client and its appointment id, or the client, contact and time
    expected = hashlib.md5(f"{CLINIC}|id|A1|<null>".encode()).hexdigest()
    assert a1["appointment_key"] == expected
    by_time = hashlib.md5(f"{CLINIC}|contact_time|c8|2024-03-25 15:00:00".encode()).hexdigest()
    assert got[(CLINIC, "c8@25 15:00")]["appointment_key"] == by_time
    # the same appointment id at another client is another appointment
    assert got[(REALTY, "A1")]["appointment_key"] != expected


def test_a_later_packet_cancels_or_reschedules(built: Built) -> None:
    got = appointments(built)
    a3 = got[(CLINIC, "A3")]
    assert (a3["status"], a3["source_status"], a3["first_seen_packet_id"], a3["last_seen_at"]) == (
        "cancelled", "Cancelled", "p1", P2_AT,
    )  # fmt: skip
    a4 = [a for a in got.values() if a["appointment_id"] == "A4"]
    assert [(a["status"], a["appointment_at"], a["original_appointment_at"], a["packet_row_count"]) for a in a4] == [
        ("rescheduled", datetime(2024, 3, 18, 16, 0), datetime(2024, 3, 16, 15, 0), 2)
    ]


def test_confirmation_states(built: Built) -> None:
    assert states(built) == {
        (CLINIC, "A1"): "confirmed",  # C confirmed c1's next upcoming appointment only
        (CLINIC, "A2"): "unconfirmed",  # seen 2 days ago, no answer, more than 24h away
        (CLINIC, "A3"): "cancelled",
        (CLINIC, "A4"): "unconfirmed",
        (CLINIC, "A5"): "high_risk",  # no answer and less than 24h away
        (CLINIC, "A6"): "unconfirmed",
        (CLINIC, "A7"): "past",
        (CLINIC, "A8"): "high_risk",
        (CLINIC, "A9"): "unconfirmed",
        (CLINIC, "A10"): "confirmed",
        (CLINIC, "c8"): "pending",  # both seen 30 minutes ago: not overdue yet
        (CLINIC, "c9"): "confirmed",  # an answer that matched no known appointment keeps its row
        (CLINIC, "c5"): "reschedule_requested",  # answered before A6 was known
        (REALTY, "A1"): "high_risk",  # 50 hours away, within this client's 72h
    }
    counts = rows(built.warehouse, "select count(*) as n from marts.appointment_confirmations where contact_id = 'c8'")
    assert counts == [{"n": 2}]
    a1 = rows(built.warehouse, "select * from marts.appointment_confirmations where appointment_id = 'A1' "
                               f"and client_id = '{CLINIC}'")[0]  # fmt: skip
    assert (a1["response"], a1["is_confirmed"], a1["inbound_id"], a1["response_count"], a1["evaluated_at"]) == (
        "confirmed", True, "in-1", 1, AS_OF,
    )  # fmt: skip
    assert a1["follow_up_due_at"] == datetime(2024, 3, 10, 12, 0)
    assert a1["high_risk_from"] == datetime(2024, 3, 14, 15, 0)


def test_the_staff_digest_lists_tomorrows_unconfirmed_appointments_once_a_day(
    built: Built, deployment: Deployment
) -> None:
    email = SandboxEmailProvider()
    providers = {"email": email}

    def run(at: datetime) -> list:
        with built.warehouse.session() as s:
            return send_digests(s, deployment, providers, at, [CLINIC])

    assert run(datetime(2024, 3, 11, 21, 0)) == []  # 16:00 in Chicago: before send_at (17:00)
    sent = run(datetime(2024, 3, 11, 23, 30))  # 18:30 on the 11th: the digest of the 12th
    assert [(d.client_id, d.digest_date, d.appointment_date, d.email_status) for d in sent] == [
        (CLINIC, date(2024, 3, 11), date(2024, 3, 12), "sent")
    ]
    # exactly the unconfirmed appointments of the 12th (local): not A8 (23:00 on the 11th), not the
    # confirmed A10, not the cancelled A3
    assert [(a.patient, f"{a.local_time:%d %H:%M}", a.confirmation_state) for a in sent[0].appointments] == [
        ("Maria G.", "12 10:00", "high_risk"), ("Tom", "12 23:30", "unconfirmed"),
    ]  # fmt: skip
    assert len(email.sent) == 1
    message = email.sent[0]
    assert message.to == "frontdesk@brightsmiles.example"
    assert message.message_key == digest_key(CLINIC, date(2024, 3, 11))
    assert "2 unconfirmed appointments tomorrow" in (message.subject or "")
    assert "10:00  Maria G. (consult) — high risk" in (message.text or "")
    assert "Garcia" not in (message.text or "") and "Joe" not in (message.text or "")
    # a second run the same local day sends nothing
    assert run(datetime(2024, 3, 12, 1, 0)) == []
    assert len(email.sent) == 1
    recorded = rows(
        built.warehouse, f"select client_id, digest_date, appointment_count, email_status from {STAFF_DIGESTS}"
    )
    assert recorded == [
        {"client_id": CLINIC, "digest_date": date(2024, 3, 11), "appointment_count": 2, "email_status": "sent"}
    ]


def test_names_are_masked_to_first_name_and_last_initial() -> None:
    assert mask_name("Maria", "garcia") == "Maria G."
    assert mask_name(None, "Garcia") == "G."
    assert mask_name(" ", None) == "(no name)"


# --- herald appointments digest ---------------------------------------------------------------


def herald(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "herald.cli", *args], env={**os.environ, **env}, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


@pytest.mark.parametrize("engine", ENGINES)
def test_the_cli_prints_the_digest_and_sends_it(engine: str, herald_env: Callable[[str], dict[str, str]]) -> None:
    env = herald_env(engine)
    warehouse = Warehouse(Settings.from_env(env).warehouse)
    warehouse.ensure_schema()
    chicago = ZoneInfo("America/Chicago")
    tomorrow = datetime.now(chicago).date() + timedelta(days=1)

    def utc(hour: int) -> datetime:
        local = datetime.combine(tomorrow, time(hour)).replace(tzinfo=chicago)
        return local.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)

    with warehouse.session() as s:
        s.execute("create schema if not exists marts")
        s.execute("create table marts.appointment_confirmations (appointment_key varchar, client_id varchar, "
                  "contact_id varchar, appointment_at timestamp, confirmation_state varchar)")  # fmt: skip
        s.execute("create table marts.appointments (appointment_key varchar, appointment_type varchar, "
                  "provider_name varchar)")  # fmt: skip
        s.execute("create table marts.contacts (contact_id varchar, first_name varchar, last_name varchar)")
        s.insert_rows(
            "marts.appointment_confirmations",
            ["appointment_key", "client_id", "contact_id", "appointment_at", "confirmation_state"],
            [("k1", CLINIC, "c1", utc(9), "unconfirmed"), ("k2", CLINIC, "c2", utc(11), "confirmed")],
        )
        s.insert_rows("marts.appointments", ["appointment_key", "appointment_type", "provider_name"],
                      [("k1", "cleaning", None), ("k2", None, None)])  # fmt: skip
        s.insert_rows("marts.contacts", ["contact_id", "first_name", "last_name"],
                      [("c1", "Maria", "Garcia"), ("c2", "Ann", "Lee")])  # fmt: skip

    dry = herald(env, "appointments", "digest", CLINIC, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "1 unconfirmed appointment tomorrow" in dry.stdout
    assert "09:00  Maria G. (cleaning)" in dry.stdout and "Garcia" not in dry.stdout and "Ann" not in dry.stdout
    assert "(dry run: not sent)" in dry.stdout
    assert rows(warehouse, f"select count(*) as n from {STAFF_DIGESTS}") == [{"n": 0}]

    sent = herald(env, "appointments", "digest", CLINIC)
    assert sent.returncode == 0, sent.stderr
    assert "sent to the client's contact.email" in sent.stdout
    recorded = rows(warehouse, f"select appointment_count, email_status from {STAFF_DIGESTS}")
    assert recorded == [{"appointment_count": 1, "email_status": "sent"}]
    journal = [
        json.loads(line) for line in (Path(env["HERALD_HOME"]) / "sandbox" / "email.jsonl").read_text().splitlines()
    ]
    assert [(e["subject"].split(": ", 1)[1].split(" (")[0], e["to"]) for e in journal] == [
        ("1 unconfirmed appointment tomorrow", "f•••@brightsmiles.example")
    ]
