"""Size limits on landed values and safe exports: a 100,000-character name is rejected
with its line and reason (the row accounted for, never lost), the caps are set per load map, and
formula-looking cells are neutralised in every CSV/XLSX Herald writes."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook
from pydantic import ValidationError

from herald.cli.sql import print_rows
from herald.config import Deployment
from herald.config.models import LoadMap, RowLimits
from herald.packets.landing import PacketFile, land_packet
from herald.reports.cells import csv_cell
from herald.reports.client_report.model import Headline, Report, Table
from herald.reports.client_report.spreadsheet import render_csv, render_xlsx
from herald.warehouse.connection import Warehouse
from tests.conftest import ENGINES

CLIENT, PACKET_TYPE = "bright_smiles_dental", "appointments"
RECEIVED = datetime(2026, 11, 20, 9, 30)
ATTACKS = ["=cmd|' /C calc'!A0", "+SUM(1,2)", "-2+3", "@SUM(A1)", "\t=1+1", "\r=1+1", '=HYPERLINK("http://x.example")']


def _packet_text(deployment: Deployment, rows: list[dict[str, str]]) -> str:
    load_map = deployment.clients[CLIENT].load_maps[PACKET_TYPE]
    header = list(load_map.columns)
    lines = [",".join(header)]
    for row in rows:
        lines.append(",".join(row.get(column, "") for column in header))
    return "\n".join(lines) + "\n"


def _sample_row(deployment: Deployment, n: int) -> dict[str, str]:
    load_map = deployment.clients[CLIENT].load_maps[PACKET_TYPE]
    row = dict.fromkeys(load_map.columns, "x")
    for column in load_map.columns:
        field = getattr(load_map.columns[column], "field", None)
        if field == "phone":
            row[column] = f"312555{n:04d}"
        elif field == "email":
            row[column] = f"p{n}@example.com"
        elif field == "first_name":
            row[column] = f"Pat{n}"
    return row


def _land(warehouse: Warehouse, deployment: Deployment, tmp_path: Path, text: str, packet_id: str):
    path = tmp_path / f"{packet_id}.csv"
    path.write_text(text, encoding="utf-8")
    packet = PacketFile(
        packet_id, CLIENT, PACKET_TYPE, path.name, f"{CLIENT}/incoming/{PACKET_TYPE}/{path.name}", path, RECEIVED
    )
    return land_packet(warehouse, deployment, packet)


def _first_name_column(deployment: Deployment) -> str:
    load_map = deployment.clients[CLIENT].load_maps[PACKET_TYPE]
    return next(c for c, t in load_map.columns.items() if getattr(t, "field", None) == "first_name")


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_a_100000_character_name_is_rejected_with_its_line_and_reason(
    warehouse: Warehouse, deployment: Deployment, tmp_path: Path
) -> None:
    rows = [_sample_row(deployment, n) for n in range(5)]
    name_column = _first_name_column(deployment)
    rows[2][name_column] = "N" * 100_000  # line 4 of the file (line 1 is the header)
    result = _land(warehouse, deployment, tmp_path, _packet_text(deployment, rows), "pk_big")

    assert (result.status, result.rows_in_file, result.rows_landed, result.rows_rejected) == ("landed", 5, 4, 1)
    with warehouse.session(read_only=True) as s:
        _, rejects = s.query(
            "select line_number, reason, raw_text from herald_raw.packet_rejects where packet_id = 'pk_big'"
        )
        landed = s.scalar("select count(*) from herald_raw.packet_rows where packet_id = 'pk_big'")
        longest = s.scalar(
            "select max(length(cast(row_data as varchar))) from herald_raw.packet_rows where packet_id = 'pk_big'"
        )
    assert landed == 4 and longest < 10_000
    ((line, reason, raw),) = rejects
    assert line == 4
    assert reason == f"column {name_column!r} has 100000 characters (limit 10000 a cell)"
    # the reject keeps the row's text up to the row cap, saying how much more there was
    assert raw.startswith("312555") or raw.split(",")[0] in rows[2].values()
    assert len(raw) < 100_200 and raw.endswith("more characters not kept]")


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_the_caps_are_set_per_load_map(warehouse: Warehouse, deployment: Deployment, tmp_path: Path) -> None:
    client = deployment.clients[CLIENT]
    strict = client.load_maps[PACKET_TYPE].model_copy(
        update={"limits": RowLimits(max_cell_chars=20, max_row_chars=120)}
    )
    small = deployment.model_copy(deep=True)
    small.clients[CLIENT].load_maps[PACKET_TYPE] = strict
    rows = [_sample_row(deployment, n) for n in range(3)]
    name_column = _first_name_column(deployment)
    rows[0][name_column] = "A" * 21  # one cell over 20
    columns = list(strict.columns)
    rows[1] = {**rows[1], **{c: "b" * 19 for c in columns if c != name_column and "phone" not in c}}  # row over 120
    result = _land(warehouse, small, tmp_path, _packet_text(deployment, rows), "pk_caps")

    assert (result.rows_in_file, result.rows_landed, result.rows_rejected) == (3, 1, 2)
    with warehouse.session(read_only=True) as s:
        _, rejects = s.query(
            "select line_number, reason from herald_raw.packet_rejects where packet_id = 'pk_caps' order by 1"
        )
    assert rejects[0] == (2, f"column {name_column!r} has 21 characters (limit 20 a cell)")
    assert rejects[1][0] == 3 and rejects[1][1].endswith("characters (limit 120 a row)")


def test_caps_are_validated_in_the_load_map() -> None:
    with pytest.raises(ValidationError, match="max_cell_chars"):
        LoadMap.model_validate(
            {"packet_type": "sample", "columns": {"Email": "email"}, "limits": {"max_cell_chars": 0}}
        )
    with pytest.raises(ValidationError, match="max_rows"):
        LoadMap.model_validate({"packet_type": "sample", "columns": {"Email": "email"}, "limits": {"max_rows": 5}})
    defaults = LoadMap.model_validate({"packet_type": "sample", "columns": {"Email": "email"}}).limits
    assert (defaults.max_cell_chars, defaults.max_row_chars) == (10_000, 100_000)


# -- exports -------------------------------------------------------------------------------------


def _report(name: str) -> Report:
    campaigns = Table("campaigns", "Campaigns", "marts.deliveries", ["campaign", "sent", "delivery_rate"],
                      [(attack, 3, -0.5) for attack in ATTACKS])  # fmt: skip
    empty = Table("x", "X", "marts.x", ["a"], [])
    return Report(
        client_id="acme", client_name=name, time_zone="America/Chicago", period_days=7,
        start_date=date(2026, 11, 1), end_date=date(2026, 11, 7), generated_at=datetime(2026, 11, 8, tzinfo=UTC),
        headline=Headline(sent=3, delivered=2, failed=1, replied=0, opt_outs=0), daily=empty, campaigns=campaigns,
        ab_tests=empty, attribution=empty, dashboard=Table("dashboard", "Dashboard", "a.d", ["metric", "value"], []),
    )  # fmt: skip


@pytest.mark.parametrize("attack", ATTACKS)
def test_a_formula_looking_cell_is_neutralised_for_csv(attack: str) -> None:
    assert csv_cell(attack) == "'" + attack
    assert csv_cell("Ana") == "Ana" and csv_cell(-3) == -3 and csv_cell(None) is None


def test_the_client_report_csv_neutralises_formulas(tmp_path: Path) -> None:
    folder = render_csv(_report("=cmd|' /C notepad'!A0"), tmp_path / "csv")
    with open(folder / "campaigns.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert [r[0] for r in rows[1:]] == ["'" + attack for attack in ATTACKS]
    assert {r[2] for r in rows[1:]} == {"-0.5"}  # numbers stay numbers
    with open(folder / "summary.csv", newline="", encoding="utf-8") as handle:
        summary = dict(csv.reader(handle))
    assert summary["client_name"] == "'=cmd|' /C notepad'!A0"
    for path in folder.glob("*.csv"):
        for row in csv.reader(path.open(newline="", encoding="utf-8")):
            assert not any(cell.startswith(("=", "+", "@", "\t", "\r")) for cell in row), (path.name, row)


def test_the_client_report_xlsx_has_no_formula_cells(tmp_path: Path) -> None:
    path = render_xlsx(_report("=cmd|' /C notepad'!A0"), tmp_path / "report.xlsx")
    book = load_workbook(path)
    cells = [c for sheet in book.worksheets for row in sheet.iter_rows() for c in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    texts = {c.value for c in cells if isinstance(c.value, str)}
    assert {a for a in ATTACKS if "\r" not in a} <= texts  # kept as text, unchanged (XML turns CR into LF)


def test_herald_sql_csv_neutralises_formulas(capsys: pytest.CaptureFixture[str]) -> None:
    print_rows(["name", "n"], [(attack, -1) for attack in ATTACKS], "csv")
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out, newline="")))
    assert rows[0] == ["name", "n"]
    assert [r[0] for r in rows[1:]] == ["'" + attack for attack in ATTACKS]
    assert {r[1] for r in rows[1:]} == {"-1"}
