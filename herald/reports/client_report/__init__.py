"""A client's report over a period: headline numbers, charts and tables from the marts.

Every number is computed by SQL over a mart (``marts.deliveries`` for sent, delivered, failed and
the delivery rate; ``campaign_performance_daily`` for replies; ``compliance_daily``,
``ab_test_results``, ``attribution_by_channel``, ``client_dashboard``; per client kind
``appointment_confirmations`` or ``funnel_events`` and ``conversions``; ``conversation_messages``)
with one definition per number (docs/analysts.md, "What the numbers mean"), so the report always
agrees with ``herald sql``. The reader sees labels, never table or column names. A mart that is
missing or has no rows for the client becomes a section that says "no data yet", a rate without
a denominator says "not available yet"; neither fails the report. Renderers: self-contained
HTML (inline SVG charts, readable on a phone, printable), PDF (a flow of A4 pages), XLSX (a sheet
per table) and CSV (a folder with one file per table).

One module per job: :mod:`.queries` builds the :class:`Report` (:mod:`.model`) from the marts,
:mod:`.format` writes values, :mod:`.charts` draws, and :mod:`.html`, :mod:`.pdf` and
:mod:`.spreadsheet` render. This module is the entry point: what callers import, and
:func:`write_report`, which picks the renderer for a format.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from herald.reports.client_report.format import LABELS, NOT_AVAILABLE, fmt_cell, fmt_int, fmt_pct, label
from herald.reports.client_report.html import render_html
from herald.reports.client_report.model import (
    DEFAULT_PERIOD,
    FORMATS,
    MAX_PERIOD_DAYS,
    NO_DATA,
    Headline,
    Report,
    ReportError,
    Section,
    Table,
    parse_period,
)
from herald.reports.client_report.pdf import render_pdf
from herald.reports.client_report.queries import build_report
from herald.reports.client_report.spreadsheet import render_csv, render_xlsx

__all__ = [
    "DEFAULT_PERIOD",
    "FORMATS",
    "LABELS",
    "MAX_PERIOD_DAYS",
    "NOT_AVAILABLE",
    "NO_DATA",
    "Headline",
    "Report",
    "ReportError",
    "Section",
    "Table",
    "build_report",
    "default_output",
    "fmt_cell",
    "fmt_int",
    "fmt_pct",
    "headline_markdown",
    "label",
    "parse_period",
    "render_csv",
    "render_html",
    "render_pdf",
    "render_xlsx",
    "write_report",
]


def headline_markdown(report: Report) -> str:
    """The headline numbers as a Markdown table (Dagster materialization metadata)."""
    lines = ["| metric | value |", "|---|---|"]
    lines += [f"| {label} | {value} |" for label, value in report.headline.items()]
    return "\n".join(lines)


def default_output(client_id: str, fmt: str, day: date) -> Path:
    """``./<client>-report-<date>.<ext>``; CSV is a folder ``./<client>-report-<date>-csv/``."""
    stem = f"{client_id}-report-{day.isoformat()}"
    return Path(f"{stem}-csv" if fmt == "csv" else f"{stem}.{fmt}")


def write_report(report: Report, fmt: str, path: Path) -> Path:
    """Render the report in ``fmt`` (html, pdf, xlsx, csv) at ``path``; returns what was written."""
    if fmt not in FORMATS:
        raise ReportError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    path = Path(path)
    if fmt == "html":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_html(report), encoding="utf-8")
        return path
    return {"pdf": render_pdf, "xlsx": render_xlsx, "csv": render_csv}[fmt](report, path)
