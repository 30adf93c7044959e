"""herald.packets.setwise: the regular-line grammar, polars' reading of it and Python's csv agree."""

from __future__ import annotations

import csv
import io
import random
import sys

import polars as pl
import pytest

from herald.packets import setwise
from herald.packets.reader import RecordSpansLines, read_line_record, read_records


def test_py_whitespace_is_what_str_strip_removes() -> None:
    python = "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())

    assert python == setwise.PY_WHITESPACE


def _csv_fields(line: str, delimiter: str, quote: str) -> list[str]:
    return next(csv.reader(io.StringIO(line, newline=""), delimiter=delimiter, quotechar=quote, strict=False))


def _random_lines(seed: int, alphabet: str, count: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 14))) for _ in range(count)]


@pytest.mark.parametrize(("delimiter", "quote"), [(",", '"'), (";", "'"), ("\t", '"'), ("|", "'")])
def test_regular_lines_split_as_csv_reads_them(delimiter: str, quote: str) -> None:
    """Every regular line of a random corpus splits into csv's fields; irregular ones are left out."""
    lines = _random_lines(1, f"ab {delimiter}{quote}{quote}\\é", 4000)
    field = setwise._field_pattern(delimiter, quote)
    regular = f"^{field}(?:{setwise._hex(delimiter)}{field})*$"
    frame = pl.DataFrame({"text": lines}).with_columns(regular=pl.col("text").str.contains(regular))
    frame = frame.with_columns(fields=setwise._split(pl.col("text"), delimiter, quote))

    checked = 0
    for text, is_regular, fields in frame.iter_rows():
        if is_regular:
            assert fields == _csv_fields(text, delimiter, quote), text
            checked += 1
    assert checked > 500  # the corpus holds plenty of both kinds
    assert len(lines) - checked > 500


@pytest.mark.parametrize(("delimiter", "quote"), [(",", '"'), (";", "'"), ("\t", '"')])
def test_polars_reads_wide_lines_as_csv_does(delimiter: str, quote: str) -> None:
    """On the lines the grammar calls wide (the header's width), polars' CSV reader gives csv's fields."""
    width = 3
    field = setwise._field_pattern(delimiter, quote, setwise.CONTROL_CLASS)
    wide = f"^{setwise._hex(delimiter).join([field] * width)}(?:\r?\n)?$"
    lines = [
        line + end
        for line, end in zip(
            _random_lines(2, f"ab {delimiter}{delimiter}{quote}{quote}\t", 6000), ["\n", "\r\n"] * 3000, strict=True
        )
    ]
    chosen = [line for line in lines if pl.Series([line]).str.contains(wide)[0]]
    names = [f"c{i}" for i in range(width)]
    cells = pl.read_csv(
        "".join(chosen).encode(),
        has_header=False,
        separator=delimiter,
        quote_char=quote,
        new_columns=names,
        schema=dict.fromkeys(names, pl.String),
        empty_string_is_null=False,
    ).fill_null("")

    assert len(chosen) > 200
    assert [list(r) for r in cells.iter_rows()] == [_csv_fields(line, delimiter, quote) for line in chosen]


@pytest.mark.parametrize(
    "line",
    [
        "a,b\n",
        "a,b\r\n",
        "a,b",
        '"x, y",z\n',
        "",
        "\n",
        "  \r\n",
        '""\n',
        ",,\n",
        'a,"b""c"\n',
        'a,b"c\n',
        'a,"b"c\n',
        "a\rb\n",
    ],
)
def test_a_line_reads_as_inside_its_file(tmp_path, line: str) -> None:
    path = tmp_path / "one.csv"
    path.write_bytes(("h\n" + line).encode())

    in_file = [r for r in read_records(path, "utf-8") if r.line_number == 2]
    alone = read_line_record(line, 2)

    assert ([alone] if alone else []) == in_file


def test_a_line_that_leaves_a_quote_open_is_refused() -> None:
    with pytest.raises(RecordSpansLines):
        read_line_record('1,"two\n', 5)


def test_reason_counts_replace_digits_as_the_row_loop_does() -> None:
    reasons = pl.Series(["expected 12 fields like the header, found 13", "expected 12 fields like the header, found 3"])

    assert setwise.reason_counts(reasons) == {"expected N fields like the header, found N": 2}
