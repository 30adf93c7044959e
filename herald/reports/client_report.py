"""A client's report over a period: headline numbers, charts and tables from the analytics marts.

Every number is computed by SQL over a mart (``campaign_performance_daily``,
``compliance_daily``, ``ab_test_results``, ``attribution_by_channel``, ``client_dashboard``) with
the same formulas the marts use, so the report always agrees with ``herald sql``. A mart that is
missing or has no rows for the client becomes a section that says "no data yet"; it never fails
the report. Renderers: self-contained HTML (inline SVG charts, readable on a phone), PDF, XLSX
(a sheet per table) and CSV (a folder with one file per table).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from herald.config import Deployment
from herald.warehouse.connection import Session, Warehouse

PERFORMANCE = "analytics.campaign_performance_daily"
COMPLIANCE = "analytics.compliance_daily"
AB_RESULTS = "analytics.ab_test_results"
ATTRIBUTION_BY_CHANNEL = "analytics.attribution_by_channel"
CLIENT_DASHBOARD = "analytics.client_dashboard"

NO_DATA = "no data yet"
FORMATS = ("html", "pdf", "xlsx", "csv")
DEFAULT_PERIOD = "30d"
MAX_PERIOD_DAYS = 3660
TEMPLATES_DIR = Path(__file__).parent / "templates"

# the attribution mart's credited-conversions column, under the names it may carry
CONVERSION_COLUMNS = ("conversions", "conversions_credited", "credit")


class ReportError(ValueError):
    """The report cannot be made as asked: an unknown client, a bad period or format."""


def parse_period(value: str) -> int:
    """``30d`` → 30, ``4w`` → 28, ``7`` → 7 (days, counting today)."""
    found = re.fullmatch(r"\s*(\d+)\s*([dw]?)\s*", value or "", flags=re.IGNORECASE)
    if not found:
        raise ReportError(f"--period must be a number of days or weeks such as 30d or 4w, not {value!r}")
    days = int(found.group(1)) * (7 if found.group(2).lower() == "w" else 1)
    if not 1 <= days <= MAX_PERIOD_DAYS:
        raise ReportError(f"--period must be between 1 and {MAX_PERIOD_DAYS} days, not {value!r} ({days} days)")
    return days


@dataclass(frozen=True)
class Table:
    """One table of the report and the mart it came from. ``missing``: the mart is not there."""

    key: str  # sheet name and CSV file stem
    title: str
    source: str
    columns: list[str]
    rows: list[tuple[Any, ...]]
    missing: bool = False

    @property
    def has_data(self) -> bool:
        return not self.missing and bool(self.rows)

    def column(self, *names: str) -> str | None:
        """The first of ``names`` this table has."""
        return next((n for n in names if n in self.columns), None)

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row)) for row in self.rows]

    def formatted_rows(self) -> list[list[tuple[str, bool]]]:
        """Each cell as (text, is_number); a metric/value table formats each value by its metric."""
        if self.columns == ["metric", "value"]:
            return [[(str(m), False), (fmt_cell(str(m), v), _is_number(v))] for m, v in self.rows]
        return [[(fmt_cell(c, v), _is_number(v)) for c, v in zip(self.columns, row)] for row in self.rows]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Headline:
    """The period's totals (None: the mart is not there)."""

    sent: int | None
    delivered: int | None
    failed: int | None
    replied: int | None
    delivery_rate: float | None  # sent / (sent + failed), as in campaign_performance_daily
    response_rate: float | None  # replied / delivered, else replied / sent, as in the mart
    opt_outs: int | None  # compliance_daily, metric opt_outs

    def items(self) -> list[tuple[str, str]]:
        """(label, formatted value) in the order the report shows them."""
        return [
            ("Sent", fmt_int(self.sent)),
            ("Delivered", fmt_int(self.delivered)),
            ("Failed", fmt_int(self.failed)),
            ("Replied", fmt_int(self.replied)),
            ("Delivery rate", fmt_pct(self.delivery_rate)),
            ("Response rate", fmt_pct(self.response_rate)),
            ("Opt-outs", fmt_int(self.opt_outs)),
        ]

    def raw_items(self) -> list[tuple[str, Any]]:
        return [
            ("sent", self.sent),
            ("delivered", self.delivered),
            ("failed", self.failed),
            ("replied", self.replied),
            ("delivery_rate", self.delivery_rate),
            ("response_rate", self.response_rate),
            ("opt_outs", self.opt_outs),
        ]


@dataclass(frozen=True)
class Report:
    client_id: str
    client_name: str
    time_zone: str
    period_days: int
    start_date: date  # the client's local dates, both included
    end_date: date
    generated_at: datetime  # UTC
    headline: Headline
    daily: Table  # send_date, sent, delivered, failed, replied
    campaigns: Table  # campaign, sent, delivered, replied, response_rate
    ab_tests: Table  # analytics.ab_test_results, latest computation
    attribution: Table  # analytics.attribution_by_channel
    dashboard: Table  # analytics.client_dashboard as metric, value
    notes: list[str] = field(default_factory=list)

    @property
    def tables(self) -> list[Table]:
        return [self.daily, self.campaigns, self.ab_tests, self.attribution, self.dashboard]

    def summary_table(self) -> Table:
        rows = [
            ("client_id", self.client_id),
            ("client_name", self.client_name),
            ("period_start", self.start_date),
            ("period_end", self.end_date),
            ("time_zone", self.time_zone),
            ("generated_at_utc", self.generated_at.replace(tzinfo=None)),
            *self.headline.raw_items(),
        ]
        return Table("summary", "Summary", PERFORMANCE, ["metric", "value"], rows)

    def delivered_series(self) -> list[tuple[date, int, int]]:
        """(day, sent, delivered) for every day of the period, 0 on days without messages."""
        by_day = {r["send_date"]: r for r in self.daily.records()}
        days = [self.start_date + timedelta(days=i) for i in range(self.period_days)]
        return [
            (d, int(by_day[d]["sent"]) if d in by_day else 0, int(by_day[d]["delivered"]) if d in by_day else 0)
            for d in days
        ]


# ---------------------------------------------------------------------------------------------
# numbers: SQL over the marts


def _columns(s: Session, relation: str) -> list[str] | None:
    """The relation's columns, or None when it does not exist (checked first: a failed query
    would abort the whole PostgreSQL transaction)."""
    schema, name = relation.split(".")
    _, rows = s.query(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
        "order by ordinal_position",
        [schema, name],
    )
    return [r[0] for r in rows] or None


def _number(value: Any) -> Any:
    """PostgreSQL sums into Decimal: back to int / float."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _query(s: Session, sql: str, params: Sequence[Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
    columns, rows = s.query(sql, params)
    return columns, [tuple(_number(v) for v in row) for row in rows]


RATE_SQL = (
    "cast(sum(sent) as double precision) / nullif(sum(sent) + sum(failed), 0)",
    "case when sum(delivered) > 0 then cast(sum(replied) as double precision) / sum(delivered) "
    "else cast(sum(replied) as double precision) / nullif(sum(sent), 0) end",
)
PERIOD_WHERE = "where client_id = ? and send_date between ? and ?"


def headline_sql() -> str:
    return (
        "select cast(coalesce(sum(sent), 0) as bigint) as sent, cast(coalesce(sum(delivered), 0) as bigint) as delivered, "
        "cast(coalesce(sum(failed), 0) as bigint) as failed, cast(coalesce(sum(replied), 0) as bigint) as replied, "
        f"{RATE_SQL[0]} as delivery_rate, {RATE_SQL[1]} as response_rate "
        f"from {PERFORMANCE} {PERIOD_WHERE}"
    )


def daily_sql() -> str:
    return (
        "select send_date, cast(sum(sent) as bigint) as sent, cast(sum(delivered) as bigint) as delivered, "
        "cast(sum(failed) as bigint) as failed, cast(sum(replied) as bigint) as replied "
        f"from {PERFORMANCE} {PERIOD_WHERE} group by send_date order by send_date"
    )


def campaigns_sql() -> str:
    return (
        "select campaign, cast(sum(sent) as bigint) as sent, cast(sum(delivered) as bigint) as delivered, "
        f"cast(sum(replied) as bigint) as replied, {RATE_SQL[1]} as response_rate "
        f"from {PERFORMANCE} {PERIOD_WHERE} group by campaign order by campaign"
    )


def opt_outs_sql() -> str:
    return (
        f"select cast(coalesce(sum(count), 0) as bigint) from {COMPLIANCE} "
        "where client_id = ? and metric = 'opt_outs' and activity_date between ? and ?"
    )


def _client_rows(
    s: Session, relation: str, key: str, title: str, client_id: str, order: Sequence[str], latest: str | None = None
) -> Table:
    """Every row of ``relation`` for the client (the latest ``latest`` only), without client_id."""
    columns = _columns(s, relation)
    if columns is None or "client_id" not in columns:
        return Table(key, title, relation, [], [], missing=True)
    sql = f"select * from {relation} where client_id = ?"
    params: list[Any] = [client_id]
    if latest and latest in columns:
        sql += f" and {latest} = (select max({latest}) from {relation} where client_id = ?)"
        params.append(client_id)
    order_by = [c for c in order if c.split()[0] in columns]  # entries may carry "desc"
    if order_by:
        sql += " order by " + ", ".join(order_by)
    names, rows = _query(s, sql, params)
    keep = [i for i, n in enumerate(names) if n != "client_id"]
    return Table(key, title, relation, [names[i] for i in keep], [tuple(r[i] for i in keep) for r in rows])


def build_report(
    warehouse: Warehouse, deployment: Deployment, client_id: str, period_days: int, now: datetime | None = None
) -> Report:
    """The client's report over the ``period_days`` local days ending with today (its time zone)."""
    client = deployment.clients.get(client_id)
    if client is None:
        raise ReportError(f"unknown client {client_id!r}; configured: {', '.join(sorted(deployment.clients)) or 'none'}")
    if not 1 <= period_days <= MAX_PERIOD_DAYS:
        raise ReportError(f"the period must be between 1 and {MAX_PERIOD_DAYS} days, not {period_days}")
    now = now or datetime.now(timezone.utc)
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    end = now.astimezone(ZoneInfo(client.time_zone)).date()
    start = end - timedelta(days=period_days - 1)
    period = [client_id, start, end]
    notes: list[str] = []
    with warehouse.session(read_only=True) as s:
        if _columns(s, PERFORMANCE) is None:
            notes.append(f"{PERFORMANCE} is not built yet")
            totals: tuple[Any, ...] = (None,) * 6
            daily = Table("daily", "Delivered per day", PERFORMANCE, [], [], missing=True)
            campaigns = Table("campaigns", "Response rate by campaign", PERFORMANCE, [], [], missing=True)
        else:
            totals = _query(s, headline_sql(), period)[1][0]
            daily = Table("daily", "Delivered per day", PERFORMANCE, *_query(s, daily_sql(), period))
            campaigns = Table("campaigns", "Response rate by campaign", PERFORMANCE, *_query(s, campaigns_sql(), period))
        opt_outs = _query(s, opt_outs_sql(), period)[1][0][0] if _columns(s, COMPLIANCE) else None
        ab_tests = _client_rows(
            s, AB_RESULTS, "ab_tests", "A/B test results", client_id,
            ("campaign", "step", "metric", "is_control desc", "variant"), latest="computed_at",
        )
        attribution = _client_rows(
            s, ATTRIBUTION_BY_CHANNEL, "attribution", "Attribution by channel", client_id, ("model", "channel")
        )
        dashboard_rows = _client_rows(s, CLIENT_DASHBOARD, "dashboard", "Dashboard", client_id, ())
    dashboard = Table(
        "dashboard", "Dashboard", CLIENT_DASHBOARD, ["metric", "value"],
        list(zip(dashboard_rows.columns, dashboard_rows.rows[0])) if dashboard_rows.rows else [],
        missing=dashboard_rows.missing,
    )
    headline = Headline(*totals, opt_outs=opt_outs)
    return Report(
        client_id=client_id,
        client_name=client.config.name,
        time_zone=client.time_zone,
        period_days=period_days,
        start_date=start,
        end_date=end,
        generated_at=now.astimezone(timezone.utc),
        headline=headline,
        daily=daily,
        campaigns=campaigns,
        ab_tests=ab_tests,
        attribution=attribution,
        dashboard=dashboard,
        notes=notes,
    )


# ---------------------------------------------------------------------------------------------
# formatting


def fmt_int(value: Any) -> str:
    return "—" if value is None else f"{int(value):,}"


def fmt_pct(value: Any, digits: int = 1) -> str:
    return "—" if value is None else f"{float(value) * 100:.{digits}f}%"


def fmt_cell(column: str, value: Any) -> str:
    """A value as the report shows it, by its column's name: ``_cents`` as money, rates (fractions)
    and ``pct`` (percent) as percentages, counts with thousands separators."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float, Decimal)):
        words = column.lower().split("_")
        if words[-1] == "cents":
            return f"${float(value) / 100:,.2f}"
        if "rate" in words or column.startswith("ci_"):
            return fmt_pct(value)
        if "pct" in words or "percent" in words:
            return f"{float(value):.1f}%"
        if column in ("p_value", "z"):
            return f"{float(value):.3f}"
        if isinstance(value, int) or (isinstance(value, Decimal) and value == value.to_integral_value()):
            return f"{int(value):,}"
        return f"{float(value):,.2f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def headline_markdown(report: Report) -> str:
    """The headline numbers as a Markdown table (Dagster materialization metadata)."""
    lines = ["| metric | value |", "|---|---|"]
    lines += [f"| {label} | {value} |" for label, value in report.headline.items()]
    return "\n".join(lines)


def default_output(client_id: str, fmt: str, day: date) -> Path:
    """``./<client>-report-<date>.<ext>``; CSV is a folder ``./<client>-report-<date>-csv/``."""
    stem = f"{client_id}-report-{day.isoformat()}"
    return Path(f"{stem}-csv" if fmt == "csv" else f"{stem}.{fmt}")


# ---------------------------------------------------------------------------------------------
# charts (matplotlib, without pyplot: no global state, safe in a long-lived process)


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    draw: Callable[[Any], None] | None  # fills a matplotlib Figure; None: no data yet
    bars: int = 0  # rows of a horizontal chart: its height grows with them

    @property
    def height(self) -> float:
        return max(3.0, 1.4 + 0.45 * self.bars)


BLUE, GREY, GREEN = "#2563eb", "#9ca3af", "#16a34a"


def _delivered_chart(report: Report) -> Callable[[Any], None] | None:
    if not report.daily.has_data:
        return None
    series = report.delivered_series()

    def draw(fig: Any) -> None:
        import matplotlib.dates as mdates

        ax = fig.subplots()
        days = [d for d, _, _ in series]
        ax.bar(days, [dl for _, _, dl in series], color=BLUE, label="delivered", width=0.8)
        ax.plot(days, [s for _, s, _ in series], color=GREY, marker="o", markersize=3, label="sent")
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel("messages")
        ax.legend(frameon=False)
        fig.autofmt_xdate()

    return draw


def _campaign_chart(report: Report) -> Callable[[Any], None] | None:
    rows = [r for r in report.campaigns.records() if r["response_rate"] is not None]
    if not rows:
        return None

    def draw(fig: Any) -> None:
        from matplotlib.ticker import PercentFormatter

        ax = fig.subplots()
        names = [r["campaign"] for r in rows][::-1]
        rates = [r["response_rate"] for r in rows][::-1]
        ax.barh(names, rates, color=BLUE)
        for y, rate in enumerate(rates):
            ax.annotate(fmt_pct(rate), (rate, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_xlim(0, max(max(rates) * 1.25, 0.05))
        ax.set_xlabel("response rate")

    return draw


def _ab_chart(report: Report) -> Callable[[Any], None] | None:
    table = report.ab_tests
    needed = ("campaign", "step", "variant", "rate")
    if not table.has_data or any(c not in table.columns for c in needed):
        return None
    rows = [r for r in table.records() if r["rate"] is not None]
    if not rows:
        return None

    def draw(fig: Any) -> None:
        from matplotlib.ticker import PercentFormatter

        ax = fig.subplots()
        rows_shown = rows[::-1]
        for y, r in enumerate(rows_shown):
            low = r.get("ci_low") if r.get("ci_low") is not None else r["rate"]
            high = r.get("ci_high") if r.get("ci_high") is not None else r["rate"]
            color = GREY if r.get("is_control") else GREEN if r.get("verdict") == "winner" else BLUE
            ax.errorbar(
                r["rate"], y, xerr=[[r["rate"] - low], [high - r["rate"]]],
                fmt="o", color=color, capsize=4,
            )
        ax.set_yticks(
            range(len(rows_shown)),
            [f"{r['campaign']} · {r['step']} · {r['variant']}" + (" (control)" if r.get("is_control") else "")
             for r in rows_shown],
        )
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        metric = rows[0].get("metric")
        ax.set_xlabel(f"{metric} rate with 95% interval" if metric else "rate with 95% interval")
        ax.set_ylim(-0.7, len(rows_shown) - 0.3)

    return draw


def _attribution_chart(report: Report) -> Callable[[Any], None] | None:
    table = report.attribution
    value_column = table.column(*CONVERSION_COLUMNS)
    if not table.has_data or value_column is None or "channel" not in table.columns:
        return None
    records = table.records()
    channels = sorted({str(r["channel"]) for r in records})
    models = sorted({str(r.get("model", "all")) for r in records})
    values = {(str(r.get("model", "all")), str(r["channel"])): float(r[value_column] or 0) for r in records}

    def draw(fig: Any) -> None:
        ax = fig.subplots()
        height = 0.8 / len(models)
        palette = ["#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2"]
        for i, model in enumerate(models):
            ys = [c + i * height - 0.4 + height / 2 for c in range(len(channels))]
            ax.barh(ys, [values.get((model, ch), 0.0) for ch in channels], height=height,
                    color=palette[i % len(palette)], label=model)
        ax.set_yticks(range(len(channels)), channels)
        ax.set_xlabel("conversions credited")
        ax.legend(frameon=False, fontsize=8, title="model", title_fontsize=8)

    return draw


def charts(report: Report) -> list[Chart]:
    attribution_channel = report.attribution.column("channel")
    channels = {r[attribution_channel] for r in report.attribution.records()} if attribution_channel else set()
    return [
        Chart("delivered", "Delivered over time", _delivered_chart(report)),
        Chart("response_by_campaign", "Response rate by campaign", _campaign_chart(report), len(report.campaigns.rows)),
        Chart("ab_tests", "A/B test results", _ab_chart(report), len(report.ab_tests.rows)),
        Chart("attribution", "Attribution by channel", _attribution_chart(report), 2 * len(channels)),
    ]


# sized for a phone first: a 6-inch figure scaled to a 360-pixel screen keeps 10-point text legible
CHART_STYLE = {"font.size": 10, "axes.spines.top": False, "axes.spines.right": False}


def _figure(chart: Chart, width: float = 6.0, height: float | None = None) -> Any:
    import matplotlib
    from matplotlib.figure import Figure

    assert chart.draw is not None
    with matplotlib.rc_context(CHART_STYLE):
        fig = Figure(figsize=(width, height or chart.height), layout="constrained")
        chart.draw(fig)
    return fig


def chart_svg(chart: Chart) -> str:
    """The chart as an inline ``<svg>`` that scales with its container."""
    import matplotlib

    fig = _figure(chart)
    buffer = io.StringIO()
    # text stays text (small, selectable); a salt per chart keeps element ids unique across the
    # charts of one page and the output identical from run to run
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": f"herald-{chart.key}"}):
        fig.savefig(buffer, format="svg")
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r'(<svg[^>]*?)\s+width="[^"]*"\s+height="[^"]*"', r"\1", svg, count=1)
    return svg.replace("<svg", f'<svg role="img" aria-label="{chart.title}" class="chart"', 1)


# ---------------------------------------------------------------------------------------------
# renderers


def render_html(report: Report) -> str:
    """One self-contained page: charts are inline SVG, styles inline; fluid on a phone."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape
    from markupsafe import Markup

    env = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=select_autoescape(["html", "j2"]))
    sections = []
    for chart, table in zip(charts(report), [report.daily, report.campaigns, report.ab_tests, report.attribution]):
        sections.append({
            "title": chart.title,
            "svg": Markup(chart_svg(chart)) if chart.draw else None,
            "table": table,
        })
    return env.get_template("client_report.html.j2").render(
        report=report, sections=sections, dashboard=report.dashboard, no_data=NO_DATA, period=_period_text(report)
    )


def _table_page(pdf: Any, title: str, table: Table, rows_per_page: int = 32) -> None:
    from matplotlib.figure import Figure

    chunks = [table.rows[i:i + rows_per_page] for i in range(0, len(table.rows), rows_per_page)] or [[]]
    for n, chunk in enumerate(chunks):
        fig = Figure(figsize=(8.27, 11.69))
        fig.text(0.06, 0.95, title + (f" (continued {n + 1})" if n else ""), fontsize=14, weight="bold")
        fig.text(0.06, 0.925, f"source: {table.source}", fontsize=8, color="#555")
        if not chunk:
            fig.text(0.06, 0.88, NO_DATA, fontsize=11)
        else:
            ax = fig.add_axes((0.04, 0.05, 0.92, 0.86))
            ax.axis("off")
            cells = [[text for text, _ in row] for row in Table(
                table.key, table.title, table.source, table.columns, chunk).formatted_rows()]
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
        fig.text(0.06, 0.925, _period_text(report), fontsize=9, color="#555")
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
                fig = _figure(chart, 8.27, max(5.0, chart.height))
                fig.suptitle(chart.title, fontsize=13, weight="bold")
            pdf.savefig(fig)
        for table in report.tables:
            _table_page(pdf, table.title, table)
    return path


def _excel_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(timezone.utc).replace(tzinfo=None)
    if isinstance(value, (list, dict, tuple)):
        return str(value)
    return value


def render_xlsx(report: Report, path: Path) -> Path:
    """A workbook with a sheet per table: summary, daily, campaigns, ab_tests, attribution, dashboard."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    book = Workbook()
    book.remove(book.active)
    for table in [report.summary_table(), *report.tables]:
        sheet = book.create_sheet(table.key)
        if not table.has_data:
            sheet.append([NO_DATA, f"source: {table.source}"])
            continue
        sheet.append(table.columns)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in table.rows:
            sheet.append([_excel_value(v) for v in row])
        for column in sheet.columns:
            width = max(len(str(c.value)) if c.value is not None else 0 for c in column)
            sheet.column_dimensions[column[0].column_letter].width = min(max(width + 2, 10), 50)
        sheet.freeze_panes = "A2"
    book.save(path)
    return path


def render_csv(report: Report, path: Path) -> Path:
    """A folder with one CSV per table: summary.csv, daily.csv, campaigns.csv, ab_tests.csv,
    attribution.csv, dashboard.csv. Raw values (rates as fractions); a mart with no data
    gives a file with a single ``note`` column saying so."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    for table in [report.summary_table(), *report.tables]:
        with open(folder / f"{table.key}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            if table.has_data:
                writer.writerow(table.columns)
                writer.writerows(["" if v is None else v for v in row] for row in table.rows)
            else:
                writer.writerows([["note"], [f"{NO_DATA} ({table.source})"]])
    return folder


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


def _period_text(report: Report) -> str:
    return (
        f"{report.start_date:%b %d, %Y} – {report.end_date:%b %d, %Y} ({report.period_days} days, "
        f"{report.time_zone}) · generated {report.generated_at:%Y-%m-%d %H:%M} UTC"
    )
