"""The client report over a real warehouse, once per engine: hand-made outbox rows go through the
real ``marts.deliveries`` and ``analytics.client_dashboard`` models (one dbt build), the other
marts are hand-made tables. Every number the report shows equals SQL over those marts (written
here independently of the report), the report and the dashboard agree on delivered, failed and
the delivery rate, no internal name reaches the page, a rate without a denominator reads "not
available yet", the college's funnel and the clinic's confirmations have their sections, and no
PDF page but the last is mostly blank."""

from __future__ import annotations

import csv
import html
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from herald.config import Deployment
from herald.reports.client_report import (
    NO_DATA,
    NOT_AVAILABLE,
    ReportError,
    build_report,
    render_csv,
    render_html,
    render_pdf,
    render_xlsx,
)
from herald.reports.client_report.queries import utc_bounds
from herald.settings import Settings
from herald.warehouse.connection import Warehouse
from tests.conftest import ENGINES
from tests.dbt_harness import LOADED_AT, Built, MartBuild, build_marts, failed_nodes, outbox_row

CLIENT = "bright_smiles_dental"  # America/Chicago; a clinic (appointment reminders)
COLLEGE = "northfield_college"  # America/New_York; funnel events
NOW = datetime(2025, 6, 30, 15, 0, tzinfo=UTC)  # 10:00 in Chicago: the period is June 1–30
AS_OF = NOW.replace(tzinfo=None)
PERIOD = (date(2025, 6, 1), date(2025, 6, 30))
BOUNDS = (datetime(2025, 6, 1, 5, 0), datetime(2025, 7, 1, 5, 0))  # June 1–30 in Chicago, as naive UTC
CAMPAIGN = "appointment_reminder"


def sent(key: str, at: datetime, **values: Any) -> tuple[Any, ...]:
    number = f"+1312555{sum(map(ord, key)):04d}"
    values = {"campaign": CAMPAIGN, "to_address": number, "provider": "twilio", **values}
    return outbox_row(key, client_id=CLIENT, status="sent", provider_message_id=f"id-{key}", sent_at=at,
                      send_after=at, attempts=1, **values)  # fmt: skip


def delivered(key: str, at: datetime, **values: Any) -> tuple[Any, ...]:
    return sent(key, at - timedelta(minutes=1), provider_status="delivered", provider_status_at=at, delivered_at=at,
                **values)  # fmt: skip


OUTBOX = [
    delivered("d-1", datetime(2025, 6, 10, 15)),
    delivered("d-2", datetime(2025, 6, 10, 16)),
    delivered("d-3", datetime(2025, 6, 20, 15)),
    sent("s-1", datetime(2025, 6, 29, 15)),  # accepted, no receipt yet: awaiting
    sent("s-2", datetime(2025, 6, 29, 16)),
    sent("u-1", datetime(2025, 6, 11, 15), provider_status="undelivered", provider_status_at=datetime(2025, 6, 11, 16)),
    sent("b-1", datetime(2025, 6, 12, 15), channel="email", to_address="pat@example.com", provider="resend",
         provider_status="bounced", provider_status_at=datetime(2025, 6, 12, 16), bounced_at=datetime(2025, 6, 12, 16)),
    outbox_row("f-1", client_id=CLIENT, campaign=CAMPAIGN, status="failed", attempts=1, status_reason="invalid number",
               send_after=datetime(2025, 6, 13, 15), updated_at=datetime(2025, 6, 13, 15)),  # refused by the provider
    delivered("r-1", datetime(2025, 6, 15, 15), campaign="_replies"),  # Herald's answer: a conversation
    delivered("old", datetime(2025, 5, 20, 15)),  # before the period
]  # fmt: skip

PERFORMANCE = [  # client_id, campaign, send_date, replied
    (CLIENT, CAMPAIGN, date(2025, 6, 10), 2),
    (CLIENT, CAMPAIGN, date(2025, 6, 20), 1),
    (CLIENT, "_replies", date(2025, 6, 15), 1),  # never a campaign
    (CLIENT, CAMPAIGN, date(2025, 5, 20), 1),  # before the period
]
COMPLIANCE = [
    (CLIENT, date(2025, 6, 12), "opt_outs", "stop", 3),
    (CLIENT, date(2025, 6, 30), "opt_outs", "misspelling", 2),
    (CLIENT, date(2025, 5, 2), "opt_outs", "stop", 5),  # before the period
    (CLIENT, date(2025, 6, 12), "help_requests", "all", 4),
]
CONFIRMATIONS = [  # client_id, contact_id, response, is_confirmed, responded_at
    (CLIENT, "contact-d-1", "confirmed", True, datetime(2025, 6, 10, 18)),
    (CLIENT, "contact-d-2", "reschedule_requested", False, datetime(2025, 6, 10, 19)),
    (CLIENT, "contact-d-3", "confirmed", True, datetime(2025, 6, 20, 18)),
    (CLIENT, "contact-old", "confirmed", True, datetime(2025, 5, 20, 18)),  # before the period
]
CONVERSATIONS = [  # conversation_id, client_id, direction, kind, occurred_at
    ("t-1", CLIENT, "outbound", "automated", datetime(2025, 6, 10, 15)),
    ("t-1", CLIENT, "inbound", "inbound", datetime(2025, 6, 10, 18)),
    ("t-1", CLIENT, "outbound", "reply", datetime(2025, 6, 10, 18, 1)),
    ("t-2", CLIENT, "inbound", "inbound", datetime(2025, 6, 11, 18)),
    ("t-2", CLIENT, "inbound", "inbound", datetime(2025, 6, 11, 19)),
    ("t-2", CLIENT, "outbound", "manual", datetime(2025, 6, 11, 20)),
    ("t-3", CLIENT, "outbound", "automated", datetime(2025, 6, 20, 15)),  # nobody wrote
]
ENGAGEMENT = [  # message_key, client_id, campaign, event, occurred_at
    ("d-1", CLIENT, CAMPAIGN, "clicked", datetime(2025, 6, 10, 17)),
    ("d-1", CLIENT, CAMPAIGN, "clicked", datetime(2025, 6, 10, 17, 5)),  # the same message again
    ("d-2", CLIENT, CAMPAIGN, "opened", datetime(2025, 6, 10, 17)),
    ("d-3", CLIENT, CAMPAIGN, "clicked", datetime(2025, 6, 21, 9)),
]
AB_COLUMNS = [("client_id", "varchar"), ("campaign", "varchar"), ("step", "varchar"), ("variant", "varchar"),
              ("is_control", "boolean"), ("sent", "bigint"), ("replied", "bigint"), ("metric", "varchar"),
              ("rate", "double precision"), ("ci_low", "double precision"), ("ci_high", "double precision"),
              ("p_value", "double precision"), ("verdict", "varchar"), ("computed_at", "timestamp")]  # fmt: skip
AB_ROWS = [
    (CLIENT, CAMPAIGN, "reminder", "friendly", True, 200, 18, "replied", 0.09, 0.06, 0.13, None, "control",
     datetime(2025, 6, 30, 6)),
    (CLIENT, CAMPAIGN, "reminder", "brief", False, 200, 26, "replied", 0.13, 0.09, 0.18, 0.2, "not enough data",
     datetime(2025, 6, 30, 6)),
    (CLIENT, CAMPAIGN, "reminder", "brief", False, 5, 1, "replied", 0.2, 0.03, 0.6, None, "not enough data",
     datetime(2025, 6, 29, 6)),  # an older computation: not shown
]  # fmt: skip
ATTRIBUTION = [
    (CLIENT, "first_touch", "sms", 7.0, 700.0),
    (CLIENT, "linear", "sms", 6.5, 650.0),
    (CLIENT, "linear", "email", 3.5, 350.0),
]

BUILD = MartBuild(
    name="client-report",
    models=("deliveries", "credit_transactions", "client_dashboard"),
    sources=(
        "herald_ops.clients",
        "herald_ops.outbox",
        "herald_raw.inbound_messages",
        "herald_ops.provider_event_processing",
        "herald_ops.inbound_processing",
        "herald_ops.suppressions",
        "herald_ops.credit_ledger",
        "herald_ops.credit_alerts",
    ),
    hand_made={
        "analytics.campaign_performance_daily": [
            ("client_id", "varchar"),
            ("campaign", "varchar"),
            ("send_date", "date"),
            ("replied", "bigint"),
        ],
        "analytics.compliance_daily": [
            ("client_id", "varchar"),
            ("activity_date", "date"),
            ("metric", "varchar"),
            ("detail", "varchar"),
            ("count", "bigint"),
        ],
        "marts.appointment_confirmations": [
            ("client_id", "varchar"),
            ("contact_id", "varchar"),
            ("response", "varchar"),
            ("is_confirmed", "boolean"),
            ("responded_at", "timestamp"),
        ],
        "marts.conversation_messages": [
            ("conversation_id", "varchar"),
            ("client_id", "varchar"),
            ("direction", "varchar"),
            ("kind", "varchar"),
            ("occurred_at", "timestamp"),
        ],
        "marts.engagement_events": [
            ("message_key", "varchar"),
            ("client_id", "varchar"),
            ("campaign", "varchar"),
            ("event", "varchar"),
            ("occurred_at", "timestamp"),
        ],
        "analytics.ab_test_results": AB_COLUMNS,
        "analytics.attribution_by_channel": [
            ("client_id", "varchar"),
            ("model", "varchar"),
            ("channel", "varchar"),
            ("conversions_credited", "double precision"),
            ("revenue", "double precision"),
        ],
    },
    rows={
        "herald_ops.clients": [(CLIENT, "Bright Smiles Dental", "healthcare", "America/Chicago", "US", LOADED_AT)],
        "herald_ops.outbox": OUTBOX,
        "analytics.campaign_performance_daily": PERFORMANCE,
        "analytics.compliance_daily": COMPLIANCE,
        "marts.appointment_confirmations": CONFIRMATIONS,
        "marts.conversation_messages": CONVERSATIONS,
        "marts.engagement_events": ENGAGEMENT,
        "analytics.ab_test_results": AB_ROWS,
        "analytics.attribution_by_channel": ATTRIBUTION,
    },
    dbt_args=("--vars", json.dumps({"dashboard_as_of": f"{AS_OF:%Y-%m-%d %H:%M:%S}"})),
    command="run",  # the models' data tests run in their own modules
)


@pytest.fixture(scope="module", params=ENGINES)
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    with build_marts(request, tmp_path_factory, BUILD) as result:
        yield result


def text_of(page: str) -> str:
    """The page's visible text, whitespace collapsed (what a reader sees)."""
    body = re.sub(r"<(svg|style).*?</\1>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body)))


def one(warehouse: Warehouse, sql: str, params: list[Any]) -> tuple[Any, ...]:
    with warehouse.session(read_only=True) as s:
        _, rows = s.query(sql, params)
    return tuple(int(v) if v is not None and not isinstance(v, float) else v for v in rows[0])


DELIVERED = "(delivered_at is not null or final_status in ('delivered', 'read'))"


def mart_numbers(warehouse: Warehouse) -> dict[str, Any]:
    """The period's numbers straight from the marts, written independently of the report."""
    period = [CLIENT, *BOUNDS]
    sent_, delivered_, failed_ = one(
        warehouse,
        f"select count(*), sum(case when {DELIVERED} then 1 else 0 end), "
        f"sum(case when not {DELIVERED} and final_status in ('failed', 'undelivered', 'bounced') then 1 else 0 end) "
        "from marts.deliveries where client_id = ? and coalesce(sent_at, failed_at) >= ? "
        "and coalesce(sent_at, failed_at) < ? and campaign not in ('_replies', '_manual')",
        period,
    )
    (replied,) = one(warehouse, "select sum(replied) from analytics.campaign_performance_daily where client_id = ? "
                     "and send_date between ? and ? and campaign = ?", [CLIENT, *PERIOD, CAMPAIGN])  # fmt: skip
    (opt_outs,) = one(warehouse, "select sum(count) from analytics.compliance_daily where client_id = ? "
                      "and metric = 'opt_outs' and activity_date between ? and ?", [CLIENT, *PERIOD])  # fmt: skip
    (clicked,) = one(warehouse, "select count(distinct message_key) from marts.engagement_events where client_id = ? "
                     "and event = 'clicked' and occurred_at >= ? and occurred_at < ?", period)  # fmt: skip
    confirmed, reschedule = one(
        warehouse,
        "select sum(case when is_confirmed then 1 else 0 end), "
        "sum(case when response = 'reschedule_requested' then 1 else 0 end) from marts.appointment_confirmations "
        "where client_id = ? and responded_at >= ? and responded_at < ?",
        period,
    )
    (reminded,) = one(warehouse, "select count(distinct contact_id) from marts.deliveries where client_id = ? "
                      "and campaign = ? and sent_at >= ? and sent_at < ?", [CLIENT, CAMPAIGN, *BOUNDS])  # fmt: skip
    return {
        "sent": sent_, "delivered": delivered_, "failed": failed_, "replied": replied, "opt_outs": opt_outs,
        "clicked": clicked, "confirmed": confirmed, "reschedule_requested": reschedule, "reminded": reminded,
    }  # fmt: skip


def test_the_period_in_utc() -> None:
    assert utc_bounds(*PERIOD, "America/Chicago") == BOUNDS


def test_the_marts_build(built: Built) -> None:
    assert failed_nodes(built) == {}
    assert {r["unique_id"] for r in built.run["results"]} == {
        "model.herald.deliveries", "model.herald.credit_transactions", "model.herald.client_dashboard",
    }  # fmt: skip


def test_every_number_equals_the_marts(built: Built, deployment: Deployment) -> None:
    report = build_report(built.warehouse, deployment, CLIENT, 30, NOW)
    assert (report.start_date, report.end_date) == PERIOD and report.kind == "clinic"
    marts = mart_numbers(built.warehouse)
    assert marts == {
        "sent": 8, "delivered": 3, "failed": 3, "replied": 3, "opt_outs": 5, "clicked": 2, "confirmed": 2,
        "reschedule_requested": 1, "reminded": 7,
    }  # fmt: skip
    h = report.headline
    assert (h.sent, h.delivered, h.failed, h.replied, h.opt_outs, h.clicked) == tuple(
        marts[k] for k in ("sent", "delivered", "failed", "replied", "opt_outs", "clicked")
    )
    assert h.awaiting == 2  # s-1, s-2: accepted, no receipt yet
    assert h.delivery_rate == pytest.approx(3 / 6)  # delivered / (delivered + failed)
    assert h.response_rate == pytest.approx(3 / 8)

    # the daily table sums to the headline; days are the client's local dates
    days = {r["day"]: (r["sent"], r["delivered"], r["failed"], r["replied"]) for r in report.daily.records()}
    assert days[date(2025, 6, 10)] == (2, 2, 0, 2)
    assert [sum(v[i] for v in days.values()) for i in range(4)] == [8, 3, 3, 3]
    assert sum(d for _, _, d in report.delivered_series()) == 3

    # no pseudo-campaign is a campaign
    assert [r["campaign"] for r in report.campaigns.records()] == [CAMPAIGN]
    (campaign,) = report.campaigns.records()
    assert (campaign["delivered"], campaign["failed"], campaign["delivery_rate"], campaign["clicked"]) == (3, 3, 0.5, 2)

    appointments = dict(report.section("appointments").metrics)
    for key in ("confirmed", "reschedule_requested", "reminded"):
        assert appointments[key] == marts[key]
    assert appointments["confirmation_rate"] == pytest.approx(2 / 7)
    assert dict(report.section("conversations").metrics) == {
        "conversations": 2, "messages_in": 3, "answers_sent": 2, "automated_answers": 1,
    }  # fmt: skip


def test_the_report_and_the_dashboard_agree(built: Built, deployment: Deployment) -> None:
    """The dashboard's 30 days end at NOW and the period's at midnight: the same messages here."""
    report = build_report(built.warehouse, deployment, CLIENT, 30, NOW)
    board = dict(report.dashboard.rows)
    assert (board["delivered_30d"], board["failed_30d"]) == (report.headline.delivered, report.headline.failed)
    assert board["delivery_rate_30d"] == pytest.approx(report.headline.delivery_rate)
    assert board["delivered_24h"] == 0  # s-1 and s-2 have no receipt: not delivered


def test_the_html_shows_labels_not_internals(built: Built, deployment: Deployment) -> None:
    report = build_report(built.warehouse, deployment, CLIENT, 30, NOW)
    page = render_html(report)
    text = text_of(page)
    for phrase in (
        "Sent 8", "Delivered 3", "Failed 3", "Awaiting receipt 2", "Delivery rate 50.0%", "Replied 3",
        "Response rate 37.5%", "Clicked 2", "Opt-outs 5", "Jun 01, 2025 – Jun 30, 2025",
        "Appointments", "Confirmed 2", "Asked to reschedule 1", "Confirmation rate 28.6%",
        "Conversations 2", "Appointment reminder 8 3 3 50.0% 3 37.5% 2",
        "Delivered, last 30 days 3", "Delivery rate, last 30 days 50.0%",
    ):  # fmt: skip
        assert phrase in text, phrase
    assert "_replies" not in page and "source:" not in text
    assert not re.search(r"\b(analytics|marts|herald_ops)\.", text)
    snake = set(re.findall(r"\b[a-z]+(?:_[a-z0-9]+)+\b", text))
    assert snake == set(), snake
    charts = re.findall(r'<svg role="img" aria-label="([^"]+)"', page)
    assert charts == ["Messages per day", "Response rate by campaign", "A/B test results", "Attribution by channel"]


def page_fill(pdf: Path) -> list[tuple[int, float]]:
    """Per page: characters of text, and how far down the page its lowest text or image reaches (0–1)."""
    import fitz  # PyMuPDF

    fills = []
    with fitz.open(pdf) as document:
        for page in document:
            bottoms = [b[3] for b in page.get_text("blocks")] + [i["bbox"][3] for i in page.get_image_info()]
            footer = page.rect.height * 0.95  # the page number line
            content = [b for b in bottoms if b < footer]
            fills.append((len(page.get_text()), max(content, default=0) / page.rect.height))
    return fills


def test_the_pdf_has_no_mostly_blank_page(built: Built, deployment: Deployment, tmp_path: Path) -> None:
    import fitz  # PyMuPDF

    report = build_report(built.warehouse, deployment, CLIENT, 30, NOW)
    pdf = render_pdf(report, tmp_path / "report.pdf")
    fills = page_fill(pdf)
    assert 1 <= len(fills) <= 4, fills
    for chars, reach in fills[:-1]:
        assert chars > 200 and reach > 0.6, fills
    with fitz.open(pdf) as document:
        first = document[0].get_text()
        assert "Delivered" in first and "Awaiting receipt" in first and "Appointments" in first
        everything = " ".join(page.get_text() for page in document)
    assert "_replies" not in everything and "source:" not in everything and "delivered_30d" not in everything


def test_a_short_table_is_never_split_across_pages(built: Built, deployment: Deployment, tmp_path: Path) -> None:
    import fitz  # PyMuPDF

    report = build_report(built.warehouse, deployment, CLIENT, 30, NOW)
    with fitz.open(render_pdf(report, tmp_path / "report.pdf")) as document:
        pages = [page.get_text() for page in document]
    # the dashboard's first and last rows on one page, under its heading
    (page,) = [p for p in pages if "Delivered, last 24 hours" in p]
    assert "As of (UTC)" in page and "Right now" in page


def test_a_long_table_splits_with_its_header_repeated(tmp_path: Path, deployment: Deployment) -> None:
    """A year of daily rows: the table goes on over pages, each page starting with the header."""
    import fitz  # PyMuPDF

    from herald.reports.client_report import Headline, Report, Table

    days = [(date(2025, 1, 1) + timedelta(days=i), 10, 8, 1, 2) for i in range(200)]
    daily = Table("daily", "Messages per day", "marts.deliveries", ["day", "sent", "delivered", "failed", "replied"],
                  days)  # fmt: skip
    empty = Table("x", "x", "x", [], [], missing=True)
    report = Report(CLIENT, "Bright Smiles Dental", "America/Chicago", 200, date(2025, 1, 1), date(2025, 7, 19),
                    NOW, Headline(2000, 1600, 200, 400, 0), daily, empty, empty, empty, empty)  # fmt: skip
    pdf = render_pdf(report, tmp_path / "long.pdf")
    fills = page_fill(pdf)
    for chars, reach in fills[:-1]:
        assert chars > 200 and reach > 0.6, fills
    with fitz.open(pdf) as document:
        continued = [page.get_text() for page in document if "Messages per day (continued)" in page.get_text()]
    assert len(continued) >= 3
    assert all("Day" in t and "Delivered" in t for t in continued)


def make_marts(warehouse: Warehouse) -> None:
    """Two delivered messages, one awaiting its receipt, today (for the CLI and the asset)."""
    today = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)
    make_deliveries(warehouse, [("a", "delivered", today, today), ("b", "delivered", today, today),
                                ("c", "sent", today, None)])  # fmt: skip


def make_deliveries(warehouse: Warehouse, rows: list[tuple[Any, ...]]) -> None:
    """A hand-made marts.deliveries with the columns the report reads: (key, status, sent_at, delivered_at)."""
    with warehouse.session() as s:
        s.execute("create schema if not exists marts")
        s.execute("drop table if exists marts.deliveries")
        s.execute("create table marts.deliveries (message_key varchar, client_id varchar, campaign varchar, "
                  "contact_id varchar, final_status varchar, sent_at timestamp, delivered_at timestamp, "
                  "failed_at timestamp, bounced_at timestamp)")  # fmt: skip
        s.insert_rows(
            "marts.deliveries",
            ["message_key", "client_id", "campaign", "contact_id", "final_status", "sent_at", "delivered_at"],
            [(key, CLIENT, CAMPAIGN, f"c-{key}", status, at, done) for key, status, at, done in rows],
        )


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_nothing_final_yet_reads_not_available(warehouse: Warehouse, deployment: Deployment) -> None:
    """Messages accepted, no receipt yet: delivered 0 and the delivery rate "not available yet"."""
    make_deliveries(warehouse, [("a", "sent", datetime(2025, 6, 29, 15), None),
                                ("b", "queued", datetime(2025, 6, 29, 15), None)])  # fmt: skip
    report = build_report(warehouse, deployment, CLIENT, 30, NOW)
    h = report.headline
    assert (h.sent, h.delivered, h.failed, h.awaiting, h.delivery_rate) == (2, 0, 0, 2, None)
    text = text_of(render_html(report))
    assert "Delivered 0" in text and f"Delivery rate {NOT_AVAILABLE}" in text
    assert f"Appointment reminder 2 0 0 {NOT_AVAILABLE}" in text


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_the_college_report_shows_its_funnel(warehouse: Warehouse, deployment: Deployment) -> None:
    """A college that sent nothing yet still has a report: its funnel stages and conversions."""
    start, end = utc_bounds(date(2025, 6, 1), date(2025, 6, 30), "America/New_York")
    with warehouse.session() as s:
        for schema in ("marts", "analytics"):
            s.execute(f"create schema if not exists {schema}")
        s.execute("create table marts.funnel_events (event_id varchar, client_id varchar, contact_id varchar, "
                  "to_stage varchar, occurred_at timestamp)")  # fmt: skip
        s.insert_rows(
            "marts.funnel_events",
            ["event_id", "client_id", "contact_id", "to_stage", "occurred_at"],
            [(f"i{n}", COLLEGE, f"p{n}", "inquiry", datetime(2025, 6, 5)) for n in range(5)]
            + [(f"a{n}", COLLEGE, f"p{n}", "applied", datetime(2025, 6, 9)) for n in range(3)]
            + [("e0", COLLEGE, "p0", "enrolled", datetime(2025, 6, 20)), ("x", COLLEGE, None, "applied", start),
               ("early", COLLEGE, "p9", "inquiry", start - timedelta(seconds=1)),
               ("late", COLLEGE, "p9", "inquiry", end)],
        )  # fmt: skip
        s.execute("create table analytics.conversions (conversion_id varchar, client_id varchar, kind varchar, "
                  "occurred_at timestamp)")  # fmt: skip
        s.insert_rows(
            "analytics.conversions",
            ["conversion_id", "client_id", "kind", "occurred_at"],
            [("c0", COLLEGE, "funnel_event", datetime(2025, 6, 20)), ("c1", COLLEGE, "funnel_event", end)],
        )
        s.execute("create table analytics.attributed_conversions (conversion_id varchar, client_id varchar, "
                  "model varchar, converted_at timestamp)")  # fmt: skip
        s.insert_rows(
            "analytics.attributed_conversions",
            ["conversion_id", "client_id", "model", "converted_at"],
            [("c0", COLLEGE, "first_touch", datetime(2025, 6, 20)), ("c0", COLLEGE, "linear", datetime(2025, 6, 20))],
        )
    report = build_report(warehouse, deployment, COLLEGE, 30, NOW)
    assert report.kind == "college"
    funnel = report.section("funnel")
    assert dict(funnel.metrics) == {"stage_changes": 10, "conversions": 1, "after_message": 1}
    assert funnel.table.rows == [("inquiry", 5, 5), ("applied", 4, 3), ("enrolled", 1, 1)]
    text = text_of(render_html(report))
    assert "Stage changes 10 Conversions 1 After a message 1" in text
    assert "Inquiry 5 5 Applied 4 3 Enrolled 1 1" in text
    assert f"Messages per day {NO_DATA}" in text


def test_no_marts_at_all_still_renders(warehouse: Warehouse, deployment: Deployment, tmp_path: Path) -> None:
    report = build_report(warehouse, deployment, CLIENT, 7, NOW)
    assert report.headline.delivered is None and report.headline.opt_outs is None
    text = text_of(render_html(report))
    assert "Delivered —" in text and f"Messages per day {NO_DATA}" in text
    assert f"Delivery rate {NOT_AVAILABLE}" in text
    render_pdf(report, tmp_path / "empty.pdf")
    render_xlsx(report, tmp_path / "empty.xlsx")


def test_xlsx_and_csv(built: Built, deployment: Deployment, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    report = build_report(built.warehouse, deployment, CLIENT, 30, NOW)
    book = load_workbook(render_xlsx(report, tmp_path / "report.xlsx"))
    assert book.sheetnames == ["summary", "daily", "campaigns", "ab_tests", "attribution", "dashboard"]
    summary = {row[0]: row[1] for row in book["summary"].iter_rows(min_row=2, values_only=True)}
    assert summary["Delivered"] == 3 and summary["Opt-outs"] == 5 and summary["Delivery rate"] == 0.5
    assert [c.value for c in book["daily"][1]] == ["Day", "Sent", "Delivered", "Failed", "Replied"]
    assert sum(row[2] for row in book["daily"].iter_rows(min_row=2, values_only=True)) == 3

    folder = render_csv(report, tmp_path / "csv")
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["summary.csv", "daily.csv", "campaigns.csv", "ab_tests.csv", "attribution.csv", "dashboard.csv",
         "appointments_summary.csv", "conversations_summary.csv"]
    )  # fmt: skip
    # a clinic's section: its key numbers, as the page shows them
    with open(folder / "appointments_summary.csv", newline="") as handle:
        appointments = {r["metric"]: r["value"] for r in csv.DictReader(handle)}
    section = report.section("appointments")
    assert section is not None
    assert appointments == {name: "" if value is None else str(value) for name, value in section.metrics}
    with open(folder / "campaigns.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["campaign"], r["delivered"], r["failed"]) for r in rows] == [(CAMPAIGN, "3", "3")]


def test_unknown_client(warehouse: Warehouse, deployment: Deployment) -> None:
    with pytest.raises(ReportError, match="unknown client 'nobody'; configured: bright_smiles_dental"):
        build_report(warehouse, deployment, "nobody", 30, NOW)


def cli_env(tmp_path: Path) -> dict[str, str]:
    from tests.conftest import CONFIG_DIR

    return {"HERALD_HOME": str(tmp_path / "home"), "HERALD_CONFIG_DIR": str(CONFIG_DIR), "HERALD_WAREHOUSE_URL": ""}


def herald(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    command = Path(sys.executable).parent / "herald"
    return subprocess.run(
        [str(command), *args], env={**os.environ, **env}, cwd=cwd, capture_output=True, text=True, timeout=180
    )


def test_cli_end_to_end(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    warehouse = Warehouse(Settings.from_env(env).warehouse)
    warehouse.ensure_schema()
    make_marts(warehouse)

    out = tmp_path / "out" / "report.html"
    done = herald(env, "report", CLIENT, "--period", "30d", "--format", "html", "--output", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"wrote {out} (html): {CLIENT}, ")
    assert out.read_text().count("<svg") >= 2

    for fmt, name in (("pdf", "r.pdf"), ("xlsx", "r.xlsx"), ("csv", "r-csv")):
        done = herald(env, "report", CLIENT, "--format", fmt, "--output", str(tmp_path / name))
        assert done.returncode == 0, done.stderr
        assert (tmp_path / name).exists()
    assert (tmp_path / "r-csv" / "daily.csv").exists()

    # the default name, in the working directory: <client>-report-<its local date>.html
    done = herald(env, "report", CLIENT, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (written,) = tmp_path.glob(f"{CLIENT}-report-*.html")
    assert done.stdout.startswith(f"wrote {written.name} (html)")

    done = herald(env, "report", "nobody")
    assert done.returncode == 1 and "error: unknown client 'nobody'; configured: bright_smiles_dental" in done.stderr
    done = herald(env, "report", CLIENT, "--period", "a month")
    assert done.returncode == 2
    assert "--period must be a number of days or weeks such as 30d or 4w, not 'a month'" in done.stderr
    done = herald(env, "report", CLIENT, "--format", "docx")
    assert done.returncode == 2 and "--format must be one of html, pdf, xlsx, csv, not 'docx'" in done.stderr


def test_report_asset_writes_and_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from assets.reports.client_reports import build_client_report_asset
    from assets.transform.dbt import load_dbt_models
    from resources import HeraldConfigResource, WarehouseResource

    for key, value in cli_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    warehouse = Warehouse(Settings.from_env().warehouse)
    warehouse.ensure_schema()
    make_marts(warehouse)

    asset = build_client_report_asset(load_dbt_models("duckdb"), CLIENT)
    result = dg.materialize(
        [asset], resources={"warehouse": WarehouseResource(), "herald_config": HeraldConfigResource()}
    )
    assert result.success
    (materialization,) = result.asset_materializations_for_node(asset.op.name)
    assert materialization.asset_key == dg.AssetKey(["reports", CLIENT])
    metadata = materialization.metadata
    path = Path(metadata["path"].value)
    assert path.parent == tmp_path / "home" / "reports" / CLIENT and path.suffix == ".html"
    assert "<svg" in path.read_text()
    assert metadata["url"].value == path.as_uri()
    assert "| Delivered |" in metadata["headline"].value
