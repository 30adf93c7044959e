"""The client report's charts, drawn with matplotlib without pyplot (no global state, safe in a
long-lived process). A chart with nothing to draw has ``draw=None`` and its section says so."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from herald.reports.client_report.format import fmt_pct, label
from herald.reports.client_report.model import Report

# the attribution mart's credited-conversions column, under the names it may carry
CONVERSION_COLUMNS = ("conversions", "conversions_credited", "credit")


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    draw: Callable[[Any], None] | None  # fills a matplotlib Figure; None: no data yet
    bars: int = 0  # rows of a horizontal chart: its height grows with them

    @property
    def height(self) -> float:
        """Inches: a time series 3; a horizontal chart grows with its bars (a single bar stays low)."""
        return max(1.9, 1.2 + 0.45 * self.bars) if self.bars else 3.0


BLUE, GREY, GREEN = "#2563eb", "#9ca3af", "#16a34a"


def _delivered_chart(report: Report) -> Callable[[Any], None] | None:
    if not report.daily.has_data:
        return None
    series = report.delivered_series()

    def draw(fig: Any) -> None:
        import matplotlib.dates as mdates

        ax = fig.subplots()
        days = [d for d, _, _ in series]
        ax.bar(days, [dl for _, _, dl in series], color=BLUE, label="Delivered", width=0.8)
        ax.plot(days, [s for _, s, _ in series], color=GREY, marker="o", markersize=3, label="Sent")
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))
        ax.yaxis.get_major_locator().set_params(integer=True)
        # counts start at 0 (matplotlib centres an all-zero series on 0, showing negative counts)
        ax.set_ylim(bottom=0, top=max([1, *(s for _, s, _ in series), *(dl for _, _, dl in series)]) * 1.1)
        ax.set_ylabel("Messages")
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
        names = [label(str(r["campaign"])) for r in rows][::-1]
        rates = [r["response_rate"] for r in rows][::-1]
        ax.barh(names, rates, color=BLUE)
        for y, rate in enumerate(rates):
            ax.annotate(fmt_pct(rate), (rate, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_xlim(0, max(max(rates) * 1.25, 0.05))
        ax.set_xlabel("Response rate (replies ÷ sent)")

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
                r["rate"],
                y,
                xerr=[[r["rate"] - low], [high - r["rate"]]],
                fmt="o",
                color=color,
                capsize=4,
            )
        ax.set_yticks(
            range(len(rows_shown)),
            [
                f"{label(str(r['campaign']))} · {r['step']} · {r['variant']}"
                + (" (control)" if r.get("is_control") else "")
                for r in rows_shown
            ],
        )
        ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        metric = rows[0].get("metric")
        ax.set_xlabel(f"{label(str(metric))} rate, 95% interval" if metric else "Rate, 95% interval")
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
            ax.barh(
                ys,
                [values.get((model, ch), 0.0) for ch in channels],
                height=height,
                color=palette[i % len(palette)],
                label=label(model),
            )
        ax.set_yticks(range(len(channels)), [label(ch) for ch in channels])
        ax.set_xlabel("Conversions credited")
        ax.legend(
            frameon=False,
            fontsize=8,
            title="Attribution model",
            title_fontsize=8,
            loc="upper left",
            bbox_to_anchor=(1.0, 1.0),
        )

    return draw


def charts(report: Report) -> list[Chart]:
    attribution_channel = report.attribution.column("channel")
    channels = {r[attribution_channel] for r in report.attribution.records()} if attribution_channel else set()
    return [
        Chart("delivered", "Messages per day", _delivered_chart(report)),
        Chart("response_by_campaign", "Response rate by campaign", _campaign_chart(report), len(report.campaigns.rows)),
        Chart("ab_tests", "A/B test results", _ab_chart(report), len(report.ab_tests.rows)),
        Chart("attribution", "Attribution by channel", _attribution_chart(report), 2 * len(channels)),
    ]


# sized for a phone first: a 6-inch figure scaled to a 360-pixel screen keeps 10-point text legible
CHART_STYLE = {"font.size": 10, "axes.spines.top": False, "axes.spines.right": False}


def figure(chart: Chart, width: float = 6.0, height: float | None = None) -> Any:
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

    fig = figure(chart)
    buffer = io.StringIO()
    # text stays text (small, selectable); a salt per chart keeps element ids unique across the
    # charts of one page and the output identical from run to run
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": f"herald-{chart.key}"}):
        # no creation date in the SVG's metadata: it would differ on every run
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r'(<svg[^>]*?)\s+width="[^"]*"\s+height="[^"]*"', r"\1", svg, count=1)
    return svg.replace("<svg", f'<svg role="img" aria-label="{chart.title}" class="chart"', 1)
