"""The landing area for inbound messages: JSON-lines files a sensor loads into the warehouse.

Whoever receives an inbound message (`herald inbound`, later the web service's Twilio webhook)
never writes the warehouse: in embedded mode a running Dagster may hold DuckDB's single write
lock. It appends the message here instead, and ``load_landed`` (run by the
``herald_ops/inbound_processing`` asset) loads what is waiting.

Layout under ``$HERALD_HOME/landing/inbound/``::

    <received>__<uuid>.jsonl            waiting; one JSON object per line (one message per file)
    .<uuid>.tmp                         being written; never read
    loaded/<name>.jsonl                 loaded into herald_raw.inbound_messages
    rejected/<name>.jsonl (+ .reason.txt)  not loadable, with the reason

A file is written under a temporary name, flushed to disk, then renamed into place: a rename
within one folder is atomic, so a reader sees a whole file or none, never a half-written line.
Loading is idempotent: rows are inserted or ignored by ``inbound_id`` and a file is moved to
``loaded/`` only after the transaction that loaded it committed (a crash in between loads the
same rows again, which adds nothing).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from herald.clock import utcnow as _clock_now
from herald.warehouse.connection import Warehouse
from herald.warehouse.schema import RAW_SCHEMA, column_names

INBOUND_TABLE = f"{RAW_SCHEMA}.inbound_messages"
SUFFIX = ".jsonl"
REQUIRED = ("inbound_id", "channel", "from_address", "to_address", "body", "received_at")


@dataclass(frozen=True)
class InboundMessage:
    """One message a recipient sent to a client's sender (an SMS reply)."""

    inbound_id: str  # the provider's id (Twilio MessageSid) or a generated one
    from_address: str  # E.164
    to_address: str  # the client's sender number
    body: str
    received_at: datetime  # naive UTC
    channel: str = "sms"
    provider: str | None = None

    def to_json(self) -> str:
        data = asdict(self)
        data["received_at"] = self.received_at.isoformat()
        return json.dumps(data, ensure_ascii=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> InboundMessage:
        missing = [k for k in REQUIRED if data.get(k) is None]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        if not str(data["inbound_id"]).strip():
            raise ValueError("empty inbound_id")
        received = datetime.fromisoformat(str(data["received_at"]))
        if received.tzinfo is not None:
            received = received.astimezone(UTC).replace(tzinfo=None)
        return cls(
            inbound_id=str(data["inbound_id"]),
            from_address=str(data["from_address"]),
            to_address=str(data["to_address"]),
            body=str(data["body"]),
            received_at=received,
            channel=str(data["channel"]),
            provider=None if data.get("provider") is None else str(data["provider"]),
        )


def inbound_dir(home: Path) -> Path:
    return Path(home) / "landing" / "inbound"


def write_atomically(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{uuid.uuid4().hex}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    path = folder / name
    os.replace(tmp, path)
    return path


def append_inbound(home: Path, *messages: InboundMessage) -> Path:
    """Lands ``messages`` (usually one) as one new file, atomically; returns its path."""
    if not messages:
        raise ValueError("no message to land")
    stamp = messages[0].received_at.strftime("%Y%m%dT%H%M%S%f")
    text = "".join(m.to_json() + "\n" for m in messages)
    return write_atomically(inbound_dir(home), f"{stamp}__{uuid.uuid4().hex}{SUFFIX}", text)


def pending_files(home: Path) -> list[Path]:
    """Files waiting to be loaded, oldest first (temporary files are never listed)."""
    folder = inbound_dir(home)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(SUFFIX) and not p.name.startswith("."))


def read_landed(path: Path) -> list[InboundMessage]:
    """The messages of one landed file; ``ValueError`` naming the file and line if one is bad."""
    messages = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            messages.append(InboundMessage.from_json(json.loads(line)))
        except (ValueError, TypeError, AttributeError) as exc:
            raise ValueError(f"{path.name} line {number}: {exc}") from exc
    return messages


def _move(path: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    shutil.move(str(path), str(target))
    return target


@dataclass(frozen=True)
class LoadReport:
    files: int
    messages: int  # messages read from the files
    new: int  # rows new in herald_raw.inbound_messages
    rejected: list[tuple[str, str]]  # (file name, reason)


def load_landed_report(warehouse: Warehouse, home: Path, now: datetime | None = None) -> LoadReport:
    """Loads every waiting file into ``herald_raw.inbound_messages`` (insert or ignore by
    ``inbound_id``), then moves it to ``loaded/``; a file that cannot be read goes to
    ``rejected/`` with a ``.reason.txt``."""
    now = now or _clock_now()
    folder = inbound_dir(home)
    files = pending_files(home)
    good: list[Path] = []
    messages: dict[str, InboundMessage] = {}
    rejected: list[tuple[str, str]] = []
    for path in files:
        try:
            found = read_landed(path)
        except (OSError, ValueError) as exc:
            reason = str(exc)
            target = _move(path, folder / "rejected")
            target.with_name(target.name + ".reason.txt").write_text(reason + "\n", encoding="utf-8")
            rejected.append((path.name, reason))
            continue
        good.append(path)
        for m in found:
            messages.setdefault(m.inbound_id, m)
    columns = column_names(INBOUND_TABLE)
    new = 0
    if messages:
        rows = [
            tuple({**asdict(m), "landed_at": now}[c] for c in columns)
            for m in sorted(messages.values(), key=lambda m: (m.received_at, m.inbound_id))
        ]
        with warehouse.session() as s:
            before = int(s.scalar(f"select count(*) from {INBOUND_TABLE}"))
            s.insert_rows(INBOUND_TABLE, columns, rows, ignore_existing=True)
            new = int(s.scalar(f"select count(*) from {INBOUND_TABLE}")) - before
    for path in good:  # only after the commit: a crash before this reloads, adding nothing
        _move(path, folder / "loaded")
    return LoadReport(files=len(files), messages=len(messages), new=new, rejected=rejected)


def load_landed(warehouse: Warehouse, home: Path, now: datetime | None = None) -> int:
    """Loads waiting inbound files; returns how many messages were new to the warehouse."""
    return load_landed_report(warehouse, home, now).new
