"""Landing one packet: verify, account for every row, write it all in one transaction.

Promise 1 lives here: each CSV record of a packet ends either in ``herald_raw.packet_rows``
or in ``herald_raw.packet_rejects`` with its line number, reason and raw text, and
``rows_in_file = rows_landed + rows_rejected`` is recorded on ``herald_ops.packets``.
Everything a packet writes is one transaction (promise 4): a failure lands nothing, and
landing the same packet id again replaces what it wrote before, never doubling it.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from herald.clock import utcnow
from herald.config.models import Deployment, FieldColumn, LoadMap, RowLimits
from herald.contacts.phones import PhoneNormalizer, mask_email, mask_phone
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
) -> LandingResult:
    """Verify and land one packet; returns what happened to every row."""
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


def _land_rows(
    s: Session,
    packet: PacketFile,
    load_map: LoadMap,
    phones: PhoneNormalizer,
    encoding: str,
    result: LandingResult,
    steps: _Steps,
    log: Callable[[str], None],
) -> None:
    records = read_records(packet.local_path, encoding, load_map.format.delimiter, load_map.format.quote_char)
    header_record = next(records, None)
    header, problem = _header(header_record, load_map, result)
    if problem:
        result.status, result.reason = "rejected", problem
        log(f"packet {packet.packet_id} rejected: {problem}")
        return
    assert header is not None
    required = [(f, load_map.column_for(f)) for f in load_map.required]
    required_idx = [(f, c, header.index(c)) for f, c in required if c in header]
    phone_col = load_map.column_for("phone")
    phone_idx = header.index(phone_col) if phone_col in header else None
    preview_cols = {t.field: c for c, t in load_map.columns.items() if isinstance(t, FieldColumn) and c in header}
    width = len(header)
    landed_at = utcnow()
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
        if rec.fields is None:
            reject(rec, rec.error or "unreadable")
            continue
        if too_big := _oversized(rec.fields, header, load_map.limits):
            reject(rec, too_big)
            continue
        if len(rec.fields) != width:
            span = (
                f" (lines {rec.line_number}–{rec.last_line_number}: an unclosed quote?)"
                if rec.last_line_number > rec.line_number
                else ""
            )
            reject(rec, f"expected {width} fields like the header, found {len(rec.fields)}{span}")
            continue
        if all(not f.strip() for f in rec.fields):
            reject(rec, "the row has no values (only delimiters)")
            continue
        empty = [f"{f!r} (column {c!r})" for f, c, i in required_idx if not rec.fields[i].strip()]
        if empty:
            reject(rec, f"required field {', '.join(empty)} is empty")
            continue
        if phone_idx is not None and rec.fields[phone_idx].strip():
            raw_phones.add(rec.fields[phone_idx].strip())  # keyed as dbt's staging trims cells
        result.rows_landed += 1
        if len(result.preview) < PREVIEW_ROWS:
            result.preview.append(_preview_row(rec, header, preview_cols))
        rows.append(
            (
                packet.packet_id,
                packet.client_id,
                packet.packet_type,
                rec.line_number,
                json.dumps(dict(zip(header, rec.fields, strict=False)), ensure_ascii=False),
                landed_at,
            )
        )
        if len(rows) >= BATCH_ROWS:
            s.insert_rows(ROWS_TABLE, column_names(ROWS_TABLE), rows)
            rows = []
    s.insert_rows(ROWS_TABLE, column_names(ROWS_TABLE), rows)
    s.insert_rows(REJECTS_TABLE, column_names(REJECTS_TABLE), rejects)
    steps.done(
        "landed",
        f"{result.rows_in_file} rows in file: {result.rows_landed} landed, {result.rows_rejected} rejected",
    )
    checked_at = utcnow()
    lookups = [(raw, phones.region, *phones.normalize(raw), checked_at) for raw in raw_phones]
    s.insert_rows(PHONES_TABLE, column_names(PHONES_TABLE), lookups, ignore_existing=True)
    if s.engine == "postgres":
        s.execute(f"analyze {ROWS_TABLE}")  # fresh statistics, or the planner misjudges the JSON rows
    steps.done("phones_checked", f"{len(lookups)} distinct phone numbers checked with libphonenumber")
    result.status = "landed"


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
