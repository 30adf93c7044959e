"""The ingest API's payloads → packets in the client's own format.

Other systems publish customers, customer attributes and funnel events as JSON with Herald's
canonical field names and the client's attribute names. Rather than a second way into the
warehouse, each request becomes a packet: a CSV written with the client's load map (its column
headers, delimiter, quoting) and dropped in the client's incoming area with a checksum sidecar.
From there it takes the same road as a file upload — every row landed or rejected with its line,
the same mapping, cleaning and dedupe — and the web service never touches the warehouse.

Which load map a kind of payload uses is set per client in ``client.yaml``::

    ingest_api:
      customers: appointments        # a contacts load map
      funnel_events: funnel_events   # a funnel_events load map
      key_sha256: ["<sha256 of the client's API key>"]   # `herald api-key CLIENT` makes one
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import secrets
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from herald.config.models import AttributeColumn, Client, FieldColumn, LoadMap
from herald.dropzone.base import DropZone

MAX_RECORDS = 10_000
Scalar = str | int | float | bool | None


class PayloadError(ValueError):
    """A payload the client's load map cannot carry; ``problems`` are (where, message)."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{where}: {message}" for where, message in problems))


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CustomerIn(_Payload):
    """One customer: canonical fields, and the client's attributes by name."""

    external_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    postal_code: str | None = None
    time_zone: str | None = None
    attributes: dict[str, Scalar | list[Scalar]] = Field(default_factory=dict)


class FunnelEventIn(_Payload):
    """One stage change of a customer, named by external id, phone or email."""

    external_id: str | None = None
    phone: str | None = None
    email: str | None = None
    funnel_type: Literal["sales", "service-delivery"]
    from_stage: str | None = None
    to_stage: str
    occurred_at: datetime


def new_api_key() -> tuple[str, str]:
    """(a new random API key, its sha256 for client.yaml's ``ingest_api.key_sha256``)."""
    key = "hk_" + secrets.token_urlsafe(32)
    return key, hashlib.sha256(key.encode()).hexdigest()


HOME_KEYS_DIR = "ingest_api_keys"


def home_key_hashes(home: Path, client_id: str) -> list[str]:
    """Key hashes kept outside the configuration, in ``HERALD_HOME/ingest_api_keys/<client>.sha256``
    (one per line; `herald demo` writes them). ``client_id`` must be a configured client's id."""
    path = home / HOME_KEYS_DIR / f"{client_id}.sha256"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
        return []
    return [line.strip().lower() for line in lines if len(line.strip()) == 64]


def ensure_home_key(home: Path, client_id: str) -> Path:
    """The file holding a generated key for ``client_id`` (made once, readable by its owner only),
    its hash added to :func:`home_key_hashes`. Example configurations ship no working key."""
    folder = home / HOME_KEYS_DIR
    key_path = folder / f"{client_id}.key"
    if key_path.is_file():
        return key_path
    folder.mkdir(parents=True, exist_ok=True)
    key, digest = new_api_key()
    with (folder / f"{client_id}.sha256").open("a", encoding="utf-8") as hashes:
        hashes.write(digest + "\n")
    key_path.touch(mode=0o600)
    key_path.write_text(key + "\n", encoding="utf-8")
    return key_path


def key_matches(presented: str | None, hashes: Sequence[str]) -> bool:
    """Constant-time check of a presented key against the configured hashes."""
    if not presented or not hashes:
        return False
    digest = hashlib.sha256(presented.encode()).hexdigest()
    return any(hmac.compare_digest(digest, h.lower()) for h in hashes)


def _text(value: Any, separator: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return (
            value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ") if value.tzinfo else value.isoformat(sep=" ")
        )
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return separator.join(_text(v, separator) for v in value)
    return str(value)


def _columns_by_target(load_map: LoadMap) -> tuple[dict[str, str], dict[str, AttributeColumn], dict[str, str]]:
    fields = {t.field: c for c, t in load_map.columns.items() if isinstance(t, FieldColumn)}
    attributes = {t.attribute: t for t in load_map.columns.values() if isinstance(t, AttributeColumn)}
    attribute_columns = {t.attribute: c for c, t in load_map.columns.items() if isinstance(t, AttributeColumn)}
    return fields, attributes, attribute_columns


def packet_rows(load_map: LoadMap, records: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """The records as rows of the load map's columns (header first); every value a load map
    cannot place is a problem naming the record and the key."""
    if not records:
        raise PayloadError([("body", "no records")])
    if len(records) > MAX_RECORDS:
        raise PayloadError([("body", f"{len(records)} records; send at most {MAX_RECORDS} per request")])
    fields, attributes, attribute_columns = _columns_by_target(load_map)
    header = list(load_map.columns)
    rows, problems = [header], []
    for i, record in enumerate(records):
        row = dict.fromkeys(header, "")
        for key, value in record.items():
            if key == "attributes":
                for name, attr_value in (value or {}).items():
                    if name in attributes:
                        row[attribute_columns[name]] = _text(attr_value, attributes[name].separator)
                    elif name in fields:  # a canonical field kept as an attribute (program, appointment_at)
                        row[fields[name]] = _text(attr_value, ";")
                    else:
                        known = ", ".join(sorted({*attributes, *fields} - set(CustomerIn.model_fields))) or "none"
                        problems.append(
                            (
                                f"{i}.attributes.{name}",
                                f"not an attribute of load map {load_map.packet_type!r} (it has: {known})",
                            )
                        )
            elif value is not None:
                if key not in fields:
                    problems.append((f"{i}.{key}", f"load map {load_map.packet_type!r} has no column for {key!r}"))
                    continue
                row[fields[key]] = _text(value, ";")
        for required in load_map.required:
            column = fields.get(required)
            if column is not None and not row[column].strip():
                problems.append((f"{i}.{required}", "required by the load map, missing"))
        rows.append([row[c] for c in header])
    if problems:
        raise PayloadError(problems)
    return rows


def packet_bytes(load_map: LoadMap, rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=load_map.format.delimiter, quotechar=load_map.format.quote_char,
                        lineterminator="\n")  # fmt: skip
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def api_load_map(client: Client, kind: str) -> LoadMap:
    """The load map the client set for ``kind`` (customers | funnel_events)."""
    settings = client.config.ingest_api
    packet_type = getattr(settings, kind, None) if settings is not None else None
    if packet_type is None:
        raise PayloadError([("client", f"client {client.config.client_id!r} accepts no {kind} through the API "
                                       f"(set ingest_api.{kind} in client.yaml)")])  # fmt: skip
    return client.load_maps[packet_type]


def drop_api_packet(zone: DropZone, client: Client, kind: str, records: Sequence[Mapping[str, Any]],
                    now: datetime) -> tuple[str, int]:  # fmt: skip
    """Writes the records as one packet in the client's incoming area; returns (zone path, rows)."""
    load_map = api_load_map(client, kind)
    rows = packet_rows(load_map, records)
    name = f"api-{kind}-{now:%Y%m%dT%H%M%S%f}-{secrets.token_hex(3)}.csv"
    with tempfile.TemporaryDirectory(prefix="herald-api-") as tmp:
        local = Path(tmp) / name
        local.write_bytes(packet_bytes(load_map, rows))
        path = zone.put(local, client.config.client_id, load_map.packet_type, name)
    return path, len(rows) - 1
