"""Where the web service puts what providers and people tell Herald, without ever contending for
the warehouse's write lock.

The service (``herald serve``) receives Twilio status callbacks and inbound SMS, Resend (Svix)
events and one-click unsubscribes. It hands each to a sink:

- **embedded (DuckDB)**: JSON-lines files under ``$HERALD_HOME/landing/events/`` (inbound SMS
  under ``landing/inbound/``, see :mod:`herald.compliance.landing`), written atomically; a
  sensor's run loads them into ``herald_raw.provider_events``. DuckDB allows one writer, and
  that writer is the Dagster run, never the web service.
- **PostgreSQL**: straight into ``herald_raw.provider_events`` (and ``inbound_messages``), with
  ``on conflict do nothing``, so a provider's retry of the same event is stored once.

Either way an event's id is deterministic (Svix's ``svix-id``; Twilio's MessageSid + status),
so duplicates collapse at the table's primary key, and applying events is idempotent
(``herald_ops.provider_event_processing``).
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from herald.clock import utcnow
from herald.compliance.landing import INBOUND_TABLE, InboundMessage, append_inbound, write_atomically
from herald.settings import Settings
from herald.warehouse.connection import Warehouse
from herald.warehouse.schema import RAW_SCHEMA, column_names

EVENTS_TABLE = f"{RAW_SCHEMA}.provider_events"
SUFFIX = ".jsonl"


@dataclass(frozen=True)
class ProviderEvent:
    """One thing a provider (or a person on a page) told Herald."""

    event_id: str  # deterministic: svix-id, or MessageSid:status, or unsubscribe:<token>
    source: str  # twilio | twilio_secondary (the account that signed or listed it) | resend | web
    kind: str  # sms_status | email_event | unsubscribe
    payload: dict[str, Any]  # the provider's fields as received (already verified)
    received_at: datetime  # naive UTC
    provider_message_id: str | None = None  # Twilio MessageSid / Resend email id

    def to_json(self) -> str:
        return json.dumps(
            {
                "event_id": self.event_id, "source": self.source, "kind": self.kind,
                "provider_message_id": self.provider_message_id, "payload": self.payload,
                "received_at": self.received_at.isoformat(),
            },
            ensure_ascii=False, default=str,
        )  # fmt: skip

    @classmethod
    def from_json(cls, line: str) -> ProviderEvent:
        data = json.loads(line)
        return cls(
            event_id=str(data["event_id"]), source=str(data["source"]), kind=str(data["kind"]),
            payload=dict(data["payload"]), received_at=datetime.fromisoformat(data["received_at"]),
            provider_message_id=data.get("provider_message_id"),
        )  # fmt: skip

    def row(self, landed_at: datetime) -> tuple:
        values = {
            "event_id": self.event_id, "source": self.source, "kind": self.kind,
            "provider_message_id": self.provider_message_id, "payload": json.dumps(self.payload, default=str),
            "received_at": self.received_at, "landed_at": landed_at,
        }  # fmt: skip
        return tuple(values[c] for c in column_names(EVENTS_TABLE))


class EventSink(Protocol):
    def append(self, *events: ProviderEvent) -> None: ...

    def append_inbound(self, message: InboundMessage) -> None: ...


def events_dir(home: Path) -> Path:
    return Path(home) / "landing" / "events"


class FileSink:
    """Embedded mode: one atomically written file per call."""

    def __init__(self, home: Path):
        self.home = Path(home)

    def append(self, *events: ProviderEvent) -> None:
        if not events:
            return
        stamp = events[0].received_at.strftime("%Y%m%dT%H%M%S%f")
        write_atomically(events_dir(self.home), f"{stamp}__{uuid.uuid4().hex}{SUFFIX}",
                         "".join(e.to_json() + "\n" for e in events))  # fmt: skip

    def append_inbound(self, message: InboundMessage) -> None:
        append_inbound(self.home, message)


class TableSink:
    """PostgreSQL mode: straight into the landing tables; a repeated event is ignored."""

    def __init__(self, warehouse: Warehouse):
        self.warehouse = warehouse

    def append(self, *events: ProviderEvent) -> None:
        if events:
            with self.warehouse.session() as s:
                s.insert_rows(
                    EVENTS_TABLE, column_names(EVENTS_TABLE), [e.row(utcnow()) for e in events], ignore_existing=True
                )

    def append_inbound(self, message: InboundMessage) -> None:
        row = {
            "inbound_id": message.inbound_id, "channel": message.channel, "from_address": message.from_address,
            "to_address": message.to_address, "body": message.body, "provider": message.provider,
            "received_at": message.received_at, "landed_at": utcnow(),
        }  # fmt: skip
        with self.warehouse.session() as s:
            s.insert_rows(INBOUND_TABLE, column_names(INBOUND_TABLE),
                          [tuple(row[c] for c in column_names(INBOUND_TABLE))], ignore_existing=True)  # fmt: skip


def open_sink(settings: Settings) -> EventSink:
    """Files next to an embedded DuckDB warehouse; the tables themselves on PostgreSQL."""
    if settings.warehouse.engine == "postgres":
        warehouse = Warehouse(settings.warehouse)
        warehouse.ensure_schema()
        return TableSink(warehouse)
    return FileSink(settings.home)


def pending_event_files(home: Path) -> list[Path]:
    folder = events_dir(home)
    return sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []


FILES_PER_TRANSACTION = 500


def load_events(warehouse: Warehouse, home: Path) -> int:
    """Loads waiting event files into ``herald_raw.provider_events`` (insert-or-ignore by id), up
    to :data:`FILES_PER_TRANSACTION` files in one transaction; the files move to ``loaded/`` after
    it committed (a crash between the two loads them again, and the ids ignore the repeat). A file
    with a line that cannot be read moves to ``rejected/`` with a ``.reason.txt``, alone. Returns
    how many events the loaded files held."""
    count = 0
    batch: list[tuple[Path, list[ProviderEvent]]] = []
    for path in pending_event_files(home):
        try:
            events = [
                ProviderEvent.from_json(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
            ]
        except (ValueError, KeyError, TypeError) as exc:
            rejected = events_dir(home) / "rejected"
            rejected.mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), rejected / path.name)
            (rejected / f"{path.name}.reason.txt").write_text(f"{path.name}: cannot read an event: {exc}\n")
            continue
        batch.append((path, events))
        if len(batch) >= FILES_PER_TRANSACTION:
            count += _load_batch(warehouse, home, batch)
            batch = []
    return count + _load_batch(warehouse, home, batch)


def _load_batch(warehouse: Warehouse, home: Path, batch: list[tuple[Path, list[ProviderEvent]]]) -> int:
    if not batch:
        return 0
    landed_at = utcnow()
    with warehouse.session() as s:
        s.insert_rows(EVENTS_TABLE, column_names(EVENTS_TABLE),
                      [e.row(landed_at) for _, events in batch for e in events], ignore_existing=True)  # fmt: skip
    loaded = events_dir(home) / "loaded"
    loaded.mkdir(parents=True, exist_ok=True)
    for path, _ in batch:
        shutil.move(str(path), loaded / path.name)
    return sum(len(events) for _, events in batch)
