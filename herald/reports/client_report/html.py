"""The client report as one self-contained HTML page (inline SVG charts, inline styles), readable
on a phone."""

from __future__ import annotations

from pathlib import Path

from herald.reports.client_report.charts import chart_svg, charts
from herald.reports.client_report.model import NO_DATA, Report

TEMPLATES_DIR = Path(__file__).parent.parent / "templates"


def render_html(report: Report) -> str:
    """One self-contained page: charts are inline SVG, styles inline; fluid on a phone."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape
    from markupsafe import Markup

    env = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=select_autoescape(["html", "j2"]))
    sections = []
    for chart, table in zip(
        charts(report), [report.daily, report.campaigns, report.ab_tests, report.attribution], strict=True
    ):
        sections.append(
            {
                "title": chart.title,
                "svg": Markup(chart_svg(chart)) if chart.draw else None,
                "table": table,
            }
        )
    return env.get_template("client_report.html.j2").render(
        report=report, sections=sections, dashboard=report.dashboard, no_data=NO_DATA, period=report.period_text()
    )
