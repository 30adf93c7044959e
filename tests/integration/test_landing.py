"""Landing packets on a real warehouse, DuckDB and PostgreSQL: every row accounted for."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path

import pytest

from herald.config import Deployment
from herald.demo.packets import demo_packets, sized_packet
from herald.dropzone import LocalDropZone
from herald.packets.ingest import ingest_packet
from herald.packets.landing import PacketFile, land_packet
from herald.warehouse.connection import Warehouse
from tests.conftest import ENGINES

pytestmark = pytest.mark.parametrize("warehouse", ENGINES, indirect=True)

RECEIVED = datetime(2026, 11, 20, 9, 30)


def _packet(path: Path, packet_id: str, client: str, ptype: str, **kw) -> PacketFile:
    return PacketFile(
        packet_id, client, ptype, path.name, f"{client}/incoming/{ptype}/{path.name}", path, RECEIVED, **kw
    )


def _write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_thousand_rows_with_three_bad_gives_997_landed_and_3_rejects(
    warehouse: Warehouse, deployment: Deployment, tmp_path: Path
) -> None:
    sample = sized_packet(deployment, "bright_smiles_dental", "appointments", rows=1000, bad_rows=3)
    path = _write(tmp_path, sample.file_name, sample.content)

    result = land_packet(warehouse, deployment, _packet(path, "pk1", "bright_smiles_dental", "appointments"))

    assert (result.status, result.rows_in_file, result.rows_landed, result.rows_rejected) == ("landed", 1000, 997, 3)
    with warehouse.session(read_only=True) as s:
        _, rejects = s.query(
            "select line_number, reason, raw_text from herald_raw.packet_rejects where packet_id = 'pk1' order by 1"
        )
        landed = s.scalar("select count(*) from herald_raw.packet_rows where packet_id = 'pk1'")
        _, packet = s.query(
            "select status, rows_in_file, rows_landed, rows_rejected, sha256 from herald_ops.packets where packet_id = 'pk1'"
        )
        steps = [r[0] for r in s.query("select step from herald_ops.packet_events where packet_id = 'pk1'")[1]]
    assert landed == 997
    assert [line for line, _, _ in rejects] == sorted(sample.bad_lines)
    assert all(reason == "expected 12 fields like the header, found 13" for _, reason, _ in rejects)
    raw_lines = sample.text.splitlines()
    assert [raw for _, _, raw in rejects] == [raw_lines[line - 1] for line in sorted(sample.bad_lines)]
    assert packet == [("landed", 1000, 997, 3, hashlib.sha256(sample.content).hexdigest())]
    assert {"received", "verified", "landed", "phones_checked"} <= set(steps)

    # landing the same packet again replaces what it wrote: nothing doubles
    again = land_packet(warehouse, deployment, _packet(path, "pk1", "bright_smiles_dental", "appointments"))
    assert (again.rows_landed, again.rows_rejected) == (997, 3)
    with warehouse.session(read_only=True) as s:
        assert s.scalar("select count(*) from herald_raw.packet_rows where packet_id = 'pk1'") == 997
        assert s.scalar("select count(*) from herald_raw.packet_rejects where packet_id = 'pk1'") == 3
        assert s.scalar("select count(*) from herald_ops.packets") == 1


def test_checksum_mismatch_lands_nothing_and_says_why(
    warehouse: Warehouse, deployment: Deployment, tmp_path: Path
) -> None:
    sample = sized_packet(deployment, "bright_smiles_dental", "appointments", rows=50)
    path = _write(tmp_path, "truncated.csv", sample.content[:-40])  # the transfer lost its tail
    expected = hashlib.sha256(sample.content).hexdigest()

    result = land_packet(
        warehouse, deployment, _packet(path, "pk2", "bright_smiles_dental", "appointments", expected_sha256=expected)
    )

    assert result.status == "rejected"
    assert "checksum mismatch" in result.reason and expected in result.reason and "sidecar" in result.reason
    with warehouse.session(read_only=True) as s:
        assert s.scalar("select count(*) from herald_raw.packet_rows") == 0
        assert s.scalar("select count(*) from herald_raw.packet_rejects") == 0
        assert s.query("select status, status_reason from herald_ops.packets")[1] == [("rejected", result.reason)]


def test_same_content_dropped_twice_is_loaded_once(
    warehouse: Warehouse, deployment: Deployment, tmp_path: Path
) -> None:
    sample = sized_packet(deployment, "northfield_college", "leads", rows=200)
    first = _write(tmp_path, "leads.csv", sample.content)
    second = _write(tmp_path, "leads-copy.csv", sample.content)

    a = land_packet(warehouse, deployment, _packet(first, "pkA", "northfield_college", "leads"))
    b = land_packet(warehouse, deployment, _packet(second, "pkB", "northfield_college", "leads"))

    assert (a.status, a.rows_landed) == ("landed", 200)
    assert (b.status, b.duplicate_of, b.rows_landed) == ("duplicate", "pkA", 0)
    assert "already landed" in b.reason
    with warehouse.session(read_only=True) as s:
        assert s.scalar("select count(*) from herald_raw.packet_rows") == 200


def test_windows_1252_and_bom_files_land_with_their_text_intact(
    warehouse: Warehouse, deployment: Deployment, tmp_path: Path
) -> None:
    packets = {p.packet_type: p for p in demo_packets(deployment)}
    realtor, college = packets["buyer_leads"], packets["leads"]
    r = land_packet(
        warehouse,
        deployment,
        _packet(_write(tmp_path, "r.csv", realtor.content), "pkR", "lakeside_realty", "buyer_leads"),
    )
    c = land_packet(
        warehouse, deployment, _packet(_write(tmp_path, "c.csv", college.content), "pkC", "northfield_college", "leads")
    )

    assert (r.encoding, r.rows_in_file, r.rows_landed + r.rows_rejected) == ("windows-1252", 240, 240)
    assert (c.encoding, c.rows_in_file) == ("utf-8-sig", 400)
    with warehouse.session(read_only=True) as s:
        names = [
            json.loads(v) if isinstance(v, str) else v
            for (v,) in s.query(
                "select row_data from herald_raw.packet_rows where packet_id = 'pkR' order by line_number limit 2"
            )[1]
        ]
        first_header = s.scalar(
            "select row_data from herald_raw.packet_rows where packet_id = 'pkC' order by line_number limit 1"
        )
    assert [n["Name (First)"] + " " + n["Name (Last)"] for n in names] == ["José Peña", "Zoë Lefèvre"]
    header_keys = list((json.loads(first_header) if isinstance(first_header, str) else first_header).keys())
    assert "lms_lead_id" in header_keys  # the BOM did not stick to the first column's name


def test_missing_required_column_rejects_the_packet_naming_it(
    warehouse: Warehouse, deployment: Deployment, tmp_path: Path
) -> None:
    sample = sized_packet(deployment, "bright_smiles_dental", "appointments", rows=10)
    text = sample.text.replace("Cell Phone", "Home Phone", 1)
    path = _write(tmp_path, "renamed.csv", text.encode())

    result = land_packet(warehouse, deployment, _packet(path, "pk3", "bright_smiles_dental", "appointments"))

    assert result.status == "rejected"
    assert "lacks column 'Cell Phone' (required field 'phone')" in result.reason
    assert "'Home Phone'" in result.reason


def test_ingest_archives_good_packets_and_quarantines_tampered_ones(
    warehouse: Warehouse, deployment: Deployment, tmp_path: Path
) -> None:
    zone = LocalDropZone(tmp_path / "zone")
    good = sized_packet(deployment, "bright_smiles_dental", "appointments", rows=100, bad_rows=1)
    zone.put(_write(tmp_path, "good.csv", good.content), "bright_smiles_dental", "appointments")
    zone.put(_write(tmp_path, "bad.csv", good.content + b"\n"), "bright_smiles_dental", "appointments")
    sidecar = zone.root / "bright_smiles_dental/incoming/appointments/bad.csv.sha256"
    sidecar.write_text("0" * 64 + "  bad.csv\n")  # the client's checksum does not match what arrived

    outcomes = {p.file_name: ingest_packet(warehouse, zone, deployment, p) for p in zone.list_pending()}

    good_outcome, bad_outcome = outcomes["good.csv"], outcomes["bad.csv"]
    assert good_outcome.status == "landed"
    assert {c.name: c.passed for c in good_outcome.checks} == {
        "every_row_accounted_for": True,
        "required_fields_present": True,
        "phones_mostly_valid": True,
        "emails_mostly_valid": True,
        "row_count_matches_manifest": True,
    }
    assert good_outcome.filed_at.startswith("bright_smiles_dental/archive/appointments/")
    assert (zone.root / good_outcome.filed_at).exists()
    assert bad_outcome.status == "rejected"
    assert bad_outcome.filed_at.startswith("bright_smiles_dental/quarantine/appointments/")
    reason = (zone.root / (bad_outcome.filed_at + ".reason.txt")).read_text()
    assert "checksum mismatch" in reason
    assert zone.list_pending() == []
    # the refused packet's receipt is in the client's area at once; the landed one's waits for dbt
    receipt = json.loads((zone.root / (bad_outcome.filed_at + ".receipt.json")).read_text())
    assert (receipt["status"], receipt["rows_landed"]) == ("rejected", 0)
    assert "checksum mismatch" in receipt["reason"]
    assert "REJECTED" in (zone.root / (bad_outcome.filed_at + ".receipt.txt")).read_text()
    assert good_outcome.receipts == [] and not (zone.root / (good_outcome.filed_at + ".receipt.json")).exists()


def test_manifest_row_count_mismatch_fails_the_packet(
    warehouse: Warehouse, deployment: Deployment, tmp_path: Path
) -> None:
    zone = LocalDropZone(tmp_path / "zone")
    sample = sized_packet(deployment, "northfield_college", "leads", rows=30)
    zone.put(_write(tmp_path, "leads.csv", sample.content), "northfield_college", "leads")
    (zone.root / "northfield_college/incoming/leads/leads.csv.manifest.json").write_text('{"row_count": 31}')

    (pending,) = zone.list_pending()
    outcome = ingest_packet(warehouse, zone, deployment, pending)

    assert pending.manifest_rows == 31
    assert outcome.status == "failed"
    assert "row_count_matches_manifest failed: manifest says 31 rows; file had 30" in outcome.landing.reason
    with warehouse.session(read_only=True) as s:
        assert s.scalar("select status from herald_ops.packets") == "failed"
    assert outcome.filed_at.startswith("northfield_college/quarantine/")
