"""The client report's pure parts: the period, number formatting, default file names, and the
HTML of a report built in memory (no warehouse)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from herald.reports.client_report import (
    LABELS,
    NO_DATA,
    NOT_AVAILABLE,
    Headline,
    Report,
    ReportError,
    Table,
    default_output,
    fmt_cell,
    headline_markdown,
    label,
    parse_period,
    render_html,
    write_report,
)


@pytest.mark.parametrize(
    ("value", "days"),
    [("30d", 30), ("30D", 30), ("7", 7), (" 4w ", 28), ("1d", 1), ("3660d", 3660)],
)
def test_period(value: str, days: int) -> None:
    assert parse_period(value) == days


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a month", "--period must be a number of days or weeks such as 30d or 4w, not 'a month'"),
        ("30m", "not '30m'"),
        ("", "not ''"),
        ("0d", "--period must be between 1 and 3660 days, not '0d' (0 days)"),
        ("600w", "(4200 days)"),
    ],
)
def test_bad_period(value: str, message: str) -> None:
    with pytest.raises(ReportError, match=re.escape(message)):
        parse_period(value)


@pytest.mark.parametrize(
    ("column", "value", "shown"),
    [
        ("sent", 1234, "1,234"),
        ("sent", Decimal(1234), "1,234"),
        ("credit_balance", Decimal("12.5000"), "12.50"),
        ("response_pct_30d", Decimal("12.0"), "12.0%"),
        ("response_pct_30d", 12, "12.0%"),
        ("response_rate", 0.2, "20.0%"),
        ("delivery_rate", 0.97887, "97.9%"),
        ("ci_low", 0.0975, "9.8%"),
        ("response_pct", 11.1, "11.1%"),
        ("p_value", 0.04123, "0.041"),
        ("revenue", 1234.5, "1,234.50"),
        ("balance_cents", 125000, "$1,250.00"),
        ("is_control", True, "yes"),
        ("rate", None, "not available yet"),
        ("sent", None, "—"),
        ("campaign", "open_house", "Open house"),
        ("channel", "sms", "SMS"),
        ("send_date", date(2025, 6, 1), "2025-06-01"),
        ("computed_at", datetime(2025, 6, 30, 6, 5, 9), "2025-06-30 06:05"),
        ("verdict", "not enough data", "not enough data"),
    ],
)
def test_cells(column: str, value: object, shown: str) -> None:
    assert fmt_cell(column, value) == shown


def test_default_output() -> None:
    day = date(2025, 6, 30)
    assert default_output("acme", "html", day) == Path("acme-report-2025-06-30.html")
    assert default_output("acme", "pdf", day) == Path("acme-report-2025-06-30.pdf")
    assert default_output("acme", "csv", day) == Path("acme-report-2025-06-30-csv")


def in_memory_report(with_data: bool) -> Report:
    source = "marts.deliveries"
    daily = Table(
        "daily",
        "Messages per day",
        source,
        ["day", "sent", "delivered", "failed", "replied"],
        [(date(2025, 6, 2), 12, 10, 1, 2)] if with_data else [],
    )
    campaigns = Table(
        "campaigns",
        "Campaigns",
        source,
        ["campaign", "sent", "delivered", "failed", "delivery_rate", "replied", "response_rate"],
        [("reminders", 12, 10, 1, 10 / 11, 2, 2 / 12)] if with_data else [],
    )
    ab = Table(
        "ab_tests",
        "A/B test results",
        "analytics.ab_test_results",
        ["campaign", "step", "variant", "is_control", "metric", "rate", "ci_low", "ci_high", "verdict"],
        [
            ("reminders", "1", "A", True, "replied", 0.2, 0.05, 0.5, "control"),
            ("reminders", "1", "B", False, "replied", 0.3, 0.1, 0.6, "not enough data"),
        ]
        if with_data
        else [],
    )
    attribution = Table(
        "attribution",
        "Attribution by channel",
        "analytics.attribution_by_channel",
        ["model", "channel", "conversions_credited", "revenue"],
        [("linear", "sms", 2.5, 100.0)] if with_data else [],
        missing=not with_data,
    )
    dashboard = Table("dashboard", "Right now", "analytics.client_dashboard", ["metric", "value"], [], missing=True)
    headline = Headline(12, 10, 1, 2, 0) if with_data else Headline(0, 0, 0, 0, 0)
    return Report(
        "acme",
        "Acme <Dental>",
        "America/Chicago",
        7,
        date(2025, 6, 1),
        date(2025, 6, 7),
        datetime(2025, 6, 7, 12, tzinfo=UTC),
        headline,
        daily,
        campaigns,
        ab,
        attribution,
        dashboard,
    )


def visible_text(page: str) -> str:
    body = re.sub(r"<(svg|style).*?</\1>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))


def test_html_with_data_has_one_chart_per_section() -> None:
    page = render_html(in_memory_report(True))
    labels = re.findall(r'<svg role="img" aria-label="([^"]+)"', page)
    assert labels == ["Messages per day", "Response rate by campaign", "A/B test results", "Attribution by channel"]
    assert "Acme &lt;Dental&gt;" in page and "<Dental>" not in page  # escaped
    assert page.count(NO_DATA) == 1  # the dashboard only
    # the chart is fluid: no fixed size on the root element
    root = re.search(r"<svg[^>]*>", page).group(0)
    assert 'width="' not in root and "viewBox" in root
    text = visible_text(page)
    assert "Delivery rate 90.9%" in text and "Reminders 12 10 1 90.9% 2 16.7%" in text
    assert "Awaiting receipt 1" in text  # 12 sent - 10 delivered - 1 failed


def test_html_without_data_says_so() -> None:
    page = render_html(in_memory_report(False))
    assert "<svg" not in page
    assert page.count(NO_DATA) == 5
    text = visible_text(page)
    assert "Delivered 0" in text
    assert f"Delivery rate {NOT_AVAILABLE}" in text and f"Response rate {NOT_AVAILABLE}" in text


def test_headline_definitions() -> None:
    h = Headline(sent=10, delivered=6, failed=2, replied=3, opt_outs=1)
    assert (h.awaiting, h.delivery_rate, h.response_rate) == (2, 6 / 8, 3 / 10)
    nothing_final = Headline(sent=5, delivered=0, failed=0, replied=0, opt_outs=0)
    assert nothing_final.delivery_rate is None and dict(nothing_final.items())["Delivery rate"] == NOT_AVAILABLE
    missing = Headline(None, None, None, None, None)
    assert dict(missing.items())["Delivered"] == "—" and missing.awaiting is None


@pytest.mark.parametrize(
    ("name", "shown"),
    [("delivered_24h", "Delivered, last 24 hours"), ("response_pct_30d", "Replied ÷ delivered, last 30 days"),
     ("open_house", "Open house"), ("delivery_rate", "Delivery rate")],
)  # fmt: skip
def test_labels(name: str, shown: str) -> None:
    assert label(name) == shown


def test_every_dashboard_column_has_a_label() -> None:
    from herald.reports.client_report.queries import DASHBOARD_COLUMNS

    assert all(name in LABELS for name in DASHBOARD_COLUMNS)


def test_headline_markdown_and_unknown_format(tmp_path: Path) -> None:
    report = in_memory_report(True)
    assert headline_markdown(report).splitlines()[:4] == [
        "| metric | value |",
        "|---|---|",
        "| Sent | 12 |",
        "| Delivered | 10 |",
    ]
    assert "| Delivery rate | 90.9% |" in headline_markdown(report)
    with pytest.raises(ReportError, match="--format must be one of html, pdf, xlsx, csv, not 'docx'"):
        write_report(report, "docx", tmp_path / "x.docx")


def test_a_chart_is_the_same_svg_on_every_run() -> None:
    from herald.reports.client_report.charts import Chart, chart_svg

    def draw(fig: Any) -> None:
        fig.add_subplot().bar(["sms", "email"], [3, 5])

    chart = Chart(key="delivered", title="Delivered by channel", draw=draw)
    first = chart_svg(chart)
    assert "<dc:date>" not in first
    assert chart_svg(chart) == first
