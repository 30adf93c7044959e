"""The set-wise landing writes exactly what the row loop writes: a differential test.

Each file of the corpus is landed twice under one packet id, first through the row loop (the
reference, ``row_loop=True``), then as ``land_packet`` chooses; landing again replaces the
first attempt. Rows, rejects, the packet's counts, the steps, the phone checks and the result
must be identical, and the file must have been read the way the corpus says (set-wise, or the
row loop with the reason it declined).
"""

from __future__ import annotations

import codecs
from datetime import datetime
from pathlib import Path

import pytest

from herald.config import Deployment
from herald.config.models import FileFormat, RowLimits
from herald.demo.packets import demo_packets, sized_packet
from herald.packets.landing import LandingResult, PacketFile, land_packet
from herald.warehouse.connection import Warehouse
from tests.conftest import ENGINES

CLIENT, PACKET_TYPE = "bright_smiles_dental", "appointments"
RECEIVED = datetime(2026, 11, 20, 9, 30)
HEADER = (
    "Patient ID,First Name,Last Name,Cell Phone,E-mail,Zip,Appt Date/Time,Appt Type,Provider,Office,"
    "Balance Due,Insurance Verified"
)


def _row(n: int, **cells: str) -> str:
    values = {
        "id": f"P{n:05d}",
        "first": f"Pat{n}",
        "last": "Lee",
        "phone": f"(512) 555-{n % 10000:04d}",
        "email": f"p{n}@example.com",
        "zip": "78701",
        "at": "01/15/2027 9:30 AM",
        "type": "Cleaning",
        "provider": '"Ortiz, Jenna"',
        "office": "Cedar Park",
        "balance": "$25.00",
        "verified": "Yes",
    }
    values.update(cells)
    return ",".join(values.values())


def _mixed() -> str:
    """Every reject reason and the line shapes the set-wise read must agree with the row loop on."""
    lines = [
        " patient id , FIRST NAME,Last Name,Cell Phone,E-mail,Zip,Appt Date/Time,Appt Type,Provider,Office,"
        "Balance Due,Insurance Verified",  # header spelled differently: mapped to the load map's names
        _row(1),
        _row(2, provider='"Kim ""Doc"" Tran, RDH"'),  # doubled quotes inside a quoted field
        _row(3, provider='""', office='"Cedar Park"'),  # quoted empty and needlessly quoted
        _row(4) + ",EXTRA",  # one field too many
        ",".join(["P5", "Ann", "Lee"]),  # too few
        ",,,,,,,,,,,",  # only delimiters
        " , ,\t, ,\xa0, , , , , , , ",  # only whitespace (Python's idea of it)
        _row(8, phone=""),  # a required field empty
        _row(9, phone="  ", at="\x1c"),  # two required fields empty (\x1c is whitespace to str.strip)
        "",  # blank line: skipped, still numbered
        "   ",  # whitespace only: skipped too
        _row(12, first="x" * 10_001),  # an oversized cell
        _row(13, first="y" * 9_000, last="z" * 9_000, office="w" * 9_000, type="v" * 9_000)
        + ","
        + ",".join(["u" * 9_000] * 9),  # ragged and oversized: the size is the reason
        _row(14, last="y" * 9_500, office="w" * 9_500, type="v" * 9_500, email="e" * 9_500) + ",k",
        _row(15) + "," + "q" * 10_001,  # the oversized cell lies past the header's width: named '#13'
        _row(16, last='6" inch'),  # a stray quote mid-field: literal text to csv
        _row(17, last='"Mc"Gee'),  # a quoted value followed by text: csv joins them
        _row(18, last="tab\there", office="back\\slash"),  # JSON escapes
        _row(19, last="ctl\x01char"),  # a control character: JSON \\u0001
        _row(20, last="a\rb"),  # a bare carriage return: unreadable CSV
        _row(21, first="José", last="Peña\u2028Zoë"),  # non-ASCII, a line separator that is not a line end
        _row(22, phone="+1 512 555 0100"),
        _row(23, phone="+1 512 555 0100"),  # the same phone twice: checked once
        '""',  # a lone empty quoted field: a blank line to csv
        _row(25, provider='"' + "p" * 10_001 + '"'),  # a quoted oversized cell
        _row(26, verified="No") + "\r",  # one CRLF line among LF lines
        _row(27, provider='"' + "é" * 30 + '"') + ",x",  # ragged, a quoted non-ASCII cell at the small cap
        _row(28, **{k: k * 25 for k in ("first", "last", "email", "office", "type", "provider")}),  # small caps: row
    ]
    return "\n".join(lines) + "\n" + _row(30)  # no newline at the end


def _small_caps(deployment: Deployment, fmt: FileFormat | None = None) -> Deployment:
    load_map = deployment.clients[CLIENT].load_maps[PACKET_TYPE]
    update: dict = {"limits": RowLimits(max_cell_chars=30, max_row_chars=160)}
    if fmt is not None:
        update["format"] = fmt
    changed = deployment.model_copy(deep=True)
    changed.clients[CLIENT].load_maps[PACKET_TYPE] = load_map.model_copy(update=update)
    return changed


CORPUS: dict[str, tuple[bytes, str]] = {
    "mixed LF": (_mixed().encode(), "set-wise"),
    "mixed CRLF": (_mixed().replace("\n", "\r\n").encode(), "set-wise"),
    "mixed UTF-8 BOM": (codecs.BOM_UTF8 + _mixed().encode(), "set-wise"),
    "mixed windows-1252": (_mixed().replace("\u2028", " ").encode("windows-1252"), "set-wise"),
    "mixed latin-1 (a byte windows-1252 leaves undefined)": (
        (_mixed().replace("\u2028", " ") + "\n" + _row(31, last="Ab\x81c")).encode("latin-1"),
        "set-wise",
    ),
    "header only": (HEADER.encode() + b"\n", "set-wise"),
    "blank lines first": ((HEADER + "\n\n  \n" + _row(1) + "\n" + _row(2) + ",x\n").encode(), "set-wise"),
    "ragged lines only": (
        (HEADER + "\n" + _row(1) + "\n" + _row(2) + ",x\n\n" + _row(3)[:20] + "\n").encode(),
        "set-wise",
    ),
    "header and blank lines": (b"\n\n" + HEADER.encode() + b"\n\n  \n", "set-wise"),
    "empty file": (b"", "-"),
    "missing required column": (HEADER.replace("Cell Phone", "Home Phone").encode() + b"\n" + _row(1).encode(), "-"),
    "duplicate header": ((HEADER + ",Zip\n" + _row(1) + ",1\n").encode(), "-"),
    "extra header column": ((HEADER + ",Notes\n" + _row(1) + ",hello\n" + _row(2) + "\n").encode(), "set-wise"),
    "quoted field spanning lines": (
        (HEADER + "\n" + _row(1, last='"two\nlines"') + "\n" + _row(2)).encode(),
        "row loop",
    ),
    "quote never closed": (
        (HEADER + "\n" + _row(1, last='"open', provider="x") + "\n" + _row(2) + "\n").encode(),
        "row loop",
    ),
    "a quote closed by a later field": (
        (HEADER + "\n" + _row(1, last='"open') + "\n" + _row(2) + "\n").encode(),
        "set-wise",
    ),
    "invalid UTF-8 byte": (
        (HEADER + "\n" + _row(1) + "\n").encode()
        + _row(2, last="Jos\xe9").encode("latin-1")
        + ("\nJosé," + _row(3)).encode(),
        "row loop",
    ),
    "NUL byte": ((HEADER + "\n" + _row(1, last="a\x00b") + "\n" + _row(2)).encode(), "row loop"),
    "UTF-16": (_mixed().encode("utf-16"), "row loop"),
    "BOM on a data line of a UTF-8 file": ((HEADER + "\n\ufeff" + _row(1) + "\n").encode(), "row loop"),
    "BOM mid-file": (codecs.BOM_UTF8 + (HEADER + "\n").encode() + codecs.BOM_UTF8 + _row(1).encode(), "row loop"),
}


def _write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def _packet(path: Path, packet_id: str) -> PacketFile:
    return PacketFile(
        packet_id, CLIENT, PACKET_TYPE, path.name, f"{CLIENT}/incoming/{PACKET_TYPE}/{path.name}", path, RECEIVED
    )


def _written(warehouse: Warehouse, packet_id: str) -> dict:
    """Everything a landing wrote for the packet, in a comparable form."""
    with warehouse.session(read_only=True) as s:
        text = "cast(row_data as varchar)" if s.engine == "duckdb" else "row_data::text"
        return {
            "rows": s.query(
                f"select client_id, packet_type, line_number, {text} from herald_raw.packet_rows "
                "where packet_id = ? order by line_number",
                [packet_id],
            )[1],
            "rows_landed_at": s.query(
                "select count(distinct landed_at) from herald_raw.packet_rows where packet_id = ?", [packet_id]
            )[1],
            "rejects": s.query(
                "select client_id, packet_type, line_number, reason, raw_text from herald_raw.packet_rejects "
                "where packet_id = ? order by line_number",
                [packet_id],
            )[1],
            "packet": s.query(
                "select status, status_reason, encoding, rows_in_file, rows_landed, rows_rejected "
                "from herald_ops.packets where packet_id = ?",
                [packet_id],
            )[1],
            "steps": s.query(
                "select step, detail from herald_ops.packet_events where packet_id = ? order by step",
                [packet_id],
            )[1],
            "phones": s.query(
                "select raw_value, default_region, phone_e164, is_valid from herald_raw.phone_numbers order by 1"
            )[1],
        }


def _result(r: LandingResult) -> tuple:
    return (
        r.status,
        r.reason,
        r.encoding,
        r.rows_in_file,
        r.rows_landed,
        r.rows_rejected,
        dict(r.reject_reasons),
        r.first_rejects,
        r.missing_columns,
        r.preview,
    )


def _both_ways(
    warehouse: Warehouse, deployment: Deployment, path: Path, packet_id: str, packet: PacketFile | None = None
) -> LandingResult:
    """Lands the file through the row loop, then as land_packet chooses; asserts identical outcomes."""
    packet = packet or _packet(path, packet_id)
    with warehouse.session() as s:  # the phone checks are compared too: each landing starts afresh
        s.execute("delete from herald_raw.phone_numbers")
    reference = land_packet(warehouse, deployment, packet, row_loop=True)
    expected = _written(warehouse, packet_id)
    with warehouse.session() as s:
        s.execute("delete from herald_raw.phone_numbers")
    chosen = land_packet(warehouse, deployment, packet)
    assert _written(warehouse, packet_id) == expected
    assert _result(chosen) == _result(reference)
    return chosen


@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
@pytest.mark.parametrize("name", list(CORPUS))
@pytest.mark.parametrize("caps", ["default caps", "small caps"])
def test_both_paths_write_the_same(
    warehouse: Warehouse, deployment: Deployment, tmp_path: Path, name: str, caps: str
) -> None:
    content, read_by = CORPUS[name]
    dep = _small_caps(deployment) if caps == "small caps" else deployment
    chosen = _both_ways(warehouse, dep, _write(tmp_path, "packet.csv", content), "pk")

    if read_by == "-":  # refused at the header: neither path reads a row
        assert chosen.status == "rejected" and chosen.read_by is None
    else:
        assert chosen.read_by is not None and chosen.read_by.startswith(read_by)
        assert chosen.accounted_for


@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
@pytest.mark.parametrize(
    ("delimiter", "quote"), [(";", '"'), ("|", "'"), ("\t", '"')], ids=["semicolon", "pipe and apostrophe", "tab"]
)
def test_other_dialects_agree(
    warehouse: Warehouse, deployment: Deployment, tmp_path: Path, delimiter: str, quote: str
) -> None:
    text = _mixed().replace(",", "\x02").replace('"', "\x03")
    text = text.replace("\x02", delimiter).replace("\x03", quote)
    dep = _small_caps(deployment, FileFormat(delimiter=delimiter, quote_char=quote))
    chosen = _both_ways(warehouse, dep, _write(tmp_path, "packet.csv", text.encode()), "pk")

    assert chosen.read_by == "set-wise"


@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_the_demo_packets_agree(warehouse: Warehouse, deployment: Deployment, tmp_path: Path) -> None:
    """The demo's packets: windows-1252, a UTF-8 BOM, every client's load map."""
    for n, sample in enumerate(demo_packets(deployment)):
        path = _write(tmp_path, f"demo{n}.csv", sample.content)
        packet = PacketFile(f"pk{n}", sample.client_id, sample.packet_type, path.name, path.name, path, RECEIVED)
        chosen = _both_ways(warehouse, deployment, path, packet.packet_id, packet)
        assert chosen.read_by == "set-wise"


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_a_sized_packet_and_the_mixed_file_agree_on_both_engines(
    warehouse: Warehouse, deployment: Deployment, tmp_path: Path
) -> None:
    sample = sized_packet(deployment, CLIENT, PACKET_TYPE, rows=2000, bad_rows=7)
    sized = _both_ways(warehouse, deployment, _write(tmp_path, sample.file_name, sample.content), "pk_sized")
    mixed = _both_ways(warehouse, _small_caps(deployment), _write(tmp_path, "mixed.csv", _mixed().encode()), "pk_mixed")

    assert (sized.read_by, sized.rows_landed, sized.rows_rejected) == ("set-wise", 1993, 7)
    assert mixed.read_by == "set-wise" and mixed.rows_rejected > 10


@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_phones_already_checked_are_not_checked_again(
    warehouse: Warehouse, deployment: Deployment, tmp_path: Path
) -> None:
    sample = sized_packet(deployment, CLIENT, PACKET_TYPE, rows=50)
    path = _write(tmp_path, sample.file_name, sample.content)
    land_packet(warehouse, deployment, _packet(path, "pk1"))
    land_packet(warehouse, deployment, _packet(path, "pk1"))  # the same packet again: its phones are known

    with warehouse.session(read_only=True) as s:
        details = [
            r[0] for r in s.query("select detail from herald_ops.packet_events where step = 'phones_checked'")[1]
        ]
        assert s.scalar("select count(*) from herald_raw.phone_numbers") == 50
    assert details == ["50 distinct phone numbers, 0 not seen before checked with libphonenumber"]
