"""The drop-zone interface: where clients leave packets and where Herald files them away.

Layout, the same on every implementation (local folder now; S3 and SFTP implement the same
interface)::

    <zone>/<client_id>/incoming/<packet_type>/<file>          waiting to be ingested
    <zone>/<client_id>/incoming/<packet_type>/<file>.sha256   optional checksum sidecar (or .md5)
    <zone>/<client_id>/incoming/<packet_type>/<file>.manifest.json   optional {"row_count": N}
    <zone>/<client_id>/archive/<packet_type>/<packet_id>__<file>     processed
    <zone>/<client_id>/quarantine/<packet_type>/<packet_id>__<file>  refused, with <...>.reason.txt
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

SIDECAR_SUFFIXES = (".sha256", ".md5", ".manifest.json", ".reason.txt")
INCOMING, ARCHIVE, QUARANTINE = "incoming", "archive", "quarantine"
SEGMENT_RE = re.compile(r"^[a-z][a-z0-9_]{1,62}$")


class DropZoneError(RuntimeError):
    """The drop zone cannot be used as asked; the message says what and where."""


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
        return f"{self.client_id}-{self.packet_type}-{stamp}-{self.checksum[:8]}"

    @property
    def run_key(self) -> str:
        """What is processed: this content at this path at this moment (a re-drop is a new run)."""
        return f"packet:{self.client_id}:{self.zone_path}:{self.checksum}:{self.mtime_us}"

    @property
    def fingerprint(self) -> str:
        """What was seen: size and modification time."""
        return f"{self.size_bytes}:{self.mtime_us}"


def utc_from_timestamp(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc).replace(tzinfo=None)


def parse_checksum_sidecar(text: str) -> str:
    """``"<hex>"`` or sha256sum's ``"<hex>  <file>"`` → the hex digest."""
    token = text.strip().split()[0] if text.strip() else ""
    if not re.fullmatch(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{64}", token):
        raise DropZoneError(f"checksum sidecar holds {text.strip()[:80]!r}, not a hex digest")
    return token.lower()


class DropZone(ABC):
    """Where packets arrive. Implementations: local folder (S3 and SFTP to come)."""

    url: str

    @abstractmethod
    def list_pending(self, known: dict[str, str] | None = None) -> list[PendingPacket]:
        """Every packet waiting in an ``incoming`` area. ``known`` maps zone paths to the
        fingerprint already seen, so their checksums need not be computed again."""

    @abstractmethod
    def fetch(self, zone_path: str) -> AbstractContextManager[Path]:
        """A local path holding the file's content for the duration of the context."""

    @abstractmethod
    def locate(self, zone_path: str, packet_id: str) -> str:
        """Where a packet's file is now: still incoming, or already archived/quarantined."""

    @abstractmethod
    def archive(self, zone_path: str, packet_id: str) -> str:
        """Move a processed file (and its sidecars) to the archive; returns the new path."""

    @abstractmethod
    def quarantine(self, zone_path: str, packet_id: str, reason: str) -> str:
        """Move a refused file (and its sidecars) to quarantine with a reason file."""

    @abstractmethod
    def put(self, local_file: Path, client_id: str, packet_type: str, name: str | None = None) -> str:
        """Place a file in a client's incoming area with a .sha256 sidecar; returns its zone path."""

    @abstractmethod
    def clients(self) -> Iterator[str]:
        """Client folders present in the zone."""
