"""The client report as an A4 PDF, laid out as a flow (matplotlib, no browser needed): blocks fill
a page top to bottom and a new page starts only when the next block does not fit. A heading
keeps with what follows it, a chart with its title, and a table splits between rows with its
header repeated on the next page. No page but the last is left mostly blank."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from herald.reports.client_report.charts import Chart, charts, figure
from herald.reports.client_report.format import NOT_AVAILABLE
from herald.reports.client_report.html import KIND_TITLES
from herald.reports.client_report.model import NO_DATA, Report, Section, Table

PAGE_W, PAGE_H = 8.27, 11.69  # A4, inches
MARGIN = 0.6
WIDTH = PAGE_W - 2 * MARGIN
ROW = 0.21  # a table row, inches
MIN_ROWS = 3  # a table starts on a page only with its header and this many rows
CHART_HEIGHT = 3.2  # a chart's height on the page, inches (horizontal charts grow with their bars)
MIN_CHART_HEIGHT = 1.9  # a chart shrinks to the room left on the page, down to this
INK, MUTED, LINE, ACCENT = "#111827", "#6b7280", "#d1d5db", "#2563eb"
# columns left out of a table too wide for the page, first ones first
DROPPABLE = (
    "computed_at", "z", "winner", "converted", "delivered", "conversions_touched", "step", "metric", "p_value",
)  # fmt: skip

MEANINGS = [
    ("Sent", "Messages handed to the SMS or email provider in the period."),
    ("Delivered", "Messages the provider confirmed as delivered (a delivery receipt)."),
    ("Failed", "Messages the provider refused, or reported undelivered or bounced."),
    ("Awaiting receipt", "Sent, with no delivered or failed report from the provider yet."),
    ("Delivery rate", f"Delivered ÷ (delivered + failed); “{NOT_AVAILABLE}” until a message has an outcome."),
    ("Response rate", "Messages that got a reply within 7 days ÷ messages sent."),
]


class _Pages:
    """A cursor over A4 pages: ``y`` is inches from the top of the current page."""

    def __init__(self, pdf: Any, footer: str):
        self.pdf, self.footer = pdf, footer
        self.fig: Any = None
        self.y = 0.0
        self.number = 0

    def new_page(self) -> None:
        from matplotlib.figure import Figure

        self.flush()
        self.number += 1
        self.fig = Figure(figsize=(PAGE_W, PAGE_H))
        self.fig.text(MARGIN / PAGE_W, 0.35 / PAGE_H, self.footer, fontsize=7, color=MUTED)
        self.fig.text(1 - MARGIN / PAGE_W, 0.35 / PAGE_H, f"page {self.number}", fontsize=7, color=MUTED, ha="right")
        self.y = MARGIN

    def flush(self) -> None:
        if self.fig is not None:
            self.pdf.savefig(self.fig)
            self.fig = None

    def room(self) -> float:
        return PAGE_H - MARGIN - self.y if self.fig is not None else 0.0

    def need(self, height: float) -> None:
        """Start a new page unless ``height`` inches fit on this one."""
        if self.room() < height:
            self.new_page()

    def text(self, x: float, text: str, size: float, **kw: Any) -> None:
        """Text whose top is at the cursor (no advance)."""
        self.fig.text((MARGIN + x) / PAGE_W, 1 - self.y / PAGE_H, text, fontsize=size, va="top", **kw)

    def paragraph(self, text: str, size: float, **kw: Any) -> None:
        """Text wrapped to the page's width; the cursor moves below it."""
        import textwrap

        per_line = max(int(WIDTH / (size * 0.5 / 72)), 20)
        for line in textwrap.wrap(text, per_line) or [""]:
            self.text(0, line, size, **kw)
            self.y += size * 1.45 / 72

    def line(self, x0: float = 0.0, x1: float = WIDTH, color: str = LINE) -> None:
        from matplotlib.lines import Line2D

        ys = [1 - self.y / PAGE_H] * 2
        self.fig.add_artist(Line2D([(MARGIN + x0) / PAGE_W, (MARGIN + x1) / PAGE_W], ys, color=color, linewidth=0.6))

    def box(self, x: float, w: float, h: float) -> None:
        from matplotlib.patches import Rectangle

        self.fig.add_artist(
            Rectangle(
                ((MARGIN + x) / PAGE_W, 1 - (self.y + h) / PAGE_H),
                w / PAGE_W,
                h / PAGE_H,
                transform=self.fig.transFigure,
                fill=False,
                edgecolor=LINE,
                linewidth=0.8,
            )
        )

    def image(self, png: bytes, w: float, h: float) -> None:
        from matplotlib.image import imread

        ax = self.fig.add_axes((MARGIN / PAGE_W, 1 - (self.y + h) / PAGE_H, w / PAGE_W, h / PAGE_H))
        ax.imshow(imread(io.BytesIO(png), format="png"), interpolation="antialiased")
        ax.axis("off")
        self.y += h


KEEP_TOGETHER_ROWS = 20  # a table of at most this many rows goes on one page


def _table_height(table: Table) -> float:
    """The height of the whole table: its header and every row."""
    return ROW + 0.04 + len(table.rows) * (ROW + 0.02)


def _table_start(table: Table) -> float:
    """The height of a table's header and first rows (what must fit where it starts)."""
    return ROW * (1 + min(MIN_ROWS, len(table.rows))) + 0.15 if table.has_data else 0.3


def _heading(pages: _Pages, title: str, intro: str = "", keep: float = 0.6) -> None:
    """A section heading, kept on a page with ``keep`` inches of what follows."""
    height = 0.5 + (0.3 if intro else 0) * (1 + len(intro) // 150)
    pages.need(height + keep)
    pages.y += 0.12
    pages.text(0, title, 13, weight="bold", color=INK)
    pages.y += 0.3
    pages.line()
    pages.y += 0.08
    if intro:
        pages.paragraph(intro, 8, color=MUTED)
        pages.y += 0.08


def _kpis(pages: _Pages, items: list[tuple[str, str]], per_row: int = 4) -> None:
    gap, h = 0.12, 0.62
    w = (WIDTH - gap * (per_row - 1)) / per_row
    for start in range(0, len(items), per_row):
        pages.need(h + gap)
        for i, (name, value) in enumerate(items[start : start + per_row]):
            x = i * (w + gap)
            pages.box(x, w, h)
            y0 = pages.y
            pages.y = y0 + 0.08
            pages.text(x + 0.1, name, 8, color=MUTED)
            pages.y = y0 + 0.28
            if value == NOT_AVAILABLE:
                pages.text(x + 0.1, value, 9, color=MUTED)
            else:
                pages.text(x + 0.1, value, 15, weight="bold", color=INK)
            pages.y = y0
        pages.y += h + gap


def _fit_columns(table: Table) -> tuple[list[int], list[float], float]:
    """The columns shown (indexes), their widths (inches) and the font size that fits the page."""
    cells = table.formatted_rows()
    keep = list(range(len(table.columns)))
    while True:
        for size in (8.0, 7.0, 6.5):
            char = size * 0.62 / 72  # an average character of DejaVu Sans (bold headers), inches
            widths = [(max([len(table.labels[i])] + [len(row[i][0]) for row in cells]) + 3) * char for i in keep]
            if sum(widths) <= WIDTH:
                spare = (WIDTH - sum(widths)) / len(widths) if sum(widths) > WIDTH * 0.7 else 0.0
                return keep, [w + spare for w in widths], size
        droppable = [i for i in keep if table.columns[i] in DROPPABLE]
        if not droppable:  # the narrowest font, every column scaled down alike
            return keep, [w * WIDTH / sum(widths) for w in widths], 6.0
        keep.remove(min(droppable, key=lambda i: DROPPABLE.index(table.columns[i])))


def _table(pages: _Pages, table: Table, title: str) -> None:
    """Rows top to bottom; when a page is full the table goes on with its header repeated."""
    if not table.has_data:
        pages.need(0.3)
        pages.text(0, NO_DATA, 9, style="italic", color=MUTED)
        pages.y += 0.3
        return
    keep, widths, size = _fit_columns(table)
    numeric = [any(row[i][1] for row in table.formatted_rows()) for i in range(len(table.columns))]
    lefts = [sum(widths[:n]) for n in range(len(widths))]

    def cell(n: int, i: int, text: str, **kw: Any) -> None:
        if numeric[i]:
            pages.text(lefts[n] + widths[n] - 0.06, text, size, ha="right", **kw)
        else:
            pages.text(lefts[n] + 0.04, text, size, **kw)

    def header(continued: bool) -> None:
        if continued:
            pages.text(0, f"{title} (continued)", 8, color=MUTED)
            pages.y += 0.22
        for n, i in enumerate(keep):
            cell(n, i, table.labels[i], weight="bold", color=INK)
        pages.y += ROW
        pages.line(0, sum(widths), color=INK)
        pages.y += 0.04

    whole = _table_height(table)
    if pages.room() < whole and len(table.rows) <= KEEP_TOGETHER_ROWS and pages.room() < PAGE_H - 2 * MARGIN:
        # a short table is never split: it starts on the next page, under its section's name
        pages.new_page()
        header(True)
    else:
        pages.need(_table_start(table))
        header(False)
    for row in table.formatted_rows():
        if pages.room() < ROW:
            pages.new_page()
            header(True)
        for n, i in enumerate(keep):
            cell(n, i, row[i][0], color=INK)
        pages.y += ROW
        pages.line(0, sum(widths))
        pages.y += 0.02
    pages.y += 0.15


def _chart_height(chart: Chart) -> float:
    """A time series gets CHART_HEIGHT; a horizontal bar chart grows with its bars."""
    if chart.bars:
        return min(max(MIN_CHART_HEIGHT, chart.height * 0.6), 6.0)
    return CHART_HEIGHT


def _chart(pages: _Pages, chart: Chart) -> None:
    """The chart as a 150-dpi image, on the page of the heading before it."""
    if chart.draw is None:
        return
    height = _chart_height(chart)
    if MIN_CHART_HEIGHT <= pages.room() - 0.1 < height:
        height = pages.room() - 0.1  # fill the page rather than leave its end blank
    fig = figure(chart, WIDTH, height)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=150)
    pages.need(height)
    pages.image(buffer.getvalue(), WIDTH, height)
    pages.y += 0.1


def _keep(table: Table) -> float:
    """What must fit under a heading for its table: all of a short table, else its first rows."""
    if table.has_data and len(table.rows) <= KEEP_TOGETHER_ROWS:
        return _table_height(table)
    return _table_start(table)


def _keep_with_chart(chart: Chart, table: Table) -> float:
    """Under a heading: the start of its chart (which then fills the page; its table may go on
    the next, named), or its whole short table when there is no chart."""
    return MIN_CHART_HEIGHT if chart.draw is not None else _keep(table)


def _section(pages: _Pages, section: Section) -> None:
    keep = 0.75 if section.metrics or section.table is None else _keep(section.table)
    _heading(pages, section.title, section.intro, keep=keep)
    if not section.has_data:
        pages.text(0, NO_DATA, 9, style="italic", color=MUTED)
        pages.y += 0.3
        return
    if section.metrics:
        _kpis(pages, section.items())
    if section.table is not None:
        _table(pages, section.table, section.title)


def render_pdf(report: Report, path: Path) -> Path:
    """A4 pages: the title and headline, the client's own sections, each chart with its table,
    then A/B tests, attribution, the dashboard and what the numbers mean."""
    from matplotlib.backends.backend_pdf import PdfPages

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    drawn = {c.key: c for c in charts(report)}
    own = [s for s in report.sections if s.key != "conversations"]
    conversations = [s for s in report.sections if s.key == "conversations"]
    with PdfPages(path, metadata={"Title": f"{report.client_name} report", "Creator": "Herald"}) as pdf:
        pages = _Pages(pdf, f"{report.client_name} · {report.start_date} to {report.end_date}")
        pages.new_page()
        pages.text(
            0,
            f"{report.client_name} — {KIND_TITLES.get(report.kind, KIND_TITLES['general'])}",
            17,
            weight="bold",
            color=INK,
        )
        pages.y += 0.38
        pages.text(0, report.period_text(), 8.5, color=MUTED)
        pages.y += 0.3
        for note in report.notes:
            pages.text(0, note, 9, color="#b45309")
            pages.y += 0.22
        _kpis(pages, report.headline.items())
        for section in own:
            _section(pages, section)
        for title, key, table in (
            ("Messages per day", "delivered", report.daily),
            (report.campaigns.title, "response_by_campaign", report.campaigns),
        ):
            chart = drawn[key]
            _heading(pages, title, keep=_keep_with_chart(chart, table))
            _chart(pages, chart)
            _table(pages, table, title)
        for section in conversations:
            _section(pages, section)
        for title, key, table in (
            ("A/B test results", "ab_tests", report.ab_tests),
            ("Attribution by channel", "attribution", report.attribution),
        ):
            chart = drawn[key]
            _heading(pages, title, keep=_keep_with_chart(chart, table))
            _chart(pages, chart)
            _table(pages, table, title)
        _heading(
            pages,
            "Right now",
            "Rolling windows ending when the numbers were last refreshed.",
            keep=_keep(report.dashboard),
        )
        _table(pages, report.dashboard, "Right now")
        _heading(pages, "What the numbers mean", keep=len(MEANINGS) * 0.22)
        for name, meaning in MEANINGS:
            pages.need(0.22)
            pages.text(0, name, 8, weight="bold", color=INK)
            pages.text(1.3, meaning, 8, color=MUTED)
            pages.y += 0.22
        pages.flush()
    return path
