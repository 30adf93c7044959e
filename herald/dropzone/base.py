"""The drop-zone interface: where clients leave packets and where Herald files them away.

Layout, the same on every implementation (local folder, S3, SFTP)::

    <zone>/<client_id>/incoming/<packet_type>/<file>          waiting to be ingested
    <zone>/<client_id>/incoming/<packet_type>/<file>.sha256   optional checksum sidecar (or .md5)
    <zone>/<client_id>/incoming/<packet_type>/<file>.manifest.json   optional {"row_count": N}
    <zone>/<client_id>/archive/<packet_type>/<packet_id>__<file>     processed
    <zone>/<client_id>/quarantine/<packet_type>/<packet_id>__<file>  refused, with <...>.reason.txt
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

LOG = logging.getLogger("herald.dropzone")
SIDECAR_SUFFIXES = (".sha256", ".md5", ".manifest.json", ".reason.txt", ".receipt.json", ".receipt.txt")
INCOMING, ARCHIVE, QUARANTINE = "incoming", "archive", "quarantine"
SEGMENT_RE = re.compile(r"^[a-z][a-z0-9_]{1,62}$")
# A file name in one folder may hold at most 255 bytes on common file systems and SFTP servers.
# A packet's name must leave room for the packet id and the longest sidecar suffix when it is
# filed away, so longer names are quarantined with a reason (and filed under a shortened name).
NAME_MAX_BYTES = 255
MAX_PACKET_NAME_BYTES = 200
LONGEST_FILED_SUFFIX = len(".manifest.json")  # longer than .reason.txt and .receipt.json
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


class DropZoneError(RuntimeError):
    """The drop zone cannot be used as asked; the message says what and where."""


class UnreadableFile(DropZoneError):
    """This one file cannot be read as it is (no permission, a link or other non-file swapped in
    after it was listed): its packet is quarantined with the reason, nothing else stops."""


@dataclass(frozen=True)
class PendingPacket:
    """A file waiting in a client's ``incoming`` area."""

    client_id: str
    packet_type: str
    file_name: str
    zone_path: str  # "<client>/incoming/<type>/<file>", relative to the zone
    size_bytes: int
    mtime_us: int  # modification time, microseconds since the epoch
    sha256: str | None = None  # from a .sha256 sidecar, else computed
    md5: str | None = None  # from a .md5 sidecar
    checksum_source: str = "computed"  # sidecar-sha256 | sidecar-md5 | computed
    manifest_rows: int | None = None
    problem: str | None = None  # why this file alone is refused (bad name or sidecar, unreadable)

    @property
    def modified_at(self) -> datetime:
        """Modification time, naive UTC."""
        return utc_from_timestamp(self.mtime_us / 1e6)

    @property
    def checksum(self) -> str:
        return self.sha256 or self.md5 or ""

    @property
    def packet_id(self) -> str:
        """Readable and unique per drop: client, type, when it arrived, content hash."""
        # microseconds too: the same content re-dropped within one second is still a new packet
        stamp = self.modified_at.strftime("%Y%m%dT%H%M%S%f")
        # a refused file may have no checksum: its path tells it apart from others dropped with it
        tag = self.checksum[:8] or hashlib.sha256(self.zone_path.encode("utf-8", "surrogateescape")).hexdigest()[:8]
        return f"{self.client_id}-{self.packet_type}-{stamp}-{tag}"

    @property
    def run_key(self) -> str:
        """What is processed: this content at this path at this moment (a re-drop is a new run)."""
        return f"packet:{self.client_id}:{self.zone_path}:{self.checksum}:{self.mtime_us}"

    @property
    def has_sidecar(self) -> bool:
        """The client said the upload is complete: a checksum sidecar or a manifest is there."""
        return self.checksum_source.startswith("sidecar") or self.manifest_rows is not None

    @property
    def fingerprint(self) -> str:
        """What was seen: size and modification time."""
        return f"{self.size_bytes}:{self.mtime_us}"


def utc_from_timestamp(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC).replace(tzinfo=None)


def parse_checksum_sidecar(text: str) -> str:
    """``"<hex>"`` or sha256sum's ``"<hex>  <file>"`` → the hex digest."""
    token = text.strip().split()[0] if text.strip() else ""
    if not re.fullmatch(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{64}", token):
        raise DropZoneError(f"checksum sidecar holds {text.strip()[:80]!r}, not a hex digest")
    return token.lower()


def name_problem(name: str) -> str | None:
    """Why a packet file's name cannot be taken as it is, or None."""
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:  # bytes that are not UTF-8, kept by the OS as surrogate escapes
        return "the file name is not valid UTF-8 text"
    if _CONTROL_RE.search(name):
        return "the file name holds control characters (a newline, a tab or the like)"
    if size > MAX_PACKET_NAME_BYTES:
        return f"the file name is {size} bytes long; packet names may hold at most {MAX_PACKET_NAME_BYTES} bytes"
    return None


def safe_name(name: str) -> str:
    """The name as text that every store and the warehouse accept: undecodable bytes become
    U+FFFD, control characters ``_``."""
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return _CONTROL_RE.sub("_", text)


def filed_name(packet_id: str, name: str) -> str:
    """``<packet_id>__<name>`` as filed in the archive or quarantine, shortened (keeping its
    extension and a hash of the whole name) when it would not fit with its sidecar suffixes.
    Idempotent: a filed name's own tail gives the same filed name again."""
    name = safe_name(name)
    budget = NAME_MAX_BYTES - LONGEST_FILED_SUFFIX - len(packet_id.encode("utf-8")) - 2
    if len(name.encode("utf-8")) > budget:
        digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
        stem, dot, ext = name.rpartition(".")
        ext = f".{ext}" if dot and stem and len(ext.encode("utf-8")) <= 10 else ""
        head = (stem if ext else name).encode("utf-8")[: budget - len(ext.encode("utf-8")) - 9]
        name = f"{head.decode('utf-8', 'ignore')}~{digest}{ext}"
    return f"{packet_id}__{name}"


@dataclass(frozen=True)
class Entry:
    """One item of a folder listing in the zone's storage."""

    name: str
    is_dir: bool
    size_bytes: int = 0
    mtime_us: int = 0


def split_zone_path(zone_path: str) -> tuple[str, str, str, str]:
    """``<client>/<area>/<packet type>/<file>`` → its four parts."""
    parts = zone_path.split("/")
    if zone_path.startswith("/") or ".." in parts:
        raise DropZoneError(f"{zone_path!r} is outside the drop zone: '..' and absolute paths are refused")
    if len(parts) != 4 or not all(parts):
        raise DropZoneError(f"{zone_path!r} is not <client>/<area>/<packet type>/<file>")
    client_id, area, packet_type, name = parts
    return client_id, area, packet_type, name


class DropZone(ABC):
    """Where packets arrive: the layout and every rule about it live here, once.

    Implementations (local folder, S3, SFTP) only provide the storage primitives below, over
    paths relative to the zone's root written with ``/``. A primitive raises
    :class:`DropZoneError` with a message a person can act on (bad credentials, unknown host
    key, missing bucket, a path escaping the root).
    """

    url: str
    refused: list[str]  # paths a listing refused (symbolic links, names outside the layout), with why

    def __new__(cls, *args: object, **kwargs: object) -> DropZone:
        zone = super().__new__(cls)
        zone.refused = []
        return zone

    def _refuse(self, path: str, why: str) -> None:
        """Record and log a path the zone will not touch (never followed, never ingested)."""
        message = f"{path}: {why}"
        self.refused.append(message)
        LOG.warning("drop zone %s refused %s", self.url, message)

    # --- storage primitives ------------------------------------------------------------------

    @abstractmethod
    def _list(self, folder: str) -> list[Entry]:
        """The folder's direct children ('' is the root); [] when it does not exist. Symbolic
        links and anything else that is neither a plain file nor a folder are left out."""

    @abstractmethod
    def _read_bytes(self, path: str, limit: int = 1 << 16) -> bytes | None:
        """A small file's bytes (sidecars), or None when it does not exist."""

    @abstractmethod
    def _write_bytes(self, path: str, data: bytes) -> None:
        """Create or replace a small file."""

    @abstractmethod
    def _download(self, path: str) -> AbstractContextManager[Path]:
        """A local file with the content, streamed (never whole in memory), for the context."""

    @abstractmethod
    def _upload(self, local_file: Path, path: str) -> None:
        """Store a local file at ``path`` so that readers never see it half-written."""

    @abstractmethod
    def _move(self, source: str, target: str) -> None:
        """Move a file (rename, or copy then delete where the storage cannot rename)."""

    @abstractmethod
    def _exists(self, path: str) -> bool:
        """Whether a plain file exists at ``path``."""

    def _sha256(self, path: str) -> str:
        """The file's SHA-256, streamed."""
        with self._download(path) as local:
            return sha256_of(local)

    def close(self) -> None:  # noqa: B027 (a no-op by default: only remote zones hold connections)
        """Release connections (SFTP sessions and the like)."""

    # --- the layout ----------------------------------------------------------------------------

    def clients(self) -> Iterator[str]:
        """Client folders present in the zone."""
        for entry in self._list(""):
            if entry.is_dir and SEGMENT_RE.match(entry.name):
                yield entry.name
            elif entry.is_dir and not entry.name.startswith("."):
                self._refuse(entry.name + "/", "not a client id (lower-case letters, digits, underscores)")

    def list_pending(self, known: dict[str, str] | None = None) -> list[PendingPacket]:
        """Every packet waiting in an ``incoming`` area. ``known`` maps zone paths to the
        fingerprint already seen, so their checksums need not be computed again.

        One client's trouble never hides another's packets: a client folder that cannot be
        listed is reported in :attr:`refused`, and a file with a bad name, a malformed sidecar
        or manifest, or unreadable content is returned with its :attr:`PendingPacket.problem`
        (its ingest run quarantines it with that reason)."""
        known = known or {}
        found: list[PendingPacket] = []
        for client_id in self.clients():
            try:
                found += self._client_pending(client_id, known)
            except (DropZoneError, OSError, UnicodeError) as exc:
                self._refuse(f"{client_id}/", f"cannot be listed: {exc}")
        return found

    def _client_pending(self, client_id: str, known: dict[str, str]) -> list[PendingPacket]:
        # the client folder's own listing says what `incoming` is (lstat): a link is refused there
        incoming = next((e for e in self._list(client_id) if e.name == INCOMING), None)
        if incoming is None or not incoming.is_dir:
            return []
        found: list[PendingPacket] = []
        for type_dir in self._list(f"{client_id}/{INCOMING}"):
            if not type_dir.is_dir or not SEGMENT_RE.match(type_dir.name):
                continue
            folder = f"{client_id}/{INCOMING}/{type_dir.name}"
            entries = self._list(folder)
            names = {e.name for e in entries if not e.is_dir}
            for entry in entries:
                if entry.is_dir or entry.name.startswith(".") or entry.name.endswith(SIDECAR_SUFFIXES):
                    continue
                try:
                    found.append(self._pending(client_id, type_dir.name, entry, names, known))
                except (DropZoneError, OSError, UnicodeError) as exc:
                    found.append(self._refused_packet(client_id, type_dir.name, entry, str(exc)))
        return found

    def _refused_packet(self, client_id: str, packet_type: str, entry: Entry, problem: str) -> PendingPacket:
        zone_path = f"{client_id}/{INCOMING}/{packet_type}/{entry.name}"
        LOG.warning("drop zone %s: %s is refused: %s", self.url, safe_name(zone_path), problem)
        return PendingPacket(
            client_id=client_id,
            packet_type=packet_type,
            file_name=entry.name,
            zone_path=zone_path,
            size_bytes=entry.size_bytes,
            mtime_us=entry.mtime_us,
            checksum_source="none",
            problem=problem,
        )

    def _pending(
        self, client_id: str, packet_type: str, entry: Entry, names: set[str], known: dict[str, str]
    ) -> PendingPacket:
        zone_path = f"{client_id}/{INCOMING}/{packet_type}/{entry.name}"
        if problem := name_problem(entry.name):
            return self._refused_packet(client_id, packet_type, entry, problem)
        sha256 = md5 = None
        source = "computed"
        if entry.name + ".sha256" in names:
            sha256, source = parse_checksum_sidecar(self._sidecar_text(zone_path + ".sha256")), "sidecar-sha256"
        elif entry.name + ".md5" in names:
            md5, source = parse_checksum_sidecar(self._sidecar_text(zone_path + ".md5")), "sidecar-md5"
        elif known.get(zone_path) != f"{entry.size_bytes}:{entry.mtime_us}":
            sha256 = self._sha256(zone_path)  # hashing only what has not been seen before
        manifest_rows = None
        if entry.name + ".manifest.json" in names:
            try:
                manifest_rows = int(json.loads(self._sidecar_text(zone_path + ".manifest.json"))["row_count"])
            except (ValueError, KeyError, TypeError, RecursionError) as exc:
                raise DropZoneError(f'{zone_path}.manifest.json must hold {{"row_count": N}}: {exc}') from exc
        return PendingPacket(
            client_id=client_id,
            packet_type=packet_type,
            file_name=entry.name,
            zone_path=zone_path,
            size_bytes=entry.size_bytes,
            mtime_us=entry.mtime_us,
            sha256=sha256,
            md5=md5,
            checksum_source=source,
            manifest_rows=manifest_rows,
        )

    def _sidecar_text(self, path: str) -> str:
        data = self._read_bytes(path)
        return (data or b"").decode("utf-8", errors="replace")

    def fetch(self, zone_path: str) -> AbstractContextManager[Path]:
        """A local path holding the file's content for the duration of the context."""
        split_zone_path(zone_path)
        if not self._exists(zone_path):
            raise DropZoneError(f"{zone_path} is not in the drop zone {self.url}")
        return self._download(zone_path)

    def locate(self, zone_path: str, packet_id: str) -> str:
        """Where a packet's file is now: still incoming, or already archived/quarantined."""
        client_id, _, packet_type, name = split_zone_path(zone_path)
        if self._exists(zone_path):
            return zone_path
        for area in (ARCHIVE, QUARANTINE):
            candidate = f"{client_id}/{area}/{packet_type}/{filed_name(packet_id, name)}"
            if self._exists(candidate):
                return candidate
        raise DropZoneError(f"packet {packet_id}: {zone_path} is neither incoming nor archived in {self.url}")

    def _file_away(self, zone_path: str, packet_id: str, area: str) -> str:
        client_id, current_area, packet_type, name = split_zone_path(zone_path)
        if current_area != INCOMING:
            return zone_path  # already filed (a re-run of a processed packet)
        target = f"{client_id}/{area}/{packet_type}/{filed_name(packet_id, name)}"
        self._move(zone_path, target)
        for suffix in (".sha256", ".md5", ".manifest.json"):
            if self._exists(zone_path + suffix):
                self._move(zone_path + suffix, target + suffix)
        return target

    def archive(self, zone_path: str, packet_id: str) -> str:
        """Move a processed file (and its sidecars) to the archive; returns the new path."""
        return self._file_away(zone_path, packet_id, ARCHIVE)

    def quarantine(self, zone_path: str, packet_id: str, reason: str) -> str:
        """Move a refused file (and its sidecars) to quarantine with a reason file."""
        target = self._file_away(zone_path, packet_id, QUARANTINE)
        self._write_bytes(target + ".reason.txt", (reason + "\n").encode("utf-8"))
        return target

    def write_text(self, zone_path: str, text: str) -> None:
        """Write a small text file in a client's area (receipts)."""
        split_zone_path(zone_path)
        self._write_bytes(zone_path, text.encode("utf-8"))

    def put(self, local_file: Path, client_id: str, packet_type: str, name: str | None = None) -> str:
        """Place a file in a client's incoming area with a .sha256 sidecar; returns its zone path."""
        if not SEGMENT_RE.match(client_id) or not SEGMENT_RE.match(packet_type):
            raise DropZoneError("client id and packet type must be lower-case letters, digits and underscores")
        name = name or local_file.name
        if "/" in name or name.startswith(".") or name.endswith(SIDECAR_SUFFIXES):
            raise DropZoneError(f"{name!r} cannot be used as a packet file name")
        zone_path = f"{client_id}/{INCOMING}/{packet_type}/{name}"
        if self._exists(zone_path):
            raise DropZoneError(f"{zone_path} is already waiting to be ingested")
        # the sidecar first: a sensor that sees the file can trust its checksum
        self._write_bytes(zone_path + ".sha256", f"{sha256_of(local_file)}  {name}\n".encode())
        self._upload(local_file, zone_path)
        return zone_path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
