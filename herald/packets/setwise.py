"""Reading and accounting a packet's rows set-wise (polars), with the same outcome as the row loop.

``landing._land_records`` reads a packet record by record in Python; this module reads the same
file as whole columns and must reach exactly the same rows, rejects, reasons and line numbers. It
does so by splitting the work where Python's ``csv`` module, a regular expression and polars'
CSV reader provably agree (tests/unit/test_setwise.py fuzzes each against csv):

- Each physical line is a record unless a quoted field spans lines. The file is split at its
  ``\n`` bytes, as the Python reader's binary line iteration does, so line numbers are row
  positions.
- A *regular* line has every field either free of the quote character, or wholly quoted with
  doubled quotes inside and followed by the delimiter or the line end, and no control character
  but a tab. On such lines ``csv`` (``strict=False``) reads the fields a regular expression
  describes. Regular lines with the header's count of fields (*wide*: nearly all lines of a real
  packet) are read by polars' CSV reader, the others split by the expression; the checks (cell
  and row sizes, field count, all-empty rows, required fields), the reasons and the JSON are
  then computed on whole columns.
- Any other line (a stray quote, a bare carriage return, a control character) is read by the
  Python reader itself, one line at a time, and checked by the row loop's own rules
  (``check``/``row_json`` below). Such lines are rare in real packets.

What it cannot account for exactly it declines up front, before anything is written, and the
caller lands the file through the row loop: an encoding other than UTF-8 or a single-byte one,
bytes that are not valid in the encoding, a NUL byte, a byte-order mark after the start, a
one-column header, a delimiter or quote that is not one ASCII character, a line whose quoted
field stays open (a record spanning lines), and polars not reading one row a line.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

from herald.packets.reader import Record, RecordSpansLines, read_line_record

# the characters str.strip() removes (str.isspace); polars' own strip uses Unicode White_Space,
# which lacks \x1c-\x1f. tests/unit/test_setwise.py checks this list against Python.
PY_WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
SINGLE_BYTE = ("windows-1252", "latin-1")
ALL_EMPTY = "the row has no values (only delimiters)"


@dataclass
class Accounted:
    """What the set-wise read found: the frames to insert and the figures for the result."""

    landed: pl.DataFrame  # line_number, row_data (JSON text)
    rejects: pl.DataFrame  # line_number, reason, raw_text (already cut at the row cap)
    rows_in_file: int
    phones: pl.Series  # distinct trimmed phone values of landed rows
    preview_lines: dict[int, list[str]]  # the first landed lines' fields, for the preview


@dataclass(frozen=True)
class Layout:
    """The load map and header facts the checks need."""

    header: list[str]
    delimiter: str
    quote_char: str
    required: list[tuple[str, str, int]]  # (field, column, index in the header)
    phone_idx: int | None
    max_cell_chars: int
    max_row_chars: int


def unsupported_format(encoding: str, delimiter: str, quote_char: str, width: int) -> str | None:
    """Why a packet of this encoding and dialect goes through the row loop, or None."""
    if encoding not in ("utf-8", "utf-8-sig", *SINGLE_BYTE):
        return f"encoding {encoding}"
    specials = {delimiter, quote_char}
    if (
        delimiter == quote_char
        or specials & {"\r", "\n"}
        or any((ord(c) < 32 and c != "\t") or ord(c) > 127 for c in specials)
    ):
        return f"delimiter {delimiter!r} with quote {quote_char!r}"
    if width < 2:
        return "a header of one column"
    return None


@dataclass(frozen=True)
class Lines:
    """A file's physical lines: its UTF-8 bytes, where each line starts, and the lines as text."""

    data: bytes
    starts: np.ndarray  # line i (from 0) is data[starts[i]:starts[i + 1]], its line end included
    text: pl.Series


def read_lines(data: bytes, encoding: str) -> tuple[Lines | None, str | None]:
    """Every physical line of the file as UTF-8 text (line end included), or why not exactly."""
    if b"\x00" in data:
        return None, "a NUL byte"
    if encoding == "utf-8-sig":
        data = data.removeprefix(codecs.BOM_UTF8)
    if codecs.BOM_UTF8 in data[1:]:
        # utf-8-sig strips a BOM from the start of every line in the row loop, and polars from the
        # start of what it reads: both rare enough to leave to the row loop
        return None, "a byte-order mark after the start"
    if encoding in SINGLE_BYTE:
        try:
            data = data.decode(encoding).encode("utf-8")  # single-byte: the same as line by line
        except UnicodeDecodeError:
            return None, f"bytes that are not {encoding}"
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10) + 1
    if data and (not len(ends) or ends[-1] != len(data)):
        ends = np.append(ends, len(data))
    starts = np.concatenate((np.zeros(1, dtype=np.int64), ends.astype(np.int64)))
    text = pa.LargeStringArray.from_buffers(len(ends), pa.py_buffer(starts), pa.py_buffer(data))
    try:
        text.validate(full=True)  # UTF-8: a stray byte makes the row loop reject its line
    except pa.ArrowInvalid:
        return None, "bytes that are not valid UTF-8"
    return Lines(data, starts, pl.Series("raw", text, dtype=pl.String)), None


def _hex(char: str) -> str:
    return f"\\x{{{ord(char):x}}}"


def _field_pattern(delimiter: str, quote: str, exclude: str = "") -> str:
    """One field of a regular line: wholly quoted (doubled quotes inside) or free of quotes."""
    d, q = _hex(delimiter), _hex(quote)
    return f"(?:{q}(?:[^{q}{exclude}]|{q}{q})*{q}|[^{d}{q}{exclude}]*)"


def _split(text: pl.Expr, delimiter: str, quote: str) -> pl.Expr:
    """The fields of regular lines, as lists."""
    return (
        pl.concat_str([pl.lit(delimiter), text])
        .str.extract_all(_hex(delimiter) + _field_pattern(delimiter, quote))
        .list.eval(_unquote(pl.element().str.slice(1), quote))
    )


def _read_wide(
    lines: Lines, frame: pl.DataFrame, first_data_line: int, layout: Layout, in_place: bool
) -> pl.DataFrame | str:
    """The wide lines' cells, read by polars' CSV reader: on lines of this grammar it reads what
    Python's csv reads. ``in_place``: every other line is regular too, so each line is one row to
    polars (cells past the header's width dropped, missing ones empty) and the file is read as it
    lies; else those lines are replaced by empty rows, so that row i stays line i."""
    width, delim = len(layout.header), layout.delimiter
    names = [f"c{i}" for i in range(width)]
    if frame.is_empty():
        return frame.select("line_number", pl.lit("").alias("raw"), *[pl.lit("").alias(n) for n in names]).clear()
    first = int(lines.starts[first_data_line - 1])
    if in_place and frame["wide"][0]:  # polars takes the count of fields from the first line
        buffer = lines.data[first:]
    else:
        filler = (delim * (width - 1) + "\n").encode()
        pieces, at = [], first
        for index in (frame.filter(~pl.col("wide"))["line_number"] - 1).to_list():
            start, end = int(lines.starts[index]), int(lines.starts[index + 1])
            pieces += [lines.data[at:start], filler]
            at = end
        pieces.append(lines.data[at:])
        buffer = b"".join(pieces)
    try:
        cells = pl.read_csv(
            buffer,
            has_header=False,
            separator=delim,
            quote_char=layout.quote_char,
            new_columns=names,
            schema=dict.fromkeys(names, pl.String),
            empty_string_is_null=False,
            comment_prefix=None,
            eol_char="\n",
            raise_if_empty=False,
            truncate_ragged_lines=True,
        )
    except pl.exceptions.PolarsError as exc:
        return f"polars could not read the lines: {str(exc).splitlines()[0]}"
    if cells.height != frame.height:
        return f"polars read {cells.height} rows from {frame.height} lines"
    cells = cells.with_columns(pl.col(n).fill_null("") for n in names)
    return (
        pl.concat([frame.select("line_number", "raw", "wide"), cells], how="horizontal")
        .filter(pl.col("wide"))
        .drop("wide")
    )


def _unquote(value: pl.Expr, quote: str) -> pl.Expr:
    return (
        pl.when(value.str.starts_with(quote))
        .then(value.str.slice(1, value.str.len_chars() - 2).str.replace_all(quote * 2, quote, literal=True))
        .otherwise(value)
    )


def _class(chars: str) -> str:
    """The inside of a regular-expression character class of exactly these characters."""
    return "".join(_hex(c) for c in chars)


CONTROL_CLASS = _class("".join(chr(c) for c in range(32) if c != 9))  # control characters but tab
CONTROL = f"[{CONTROL_CLASS}]"


def _json_escape(value: pl.Expr) -> pl.Expr:
    # regular lines hold no control character but tab: these are all json.dumps escapes there
    return (
        value.str.replace_all("\\", "\\\\", literal=True)
        .str.replace_all('"', '\\"', literal=True)
        .str.replace_all("\t", "\\t", literal=True)
    )


def _is_blank(value: pl.Expr) -> pl.Expr:
    """``not value.strip()``"""
    return value.str.contains(f"^[{_class(PY_WHITESPACE)}]*$")


def kept_raw(raw: pl.Expr, limit: int) -> pl.Expr:
    """``landing._kept_raw_text`` on a column."""
    length = raw.str.len_chars()
    cut = pl.concat_str(
        [raw.str.slice(0, limit), pl.lit("… ["), (length - limit).cast(pl.String), pl.lit(" more characters not kept]")]
    )
    return pl.when(length > limit).then(cut).otherwise(raw)


def account(
    lines: Lines,
    first_data_line: int,
    layout: Layout,
    check: Callable[[Record], str | None],
    row_json: Callable[[list[str]], str],
    preview_rows: int,
) -> Accounted | str:
    """Every record from ``first_data_line`` on, landed or rejected; or why not exactly: a record
    spans lines, or polars' CSV reader does not read the wide lines one row a line."""
    width, quote, delim = len(layout.header), layout.quote_char, layout.delimiter
    field = _field_pattern(delim, quote)
    names = [f"c{i}" for i in range(width)]
    # the header's count of fields on a regular line, no control character but tab (and the
    # delimiter): nearly every line of a real packet
    wide_line = f"^{_hex(delim).join([_field_pattern(delim, quote, CONTROL_CLASS)] * width)}(?:\r?\n)?$"
    frame = (
        lines.text.to_frame("raw")
        .with_row_index("line_number", offset=1)
        .slice(first_data_line - 1)
        .with_columns(pl.col("line_number").cast(pl.Int64), wide=pl.col("raw").str.contains(wide_line))
    )
    text = pl.col("raw").str.strip_suffix("\n").str.strip_suffix("\r")
    rest = (
        frame.filter(~pl.col("wide"))
        .with_columns(text=text)
        .with_columns(
            regular=~pl.col("text").str.contains(CONTROL)
            & pl.col("text").str.contains(f"^{field}(?:{_hex(delim)}{field})*$")
        )
    )
    ragged, odd = rest.filter(pl.col("regular")), rest.filter(~pl.col("regular"))
    wide = _read_wide(lines, frame, first_data_line, layout, in_place=odd.is_empty())
    if isinstance(wide, str):
        return wide
    ragged = ragged.with_columns(fields=_split(pl.col("text"), delim, quote))
    # a regular line of the header's width that was not wide (a bare \r at its end): the row loop's rules
    odd = pl.concat([odd, ragged.filter(pl.col("fields").list.len() == width).drop("fields")])
    ragged = ragged.filter(pl.col("fields").list.len() != width)

    odd_landed, odd_rejects, odd_phones, odd_rows, odd_fields = [], [], [], 0, {}
    for line_number, raw in zip(odd["line_number"], odd["raw"], strict=True):
        try:
            rec = read_line_record(raw, line_number, delim, quote)
        except RecordSpansLines:
            return "a quoted field spanning lines"
        if rec is None:
            continue
        odd_rows += 1
        reason = check(rec)
        if reason:
            odd_rejects.append((line_number, reason, rec.raw_text))
            continue
        assert rec.fields is not None
        odd_landed.append((line_number, row_json(rec.fields)))
        odd_fields[line_number] = rec.fields
        if layout.phone_idx is not None and rec.fields[layout.phone_idx].strip():
            odd_phones.append(rec.fields[layout.phone_idx].strip())

    wide_good, wide_rejects = _check_wide(wide, layout)
    ragged_rejects, ragged_rows = _account_ragged(ragged, layout)
    landed = pl.concat(
        [
            wide_good.select("line_number", row_data=_row_json(wide_good, layout.header)),
            pl.DataFrame(odd_landed, schema={"line_number": pl.Int64, "row_data": pl.String}, orient="row"),
        ],
        how="vertical",
    )
    rejects = pl.concat(
        [
            wide_rejects,
            ragged_rejects,
            pl.DataFrame(odd_rejects, schema=wide_rejects.schema, orient="row").with_columns(
                kept_raw(pl.col("raw_text"), layout.max_row_chars)
            ),
        ],
        how="vertical",
    ).sort("line_number")
    phones = pl.Series("phone", odd_phones, dtype=pl.String)
    if layout.phone_idx is not None:
        phone = pl.col(f"c{layout.phone_idx}").str.strip_chars(PY_WHITESPACE)
        phones = pl.concat([wide_good.select(phone.alias("phone")).to_series(), phones])
        phones = phones.filter(phones != "").unique()
    first = sorted(landed["line_number"].bottom_k(preview_rows).to_list())
    preview = {
        r[0]: list(r[1:])
        for r in wide_good.filter(pl.col("line_number").is_in(first)).select("line_number", *names).iter_rows()
    }
    preview.update({n: odd_fields[n] for n in first if n in odd_fields})
    return Accounted(
        landed=landed,
        rejects=rejects,
        rows_in_file=wide_good.height + wide_rejects.height + ragged_rows + odd_rows,
        phones=phones,
        preview_lines={n: preview[n] for n in first},
    )


def _check_wide(wide: pl.DataFrame, layout: Layout) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Regular lines with the header's count of fields: unquoted, checked on whole columns.
    Returns the rows that land (their cells) and the rejects."""
    header, quote = layout.header, layout.quote_char
    width = len(header)
    names = [f"c{i}" for i in range(width)]
    cap, row_cap = layout.max_cell_chars, layout.max_row_chars
    # Only a few rows can fail a check, and cheap tests on the whole line find every one of them:
    # no cell and no row is longer than its line; a row of empty cells holds only whitespace,
    # delimiters and quotes; and the required cells are tested themselves.
    might_fail = [
        pl.col("raw").str.len_bytes() > min(cap, row_cap),
        ~pl.col("raw").str.contains(f"[^{_class(PY_WHITESPACE + layout.delimiter + quote)}]"),
        *[_is_blank(pl.col(f"c{i}")) for _, _, i in layout.required],
    ]
    wide = wide.with_columns(suspect=pl.any_horizontal(might_fail))
    clean = wide.filter(~pl.col("suspect"))
    suspect = wide.filter(pl.col("suspect")).with_columns(
        text=pl.col("raw").str.strip_suffix("\n").str.strip_suffix("\r")
    )
    lengths = [pl.col(n).str.len_chars() for n in names]
    too_big_cell = pl.coalesce(
        [
            pl.when(length > cap).then(
                pl.concat_str(
                    [
                        pl.lit(f"column {header[i][:100]!r} has "),
                        length.cast(pl.String),
                        pl.lit(f" characters (limit {cap} a cell)"),
                    ]
                )
            )
            for i, length in enumerate(lengths)
        ]
    )
    total = pl.sum_horizontal(lengths)
    too_big_row = pl.when(total > row_cap).then(
        pl.concat_str([pl.lit("the row has "), total.cast(pl.String), pl.lit(f" characters (limit {row_cap} a row)")])
    )
    all_empty = pl.all_horizontal([_is_blank(pl.col(n)) for n in names])
    required_empty = pl.concat_str(
        [pl.when(_is_blank(pl.col(f"c{i}"))).then(pl.lit(f"{f!r} (column {c!r})")) for f, c, i in layout.required],
        separator=", ",
        ignore_nulls=True,
    )
    required_reason = (
        pl.when(required_empty != "").then(
            pl.concat_str([pl.lit("required field "), required_empty, pl.lit(" is empty")])
        )
        if layout.required
        else pl.lit(None, dtype=pl.String)
    )
    reason = pl.coalesce([too_big_cell, too_big_row, pl.when(all_empty).then(pl.lit(ALL_EMPTY)), required_reason])
    checked = suspect.with_columns(reason=reason)
    rejects = checked.filter(pl.col("reason").is_not_null()).select(
        "line_number", "reason", raw_text=kept_raw(pl.col("text"), row_cap)
    )
    good = pl.concat(
        [clean.drop("suspect"), checked.filter(pl.col("reason").is_null()).drop("suspect", "reason", "text")]
    )
    return good, rejects


def _row_json(cells: pl.DataFrame, header: list[str]) -> pl.Expr:
    """``json.dumps(dict(zip(header, cells)), ensure_ascii=False)`` of the columns c0, c1, …"""
    names = [f"c{i}" for i in range(len(header))]
    # escape only the columns that hold a character JSON escapes (regular lines: \\, " or tab)
    needs = cells.select([pl.col(n).str.contains(r'[\\"\t]').any() for n in names]).row(0) if cells.height else ()
    pieces: list[pl.Expr] = []
    for i, (name, hit) in enumerate(zip(header, needs or (False,) * len(header), strict=True)):
        value = _json_escape(pl.col(f"c{i}")) if hit else pl.col(f"c{i}")
        pieces += [pl.lit(("{" if i == 0 else '", ') + json.dumps(name, ensure_ascii=False) + ': "'), value]
    pieces.append(pl.lit('"}'))
    return pl.concat_str(pieces)


def _account_ragged(ragged: pl.DataFrame, layout: Layout) -> tuple[pl.DataFrame, int]:
    """Regular lines with another count of fields than the header (``fields`` split): rejected
    (after the size checks), or skipped when blank."""
    header = layout.header
    width = len(header)
    cells = ragged.with_columns(count=pl.col("fields").list.len())
    cells = cells.filter(~((pl.col("count") == 1) & _is_blank(pl.col("fields").list.first())))
    cap, row_cap = layout.max_cell_chars, layout.max_row_chars
    lengths = pl.col("fields").list.eval(pl.element().str.len_chars())
    first_big = lengths.list.eval(pl.element() > cap).list.arg_max()
    big_len = lengths.list.get(first_big)
    index = first_big.cast(pl.Int64)
    column_name = (
        pl.when(index < width)
        .then(index.replace_strict(list(range(width)), [repr(h[:100]) for h in header], default=None))
        .otherwise(pl.concat_str([pl.lit("'#"), (index + 1).cast(pl.String), pl.lit("'")]))  # repr of "#N"
    )
    too_big_cell = pl.when(lengths.list.max() > cap).then(
        pl.concat_str(
            [
                pl.lit("column "),
                column_name,
                pl.lit(" has "),
                big_len.cast(pl.String),
                pl.lit(f" characters (limit {cap} a cell)"),
            ]
        )
    )
    total = lengths.list.sum()
    too_big_row = pl.when(total > row_cap).then(
        pl.concat_str([pl.lit("the row has "), total.cast(pl.String), pl.lit(f" characters (limit {row_cap} a row)")])
    )
    wrong_count = pl.concat_str(
        [pl.lit(f"expected {width} fields like the header, found "), pl.col("count").cast(pl.String)]
    )
    rejects = cells.select(
        "line_number",
        reason=pl.coalesce([too_big_cell, too_big_row, wrong_count]),
        raw_text=kept_raw(pl.col("text"), row_cap),
    )
    return rejects, cells.height


def reason_counts(reasons: pl.Series) -> dict[str, int]:
    """``re.sub(r"\\d+", "N", reason)`` counted, as the row loop counts them."""
    if reasons.is_empty():
        return {}
    counted = reasons.str.replace_all(r"\d+", "N").value_counts()
    return dict(zip(counted[counted.columns[0]].to_list(), counted["count"].to_list(), strict=True))
