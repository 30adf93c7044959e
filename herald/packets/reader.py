"""Reading packet files: checksums, encoding detection and CSV records with exact lines.

Streaming passes over the file, never the whole file in memory:
1. :func:`inspect_file` hashes the bytes (SHA-256 and MD5, for either sidecar) and decides
   the encoding (BOM → UTF-8/UTF-16; else UTF-8 when the whole file decodes — then every line
   does; else, counted line by line in a second pass, UTF-8 when the lines that decode as UTF-8
   with non-ASCII text are at least as many as those that do not — a stray byte then rejects its
   own line, never re-reads the file; else windows-1252, else latin-1, which decodes anything).
2. :func:`read_records` yields every CSV record with its first physical line number and its
   raw text, so a rejected row can be reported exactly as the client sent it. A line holding a
   NUL character is rejected (no warehouse column stores it; PostgreSQL refuses it outright)
   and its raw text kept with the NUL shown as ``\\0``. :func:`read_line_record` reads one line
   exactly as :func:`read_records` would inside its file (the set-wise landing's odd lines).

(The set-wise landing, ``setwise.py``, holds the file's bytes in memory instead, as columns.)
"""

from __future__ import annotations

import codecs
import csv
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 20
BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
# windows-1252 leaves five bytes undefined; a file using them is treated as latin-1.
FALLBACKS = ("windows-1252", "latin-1")
csv.field_size_limit(16 * 1024 * 1024)


@dataclass(frozen=True)
class FileFacts:
    size_bytes: int
    sha256: str
    md5: str
    encoding: str


@dataclass(frozen=True)
class Record:
    """One CSV record: its first physical line, its fields and the raw text it came from."""

    line_number: int
    last_line_number: int
    fields: list[str] | None  # None when the record could not be parsed (see ``error``)
    raw_text: str
    error: str | None = None
    ran_out: bool = False  # csv reached the end of the input inside a quoted field


def inspect_file(path: Path, encoding_hint: str = "auto") -> FileFacts:
    """Hash the file and pick its encoding in one streaming pass (a second one, line by line,
    only for a file that is not valid UTF-8 as a whole)."""
    sha, md5 = hashlib.sha256(), hashlib.md5()
    size = 0
    head = b""
    utf8 = codecs.getincrementaldecoder("utf-8")()
    valid = True  # the whole file decodes as UTF-8, so every line does
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            if size == 0:
                head = chunk[:4]  # no BOM holds a newline byte: as good as the first line's start
            size += len(chunk)
            sha.update(chunk)
            md5.update(chunk)
            if encoding_hint == "auto" and valid:
                try:
                    utf8.decode(chunk)
                except UnicodeDecodeError:
                    valid = False
    if encoding_hint == "auto" and valid:
        try:
            utf8.decode(b"", final=True)
        except UnicodeDecodeError:
            valid = False
    encoding = encoding_hint
    if encoding_hint == "auto":
        encoding = next((name for bom, name in BOMS if head.startswith(bom)), "")
        if not encoding:
            # One stray byte in a UTF-8 file rejects its line (the reader reports it), instead
            # of re-reading every accented name as windows-1252 ("JosÃ©"). A windows-1252 file
            # almost never forms valid UTF-8 sequences, so its lines count as bad ones.
            utf8_lines, bad_lines = (0, 0) if valid else _utf8_line_counts(path)
            is_utf8 = bad_lines == 0 or utf8_lines >= bad_lines
            encoding = "utf-8" if is_utf8 else _first_fallback_decoding(path)
    return FileFacts(size_bytes=size, sha256=sha.hexdigest(), md5=md5.hexdigest(), encoding=encoding)


def _utf8_line_counts(path: Path) -> tuple[int, int]:
    """Lines with non-ASCII text that do / do not decode as UTF-8."""
    utf8_lines = bad_lines = 0
    with path.open("rb") as f:
        for line in f:  # binary lines end at b"\n", as the reader's do
            if line.isascii():
                continue
            try:
                line.decode("utf-8")
                utf8_lines += 1
            except UnicodeDecodeError:
                bad_lines += 1
    return utf8_lines, bad_lines


def _first_fallback_decoding(path: Path) -> str:
    """A second pass, only for files that are not UTF-8."""
    ok = dict.fromkeys(FALLBACKS, True)
    decoders = {name: codecs.getincrementaldecoder(name)() for name in FALLBACKS}
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            for name in FALLBACKS:
                if ok[name]:
                    try:
                        decoders[name].decode(chunk)
                    except UnicodeDecodeError:
                        ok[name] = False
    return next(name for name in FALLBACKS if ok[name])


class _LineFeed:
    """Feeds decoded lines to ``csv.reader`` while remembering them and their numbers."""

    def __init__(self, lines: Iterator[tuple[str, str | None]]):
        self._lines = lines
        self.buffer: list[str] = []
        self.errors: list[str] = []
        self.line_number = 0
        # csv asks for a line past the end only while a quoted field is still open; a record
        # it then returns ran out of file rather than ending properly.
        self.exhausted = False

    def __iter__(self) -> _LineFeed:
        return self

    def __next__(self) -> str:
        try:
            text, error = next(self._lines)
        except StopIteration:
            self.exhausted = True
            raise
        self.line_number += 1
        self.buffer.append(text)
        if error:
            self.errors.append(f"line {self.line_number}: {error}")
        return text

    def take(self) -> tuple[str, list[str]]:
        raw, errors = "".join(self.buffer), self.errors
        self.buffer, self.errors = [], []
        return raw, errors


def _decoded_lines(path: Path, encoding: str) -> Iterator[tuple[str, str | None]]:
    if encoding.startswith("utf-16"):
        # UTF-16 newlines are two bytes: decode the stream, then split
        with path.open("r", encoding=encoding, errors="replace", newline="") as f:
            for line in f:
                yield _without_nul(line, "contains bytes that are not valid UTF-16" if "\ufffd" in line else None)
        return
    first = True
    with path.open("rb") as f:
        for raw in f:
            if first and encoding == "utf-8-sig" and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            first = False
            try:
                text, error = raw.decode(encoding), None
            except UnicodeDecodeError as exc:
                text = raw.decode(encoding, errors="replace")
                error = f"byte {exc.start + 1} is not valid {encoding} text"
            yield _without_nul(text, error)


def _without_nul(text: str, error: str | None) -> tuple[str, str | None]:
    """A line holding NUL is rejected: the character is shown as ``\\0`` in the kept text."""
    if "\x00" not in text:
        return text, error
    nul = f"character {text.index(chr(0)) + 1} is a NUL (zero) byte, which no text column can hold"
    return text.replace("\x00", "\\0"), f"{error}; {nul}" if error else nul


def read_records(path: Path, encoding: str, delimiter: str = ",", quote_char: str = '"') -> Iterator[Record]:
    """Every CSV record of the file, blank lines skipped, with exact line numbers and raw text."""
    return _records(_decoded_lines(path, encoding), delimiter, quote_char)


class RecordSpansLines(ValueError):
    """A line opens a quoted field it does not close: its record runs on into the next line."""


def read_line_record(line: str, line_number: int, delimiter: str = ",", quote_char: str = '"') -> Record | None:
    """The record one decoded line (with its line end) holds, exactly as :func:`read_records` reads
    it inside its file, or None for a blank line. Raises :class:`RecordSpansLines` when the line
    leaves a quoted field open, because its record then depends on the lines after it."""
    record = next(_records(iter([_without_nul(line, None)]), delimiter, quote_char, line_number), None)
    if record is not None and record.ran_out:
        raise RecordSpansLines(f"line {line_number} leaves a quoted field open")
    return record


def _records(
    lines: Iterator[tuple[str, str | None]], delimiter: str, quote_char: str, first_line: int = 1
) -> Iterator[Record]:
    feed = _LineFeed(lines)
    feed.line_number = first_line - 1
    reader = csv.reader(feed, delimiter=delimiter, quotechar=quote_char, strict=False)
    last_end = first_line - 1
    while True:
        ran_out = False
        try:
            fields = next(reader)
            raw, errors = feed.take()
            if feed.exhausted:
                ran_out = True
                errors.append(f"line {last_end + 1}: a quoted field is never closed (it runs to the end of the file)")
            error = "; ".join(errors) or None
        except StopIteration:
            return
        except csv.Error as exc:
            raw, errors = feed.take()
            fields, error = None, f"unreadable CSV: {exc}"
        start, last_end = last_end + 1, feed.line_number
        if fields is not None and not error and (not fields or (len(fields) == 1 and not fields[0].strip())):
            continue  # a blank line is not a row (a line of bare delimiters is, and landing rejects it)
        yield Record(
            line_number=start,
            last_line_number=last_end,
            fields=None if error else fields,
            raw_text=raw.rstrip("\r\n"),
            error=error,
            ran_out=ran_out,
        )
