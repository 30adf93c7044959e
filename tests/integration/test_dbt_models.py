"""The dbt project on a real warehouse, once per engine: hand-made raw data in, marts out.

Each engine gets one fresh warehouse (a DuckDB file under a temp dir, or a throwaway
PostgreSQL database), the Python-owned tables from ``herald.warehouse.schema``, a small dataset
inserted directly, and two ``dbt build`` runs: the first builds everything (data and unit
tests included), the second runs after a new funnel-events packet lands and proves that the
immutable ``funnel_events`` mart only appends events it does not hold yet. dbt's start-up
dominates the cost, so every assertion reads the same built warehouse.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from herald.config.fields import CANONICAL_FIELDS
from herald.settings import WarehouseTarget, parse_warehouse_url
from herald.warehouse.connection import Warehouse
from herald.warehouse.schema import column_names, ddl_statements

REPO_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"

LOADED_AT = datetime(2024, 3, 1, 12, 0)

CLIENTS = [
    # client_id, name, industry, time_zone, default_region, loaded_at
    ("clinic", "Bright Smiles Dental", "healthcare", "America/Chicago", "US", LOADED_AT),
    ("realty", "Harbor Realty", "real_estate", "America/New_York", "US", LOADED_AT),
]

LOAD_MAPS = [
    # client_id, packet_type, entity, description, keep_unmapped, loaded_at
    ("clinic", "patients", "contacts", "patient export", True, LOADED_AT),
    ("clinic", "stage_changes", "funnel_events", "funnel stage changes", False, LOADED_AT),
    ("realty", "leads", "contacts", "lead list", False, LOADED_AT),
]

LOAD_MAP_COLUMNS = [
    # client_id, packet_type, source_column, target_kind, target_name, data_type, array_separator, is_required, position
    ("clinic", "patients", "Patient ID", "field", "external_id", "string", None, False, 1),
    ("clinic", "patients", "First Name", "field", "first_name", "string", None, False, 2),
    ("clinic", "patients", "Last Name", "field", "last_name", "string", None, False, 3),
    ("clinic", "patients", "Email Address", "field", "email", "string", None, False, 4),
    ("clinic", "patients", "Mobile", "field", "phone", "string", None, True, 5),
    ("clinic", "patients", "ZIP", "field", "postal_code", "string", None, False, 6),
    ("clinic", "patients", "Appt Time", "field", "appointment_at", "timestamp", None, False, 7),
    ("clinic", "patients", "Appt Type", "field", "appointment_type", "string", None, False, 8),
    ("clinic", "patients", "Balance", "attribute", "balance_due", "numeric", None, False, 9),
    ("clinic", "patients", "Last Visit", "attribute", "last_visit_on", "date", None, False, 10),
    ("clinic", "patients", "Reminders OK", "attribute", "accepts_reminders", "boolean", None, False, 11),
    ("clinic", "patients", "Services", "attribute", "services", "array", ";", False, 12),
    ("clinic", "stage_changes", "Patient ID", "field", "external_id", "string", None, False, 1),
    ("clinic", "stage_changes", "Phone", "field", "phone", "string", None, False, 2),
    ("clinic", "stage_changes", "Email", "field", "email", "string", None, False, 3),
    ("clinic", "stage_changes", "Funnel", "field", "funnel_type", "string", None, True, 4),
    ("clinic", "stage_changes", "From", "field", "from_stage", "string", None, False, 5),
    ("clinic", "stage_changes", "To", "field", "to_stage", "string", None, True, 6),
    ("clinic", "stage_changes", "Changed At", "field", "occurred_at", "timestamp", None, True, 7),
    ("realty", "leads", "Lead Id", "field", "external_id", "string", None, False, 1),
    ("realty", "leads", "First", "field", "first_name", "string", None, False, 2),
    ("realty", "leads", "Cell", "field", "phone", "string", None, False, 3),
    ("realty", "leads", "E-mail", "field", "email", "string", None, False, 4),
    ("realty", "leads", "Price", "field", "list_price", "numeric", None, False, 5),
]

PATIENT_HEADERS = (
    "Patient ID", "First Name", "Last Name", "Email Address", "Mobile", "ZIP", "Appt Time",
    "Appt Type", "Balance", "Last Visit", "Reminders OK", "Services", "Referred By",
)  # fmt: skip
FUNNEL_HEADERS = ("Patient ID", "Phone", "Email", "Funnel", "From", "To", "Changed At")
LEAD_HEADERS = ("Lead Id", "First", "Cell", "E-mail", "Price", "Notes")
TYPED_VALUE_COLUMNS = ("string_value", "numeric_value", "boolean_value", "date_value", "timestamp_value", "array_value")


@dataclass(frozen=True)
class Packet:
    packet_id: str
    client_id: str
    packet_type: str
    status: str
    received_at: datetime
    headers: Sequence[str]
    rows: Sequence[Sequence[str]]


PACKETS = [
    Packet(
        "pkt-clinic-1",
        "clinic",
        "patients",
        "landed",
        datetime(2024, 3, 1, 15, 0),
        PATIENT_HEADERS,
        [
            # Ana: her phone in two formats on lines 1 and 2 → one contact
            (
                "P-1001",
                "  Ana  ",
                "de la   Cruz",
                " ANA.Cruz@Example.COM ",
                "(312) 555-0100",
                "2134",
                "3/10/2024 9:30 AM",
                "Cleaning",
                "$1,234.50",
                "2024-02-29",
                "Yes",
                "whitening; cleaning ; ",
                "Dr. Ortiz",
            ),
            ("P-1001", "Ana", "", "", "312.555.0100", "", "", "", "", "", "", "", ""),
            # Bob: no phone, so his email is his identity
            (
                "P-1002",
                "Bob",
                "Stone",
                "bob@example.com",
                "",
                "60601",
                "2024-03-09T16:45",
                "Consult",
                "(20.00)",
                "not a date",
                "n",
                "",
                "",
            ),
            # Carl: invalid phone and email, so his patient id is his identity
            (
                "P-1003",
                "Carl",
                "Diaz",
                "carl@",
                "555-0000",
                "60602",
                "11/3/2024 1:30 PM",
                "",
                "abc",
                "2/30/2024",
                "maybe",
                "x",
                "",
            ),
            # Dee: nothing to match on; the row is the contact
            ("", "Dee", "", "", "", "", "", "", "", "", "", "", ""),
        ],
    ),
    Packet(
        "pkt-clinic-2",
        "clinic",
        "patients",
        "landed",
        datetime(2024, 3, 5, 15, 0),
        PATIENT_HEADERS,
        [
            # Ana again, a third phone format; empty cells must not erase what packet 1 said
            ("", "Anita", "", "", "+1 312 555 0100", "", "2024-07-04 14:00", "Whitening", "", "", "no", "", ""),
            ("P-1002", "Bob", "Stone", " Bob@Example.com", "", "", "", "", "", "", "", "", ""),
        ],
    ),
    # never landed: its row must be ignored
    Packet(
        "pkt-clinic-failed",
        "clinic",
        "patients",
        "failed",
        datetime(2024, 3, 6, 9, 0),
        PATIENT_HEADERS,
        [
            ("P-2000", "Zed", "", "", "(312) 555-0199", "", "", "", "", "", "", "", ""),
        ],
    ),
    Packet(
        "pkt-realty-1",
        "realty",
        "leads",
        "landed",
        datetime(2024, 3, 2, 10, 0),
        LEAD_HEADERS,
        [
            # same phone as the clinic's Ana, but another client: another contact
            ("L-1", "Ana", "312-555-0100", "ana@realty.example", "$450,000", "call after 5"),
            ("L-2", " Eve ", "", "EVE@example.org", "", ""),
        ],
    ),
    Packet(
        "pkt-clinic-funnel-1",
        "clinic",
        "stage_changes",
        "landed",
        datetime(2024, 3, 7, 12, 0),
        FUNNEL_HEADERS,
        [
            ("P-1001", "", "", "Sales", "lead", "booked", "2024-03-06 08:15"),
            ("", "(312) 555-0100", "", "sales", "booked", "visited", "3/11/2024 10:00 AM"),
            ("", "", "BOB@example.com", "Service Delivery", "", "treatment plan", "2024-03-09 17:00"),
            ("P-9999", "", "", "sales", "lead", "booked", "2024-03-06 09:00"),
            ("P-1002", "", "", "marketing", "lead", "booked", "2024-03-06 09:00"),
            ("P-1001", "", "", "Sales", "lead", "booked", "2024-03-06 08:15"),
            ("P-1003", "", "", "sales", "lead", "booked", "yesterday"),
        ],
    ),
]

# lands between the first and the second dbt build
LATE_PACKET = Packet(
    "pkt-clinic-funnel-2", "clinic", "stage_changes", "landed", datetime(2024, 3, 8, 12, 0), FUNNEL_HEADERS, [
        ("P-1001", "", "", "Sales", "lead", "booked", "2024-03-06 08:15"),  # already loaded
        ("P-1003", "", "", "sales", "lead", "booked", "3/12/2024 8:00"),
    ],
)  # fmt: skip

PHONE_NUMBERS = [
    # raw_value, default_region, phone_e164, is_valid
    ("(312) 555-0100", "US", "+13125550100", True),
    ("312.555.0100", "US", "+13125550100", True),
    ("+1 312 555 0100", "US", "+13125550100", True),
    ("312-555-0100", "US", "+13125550100", True),
    ("555-0000", "US", None, False),
    ("(312) 555-0199", "US", "+13125550199", True),
]


Rows = list[tuple[Any, ...]]


def _packet_rows(packets: Sequence[Packet]) -> dict[str, Rows]:
    """The ``herald_ops.packets`` and ``herald_raw.packet_rows`` rows of some packets."""
    packet_rows: Rows = []
    row_rows: Rows = []
    for p in packets:
        landed = p.status == "landed"
        packet_rows.append((
            p.packet_id, p.client_id, p.packet_type, f"{p.packet_id}.csv", f"/drop/{p.client_id}/{p.packet_id}.csv",
            1000, "0" * 64, "utf-8", p.status, None if landed else "test", None, len(p.rows),
            len(p.rows) if landed else 0, 0, p.received_at, p.received_at if landed else None, p.received_at,
        ))  # fmt: skip
        for line_number, values in enumerate(p.rows, start=1):
            assert len(values) == len(p.headers), (p.packet_id, line_number)
            row_data = json.dumps(dict(zip(p.headers, values, strict=False)))
            row_rows.append((p.packet_id, p.client_id, p.packet_type, line_number, row_data, p.received_at))
    return {"herald_ops.packets": packet_rows, "herald_raw.packet_rows": row_rows}


def insert(warehouse: Warehouse, tables: dict[str, Rows]) -> None:
    with warehouse.session() as s:
        for table, table_rows in tables.items():
            s.insert_rows(table, column_names(table), table_rows)


def load_dataset(warehouse: Warehouse) -> None:
    """The Python-owned tables, created by the real DDL, and the hand-made dataset."""
    with warehouse.session() as s:
        for statement in ddl_statements(warehouse.engine):
            s.execute(statement)
    insert(warehouse, {
        "herald_ops.clients": CLIENTS,
        "herald_ops.load_maps": LOAD_MAPS,
        "herald_ops.load_map_columns": LOAD_MAP_COLUMNS,
        "herald_ops.canonical_fields": [(f.name, f.data_type, f.stored_in, f.description) for f in CANONICAL_FIELDS],
        "herald_raw.phone_numbers": [(*p, LOADED_AT) for p in PHONE_NUMBERS],
        **_packet_rows(PACKETS),
    })  # fmt: skip


def rows(warehouse: Warehouse, sql: str) -> list[dict[str, Any]]:
    with warehouse.session(read_only=True) as s:
        names, values = s.query(sql)
    return [dict(zip(names, row, strict=False)) for row in values]


def scalar(warehouse: Warehouse, sql: str) -> Any:
    with warehouse.session(read_only=True) as s:
        return s.scalar(sql)


def dbt_executable() -> str:
    beside_python = Path(sys.executable).parent / "dbt"
    return str(beside_python) if beside_python.exists() else (shutil.which("dbt") or "dbt")


def dbt_build(target: WarehouseTarget, target_path: Path, log_path: Path) -> dict[str, Any]:
    """``dbt build`` in a subprocess; fails the test with dbt's output when dbt fails."""
    env = {
        **os.environ,
        **target.dbt_env(),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_LOG_PATH": str(log_path),
    }
    completed = subprocess.run(
        [
            dbt_executable(), "build",
            "--project-dir", str(DBT_PROJECT_DIR),
            "--profiles-dir", str(DBT_PROJECT_DIR),
            "--target-path", str(target_path),
        ],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if completed.returncode != 0:
        output = f"{completed.stdout[-8000:]}\n{completed.stderr[-4000:]}"
        pytest.fail(f"dbt build failed ({completed.returncode}):\n{output}")
    return json.loads((target_path / "run_results.json").read_text())


@dataclass
class Built:
    warehouse: Warehouse
    first_run: dict[str, Any]
    second_run: dict[str, Any]
    funnel_events_after_first_build: list[dict[str, Any]]


@pytest.fixture(
    scope="module",
    params=[pytest.param("duckdb", id="duckdb"), pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)],
)
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    engine: str = request.param
    tmp = tmp_path_factory.mktemp(f"dbt-{engine}")
    if engine == "postgres":
        create_database: Callable[[], str] = request.getfixturevalue("pg_database_factory")
        url = create_database()  # dropped by the factory at the end of the session
    else:
        url = str(tmp / "warehouse.duckdb")
    target = parse_warehouse_url(url, tmp)
    warehouse = Warehouse(target)
    target_path = DBT_PROJECT_DIR / "target" / f"{engine}-test-{uuid.uuid4().hex[:10]}"
    try:
        load_dataset(warehouse)
        first_run = dbt_build(target, target_path, tmp / "logs")
        funnel_events = rows(warehouse, "select * from marts.funnel_events order by event_id")
        insert(warehouse, _packet_rows([LATE_PACKET]))
        second_run = dbt_build(target, target_path, tmp / "logs")
        yield Built(warehouse, first_run, second_run, funnel_events)
    finally:
        shutil.rmtree(target_path, ignore_errors=True)


def contact_by(built: Built, where: str) -> dict[str, Any]:
    (contact,) = rows(built.warehouse, f"select * from marts.contacts where {where}")
    return contact


def attributes_of(built: Built, contact_id: str) -> dict[str, dict[str, Any]]:
    attributes = rows(built.warehouse, f"select * from marts.contact_attributes where contact_id = '{contact_id}'")
    return {a["attribute_name"]: a for a in attributes}


def as_json(value: Any) -> Any:
    """A JSON column as Python (DuckDB returns text, psycopg2 decodes jsonb)."""
    return json.loads(value) if isinstance(value, str) else value


# --- the build itself -----------------------------------------------------------------------


def test_every_model_unit_test_and_data_test_passes(built: Built) -> None:
    for run in (built.first_run, built.second_run):
        statuses = {r["unique_id"]: r["status"] for r in run["results"]}
        not_passing = {node: status for node, status in statuses.items() if status not in ("success", "pass")}
        assert not_passing == {}
        unit_tests = [k for k in statuses if k.startswith("unit_test.")]
        assert len(unit_tests) >= 6
        models = {k.split(".")[-1] for k in statuses if k.startswith("model.")}
        assert {"contacts", "contact_sources", "contact_attributes", "funnel_events"} <= models


def test_marts_live_in_schema_marts(built: Built) -> None:
    tables = rows(
        built.warehouse,
        "select table_schema, table_name from information_schema.tables "
        "where table_schema in ('staging', 'intermediate', 'marts') order by 1, 2",
    )
    by_schema: dict[str, set[str]] = {}
    for row in tables:
        by_schema.setdefault(row["table_schema"], set()).add(row["table_name"])
    # dbt's marts; segment_members is written by the segment assets (Python) into the same schema
    assert by_schema["marts"] - {"segment_members"} == {
        "contacts", "contact_sources", "contact_attributes", "funnel_events",
        "contact_template_variables", "message_plan", "messages", "deliveries", "missed_contacts",
        "suppressions", "consent_status", "appointment_confirmations", "conversations", "conversation_messages",
        "credit_transactions", "engagement_events", "client_events", "journey_transitions", "appointments",
        "enrollments",
    }  # fmt: skip
    assert "stg_packets__cells" in by_schema["staging"]
    assert "int_contact_rows_cleaned" in by_schema["intermediate"]
    assert {"int_journey__walk", "int_journey__new_enrollments"} <= by_schema["intermediate"]


# --- contacts -------------------------------------------------------------------------------


def test_contacts_are_deduplicated_per_client(built: Built) -> None:
    counts = rows(built.warehouse, "select client_id, count(*) as n from marts.contacts group by client_id order by 1")
    assert [(r["client_id"], r["n"]) for r in counts] == [("clinic", 4), ("realty", 2)]
    # the same phone at two clients is two contacts
    phones = rows(built.warehouse, "select client_id from marts.contacts where phone_e164 = '+13125550100' order by 1")
    assert [r["client_id"] for r in phones] == ["clinic", "realty"]
    # the failed packet's row never becomes a contact
    assert scalar(built.warehouse, "select count(*) from marts.contacts where phone_e164 = '+13125550199'") == 0


def test_latest_non_null_values_win_on_the_deduplicated_contact(built: Built) -> None:
    ana = contact_by(built, "client_id = 'clinic' and phone_e164 = '+13125550100'")
    assert ana == {
        "contact_id": ana["contact_id"],
        "client_id": "clinic",
        "external_id": "P-1001",  # packet 2 left it empty
        "first_name": "Anita",  # packet 2 renamed her
        "last_name": "de la Cruz",  # whitespace collapsed; kept though packet 2 left it empty
        "email": "ana.cruz@example.com",
        "is_email_valid": True,
        "phone_e164": "+13125550100",
        "is_phone_valid": True,
        "postal_code": "02134",  # the lost leading zero is back
        "time_zone": None,
        "first_packet_id": "pkt-clinic-1",
        "first_line_number": 1,
        "last_packet_id": "pkt-clinic-2",
        "last_line_number": 1,
        "source_row_count": 3,
        "created_at": datetime(2024, 3, 1, 15, 0),
        "updated_at": datetime(2024, 3, 5, 15, 0),
    }
    assert len(ana["contact_id"]) == 32


def test_contacts_fall_back_to_email_then_external_id_then_the_row(built: Built) -> None:
    bob = contact_by(built, "client_id = 'clinic' and external_id = 'P-1002'")
    assert (bob["email"], bob["is_email_valid"], bob["phone_e164"], bob["is_phone_valid"]) == (
        "bob@example.com", True, None, False,
    )  # fmt: skip
    assert (bob["source_row_count"], bob["last_packet_id"], bob["last_line_number"]) == (2, "pkt-clinic-2", 2)

    carl = contact_by(built, "client_id = 'clinic' and external_id = 'P-1003'")
    assert (carl["email"], carl["is_email_valid"], carl["phone_e164"], carl["is_phone_valid"]) == (
        "carl@", False, None, False,
    )  # fmt: skip

    dee = contact_by(built, "client_id = 'clinic' and first_name = 'Dee'")
    assert (dee["external_id"], dee["source_row_count"], dee["first_packet_id"], dee["first_line_number"]) == (
        None, 1, "pkt-clinic-1", 5,
    )  # fmt: skip

    eve = contact_by(built, "client_id = 'realty' and external_id = 'L-2'")
    assert (eve["first_name"], eve["email"], eve["is_email_valid"]) == ("Eve", "eve@example.org", True)


def test_contact_sources_trace_every_landed_contact_row(built: Built) -> None:
    sources = rows(
        built.warehouse,
        "select packet_id, line_number, contact_id, identity_kind from marts.contact_sources order by 1, 2",
    )
    assert [(s["packet_id"], s["line_number"]) for s in sources] == [
        ("pkt-clinic-1", 1), ("pkt-clinic-1", 2), ("pkt-clinic-1", 3), ("pkt-clinic-1", 4), ("pkt-clinic-1", 5),
        ("pkt-clinic-2", 1), ("pkt-clinic-2", 2), ("pkt-realty-1", 1), ("pkt-realty-1", 2),
    ]  # fmt: skip
    by_row = {(s["packet_id"], s["line_number"]): s for s in sources}
    ana_rows = [by_row[("pkt-clinic-1", 1)], by_row[("pkt-clinic-1", 2)], by_row[("pkt-clinic-2", 1)]]
    assert len({r["contact_id"] for r in ana_rows}) == 1
    kinds = [by_row[("pkt-clinic-1", line)]["identity_kind"] for line in (1, 3, 4, 5)]
    assert kinds == ["phone", "email", "external_id", "row"]
    assert by_row[("pkt-clinic-1", 3)]["contact_id"] == by_row[("pkt-clinic-2", 2)]["contact_id"]


# --- attributes -----------------------------------------------------------------------------


def test_attributes_are_typed_and_the_latest_value_wins(built: Built) -> None:
    ana = contact_by(built, "client_id = 'clinic' and phone_e164 = '+13125550100'")
    attributes = attributes_of(built, ana["contact_id"])
    assert set(attributes) == {
        "appointment_at", "appointment_type", "balance_due", "last_visit_on", "accepts_reminders", "services",
        "referred_by",
    }  # fmt: skip
    types = {name: a["attribute_type"] for name, a in attributes.items()}
    assert types == {
        "appointment_at": "timestamp", "appointment_type": "string", "balance_due": "numeric",
        "last_visit_on": "date", "accepts_reminders": "boolean", "services": "array", "referred_by": "string",
    }  # fmt: skip
    # 2024-07-04 14:00 in Chicago is CDT (UTC-5)
    assert attributes["appointment_at"]["timestamp_value"] == datetime(2024, 7, 4, 19, 0)
    appointment = attributes["appointment_at"]
    assert (appointment["packet_id"], appointment["line_number"]) == ("pkt-clinic-2", 1)
    assert appointment["updated_at"] == datetime(2024, 3, 5, 15, 0)
    assert attributes["appointment_type"]["string_value"] == "Whitening"
    # packet 2 left the balance empty: packet 1's value stays
    assert attributes["balance_due"]["numeric_value"] == Decimal("1234.5")
    assert attributes["balance_due"]["raw_value"] == "$1,234.50"
    assert attributes["balance_due"]["packet_id"] == "pkt-clinic-1"
    assert attributes["last_visit_on"]["date_value"] == date(2024, 2, 29)
    assert attributes["accepts_reminders"]["boolean_value"] is False  # "no" in packet 2 beats "Yes"
    assert as_json(attributes["services"]["array_value"]) == ["whitening", "cleaning"]
    # unmapped column kept because the load map keeps unmapped columns
    assert attributes["referred_by"]["string_value"] == "Dr. Ortiz"
    for a in attributes.values():
        assert a["is_parsed"] is True
        assert sum(a[column] is not None for column in TYPED_VALUE_COLUMNS) == 1, a


def test_local_appointment_times_convert_to_utc(built: Built) -> None:
    times = {
        r["external_id"]: r["timestamp_value"]
        for r in rows(
            built.warehouse,
            "select c.external_id, a.timestamp_value from marts.contact_attributes as a "
            "join marts.contacts as c on a.contact_id = c.contact_id where a.attribute_name = 'appointment_at'",
        )
    }
    assert times == {
        "P-1001": datetime(2024, 7, 4, 19, 0),  # ISO, CDT
        "P-1002": datetime(2024, 3, 9, 22, 45),  # ISO with T, CST (DST starts 10 March)
        "P-1003": datetime(2024, 11, 3, 19, 30),  # US with PM on the fall-back day, CST again
    }


def test_unparseable_values_keep_their_raw_text(built: Built) -> None:
    bob = contact_by(built, "client_id = 'clinic' and external_id = 'P-1002'")
    bob_attributes = attributes_of(built, bob["contact_id"])
    assert bob_attributes["last_visit_on"]["date_value"] is None
    assert bob_attributes["last_visit_on"]["raw_value"] == "not a date"
    assert bob_attributes["last_visit_on"]["is_parsed"] is False
    assert bob_attributes["balance_due"]["numeric_value"] == Decimal("-20")  # (20.00)
    assert bob_attributes["accepts_reminders"]["boolean_value"] is False  # "n"

    carl = contact_by(built, "client_id = 'clinic' and external_id = 'P-1003'")
    carl_attributes = attributes_of(built, carl["contact_id"])
    for name, raw in [("last_visit_on", "2/30/2024"), ("balance_due", "abc"), ("accepts_reminders", "maybe")]:
        attribute = carl_attributes[name]
        assert (attribute["raw_value"], attribute["is_parsed"]) == (raw, False), name
    assert as_json(carl_attributes["services"]["array_value"]) == ["x"]

    # Dee's row had only empty attribute cells: no attribute rows at all
    dee = contact_by(built, "client_id = 'clinic' and first_name = 'Dee'")
    assert attributes_of(built, dee["contact_id"]) == {}


def test_canonical_attribute_fields_map_and_unmapped_columns_drop_when_not_kept(built: Built) -> None:
    lead = contact_by(built, "client_id = 'realty' and external_id = 'L-1'")
    attributes = attributes_of(built, lead["contact_id"])
    assert set(attributes) == {"list_price"}  # "Notes" is unmapped and the map does not keep it
    assert attributes["list_price"]["numeric_value"] == Decimal("450000")
    eve = contact_by(built, "client_id = 'realty' and external_id = 'L-2'")
    assert attributes_of(built, eve["contact_id"]) == {}


# --- funnel events --------------------------------------------------------------------------


def test_funnel_events_match_contacts_by_external_id_then_phone_then_email(built: Built) -> None:
    events = built.funnel_events_after_first_build
    contact_ids = {
        r["external_id"]: r["contact_id"]
        for r in rows(built.warehouse, "select external_id, contact_id from marts.contacts where client_id = 'clinic'")
    }
    summary = sorted(
        (e["occurred_at"], e["funnel_type"], e["from_stage"], e["to_stage"], e["contact_id"], e["matched_by"])
        for e in events
    )
    assert summary == [
        (datetime(2024, 3, 6, 14, 15), "sales", "lead", "booked", contact_ids["P-1001"], "external_id"),
        (datetime(2024, 3, 6, 15, 0), "sales", "lead", "booked", None, None),  # P-9999 is nobody we know
        (datetime(2024, 3, 9, 23, 0), "service-delivery", None, "treatment plan", contact_ids["P-1002"], "email"),
        (datetime(2024, 3, 11, 15, 0), "sales", "booked", "visited", contact_ids["P-1001"], "phone"),
    ]
    # rejected rows (unknown funnel type, unparseable time) and the duplicate row are not events
    assert {(e["packet_id"], e["line_number"]) for e in events} == {
        ("pkt-clinic-funnel-1", 1), ("pkt-clinic-funnel-1", 2), ("pkt-clinic-funnel-1", 3), ("pkt-clinic-funnel-1", 4),
    }  # fmt: skip
    assert all(e["client_id"] == "clinic" and len(e["event_id"]) == 32 for e in events)


def test_second_build_appends_only_new_funnel_events(built: Built) -> None:
    before = {e["event_id"]: e for e in built.funnel_events_after_first_build}
    after = {e["event_id"]: e for e in rows(built.warehouse, "select * from marts.funnel_events")}
    assert scalar(built.warehouse, "select count(*) from marts.funnel_events") == len(after) == 5
    assert set(before) < set(after)
    for event_id, event in before.items():
        assert after[event_id] == event  # untouched, loaded_at included
    (new,) = [after[k] for k in set(after) - set(before)]
    carl = contact_by(built, "client_id = 'clinic' and external_id = 'P-1003'")
    assert (new["packet_id"], new["line_number"], new["contact_id"], new["occurred_at"]) == (
        "pkt-clinic-funnel-2", 2, carl["contact_id"], datetime(2024, 3, 12, 13, 0),
    )  # fmt: skip
    assert new["loaded_at"] >= max(e["loaded_at"] for e in before.values())
