"""A sample packet as the demo and the tests use it, and the date demo data is relative to."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

DEFAULT_REFERENCE_DATE = date(2026, 12, 1)
"""The "today" demo data is relative to (appointments after it, showings and logins before it)."""

SIZED_CHUNK_ROWS = 20_000


@dataclass
class SamplePacket:
    client_id: str
    packet_type: str
    file_name: str
    content: bytes
    rows: int
    """Data rows, excluding the header (ragged and otherwise bad rows included)."""
    bad_lines: dict[int, str] = field(default_factory=dict)
    """Physical line number (the header is line 1) → why landing should reject that row."""
    encoding: str = "utf-8"
    """How ``content`` is encoded: ``utf-8``, ``utf-8-sig`` (with a BOM) or ``windows-1252``."""

    @property
    def text(self) -> str:
        """``content`` decoded (a BOM is dropped)."""
        return self.content.decode(self.encoding)
