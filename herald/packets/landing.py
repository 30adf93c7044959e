"""Landing one packet: verify, account for every row, write it all in one transaction.

Promise 1 lives here: each CSV record of a packet ends either in ``herald_raw.packet_rows``
or in ``herald_raw.packet_rejects`` with its line number, reason and raw text, and
``rows_in_file = rows_landed + rows_rejected`` is recorded on ``herald_ops.packets``.
Everything a packet writes is one transaction (promise 4): a failure lands nothing, and
landing the same packet id again replaces what it wrote before, never doubling it.

Rows are read one of two ways, chosen before anything is written. Set-wise (``setwise.py``,
polars): the whole file as columns, checks and JSON computed on them, rows and rejects written
in bulk — any UTF-8 or single-byte packet whose records are each one line. Otherwise the row
loop (``_land_records``): record by record through Python's csv, the reference both must match
(``tests/integration/test_landing_setwise.py`` lands a corpus both ways and compares).
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import polars as pl

from herald.clock import utcnow
from herald.config.models import Deployment, FieldColumn, LoadMap, RowLimits
from herald.contacts.phones import PhoneNormalizer, mask_email, mask_phone, normalize_series
from herald.packets import setwise
from herald.packets.reader import Record, inspect_file, read_records
from herald.warehouse.connection import Session, Warehouse
from herald.warehouse.schema import OPS_SCHEMA, RAW_SCHEMA, column_names

BATCH_ROWS = 50_000
FIRST_REJECTS_KEPT = 20
PREVIEW_ROWS = 5

ROWS_TABLE = f"{RAW_SCHEMA}.packet_rows"
REJECTS_TABLE = f"{RAW_SCHEMA}.packet_rejects"
PHONES_TABLE = f"{RAW_SCHEMA}.phone_numbers"
PACKETS_TABLE = f"{OPS_SCHEMA}.packets"
EVENTS_TABLE = f"{OPS_SCHEMA}.packet_events"
PHONE_CANDIDATES = "_herald_phone_candidates"
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class PacketFile:
    """A packet file fetched from a drop zone to a local path."""

    packet_id: str
    client_id: str
    packet_type: str
    file_name: str
    zone_path: str  # where it sits in the drop zone, for the record
    local_path: Path
    received_at: datetime
    expected_sha256: str | None = None
    expected_md5: str | None = None
    manifest_rows: int | None = None
    problem: str | None = None  # the drop zone refused the file (name, sidecar, unreadable): not read


@dataclass
class LandingResult:
    packet_id: str
    client_id: str
    packet_type: str
    status: str = "received"  # landed | rejected | duplicate
    reason: str | None = None
    encoding: str | None = None
    size_bytes: int = 0
    sha256: str | None = None
    duplicate_of: str | None = None
    rows_in_file: int = 0
    rows_landed: int = 0
    rows_rejected: int = 0
    reject_reasons: Counter = field(default_factory=Counter)
    first_rejects: list[tuple[int, str, str]] = field(default_factory=list)
    missing_columns: list[str] = field(default_factory=list)
    preview: list[dict[str, str]] = field(default_factory=list)
    step_ms: dict[str, int] = field(default_factory=dict)
    read_by: str | None = None  # "set-wise", or "row loop (why)": how the rows were read

    @property
    def accounted_for(self) -> bool:
        return self.rows_in_file == self.rows_landed + self.rows_rejected


def _norm_header(name: str) -> str:
    return re.sub(r"\s+", " ", name.strip()).casefold()


class _Steps:
    """Times each step and keeps ``packet_events`` rows."""

    def __init__(self, packet_id: str, received_at: datetime):
        self.packet_id = packet_id
        self.rows: list[tuple] = [(packet_id, "received", received_at, None, None)]
        self.ms: dict[str, int] = {}
        self._started = time.perf_counter()

    def done(self, step: str, detail: str) -> None:
        now = time.perf_counter()
        ms = int((now - self._started) * 1000)
        self._started = now
        self.ms[step] = self.ms.get(step, 0) + ms
        self.rows.append((self.packet_id, step, utcnow(), ms, detail))


def land_packet(
    warehouse: Warehouse,
    deployment: Deployment,
    packet: PacketFile,
    log: Callable[[str], None] = lambda _msg: None,
    row_loop: bool = False,
) -> LandingResult:
    """Verify and land one packet; returns what happened to every row. ``row_loop`` reads it
    record by record even when the set-wise read could (the reference the tests compare with)."""
    result = LandingResult(packet.packet_id, packet.client_id, packet.packet_type)
    steps = _Steps(packet.packet_id, packet.received_at)
    client = deployment.clients.get(packet.client_id)
    load_map = deployment.load_map(packet.client_id, packet.packet_type)

    unreadable = _unreadable(packet.local_path) if not packet.problem else None
    if packet.problem or unreadable:
        problem: str | None = _CONTROL_CHARS.sub(" ", packet.problem or unreadable or "")  # storable on both engines
        steps.done("verified", problem or "")
    else:
        facts = inspect_file(packet.local_path, load_map.format.encoding if load_map else "auto")
        result.size_bytes, result.sha256, result.encoding = facts.size_bytes, facts.sha256, facts.encoding
        problem = _verify(packet, facts.sha256, facts.md5)
        steps.done("verified", problem or f"sha256 {facts.sha256[:12]}…, {facts.size_bytes} bytes, {facts.encoding}")
    if problem is None and client is None:
        problem = f"unknown client {packet.client_id!r}: there is no clients/{packet.client_id}/client.yaml"
    if problem is None and load_map is None:
        problem = (
            f"client {packet.client_id!r} has no load map for packet type {packet.packet_type!r} "
            f"(expected clients/{packet.client_id}/load_maps/{packet.packet_type}.yaml)"
        )

    with warehouse.session() as s:
        _forget_previous_attempt(s, packet.packet_id)
        if problem is None:
            result.duplicate_of = s.scalar(
                f"select packet_id from {PACKETS_TABLE} where client_id = ? and packet_type = ? and sha256 = ? "
                "and status = 'landed' and packet_id <> ? order by received_at limit 1",
                [packet.client_id, packet.packet_type, result.sha256, packet.packet_id],
            )
        if problem is not None:
            result.status, result.reason = "rejected", problem
            log(f"packet {packet.packet_id} rejected: {problem}")
        elif result.duplicate_of:
            result.status = "duplicate"
            result.reason = (
                f"same content as packet {result.duplicate_of}, which is already landed; nothing loaded again"
            )
            steps.done("landed", result.reason)
        else:
            assert client is not None and load_map is not None
            _land_rows(
                s,
                packet,
                load_map,
                PhoneNormalizer(client.default_region),
                result.encoding or "utf-8",
                result,
                steps,
                log,
                row_loop,
            )
        _record_packet(s, packet, result, steps)
    result.step_ms = steps.ms
    return result


def _unreadable(path: Path) -> str | None:
    """Why the fetched file cannot be opened (its permissions), or None: refused, not retried."""
    try:
        with path.open("rb"):
            return None
    except PermissionError as exc:
        return f"cannot read the file: {exc.strerror}"


def _verify(packet: PacketFile, sha256: str, md5: str) -> str | None:
    if packet.expected_sha256 and packet.expected_sha256.lower() != sha256:
        return (
            f"checksum mismatch (incomplete transmission?): the .sha256 sidecar says {packet.expected_sha256.lower()}, "
            f"the file has {sha256}"
        )
    if packet.expected_md5 and packet.expected_md5.lower() != md5:
        return (
            f"checksum mismatch (incomplete transmission?): the .md5 sidecar says {packet.expected_md5.lower()}, "
            f"the file has {md5}"
        )
    return None


def _forget_previous_attempt(s: Session, packet_id: str) -> None:
    for table in (ROWS_TABLE, REJECTS_TABLE, EVENTS_TABLE, PACKETS_TABLE):
        s.execute(f"delete from {table} where packet_id = ?", [packet_id])


class _Rules:
    """The checks a record passes to land, in their order; the first it fails is its reason."""

    def __init__(self, header: list[str], load_map: LoadMap):
        self.header = header
        self.limits = load_map.limits
        required = [(f, load_map.column_for(f)) for f in load_map.required]
        self.required_idx = [(f, c, header.index(c)) for f, c in required if c in header]
        phone_col = load_map.column_for("phone")
        self.phone_idx = header.index(phone_col) if phone_col in header else None

    def check(self, rec: Record) -> str | None:
        if rec.fields is None:
            return rec.error or "unreadable"
        if too_big := _oversized(rec.fields, self.header, self.limits):
            return too_big
        if len(rec.fields) != len(self.header):
            span = (
                f" (lines {rec.line_number}–{rec.last_line_number}: an unclosed quote?)"
                if rec.last_line_number > rec.line_number
                else ""
            )
            return f"expected {len(self.header)} fields like the header, found {len(rec.fields)}{span}"
        if all(not f.strip() for f in rec.fields):
            return "the row has no values (only delimiters)"
        empty = [f"{f!r} (column {c!r})" for f, c, i in self.required_idx if not rec.fields[i].strip()]
        if empty:
            return f"required field {', '.join(empty)} is empty"
        return None

    def row_json(self, fields: list[str]) -> str:
        return json.dumps(dict(zip(self.header, fields, strict=False)), ensure_ascii=False)


def _land_rows(
    s: Session,
    packet: PacketFile,
    load_map: LoadMap,
    phones: PhoneNormalizer,
    encoding: str,
    result: LandingResult,
    steps: _Steps,
    log: Callable[[str], None],
    row_loop: bool = False,
) -> None:
    delimiter, quote_char = load_map.format.delimiter, load_map.format.quote_char
    records = read_records(packet.local_path, encoding, delimiter, quote_char)
    header_record = next(records, None)
    header, problem = _header(header_record, load_map, result)
    if problem:
        result.status, result.reason = "rejected", problem
        log(f"packet {packet.packet_id} rejected: {problem}")
        return
    assert header is not None and header_record is not None
    rules = _Rules(header, load_map)
    preview_cols = {t.field: c for c, t in load_map.columns.items() if isinstance(t, FieldColumn) and c in header}
    landed_at = utcnow()
    accounted, why_not = None, "asked for" if row_loop else None
    if not row_loop:
        # decided before anything is written: the file is read once, by one path or the other
        why_not = setwise.unsupported_format(encoding, delimiter, quote_char, len(header))
        if why_not is None:
            lines, why_not = setwise.read_lines(packet.local_path.read_bytes(), encoding)
        if why_not is None:
            assert lines is not None
            layout = setwise.Layout(
                header,
                delimiter,
                quote_char,
                rules.required_idx,
                rules.phone_idx,
                load_map.limits.max_cell_chars,
                load_map.limits.max_row_chars,
            )
            first_data_line = header_record.last_line_number + 1
            outcome = setwise.account(lines, first_data_line, layout, rules.check, rules.row_json, PREVIEW_ROWS)
            accounted, why_not = (None, outcome) if isinstance(outcome, str) else (outcome, None)
    if accounted is not None:
        result.read_by = "set-wise"
        raw_phones = _land_accounted(s, packet, accounted, header, preview_cols, landed_at, result)
    else:
        result.read_by = f"row loop ({why_not})"
        raw_phones = _land_records(s, packet, load_map, rules, records, preview_cols, landed_at, result)
    log(f"packet {packet.packet_id} read {result.read_by}")
    steps.done(
        "landed",
        f"{result.rows_in_file} rows in file: {result.rows_landed} landed, {result.rows_rejected} rejected",
    )
    if s.engine == "postgres":
        s.execute(f"analyze {ROWS_TABLE}")  # fresh statistics, or the planner misjudges the JSON rows
    steps.done("phones_checked", _check_phones(s, phones, raw_phones))
    result.status = "landed"


def _land_accounted(
    s: Session,
    packet: PacketFile,
    accounted: setwise.Accounted,
    header: list[str],
    preview_cols: dict[str, str],
    landed_at: datetime,
    result: LandingResult,
) -> pl.Series:
    """Writes what the set-wise read accounted for; returns the distinct phone values."""
    result.rows_in_file = accounted.rows_in_file
    result.rows_landed = accounted.landed.height
    result.rows_rejected = accounted.rejects.height
    result.reject_reasons.update(setwise.reason_counts(accounted.rejects["reason"]))
    result.first_rejects = list(accounted.rejects.head(FIRST_REJECTS_KEPT).iter_rows())
    result.preview = [
        _preview_row(Record(n, n, fields, ""), header, preview_cols) for n, fields in accounted.preview_lines.items()
    ]
    ids = {"packet_id": packet.packet_id, "client_id": packet.client_id, "packet_type": packet.packet_type}
    s.insert_frame(ROWS_TABLE, accounted.landed, {**ids, "landed_at": landed_at})
    s.insert_frame(REJECTS_TABLE, accounted.rejects, {**ids, "rejected_at": landed_at})
    return accounted.phones


def _land_records(
    s: Session,
    packet: PacketFile,
    load_map: LoadMap,
    rules: _Rules,
    records: Iterator[Record],
    preview_cols: dict[str, str],
    landed_at: datetime,
    result: LandingResult,
) -> pl.Series:
    """The row loop: each record read, checked and written in turn; returns the distinct phone values."""
    rows: list[tuple] = []
    rejects: list[tuple] = []
    raw_phones: set[str] = set()

    def reject(rec: Record, reason: str) -> None:
        result.rows_rejected += 1
        result.reject_reasons[re.sub(r"\d+", "N", reason)] += 1
        raw = _kept_raw_text(rec.raw_text, load_map.limits.max_row_chars)
        if len(result.first_rejects) < FIRST_REJECTS_KEPT:
            result.first_rejects.append((rec.line_number, reason, raw))
        rejects.append(
            (packet.packet_id, packet.client_id, packet.packet_type, rec.line_number, reason, raw, landed_at)
        )

    for rec in records:
        result.rows_in_file += 1
        reason = rules.check(rec)
        if reason:
            reject(rec, reason)
            continue
        assert rec.fields is not None
        if rules.phone_idx is not None and rec.fields[rules.phone_idx].strip():
            raw_phones.add(rec.fields[rules.phone_idx].strip())  # keyed as dbt's staging trims cells
        result.rows_landed += 1
        if len(result.preview) < PREVIEW_ROWS:
            result.preview.append(_preview_row(rec, rules.header, preview_cols))
        rows.append(
            (
                packet.packet_id,
                packet.client_id,
                packet.packet_type,
                rec.line_number,
                rules.row_json(rec.fields),
                landed_at,
            )
        )
        if len(rows) >= BATCH_ROWS:
            s.insert_rows(ROWS_TABLE, column_names(ROWS_TABLE), rows)
            rows = []
    s.insert_rows(ROWS_TABLE, column_names(ROWS_TABLE), rows)
    s.insert_rows(REJECTS_TABLE, column_names(REJECTS_TABLE), rejects)
    return pl.Series("raw_value", sorted(raw_phones), dtype=pl.String)


def _check_phones(s: Session, phones: PhoneNormalizer, raw_values: pl.Series) -> str:
    """libphonenumber's verdict for each distinct raw phone value not already checked for the
    client's region (``phone_numbers`` keeps it by value and region); returns the step's detail."""
    new = raw_values
    if len(raw_values):
        with s.frame_as_table(PHONE_CANDIDATES, raw_values.to_frame("raw_value")) as candidates:
            new = s.query_frame(
                f"select c.raw_value from {candidates} c where not exists (select 1 from {PHONES_TABLE} p "
                "where p.raw_value = c.raw_value and p.default_region = ?)",
                [phones.region],
            ).to_series()
    checked = normalize_series(new, phones.region)
    s.insert_frame(
        PHONES_TABLE, checked, {"default_region": phones.region, "checked_at": utcnow()}, ignore_existing=True
    )
    return f"{len(raw_values)} distinct phone numbers, {checked.height} not seen before checked with libphonenumber"


def _oversized(fields: list[str], header: list[str], limits: RowLimits) -> str | None:
    """Why a row is too large to land (a cell or the whole row over the load map's caps), or None."""
    for index, value in enumerate(fields):
        if len(value) > limits.max_cell_chars:
            column = header[index] if index < len(header) else f"#{index + 1}"
            return f"column {column[:100]!r} has {len(value)} characters (limit {limits.max_cell_chars} a cell)"
    total = sum(len(value) for value in fields)
    if total > limits.max_row_chars:
        return f"the row has {total} characters (limit {limits.max_row_chars} a row)"
    return None


def _kept_raw_text(raw: str, limit: int) -> str:
    """The raw text kept with a reject, cut at the row cap (the packet file itself is archived)."""
    if len(raw) <= limit:
        return raw
    return f"{raw[:limit]}… [{len(raw) - limit} more characters not kept]"


def _header(record: Record | None, load_map: LoadMap, result: LandingResult) -> tuple[list[str] | None, str | None]:
    """The header with names matched to the load map's spelling, or why the packet is refused."""
    if record is None:
        return None, "the file is empty: no header line"
    if record.fields is None:
        return None, f"the header line is unreadable: {record.error}"
    configured = {_norm_header(c): c for c in load_map.columns}
    header = [configured.get(_norm_header(h), h.strip()) or f"column_{i + 1}" for i, h in enumerate(record.fields)]
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        return None, f"the header names {', '.join(repr(d) for d in dupes)} more than once"
    required_cols = {load_map.column_for(f): f for f in load_map.required}
    missing = [c for c in load_map.columns if c not in header]
    missing_required = [f"{c!r} (required field {required_cols[c]!r})" for c in missing if c in required_cols]
    if missing_required:
        return None, (
            f"the header lacks column {', '.join(missing_required)}; "
            f"the file's header is: {', '.join(repr(h) for h in header)}"
        )
    result.missing_columns = missing
    return header, None


def _preview_row(rec: Record, header: list[str], fields: dict[str, str]) -> dict[str, str]:
    assert rec.fields is not None
    values = dict(zip(header, rec.fields, strict=False))
    row = {"line": str(rec.line_number)}
    for name, column in fields.items():
        value = values.get(column, "")
        row[name] = mask_phone(value) if name == "phone" else mask_email(value) if name == "email" else value
    return row


def _record_packet(s: Session, packet: PacketFile, result: LandingResult, steps: _Steps) -> None:
    now = utcnow()
    s.insert_rows(
        PACKETS_TABLE,
        column_names(PACKETS_TABLE),
        [
            (
                packet.packet_id,
                packet.client_id,
                packet.packet_type,
                packet.file_name,
                packet.zone_path,
                result.size_bytes,
                result.sha256,
                result.encoding,
                result.status,
                result.reason,
                result.duplicate_of,
                result.rows_in_file,
                result.rows_landed,
                result.rows_rejected,
                packet.received_at,
                now if result.status == "landed" else None,
                now,
            )
        ],
    )
    s.insert_rows(EVENTS_TABLE, column_names(EVENTS_TABLE), steps.rows)


def record_step(warehouse: Warehouse, packet_id: str, step: str, detail: str, duration_ms: int | None = None) -> None:
    """Append one later step (validated, mapped, cleaned, archived) to ``packet_events``."""
    with warehouse.session() as s:
        s.insert_rows(EVENTS_TABLE, column_names(EVENTS_TABLE), [(packet_id, step, utcnow(), duration_ms, detail)])
