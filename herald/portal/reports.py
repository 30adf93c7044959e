"""The portal's Reports and billing page: the client report as a download (HTML, PDF, XLSX), made
by the same code as ``herald report`` (:mod:`herald.reports.client_report`), and the client's
credit balance and credit transactions (``marts.credit_transactions``), newest first, a page at a
time.

Both read through the portal's read path (:mod:`herald.portal.reads`): on the embedded DuckDB
the latest snapshot the runs published (its tables include the marts the report reads), so a
download never waits behind a run and never holds the live file; on PostgreSQL the live
warehouse in a read-only transaction. Every answer carries the time its figures are as of.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from herald.config import Deployment
from herald.portal.reads import PortalReader, PortalReadError, current_snapshot, reader_for
from herald.reports.client_report import Report, ReportError, build_report, default_output, render_html
from herald.reports.client_report.pdf import render_pdf
from herald.reports.client_report.spreadsheet import render_xlsx
from herald.settings import Settings, WarehouseTarget
from herald.warehouse.connection import Warehouse, WarehouseError

# format → (media type, what the page calls it)
FORMATS: dict[str, tuple[str, str]] = {
    "html": ("text/html; charset=utf-8", "HTML (a web page, printable)"),
    "pdf": ("application/pdf", "PDF"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "Excel (XLSX)"),
}
# the periods the page offers, in days (the report counts today, in the client's time zone)
PERIODS: dict[int, str] = {7: "Last 7 days", 30: "Last 30 days", 90: "Last 90 days", 365: "Last 12 months"}
DEFAULT_PERIOD_DAYS = 30
PAGE_SIZE = 50
CREDIT_TRANSACTIONS = "marts.credit_transactions"
KIND_LABELS = {
    "purchase": "Purchase",
    "debit": "Message sent",
    "reservation": "Reserved",
    "release": "Refund",
    "adjustment": "Adjustment",
}


class ReportRequestError(ValueError):
    """A download asked for a format or period the page does not offer (the message says which)."""


def check_choice(fmt: str, period_days: str | int) -> tuple[str, int]:
    """The format and period of a download request, or :class:`ReportRequestError` naming the bad one."""
    if fmt not in FORMATS:
        raise ReportRequestError(f"Unknown report format {fmt[:20]!r}: choose one of {', '.join(FORMATS)}.")
    try:
        days = int(str(period_days).strip())
    except ValueError:
        days = -1
    if days not in PERIODS:
        shown = str(period_days)[:20]
        raise ReportRequestError(f"Unknown period {shown!r}: choose one of {', '.join(f'{d} days' for d in PERIODS)}.")
    return fmt, days


@dataclass(frozen=True)
class Download:
    """A rendered report: the file's bytes, its name and type, and what it covers."""

    content: bytes
    file_name: str
    media_type: str
    report: Report
    as_of: datetime | None  # the snapshot's time on DuckDB; None: live (PostgreSQL)


def _snapshot_warehouse(settings: Settings, reader: PortalReader) -> tuple[Warehouse, datetime | None]:
    """A read-only :class:`Warehouse` over the current snapshot (published first when there is
    none yet), and its time."""
    with reader.session() as s:  # publishes the first snapshot when none exists
        as_of = s.as_of
    path = current_snapshot(settings.warehouse)
    if path is None:
        raise PortalReadError("no portal snapshot has been published yet")
    return Warehouse(WarehouseTarget(engine="duckdb", url=f"duckdb:///{path}", duckdb_path=path)), as_of


def client_report(
    settings: Settings, deployment: Deployment, client_id: str, period_days: int,
    reader: PortalReader | None = None,
) -> tuple[Report, datetime | None]:  # fmt: skip
    """The client's report over the last ``period_days`` days, as ``herald report`` builds it,
    read from the snapshot (DuckDB) or the live warehouse (PostgreSQL)."""
    if settings.warehouse.engine != "duckdb":
        return build_report(Warehouse(settings.warehouse), deployment, client_id, period_days), None
    reader = reader or reader_for(settings.warehouse)
    last: Exception | None = None
    for _ in range(2):  # the snapshot may be pruned between reading the pointer and opening it
        warehouse, as_of = _snapshot_warehouse(settings, reader)
        try:
            report = build_report(warehouse, deployment, client_id, period_days)
        except WarehouseError as exc:
            last = exc
            continue
        if as_of is not None:  # the file says how fresh its figures are, as the page does
            report.notes.append(f"Figures as of {as_of:%Y-%m-%d %H:%M} UTC (the warehouse's last refresh).")
        return report, as_of
    raise PortalReadError(f"the report could not read the portal snapshot: {last}")


def render_download(report: Report, fmt: str, as_of: datetime | None = None) -> Download:
    """The report rendered in ``fmt`` (html, pdf, xlsx) by the report's own renderers."""
    if fmt not in FORMATS:
        raise ReportError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    name = default_output(report.client_id, fmt, report.end_date).name
    if fmt == "html":
        content = render_html(report).encode("utf-8")
    else:
        with tempfile.TemporaryDirectory(prefix="herald-report-") as folder:
            path = Path(folder) / name
            (render_pdf if fmt == "pdf" else render_xlsx)(report, path)
            content = path.read_bytes()
    return Download(content, name, FORMATS[fmt][0], report, as_of)


@dataclass(frozen=True)
class CreditPage:
    """One page of a client's credit transactions, newest first. ``metered`` is False when the
    client has never bought credits (no ledger row: messages are not metered)."""

    client_id: str
    available: bool  # False: the transactions mart has not been built yet
    balance: Decimal | None
    purchased: Decimal | None
    spent: Decimal | None
    total: int
    page: int
    pages: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    as_of: datetime | None = None

    @property
    def metered(self) -> bool:
        return self.total > 0


def credit_transactions(
    settings: Settings, client_id: str, page: int = 1, reader: PortalReader | None = None,
    page_size: int = PAGE_SIZE,
) -> CreditPage:  # fmt: skip
    """The client's balance and a page of its credit transactions (newest first; ``page`` from 1,
    clamped to the last page)."""
    with (reader or reader_for(settings.warehouse)).session() as s:
        if not s.has_table(CREDIT_TRANSACTIONS):
            return CreditPage(client_id, False, None, None, None, 0, 1, 1, [], s.as_of)
        total, balance, purchased, spent = s.query(
            f"""select count(*), sum(amount),
                       coalesce(sum(case when kind = 'purchase' then amount end), 0),
                       coalesce(-sum(case when kind in ('debit', 'reservation', 'release') then amount end), 0)
                from {CREDIT_TRANSACTIONS} where client_id = ?""",
            [client_id],
        ).rows[0]
        total = int(total or 0)
        pages = max(1, -(-total // page_size))
        page = min(max(1, page), pages)
        rows = s.query(
            f"""select entry_id, kind, amount, balance_after, note, created_at from {CREDIT_TRANSACTIONS}
                where client_id = ? order by created_at desc, entry_id desc limit {int(page_size)}
                offset {int((page - 1) * page_size)}""",
            [client_id],
        ).dicts()
        as_of = s.as_of
    for row in rows:
        row["kind_label"] = KIND_LABELS.get(row["kind"], str(row["kind"]).replace("_", " "))
    if not total:
        return CreditPage(client_id, True, None, None, None, 0, 1, 1, [], as_of)
    return CreditPage(client_id, True, Decimal(balance), Decimal(purchased), Decimal(spent), total, page, pages,
                      rows, as_of)  # fmt: skip
