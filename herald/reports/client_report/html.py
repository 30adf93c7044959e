"""The client report as one self-contained HTML page (inline SVG charts, inline styles), readable
on a phone and printable (page-break rules keep a chart with its title and repeat table headers)."""

from __future__ import annotations

from pathlib import Path

from herald.reports.client_report.charts import chart_svg, charts
from herald.reports.client_report.format import NOT_AVAILABLE
from herald.reports.client_report.model import NO_DATA, Report

TEMPLATES_DIR = Path(__file__).parent.parent / "templates"

KIND_TITLES = {
    "clinic": "Appointments and reminders",
    "college": "Admissions funnel and messages",
    "listings": "Listings and buyer responses",
    "general": "Messages",
}


def render_html(report: Report) -> str:
    """One self-contained page: charts are inline SVG, styles inline; fluid on a phone."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape
    from markupsafe import Markup

    env = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=select_autoescape(["html", "j2"]))
    env.globals["zip"] = zip
    drawn = {c.key: c for c in charts(report)}

    def chart(key: str) -> dict | None:
        c = drawn.get(key)
        return {"title": c.title, "svg": Markup(chart_svg(c)) if c.draw else None} if c else None

    blocks = [
        {"title": "Messages per day", "chart": chart("delivered"), "table": report.daily},
        {"title": report.campaigns.title, "chart": chart("response_by_campaign"), "table": report.campaigns},
    ]
    return env.get_template("client_report.html.j2").render(
        report=report,
        subtitle=KIND_TITLES.get(report.kind, KIND_TITLES["general"]),
        blocks=blocks,
        sections=report.sections,
        ab=chart("ab_tests"),
        attribution=chart("attribution"),
        no_data=NO_DATA,
        not_available=NOT_AVAILABLE,
        period=report.period_text(),
    )
