"""The client report's tables as files: an XLSX workbook with a sheet per table (human column
labels), or a folder with one CSV per table (raw column names and values, for loading elsewhere).
Both start with the summary (client, period and headline numbers). Formula-looking text is
neutralised in both (herald.reports.cells)."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from herald.reports.cells import csv_row, text_cells
from herald.reports.client_report.format import label
from herald.reports.client_report.model import NO_DATA, Report


def _excel_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    if isinstance(value, (list, dict, tuple)):
        return str(value)
    return value


def render_xlsx(report: Report, path: Path) -> Path:
    """A workbook with a sheet per table: summary, daily, campaigns, the client kind's own
    (appointments' or the funnel's), ab_tests, attribution, dashboard."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    book = Workbook()
    book.remove(book.active)
    for table in [report.summary_table(), *report.tables]:
        sheet = book.create_sheet(table.key)
        if not table.has_data:
            sheet.append([table.title, NO_DATA])
            continue
        sheet.append(table.labels)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        metric_table = table.columns == ["metric", "value"]
        for row in table.rows:
            values = [_excel_value(v) for v in row]
            sheet.append([label(str(values[0])), values[1]] if metric_table else values)
            text_cells(sheet[sheet.max_row])  # client data never becomes a formula
        for column in sheet.columns:
            width = max(len(str(c.value)) if c.value is not None else 0 for c in column)
            sheet.column_dimensions[column[0].column_letter].width = min(max(width + 2, 10), 50)
        sheet.freeze_panes = "A2"
    book.save(path)
    return path


def render_csv(report: Report, path: Path) -> Path:
    """A folder with one CSV per table: summary.csv, daily.csv, campaigns.csv, ab_tests.csv,
    attribution.csv, dashboard.csv, the table of each section of the client's kind (e.g.
    funnel.csv for a college), and each section's key numbers as <section>_summary.csv
    (metric, value: appointments_summary.csv for a clinic). Raw values (rates as fractions); a
    mart with no data gives a file with a single ``note`` column saying so."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    for section in report.sections:
        with open(folder / f"{section.key}_summary.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            if section.missing:
                writer.writerows([["note"], [f"{section.title}: {NO_DATA}"]])
            else:
                writer.writerow(["metric", "value"])
                writer.writerows(
                    csv_row(("" if v is None else v) for v in (name, value)) for name, value in section.metrics
                )
    for table in [report.summary_table(), *report.tables]:
        with open(folder / f"{table.key}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            if table.has_data:
                writer.writerow(table.columns)
                writer.writerows(csv_row("" if v is None else v for v in row) for row in table.rows)
            else:
                writer.writerows([["note"], [f"{table.title}: {NO_DATA}"]])
    return folder
