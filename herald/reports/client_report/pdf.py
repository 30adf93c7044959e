"""The client report as an A4 PDF: the headline, one chart per page, then the tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from herald.reports.client_report.charts import charts, figure
from herald.reports.client_report.model import NO_DATA, Report, Table


def _table_page(pdf: Any, title: str, table: Table, rows_per_page: int = 32) -> None:
    from matplotlib.figure import Figure

    chunks = [table.rows[i : i + rows_per_page] for i in range(0, len(table.rows), rows_per_page)] or [[]]
    for n, chunk in enumerate(chunks):
        fig = Figure(figsize=(8.27, 11.69))
        fig.text(0.06, 0.95, title + (f" (continued {n + 1})" if n else ""), fontsize=14, weight="bold")
        fig.text(0.06, 0.925, f"source: {table.source}", fontsize=8, color="#555")
        if not chunk:
            fig.text(0.06, 0.88, NO_DATA, fontsize=11)
        else:
            ax = fig.add_axes((0.04, 0.05, 0.92, 0.86))
            ax.axis("off")
            cells = [
                [text for text, _ in row]
                for row in Table(table.key, table.title, table.source, table.columns, chunk).formatted_rows()
            ]
            t = ax.table(cellText=cells, colLabels=table.columns, loc="upper left", cellLoc="left")
            t.auto_set_font_size(False)
            t.set_fontsize(7 if len(table.columns) > 8 else 8)
            t.auto_set_column_width(list(range(len(table.columns))))
        pdf.savefig(fig)


def render_pdf(report: Report, path: Path) -> Path:
    """A4 pages: the headline, one chart per page, then the tables."""
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with PdfPages(path, metadata={"Title": f"{report.client_name} report", "Creator": "Herald"}) as pdf:
        fig = Figure(figsize=(8.27, 11.69))
        fig.text(0.06, 0.95, f"{report.client_name} — messaging report", fontsize=16, weight="bold")
        fig.text(0.06, 0.925, report.period_text(), fontsize=9, color="#555")
        for i, (label, value) in enumerate(report.headline.items()):
            fig.text(0.06, 0.88 - i * 0.03, label, fontsize=11)
            fig.text(0.40, 0.88 - i * 0.03, value, fontsize=11, weight="bold")
        y = 0.88 - len(report.headline.items()) * 0.03 - 0.03
        for note in report.notes:
            fig.text(0.06, y, note, fontsize=9, color="#b45309")
            y -= 0.025
        pdf.savefig(fig)
        for chart in charts(report):
            if chart.draw is None:
                fig = Figure(figsize=(8.27, 11.69))
                fig.text(0.06, 0.95, chart.title, fontsize=14, weight="bold")
                fig.text(0.06, 0.90, NO_DATA, fontsize=11)
            else:
                fig = figure(chart, 8.27, max(5.0, chart.height))
                fig.suptitle(chart.title, fontsize=13, weight="bold")
            pdf.savefig(fig)
        for table in report.tables:
            _table_page(pdf, table.title, table)
    return path
