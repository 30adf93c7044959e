"""The portal's packets: one client's packets with their per-step timeline, rejects as a safe
CSV, the receipt, and an upload that places a file in the client's drop zone.

Every read takes an explicit ``client_id`` and every query filters on it, so a function can
only ever see the client it was given (the route checks the user may see that client). Reads go
through :mod:`herald.portal.reads` (a snapshot on DuckDB, a read-only transaction on PostgreSQL).

An upload never writes the warehouse: it streams the file to a temporary local file (a size
limit, a CSV check on the way), then hands it to the drop zone's ``put`` — the checksum sidecar
first, then the file, written so that no reader sees it half-written — and the normal arrival
sensor ingests it like any other drop.
"""

from __future__ import annotations

import csv
import hashlib
import io
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from herald.config import load_deployment
from herald.dropzone import DropZoneError, open_dropzone
from herald.dropzone.base import SIDECAR_SUFFIXES, name_problem
from herald.portal.reads import PortalReader, reader_for
from herald.reports.packets import PacketReport
from herald.reports.receipts import receipt_json, receipt_text
from herald.settings import Settings

# the timeline a client sees, in order; later bookkeeping steps (archived, phones_checked) are
# kept in ``details`` but are not steps of the timeline
TIMELINE = ("received", "verified", "landed", "validated", "mapped", "cleaned")
MAX_UPLOAD_BYTES = 512 * 1024 * 1024
CHUNK_BYTES = 1024 * 1024
CSV_SUFFIXES = (".csv", ".txt")
# cells a spreadsheet would read as a formula (OWASP "CSV injection")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# signatures of files that are not text: zip (xlsx, docx), PDF, old Office, gzip, PNG, JPEG
BINARY_MAGIC = (b"PK\x03\x04", b"%PDF", b"\xd0\xcf\x11\xe0", b"\x1f\x8b", b"\x89PNG", b"\xff\xd8\xff")


class UploadError(ValueError):
    """The upload was refused; the message says why. Nothing was placed in the drop zone."""


class PacketNotFound(LookupError):
    """No packet of that id for this client (another client's packet reads the same)."""


@dataclass(frozen=True)
class Step:
    step: str
    at: datetime | None  # None: not reached (yet)
    duration_ms: int | None
    detail: str | None


@dataclass
class PacketSummary:
    packet_id: str
    packet_type: str
    file_name: str
    status: str  # received | landed | rejected | duplicate | failed
    status_reason: str | None
    rows_in_file: int | None
    rows_landed: int | None
    rows_rejected: int | None
    received_at: datetime
    timeline: list[Step] = field(default_factory=list)

    @property
    def current_step(self) -> str | None:
        """The last step reached ("cleaned": in the marts)."""
        reached = [s.step for s in self.timeline if s.at is not None]
        return reached[-1] if reached else None


PACKET_COLUMNS = (
    "packet_id, packet_type, file_name, status, status_reason, rows_in_file, rows_landed, rows_rejected, received_at"
)


def list_packets(
    settings: Settings, client_id: str, limit: int = 100, reader: PortalReader | None = None
) -> list[PacketSummary]:
    """The client's latest packets, newest first, each with its timeline."""
    return _packets(reader or reader_for(settings.warehouse), client_id, limit)


def packet(settings: Settings, client_id: str, packet_id: str, reader: PortalReader | None = None) -> PacketSummary:
    """One packet of the client with its timeline; :class:`PacketNotFound` otherwise."""
    found = _packets(reader or reader_for(settings.warehouse), client_id, 1, packet_id)
    if not found:
        raise PacketNotFound(f"no packet {packet_id!r} for this client")
    return found[0]


def _packets(reader: PortalReader, client_id: str, limit: int, packet_id: str | None = None) -> list[PacketSummary]:
    one = "" if packet_id is None else " and p.packet_id = ?"
    params = [client_id] if packet_id is None else [client_id, packet_id]
    with reader.session() as s:
        rows = s.query(
            f"select {PACKET_COLUMNS} from herald_ops.packets p where p.client_id = ?{one} "
            "order by p.received_at desc, p.packet_id limit ?",
            [*params, int(limit)],
        ).rows
        packets = [PacketSummary(*row) for row in rows]
        events = []
        if packets:
            # the events of exactly these packets (the newest ``limit`` of this client's)
            events = s.query(
                "select e.packet_id, e.step, e.occurred_at, e.duration_ms, e.detail from herald_ops.packet_events e "
                f"join (select p.packet_id from herald_ops.packets p where p.client_id = ?{one} "
                "order by p.received_at desc, p.packet_id limit ?) shown on shown.packet_id = e.packet_id "
                "order by e.occurred_at, e.step",
                [*params, int(limit)],
            ).rows
    by_id = {p.packet_id: p for p in packets}
    steps: dict[str, dict[str, Step]] = {}
    for pid, step, at, ms, detail in events:
        if pid in by_id and step in TIMELINE:
            # a re-run appends the step again: the first time it was reached counts, durations add
            seen = steps.setdefault(pid, {}).get(step)
            total = (seen.duration_ms or 0) + (ms or 0) if seen else ms
            steps[pid][step] = Step(step, seen.at if seen else at, total, seen.detail if seen else detail)
    for p in packets:
        got = steps.get(p.packet_id, {})
        p.timeline = [got.get(step) or Step(step, None, None, None) for step in TIMELINE]
    return packets


def neutralise(cell: object) -> str:
    """A cell's text, with a quote before anything a spreadsheet would run as a formula."""
    text = "" if cell is None else str(cell)
    return "'" + text if text.startswith(FORMULA_START) else text


def _reject_rows(
    reader: PortalReader, client_id: str, packet_id: str, limit: int | None = None
) -> list[tuple[int, str, str | None]]:
    with reader.session() as s:
        if not s.scalar(
            "select count(*) from herald_ops.packets where client_id = ? and packet_id = ?", [client_id, packet_id]
        ):
            raise PacketNotFound(f"no packet {packet_id!r} for this client")
        rows = s.query(
            "select line_number, reason, raw_text from herald_raw.packet_rejects "
            "where client_id = ? and packet_id = ? order by line_number"
            + ("" if limit is None else f" limit {int(limit)}"),
            [client_id, packet_id],
        ).rows
    return [(int(line), reason, raw) for line, reason, raw in rows]


def rejects(
    settings: Settings, client_id: str, packet_id: str, limit: int = 200, reader: PortalReader | None = None
) -> list[tuple[int, str]]:
    """The packet's first ``limit`` rejected rows as (line, reason), for a page (the raw text,
    which holds contact data, only in :func:`rejects_csv`). :class:`PacketNotFound` otherwise."""
    rows = _reject_rows(reader or reader_for(settings.warehouse), client_id, packet_id, limit)
    return [(line, reason) for line, reason, _ in rows]


def rejects_csv(
    settings: Settings,
    client_id: str,
    packet_id: str,
    reader: PortalReader | None = None,
    include_raw: bool = True,
) -> bytes:
    """The packet's rejected rows as CSV (line, reason, raw text), UTF-8 with a BOM for
    spreadsheets, every cell neutralised. :class:`PacketNotFound` for another client's packet.
    ``include_raw=False`` leaves the raw text out (a user who may not see contact details)."""
    rows = _reject_rows(reader or reader_for(settings.warehouse), client_id, packet_id)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["line", "reason", "raw_text"] if include_raw else ["line", "reason"])
    for line, reason, raw in rows:
        cells = [line, neutralise(reason)] + ([neutralise(raw)] if include_raw else [])
        writer.writerow(cells)
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


@dataclass(frozen=True)
class Receipt:
    json: str
    text: str


def receipt(settings: Settings, client_id: str, packet_id: str, reader: PortalReader | None = None) -> Receipt:
    """The packet's receipt (the same JSON and text written beside it in the drop zone)."""
    reader = reader or reader_for(settings.warehouse)
    with reader.session() as s:
        row = s.query(
            "select packet_id, client_id, packet_type, file_name, status, status_reason, coalesce(rows_in_file, 0), "
            "coalesce(rows_landed, 0), coalesce(rows_rejected, 0) from herald_ops.packets "
            "where client_id = ? and packet_id = ?",
            [client_id, packet_id],
        ).rows
        if not row:
            raise PacketNotFound(f"no packet {packet_id!r} for this client")
        report = PacketReport(*row[0])
        for reason, count in s.query(
            "select reason, count(*) from herald_raw.packet_rejects where client_id = ? and packet_id = ? "
            "group by reason order by count(*) desc, min(line_number)",
            [client_id, packet_id],
        ).rows:
            report.top_reject_reasons.append((reason, int(count)))
        report.first_rejects = [
            (int(line), reason)
            for line, reason in s.query(
                "select line_number, reason from herald_raw.packet_rejects where client_id = ? and packet_id = ? "
                "order by line_number limit 5",
                [client_id, packet_id],
            ).rows
        ]
        if s.has_table("marts.contact_sources") and s.has_table("marts.contacts"):
            created, updated = s.query(
                "select count(distinct case when c.first_packet_id = src.packet_id then c.contact_id end), "
                "count(distinct case when c.first_packet_id <> src.packet_id then c.contact_id end) "
                "from marts.contact_sources src join marts.contacts c on c.contact_id = src.contact_id "
                "where c.client_id = ? and src.packet_id = ?",
                [client_id, packet_id],
            ).rows[0]
            if report.status in ("landed", "duplicate", "rejected", "failed"):
                report.contacts_created, report.contacts_updated = int(created or 0), int(updated or 0)
    return Receipt(receipt_json(report), receipt_text(report))


# -- upload -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    zone_path: str  # where it waits: <client>/incoming/<type>/<file>
    size_bytes: int
    sha256: str


def _check_name(filename: str) -> str:
    name = Path(filename.replace("\\", "/")).name  # a browser may send a Windows path
    problem = name_problem(name) if name else "the file has no name"
    if problem:
        raise UploadError(f"the file name cannot be used: {problem}")
    if name.startswith(".") or name.endswith(SIDECAR_SUFFIXES):
        raise UploadError(f"the file name {name!r} cannot be used for a packet (hidden or a sidecar's name)")
    if not name.lower().endswith(CSV_SUFFIXES):
        raise UploadError(f"{name!r} is not a CSV file: upload a .csv (comma- or tab-separated text)")
    return name


def _not_text(head: bytes) -> str | None:
    if head.startswith(BINARY_MAGIC):
        return "it is a spreadsheet, document, archive or image, not CSV text: save it as CSV and upload that"
    if b"\x00" in head:
        return "it holds binary data (NUL bytes), not CSV text"
    return None


def upload_packet(
    settings: Settings,
    client_id: str,
    packet_type: str,
    filename: str,
    stream: BinaryIO | Iterable[bytes],
    max_bytes: int = MAX_UPLOAD_BYTES,
) -> Upload:
    """Stream ``stream`` (a binary file object, or an iterable of byte chunks) into the client's
    drop zone as a packet of ``packet_type``, with its ``.sha256`` sidecar.

    Refused with :class:`UploadError` (nothing left anywhere) when the client has no such
    packet type, the name is not a CSV's, the content is not text, the file is empty or larger
    than ``max_bytes``, or a file of that name is already waiting."""
    deployment = load_deployment(settings.config_dir)
    if deployment.load_map(client_id, packet_type) is None:
        raise UploadError(f"this client has no packet type {packet_type!r}")
    name = _check_name(filename)
    digest = hashlib.sha256()
    size = 0
    chunks: Iterable[bytes] = iter(lambda: stream.read(CHUNK_BYTES), b"") if hasattr(stream, "read") else stream
    with tempfile.TemporaryDirectory(prefix="herald-upload-") as folder:
        local = Path(folder) / name
        with local.open("wb") as out:
            for chunk in chunks:
                if not chunk:
                    continue
                if size == 0 and (why := _not_text(chunk[:4096])):
                    raise UploadError(f"{name!r} was refused: {why}")
                if b"\x00" in chunk:
                    raise UploadError(f"{name!r} was refused: it holds binary data (NUL bytes), not CSV text")
                size += len(chunk)
                if size > max_bytes:
                    raise UploadError(
                        f"{name!r} is larger than the upload limit of {max_bytes // (1024 * 1024)} MB: "
                        "split it, or send it through SFTP or S3"
                    )
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise UploadError(f"{name!r} is empty")
        zone = open_dropzone(settings.dropzone)
        try:
            # the sidecar first, then the file, stored so no reader sees it half-written: the
            # arrival sensor trusts the checksum of the first complete file it lists
            zone_path = zone.put(local, client_id, packet_type, name)
        except DropZoneError as exc:
            raise UploadError(str(exc)) from exc
        finally:
            zone.close()
    return Upload(zone_path, size, digest.hexdigest())
