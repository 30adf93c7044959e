"""herald.packets.reader: the encoding a packet is in, its checksums, and its records with exact lines."""

from __future__ import annotations

import codecs
import hashlib
from pathlib import Path

import pytest

from herald.packets.reader import CHUNK, Record, inspect_file, read_records

TEXT = "id,name,note\n1,José Peña,O’Brien’s “best”\n2,Zoë,ok\n"


def write(tmp_path: Path, content: bytes, name: str = "packet.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def lines_and_fields(records: list[Record]) -> list[tuple[int, int, list[str] | None]]:
    return [(r.line_number, r.last_line_number, r.fields) for r in records]


# --- inspect_file ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "encoding"),
    [
        (b"id,name\n1,Ann\n", "utf-8"),
        (TEXT.encode("utf-8"), "utf-8"),
        (b"", "utf-8"),
        (codecs.BOM_UTF8 + TEXT.encode("utf-8"), "utf-8-sig"),
        (TEXT.encode("utf-16"), "utf-16"),  # with the platform's BOM
        (codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"), "utf-16"),
        (codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"), "utf-16"),
        ("id,name\n1,José Peña\n".encode("windows-1252"), "windows-1252"),
        (b"id,name\n1,O\x92Brien\n", "windows-1252"),  # 0x92 is the curly apostrophe in cp1252
        (TEXT.encode("windows-1252"), "windows-1252"),
        (b"id,name\n1,Ab\x81c\n", "latin-1"),  # 0x81 is undefined in cp1252
        ("id,name\n1,Peña\n".encode("latin-1") + b"2,\x8d\n", "latin-1"),
        (b"id,name\n1,Caf\xc3", "windows-1252"),  # UTF-8 cut off mid-character at the end
        (b"a" * (CHUNK - 1) + "é\n".encode(), "utf-8"),  # a character split across chunks
    ],
    ids=[
        "ascii",
        "utf-8",
        "empty",
        "utf-8 BOM",
        "utf-16 native BOM",
        "utf-16 LE BOM",
        "utf-16 BE BOM",
        "cp1252 accents",
        "cp1252 curly quote",
        "cp1252 quotes and accents",
        "latin-1 0x81",
        "latin-1 0x8d",
        "truncated utf-8",
        "utf-8 across chunks",
    ],
)
def test_inspect_file_detects_the_encoding(tmp_path: Path, content: bytes, encoding: str) -> None:
    facts = inspect_file(write(tmp_path, content))

    assert facts.encoding == encoding
    assert facts.size_bytes == len(content)


@pytest.mark.parametrize(
    "content",
    [b"", b"id\n1\n", TEXT.encode("utf-16"), b"\x00\xff" * (CHUNK // 2 + 17)],
    ids=["empty", "small", "utf-16", "two chunks of binary"],
)
def test_inspect_file_checksums_match_hashlib(tmp_path: Path, content: bytes) -> None:
    facts = inspect_file(write(tmp_path, content))

    assert facts.sha256 == hashlib.sha256(content).hexdigest()
    assert facts.md5 == hashlib.md5(content).hexdigest()
    assert facts.size_bytes == len(content)


@pytest.mark.parametrize("hint", ["utf-8", "windows-1252", "latin-1", "utf-16"])
def test_inspect_file_honours_an_explicit_hint(tmp_path: Path, hint: str) -> None:
    content = "id,name\n1,José\n".encode("windows-1252")  # not UTF-8: the hint still wins

    facts = inspect_file(write(tmp_path, content), encoding_hint=hint)

    assert facts.encoding == hint
    assert facts.sha256 == hashlib.sha256(content).hexdigest()


@pytest.mark.parametrize(
    "content",
    [
        TEXT.encode("utf-8"),
        codecs.BOM_UTF8 + TEXT.encode("utf-8"),
        codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"),
        codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"),
        TEXT.encode("windows-1252"),
    ],
    ids=["utf-8", "utf-8 BOM", "utf-16 LE", "utf-16 BE", "cp1252"],
)
def test_the_detected_encoding_reads_the_names_back(tmp_path: Path, content: bytes) -> None:
    path = write(tmp_path, content)

    records = list(read_records(path, inspect_file(path).encoding))

    assert [r.fields for r in records] == [
        ["id", "name", "note"],  # no BOM left on the first header
        ["1", "José Peña", "O’Brien’s “best”"],
        ["2", "Zoë", "ok"],
    ]
    assert [r.line_number for r in records] == [1, 2, 3]
    assert [r.error for r in records] == [None, None, None]


def test_latin_1_reads_the_byte_cp1252_leaves_undefined(tmp_path: Path) -> None:
    path = write(tmp_path, b"id,name\n1,Pe\xf1a\x81\n")

    records = list(read_records(path, inspect_file(path).encoding))

    assert records[1].fields == ["1", "Peña\x81"]
    assert records[1].error is None


# --- read_records ---------------------------------------------------------------------------


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["LF", "CRLF"])
def test_a_quoted_field_spanning_lines_keeps_its_first_line_number(tmp_path: Path, newline: str) -> None:
    text = newline.join(
        ["id,note,city", '1,"first line', 'second line",Austin', "2,plain,Dallas", '3,"a', "", 'c",Waco', ""]
    )
    path = write(tmp_path, text.encode("utf-8"))

    records = list(read_records(path, "utf-8"))

    assert lines_and_fields(records) == [
        (1, 1, ["id", "note", "city"]),
        (2, 3, ["1", f"first line{newline}second line", "Austin"]),
        (4, 4, ["2", "plain", "Dallas"]),
        (5, 7, ["3", f"a{newline}{newline}c", "Waco"]),  # the blank line inside quotes is data
    ]
    assert [r.raw_text for r in records] == [
        "id,note,city",
        f'1,"first line{newline}second line",Austin',
        "2,plain,Dallas",
        f'3,"a{newline}{newline}c",Waco',
    ]


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["LF", "CRLF"])
def test_blank_lines_are_skipped_but_still_numbered(tmp_path: Path, newline: str) -> None:
    text = newline.join(["a,b", "", "1,2", "   ", "", "3,4", "", ""])
    path = write(tmp_path, text.encode("utf-8"))

    records = list(read_records(path, "utf-8"))

    assert [(r.line_number, r.fields) for r in records] == [(1, ["a", "b"]), (3, ["1", "2"]), (6, ["3", "4"])]


def test_raw_text_is_exactly_what_the_file_holds(tmp_path: Path) -> None:
    lines = ["id;name;note", '  7 ; "Ann ""Nan"" Lee" ;  trailing;', "8;'single';x"]
    path = write(tmp_path, ("\n".join(lines)).encode("utf-8"))  # no newline at the end

    records = list(read_records(path, "utf-8", delimiter=";"))

    assert [r.raw_text for r in records] == lines
    assert records[1].fields == ["  7 ", ' "Ann ""Nan"" Lee" ', "  trailing", ""]  # csv: quotes mid-field are text
    assert records[2].fields == ["8", "'single'", "x"]


def test_a_custom_quote_char(tmp_path: Path) -> None:
    path = write(tmp_path, b"id|name\n1|'Lee| Ann'\n")

    records = list(read_records(path, "utf-8", delimiter="|", quote_char="'"))

    assert records[1].fields == ["1", "Lee| Ann"]


def test_ragged_rows_are_still_yielded(tmp_path: Path) -> None:
    path = write(tmp_path, b"a,b,c\n1,2\n1,2,3,4\nx\n1,2,3\n")

    records = list(read_records(path, "utf-8"))

    assert [(r.line_number, r.fields, r.error) for r in records] == [
        (1, ["a", "b", "c"], None),
        (2, ["1", "2"], None),
        (3, ["1", "2", "3", "4"], None),
        (4, ["x"], None),
        (5, ["1", "2", "3"], None),
    ]


def test_an_invalid_byte_names_its_line_and_the_rest_still_reads(tmp_path: Path) -> None:
    path = write(tmp_path, b"id,name\n1,Ann\n2,Jos\xe9\n3,Bob\n")

    records = list(read_records(path, "utf-8"))

    assert [(r.line_number, r.fields) for r in records] == [
        (1, ["id", "name"]),
        (2, ["1", "Ann"]),
        (3, None),
        (4, ["3", "Bob"]),
    ]
    bad = records[2]
    assert bad.error == "line 3: byte 6 is not valid utf-8 text"
    assert bad.raw_text == "2,Jos\ufffd"


def test_an_invalid_byte_inside_a_multi_line_record_names_that_line(tmp_path: Path) -> None:
    path = write(tmp_path, b'id,note\n1,"one\ntw\xff"\n2,ok\n')

    records = list(read_records(path, "utf-8"))

    assert [(r.line_number, r.last_line_number) for r in records] == [(1, 1), (2, 3), (4, 4)]
    assert records[1].fields is None
    assert records[1].error is not None and records[1].error.startswith("line 3: ")


def test_a_bare_carriage_return_is_an_unreadable_record_not_the_end(tmp_path: Path) -> None:
    path = write(tmp_path, b"id,n\n1,a\rb\n2,c\n")

    records = list(read_records(path, "utf-8"))

    assert [(r.line_number, r.fields) for r in records] == [(1, ["id", "n"]), (2, None), (3, ["2", "c"])]
    assert records[1].error is not None and records[1].error.startswith("unreadable CSV: ")


def test_a_quote_never_closed_is_an_error_not_swallowed_rows(tmp_path: Path) -> None:
    """Left alone, csv would fold every later line into one field of line 2, silently."""
    path = write(tmp_path, b'id,name\n1,"6 inch\n2,Bob\n3,Cy\n')

    records = list(read_records(path, "utf-8"))

    assert [(r.line_number, r.last_line_number, r.fields) for r in records] == [(1, 1, ["id", "name"]), (2, 4, None)]
    assert records[1].error == "line 2: a quoted field is never closed (it runs to the end of the file)"
    assert records[1].raw_text == '1,"6 inch\n2,Bob\n3,Cy'


def test_utf16_records_keep_their_lines(tmp_path: Path) -> None:
    text = 'id,note\r\n1,"a\r\nb"\r\n\r\n2,Zoë\r\n'
    path = write(tmp_path, codecs.BOM_UTF16_LE + text.encode("utf-16-le"))

    records = list(read_records(path, inspect_file(path).encoding))

    assert lines_and_fields(records) == [(1, 1, ["id", "note"]), (2, 3, ["1", "a\r\nb"]), (5, 5, ["2", "Zoë"])]
    assert records[1].raw_text == '1,"a\r\nb"'
