"""The portal's domain layer on both engines: packets (timeline, rejects CSV, receipt), contacts
(search, detail, block/unblock, missed contacts), each function with two clients' rows in the
warehouse and only the asked client's coming back; and the DuckDB read path answering while
another process holds the warehouse's write lock."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from herald.compliance.manual import BlockError
from herald.portal import contacts, packets
from herald.portal.reads import PortalReader, current_snapshot, publish_snapshot
from herald.settings import Settings
from herald.warehouse.connection import Warehouse
from tests.conftest import CONFIG_DIR, ENGINES

A, B = "bright_smiles_dental", "lakeside_realty"
T0 = datetime(2026, 11, 20, 15, 0)
PHONE = "+13125550101"  # both clients have a contact with this number
HOSTILE = ["=cmd|' /C calc'!A0", "+SUM(A1)", "-2+3", "@SUM(1)", "\tx", "\rx", "plain, with comma"]

MARTS = {
    "marts.contacts": "contact_id varchar, client_id varchar, external_id varchar, first_name varchar, "
    "last_name varchar, email varchar, phone_e164 varchar, first_packet_id varchar, updated_at timestamp",
    "marts.contact_sources": "contact_id varchar, packet_id varchar",
    "marts.messages": "message_key varchar, client_id varchar, contact_id varchar, campaign varchar, step varchar, "
    "channel varchar, to_address_masked varchar, status varchar, failure_reason varchar, enqueued_at timestamp, "
    "sent_at timestamp",
    "marts.missed_contacts": "message_key varchar, client_id varchar, contact_id varchar, first_name varchar, "
    "last_name varchar, campaign varchar, step varchar, channel varchar, to_address_masked varchar, "
    "missed_status varchar, reason varchar, missed_at timestamp",
}


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def fill(warehouse: Warehouse) -> None:
    """Two clients' packets, rejects, contacts, consent, suppressions, messages and misses."""
    with warehouse.session() as s:
        for client, n in ((A, 1), (B, 2)):
            pid = f"{client}-p{n}"
            s.execute(
                "insert into herald_ops.packets (packet_id, client_id, packet_type, file_name, file_path, status, "
                "rows_in_file, rows_landed, rows_rejected, received_at, landed_at, updated_at) "
                "values (?, ?, 'leads', ?, ?, 'landed', 10, 3, 7, ?, ?, ?)",
                [pid, client, f"{client}.csv", f"{client}/incoming/leads/{client}.csv", at(n), at(n + 1), at(n + 1)],
            )
            steps = [("received", 0), ("verified", 0.1), ("landed", 0.5), ("phones_checked", 0.6),
                     ("validated", 0.7), ("archived", 0.8), ("mapped", 2), ("cleaned", 3)]  # fmt: skip
            for step, minutes in steps:
                s.execute(
                    "insert into herald_ops.packet_events values (?, ?, ?, ?, ?)",
                    [pid, step, at(n + minutes), 5, f"{client} {step}"],
                )
            for line, raw in enumerate(HOSTILE, start=2):
                s.execute(
                    "insert into herald_raw.packet_rejects values (?, ?, 'leads', ?, ?, ?, ?)",
                    [pid, client, line, '=HYPERLINK("x") bad phone' if line == 2 else "bad phone", raw, at(n)],
                )
        # a packet of A's still on its way (landed, not yet through dbt)
        s.execute(
            "insert into herald_ops.packets (packet_id, client_id, packet_type, file_name, file_path, status, "
            "received_at, updated_at) values ('a-new', ?, 'leads', 'new.csv', 'x', 'received', ?, ?)",
            [A, at(30), at(30)],
        )
        s.execute("insert into herald_ops.packet_events values ('a-new', 'received', ?, null, null)", [at(30)])
        for client in (A, B):
            s.execute(
                "insert into herald_ops.consent_events values (?, ?, ?, 'sms', ?, 'opt_in', 'all', "
                "'express_written', 'packet', 'line 2', ?, ?, null, null)",
                [f"ce-{client}-1", client, f"c-{client}", PHONE, at(1), at(1)],
            )
            s.execute(
                "insert into herald_ops.consent_events values (?, ?, ?, 'sms', ?, 'opt_out', 'all', null, "
                "'sms_keyword', 'STOP', ?, ?, null, null)",
                [f"ce-{client}-2", client, f"c-{client}", PHONE, at(5), at(5)],
            )
            s.execute(
                "insert into herald_ops.suppressions values (?, 'sms', ?, 'all', 'opt_out', 'sms_keyword', 'STOP', ?, ?)",
                [client, PHONE, f"c-{client}", at(5)],
            )
        s.execute(
            "insert into herald_ops.suppressions values "
            "('*', 'email', 'ana@example.com', 'all', 'hard_bounce', 'provider', null, null, ?)",
            [at(6)],
        )
        for table, columns in MARTS.items():
            s.execute(f"create schema if not exists {table.split('.')[0]}")
            s.execute(f"create table {table} ({columns})")
        for client, first, last, email in ((A, "Ana", "O'Neil", "ana@example.com"), (B, "Ana", "Other", "b@x.org")):
            s.execute(
                "insert into marts.contacts values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [f"c-{client}", client, f"X-{client}", first, last, email, PHONE, f"{client}-p{1 if client == A else 2}",
                 at(3)],
            )  # fmt: skip
            s.execute(
                "insert into marts.contact_sources values (?, ?)",
                [f"c-{client}", f"{client}-p{1 if client == A else 2}"],
            )
            s.execute(
                "insert into marts.messages values (?, ?, ?, 'reminder', 's1', 'sms', '+1•••••••101', 'sent', null, ?, ?)",
                [f"m-{client}", client, f"c-{client}", at(4), at(4)],
            )
            s.execute(
                "insert into marts.missed_contacts values (?, ?, ?, 'Ana', 'X', 'reminder', 's1', 'sms', "
                "'+1•••••••101', 'suppressed', ?, ?)",
                [f"mm-{client}", client, f"c-{client}", f"opted out ({client})", at(6)],
            )


@pytest.fixture(scope="module", params=ENGINES)
def portal(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, PortalReader]:
    home = tmp_path_factory.mktemp(f"portal-{request.param}")
    url = request.getfixturevalue("pg_database_factory")() if request.param == "postgres" else ""
    settings = Settings.from_env(
        {"HERALD_HOME": str(home), "HERALD_CONFIG_DIR": str(CONFIG_DIR), "HERALD_WAREHOUSE_URL": url}
    )
    warehouse = Warehouse(settings.warehouse)
    warehouse.ensure_schema()
    fill(warehouse)
    publish_snapshot(settings.warehouse)
    reader = PortalReader(settings.warehouse)
    yield settings, reader
    reader.close()


def test_packets_list_only_the_clients_own_with_a_true_timeline(portal) -> None:
    settings, reader = portal
    listed = packets.list_packets(settings, A, reader=reader)
    assert [p.packet_id for p in listed] == ["a-new", f"{A}-p1"]
    done = listed[1]
    assert [(s.step, s.at) for s in done.timeline] == [
        ("received", at(1)), ("verified", at(1.1)), ("landed", at(1.5)),
        ("validated", at(1.7)), ("mapped", at(3)), ("cleaned", at(4)),
    ]  # fmt: skip
    assert done.current_step == "cleaned" and done.timeline[0].detail == f"{A} received"
    on_its_way = listed[0]
    assert on_its_way.current_step == "received" and [s.at for s in on_its_way.timeline][1:] == [None] * 5
    assert [p.packet_id for p in packets.list_packets(settings, B, reader=reader)] == [f"{B}-p2"]
    assert packets.packet(settings, B, f"{B}-p2", reader=reader).current_step == "cleaned"
    with pytest.raises(packets.PacketNotFound):
        packets.packet(settings, A, f"{B}-p2", reader=reader)


def test_rejects_csv_has_line_and_reason_with_formulas_neutralised(portal) -> None:
    settings, reader = portal
    data = packets.rejects_csv(settings, A, f"{A}-p1", reader=reader)
    assert data.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert rows[0] == ["line", "reason", "raw_text"]
    assert rows[1] == ["2", '\'=HYPERLINK("x") bad phone', "'=cmd|' /C calc'!A0"]
    assert [r[2] for r in rows[1:]] == ["'" + h if h[0] in "=+-@\t\r" else h for h in HOSTILE]
    assert [r[0] for r in rows[1:]] == [str(n) for n in range(2, 2 + len(HOSTILE))]
    with pytest.raises(packets.PacketNotFound):
        packets.rejects_csv(settings, A, f"{B}-p2", reader=reader)


def test_receipt_is_the_clients_packet_with_its_rejects_and_contacts(portal) -> None:
    settings, reader = portal
    got = packets.receipt(settings, B, f"{B}-p2", reader=reader)
    assert '"rows_rejected": 7' in got.json and '"contacts_created": 1' in got.json
    assert "Rows rejected:    7" in got.text and "line 2: =HYPERLINK" in got.text and f"Reference: {B}-p2" in got.text
    with pytest.raises(packets.PacketNotFound):
        packets.receipt(settings, B, f"{A}-p1", reader=reader)


def test_contact_search_by_phone_email_and_name_stays_in_the_client(portal) -> None:
    settings, reader = portal
    for typed in ("(312) 555-0101", "312.555.0101", "+1 312 555 0101", "5550101"):
        found = contacts.search_contacts(settings, A, typed, reader=reader)
        assert [(c.contact_id, c.phone) for c in found] == [(f"c-{A}", PHONE)], typed
    assert [c.contact_id for c in contacts.search_contacts(settings, A, "ANA@example", reader=reader)] == [f"c-{A}"]
    assert [c.contact_id for c in contacts.search_contacts(settings, A, "ana o'neil", reader=reader)] == [f"c-{A}"]
    assert [c.contact_id for c in contacts.search_contacts(settings, B, "ana", reader=reader)] == [f"c-{B}"]
    assert contacts.search_contacts(settings, B, "ana@example.com", reader=reader) == []
    assert contacts.search_contacts(settings, A, "%", reader=reader) == []  # LIKE's own characters are literal
    (hidden,) = contacts.search_contacts(settings, A, "Ana", hide_contact_details=True, reader=reader)
    assert (hidden.phone, hidden.email, hidden.name) == ("+1•••••••101", "a•••@example.com", "Ana O'Neil")


def test_contact_detail_has_consent_suppressions_and_messages(portal) -> None:
    settings, reader = portal
    detail = contacts.contact_detail(settings, A, f"c-{A}", reader=reader)
    assert [(e["kind"], e["source"], e["address"]) for e in detail.consent_history] == [
        ("opt_in", "packet", PHONE), ("opt_out", "sms_keyword", PHONE),
    ]  # fmt: skip
    assert {(s["reason"], s["channel"], s["is_all_clients"]) for s in detail.suppressions} == {
        ("opt_out", "sms", False), ("hard_bounce", "email", True),
    }  # fmt: skip
    assert detail.is_opted_out and [m["message_key"] for m in detail.last_messages] == [f"m-{A}"]
    masked = contacts.contact_detail(settings, A, f"c-{A}", hide_contact_details=True, reader=reader)
    assert {s["address"] for s in masked.suppressions} == {"+1•••••••101", "a•••@example.com"}
    assert masked.contact.phone == "+1•••••••101" and all(e["evidence"] is None for e in masked.consent_history)
    other = contacts.contact_detail(settings, B, f"c-{B}", reader=reader)
    assert [m["message_key"] for m in other.last_messages] == [f"m-{B}"]
    assert {s["reason"] for s in other.suppressions} == {"opt_out"}  # B's contact has another email
    with pytest.raises(contacts.ContactNotFound):
        contacts.contact_detail(settings, A, f"c-{B}", reader=reader)


def test_missed_contacts_are_the_clients_with_reasons(portal) -> None:
    settings, reader = portal
    missed = contacts.missed_contacts(settings, A, reader=reader)
    assert [(m["message_key"], m["missed_status"], m["reason"]) for m in missed] == [
        (f"mm-{A}", "suppressed", f"opted out ({A})")
    ]
    assert contacts.missed_contacts(settings, A, since=at(7), reader=reader) == []


def test_block_and_unblock_go_through_the_cli_path_and_never_lift_an_opt_out(portal) -> None:
    settings, reader = portal
    warehouse = Warehouse(settings.warehouse)
    with pytest.raises(BlockError, match=r"\+1•••••••101 opted out; staff cannot lift an opt-out"):
        contacts.unblock_contact(settings, A, "(312) 555-0101", "customer asked", "portal:staff@a")
    blocked = contacts.block_contact(settings, A, "(312) 555-0199", "abusive replies", "portal:staff@a")
    assert (blocked.address_masked, blocked.channel, blocked.opted_out) == ("+1•••••••199", "sms", False)
    # the snapshot was published again: the portal sees the block at once
    assert reader.query(
        "select reason, note from herald_ops.suppressions where client_id = ? and address = '+13125550199'", [A]
    ).rows == [("manual_block", "abusive replies")]
    both = contacts.block_contact(settings, A, PHONE, "asked by phone", "portal:staff@a")
    assert both.opted_out
    lifted = contacts.unblock_contact(settings, A, PHONE, "resolved", "portal:staff@a")
    assert (lifted.count, lifted.opted_out) == (1, True)
    with warehouse.session(read_only=True) as s:
        _, rows = s.query("select reason from herald_ops.suppressions where client_id = ? and address = ?", [A, PHONE])
        assert rows == [("opt_out",)]
        _, audit = s.query(
            "select actor, reason from herald_ops.audit_log where client_id = ? order by occurred_at, reason", [A]
        )
        # the refused unblock left no trace; B's rows were never touched
        assert ("portal:staff@a", "unblock: customer asked") not in audit
        assert ("portal:staff@a", "block: abusive replies") in audit and (
            "portal:staff@a",
            "unblock: resolved",
        ) in audit
        assert s.scalar("select count(*) from herald_ops.suppressions where client_id = ?", [B]) == 1
    with pytest.raises(BlockError, match="a reason"):
        contacts.block_contact(settings, A, PHONE, "  ", "portal:staff@a")


HOLD_LOCK = textwrap.dedent(
    """
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    con.execute("begin transaction")
    con.execute("update herald_ops.packets set status = 'rejected'")
    print("holding", flush=True)
    sys.stdin.readline()
    con.execute("commit")
    """
)


def test_a_read_answers_while_a_writer_holds_the_duckdb_lock(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"HERALD_HOME": str(tmp_path), "HERALD_CONFIG_DIR": str(CONFIG_DIR), "HERALD_WAREHOUSE_URL": ""}
    )
    warehouse = Warehouse(settings.warehouse)
    warehouse.ensure_schema()
    fill(warehouse)
    first = publish_snapshot(settings.warehouse)
    assert first is not None and "marts.contacts" in first.tables
    path = str(settings.warehouse.duckdb_path)
    writer = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "holding"
        with pytest.raises(duckdb.IOException, match="lock"):  # the live file really is held
            duckdb.connect(path, read_only=True).close()
        reader = PortalReader(settings.warehouse)  # a fresh reader: nothing cached
        listed = packets.list_packets(settings, A, reader=reader)
        assert [(p.packet_id, p.status) for p in listed] == [("a-new", "received"), (f"{A}-p1", "landed")]
        assert [c.contact_id for c in contacts.search_contacts(settings, A, "Ana", reader=reader)] == [f"c-{A}"]
        with reader.session() as s:
            assert s.as_of == first.as_of
        # publishing while the writer holds the file fails clearly, and the old snapshot stays
        with pytest.raises(Exception, match="a run held the warehouse"):
            publish_snapshot(settings.warehouse, lock_wait_seconds=0.2)
        assert current_snapshot(settings.warehouse) == first.path
    finally:
        writer.communicate("go\n", timeout=30)
    assert writer.returncode == 0
    second = publish_snapshot(settings.warehouse)
    assert second is not None and second.as_of > first.as_of
    assert {p.status for p in packets.list_packets(settings, A, reader=reader)} == {"rejected"}
    reader.close()
    snapshots = sorted(p.name for p in (settings.warehouse.duckdb_path.parent / "portal").glob("snapshot-*.duckdb"))
    assert len(snapshots) == 2 and not list((settings.warehouse.duckdb_path.parent / "portal").glob(".*tmp"))


def test_uploads_refused_leave_nothing_behind(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"HERALD_HOME": str(tmp_path), "HERALD_CONFIG_DIR": str(CONFIG_DIR), "HERALD_WAREHOUSE_URL": ""}
    )
    header = b"first_name,last_name,phone,email\n"
    cases = [
        ("leads.xlsx", [header], "'leads.xlsx' is not a CSV file"),
        ("leads.csv", [b"PK\x03\x04" + b"\x00" * 100], "spreadsheet, document, archive or image"),
        ("leads.csv", [header, b"Ana,\x00,1,2\n"], "binary data"),
        ("leads.csv", [header] * 2000, "larger than the upload limit of 0 MB"),
        ("leads.csv", [], "'leads.csv' is empty"),
        ("../../etc/leads.csv.sha256", [header], "cannot be used for a packet"),
    ]
    for name, chunks, message in cases:
        with pytest.raises(packets.UploadError, match=message):
            packets.upload_packet(settings, B, "buyer_leads", name, iter(chunks), max_bytes=50_000)
    with pytest.raises(packets.UploadError, match="no packet type 'leads'"):
        packets.upload_packet(settings, B, "leads", "x.csv", io.BytesIO(header))
    zone = settings.dropzone.local_root
    assert zone is not None and not [p for p in zone.rglob("*") if p.is_file()]
    assert not list(Path(__import__("tempfile").gettempdir()).glob("herald-upload-*"))
    done = packets.upload_packet(settings, B, "buyer_leads", "C:\\Users\\ana\\leads.csv", io.BytesIO(header * 3))
    assert done.zone_path == f"{B}/incoming/buyer_leads/leads.csv" and done.size_bytes == len(header) * 3
    assert (zone / (done.zone_path + ".sha256")).read_text().split()[0] == done.sha256
    with pytest.raises(packets.UploadError, match="already waiting"):
        packets.upload_packet(settings, B, "buyer_leads", "leads.csv", io.BytesIO(header))


def test_the_snapshot_reader_survives_being_published_under(tmp_path: Path) -> None:
    """A reader keeps answering while snapshots are published around it (no half-written file
    is ever opened), and each answer is one snapshot's."""
    settings = Settings.from_env(
        {"HERALD_HOME": str(tmp_path), "HERALD_CONFIG_DIR": str(CONFIG_DIR), "HERALD_WAREHOUSE_URL": ""}
    )
    warehouse = Warehouse(settings.warehouse)
    warehouse.ensure_schema()
    fill(warehouse)
    reader = PortalReader(settings.warehouse)
    seen = set()
    deadline = time.monotonic() + 20
    for n in range(5):
        with warehouse.session() as s:
            s.execute("update herald_ops.packets set rows_landed = ?", [n])
        publish_snapshot(settings.warehouse)
        seen.add(reader.query("select max(rows_landed) from herald_ops.packets").rows[0][0])
        assert time.monotonic() < deadline
    assert seen == {0, 1, 2, 3, 4}
    reader.close()
