"""Access export: everything Herald holds on a person for one client — the contact and its
attributes (marts), its packet rows by packet and line, messages, delivery attempts, provider
events, clicks, replies and conversations, consent and suppressions, enrollments — as one JSON
file and one CSV per kind, in a folder or a zip. Reads only; the request is recorded (counts,
no personal data) in ``herald_ops.privacy_requests``.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from herald.privacy.erase import record_request
from herald.privacy.selections import selections
from herald.privacy.subject import PrivacyError, already_erased, resolve, salt, subject_hashes
from herald.warehouse.connection import Session

EXPORT_JSON = "export.json"


@dataclass(frozen=True)
class Export:
    client_id: str
    contact_ids: tuple[str, ...]
    generated_at: datetime
    sections: dict[str, list[dict[str, Any]]]  # kind (schema__table) → rows

    @property
    def counts(self) -> dict[str, int]:
        return {kind: len(rows) for kind, rows in self.sections.items()}

    def document(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "contact_ids": list(self.contact_ids),
            "generated_at": self.generated_at.isoformat(),
            "counts": self.counts,
            "data": self.sections,
        }


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, str) and value[:1] in "{[":
        try:  # JSON columns (row_data, payload, headers) as JSON, not as escaped text
            return json.loads(value)
        except ValueError:
            return value
    return value


def collect(
    session: Session, client_id: str, identifier: str, default_region: str, actor: str, now: datetime,
    *, source: str = "cli",
) -> Export:  # fmt: skip
    """Every row Herald holds on the person ``identifier`` names for the client."""
    subject = resolve(session, client_id, identifier, default_region)
    if subject is None:
        when = already_erased(session, client_id, identifier, default_region)
        if when is not None:
            raise PrivacyError(f"that person was erased on {when:%Y-%m-%d %H:%M} UTC: Herald holds nothing on them")
        raise PrivacyError(f"no contact of client {client_id!r} has that contact id, phone or email")
    salt_value = salt(session)
    sections: dict[str, list[dict[str, Any]]] = {}
    for sel in selections(session, subject, salt_value or "export"):
        names, rows = session.query(f"select * from {sel.table} where {sel.where}", sel.params)
        if rows:
            sections.setdefault(sel.kind, []).extend(
                {n: _plain(v) for n, v in zip(names, row, strict=True)} for row in rows
            )
    result = Export(client_id, subject.contact_ids, now, sections)
    hashes = " ".join(subject_hashes(salt_value, subject)) if salt_value else ""
    record_request(session, client_id, "export", hashes, actor, source, "done", now, result.counts,
                   f"exported {sum(result.counts.values())} rows")  # fmt: skip
    return result


def _csv(rows: list[dict[str, Any]]) -> str:
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in row.items()})
    return buffer.getvalue()


def files(export: Export) -> dict[str, str]:
    """File name → text: ``export.json`` and ``<schema>__<table>.csv`` per kind with rows."""
    out = {EXPORT_JSON: json.dumps(export.document(), indent=2, sort_keys=True, default=str)}
    out.update({f"{kind}.csv": _csv(rows) for kind, rows in export.sections.items()})
    return out


def write(export: Export, out: Path) -> list[str]:
    """Writes the export to ``out``: a zip when it ends in ``.zip``, else a folder (made if
    missing; an existing one must be empty). Returns the file names."""
    contents = files(export)
    if out.suffix.lower() == ".zip":
        if out.exists():
            raise PrivacyError(f"{out} exists: give a new file name")
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, text in contents.items():
                archive.writestr(name, text)
    else:
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise PrivacyError(f"{out} exists and is not an empty folder: give a new folder or a .zip")
        out.mkdir(parents=True, exist_ok=True)
        for name, text in contents.items():
            (out / name).write_text(text, encoding="utf-8")
    return sorted(contents)
