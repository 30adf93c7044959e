"""The client report over hand-built marts: its numbers equal SQL over the same tables on both
engines, the HTML has one chart per section and the numbers, a missing mart reads "no data yet",
PDF/XLSX/CSV render, the CLI writes the file, and the Dagster asset links to it."""

from __future__ import annotations

import csv
import html
import os
import re
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import pytest

from herald.config import Deployment
from herald.reports.client_report import (
    NO_DATA,
    ReportError,
    build_report,
    render_csv,
    render_html,
    render_pdf,
    render_xlsx,
)
from herald.settings import Settings
from herald.warehouse.connection import Warehouse
from tests.conftest import ENGINES

CLIENT = "bright_smiles_dental"  # America/Chicago
NOW = datetime(2025, 6, 30, 15, 0, tzinfo=UTC)  # 10:00 in Chicago: the period is June 1–30
PERIOD = (date(2025, 6, 1), date(2025, 6, 30))

PERFORMANCE_COLUMNS = (
    "client_id varchar, campaign varchar, step varchar, variant varchar, channel varchar, send_date date, "
    "planned bigint, excluded bigint, deferred bigint, enqueued bigint, held bigint, sent bigint, failed bigint, "
    "suppressed bigint, cancelled bigint, sms_segments_sent bigint, delivery_rate double precision, "
    "delivered bigint, replied bigint, response_rate double precision"
)
# client, campaign, step, variant, channel, send_date, sent, failed, delivered, replied
PERFORMANCE_ROWS = [
    (CLIENT, "reminders", "1", "A", "sms", date(2025, 6, 10), 1000, 20, 900, 90),
    (CLIENT, "reminders", "1", "B", "sms", date(2025, 6, 11), 350, 10, 300, 45),
    (CLIENT, "recall", "1", "A", "email", date(2025, 6, 20), 40, 0, 34, 2),
    (CLIENT, "recall", "1", "A", "email", date(2025, 6, 21), 0, 0, 0, 0),  # excluded only
    (CLIENT, "reminders", "1", "A", "sms", date(2025, 5, 31), 500, 0, 500, 50),  # before the period
    ("lakeside_realty", "listings", "1", "A", "sms", date(2025, 6, 10), 77, 0, 77, 7),  # another client
]
AB_COLUMNS = (
    "client_id varchar, campaign varchar, step varchar, variant varchar, is_control boolean, sent bigint, "
    "delivered bigint, replied bigint, converted bigint, metric varchar, rate double precision, "
    "ci_low double precision, ci_high double precision, z double precision, p_value double precision, "
    "verdict varchar, winner varchar, computed_at timestamp"
)
AB_ROWS = [
    (
        CLIENT,
        "reminders",
        "1",
        "A",
        True,
        1000,
        900,
        90,
        0,
        "replied",
        0.09,
        0.074,
        0.109,
        None,
        None,
        "control",
        "B",
        datetime(2025, 6, 30, 6),
    ),
    (
        CLIENT,
        "reminders",
        "1",
        "B",
        False,
        350,
        300,
        45,
        0,
        "replied",
        0.1286,
        0.0975,
        0.1676,
        2.05,
        0.04,
        "winner",
        "B",
        datetime(2025, 6, 30, 6),
    ),
    (
        CLIENT,
        "recall",
        "1",
        "A",
        True,
        5,
        5,
        1,
        0,
        "replied",
        0.2,
        0.036,
        0.624,
        None,
        None,
        "not enough data",
        None,
        datetime(2025, 6, 29, 6),
    ),  # an older computation: not shown
]


def make_marts(warehouse: Warehouse, with_optional: bool = True) -> None:
    """The marts the report reads, built by hand; ``with_optional=False`` leaves out the ones
    still being built (attribution, dashboard) and leaves A/B results empty."""
    with warehouse.session() as s:
        s.execute("create schema if not exists analytics")
        for table in (
            "campaign_performance_daily",
            "compliance_daily",
            "ab_test_results",
            "attribution_by_channel",
            "client_dashboard",
        ):
            s.execute(f"drop table if exists analytics.{table}")
        s.execute(f"create table analytics.campaign_performance_daily ({PERFORMANCE_COLUMNS})")
        for client, campaign, step, variant, channel, day, sent, failed, delivered, replied in PERFORMANCE_ROWS:
            s.execute(
                "insert into analytics.campaign_performance_daily values (?, ?, ?, ?, ?, ?, 0, 1, 0, ?, 0, ?, ?, 0, 0, 0, "
                "?, ?, ?, ?)",
                [
                    client,
                    campaign,
                    step,
                    variant,
                    channel,
                    day,
                    sent + failed,
                    sent,
                    failed,
                    sent / (sent + failed) if sent + failed else None,
                    delivered,
                    replied,
                    replied / delivered if delivered else None,
                ],
            )
        s.execute(
            "create table analytics.compliance_daily (client_id varchar, activity_date date, metric varchar, "
            "detail varchar, count bigint)"
        )
        s.insert_rows(
            "analytics.compliance_daily",
            ["client_id", "activity_date", "metric", "detail", "count"],
            [
                (CLIENT, date(2025, 6, 12), "opt_outs", "stop", 3),
                (CLIENT, date(2025, 6, 30), "opt_outs", "misspelling", 2),
                (CLIENT, date(2025, 5, 2), "opt_outs", "stop", 5),  # before the period
                (CLIENT, date(2025, 6, 12), "help_requests", "all", 4),
                ("lakeside_realty", date(2025, 6, 12), "opt_outs", "stop", 9),
            ],
        )
        s.execute(f"create table analytics.ab_test_results ({AB_COLUMNS})")
        if not with_optional:
            return
        for row in AB_ROWS:
            s.execute(f"insert into analytics.ab_test_results values ({', '.join('?' * len(row))})", list(row))
        s.execute(
            "create table analytics.attribution_by_channel (client_id varchar, model varchar, channel varchar, "
            "conversions_credited double precision, revenue double precision, conversions_touched bigint)"
        )
        s.insert_rows(
            "analytics.attribution_by_channel",
            ["client_id", "model", "channel", "conversions_credited", "revenue", "conversions_touched"],
            [
                (CLIENT, "first_touch", "sms", 7.0, 700.0, 7),
                (CLIENT, "first_touch", "email", 3.0, 300.0, 3),
                (CLIENT, "linear", "sms", 6.5, 650.0, 8),
                (CLIENT, "linear", "email", 3.5, 350.0, 5),
            ],
        )
        s.execute(
            "create table analytics.client_dashboard (client_id varchar, balance_cents bigint, delivered_24h bigint, "
            "delivered_7d bigint, delivered_30d bigint, response_pct double precision, opt_outs_30d bigint)"
        )
        s.execute("insert into analytics.client_dashboard values (?, 125000, 12, 340, 1234, 11.1, 5)", [CLIENT])


def text_of(page: str) -> str:
    """The page's visible text, whitespace collapsed (what a reader sees)."""
    body = re.sub(r"<svg.*?</svg>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body)))


def sql_totals(warehouse: Warehouse) -> tuple:
    """The period's totals straight from the mart, written independently of the report."""
    with warehouse.session(read_only=True) as s:
        _, rows = s.query(
            "select sum(sent), sum(delivered), sum(failed), sum(replied) from analytics.campaign_performance_daily "
            "where client_id = ? and send_date >= ? and send_date <= ?",
            [CLIENT, *PERIOD],
        )
        opt_outs = s.scalar(
            "select sum(count) from analytics.compliance_daily where client_id = ? and metric = 'opt_outs' "
            "and activity_date >= ? and activity_date <= ?",
            [CLIENT, *PERIOD],
        )
    return (*(int(v) for v in rows[0]), int(opt_outs))


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_numbers_equal_sql_over_the_marts(warehouse: Warehouse, deployment: Deployment) -> None:
    make_marts(warehouse)
    report = build_report(warehouse, deployment, CLIENT, 30, NOW)

    assert (report.start_date, report.end_date) == PERIOD
    h = report.headline
    assert (h.sent, h.delivered, h.failed, h.replied, h.opt_outs) == sql_totals(warehouse) == (1390, 1234, 30, 137, 5)
    assert h.delivery_rate == pytest.approx(1390 / 1420)
    assert h.response_rate == pytest.approx(137 / 1234)
    assert [(r["send_date"], r["delivered"]) for r in report.daily.records()] == [
        (date(2025, 6, 10), 900),
        (date(2025, 6, 11), 300),
        (date(2025, 6, 20), 34),
        (date(2025, 6, 21), 0),
    ]
    series = report.delivered_series()
    assert len(series) == 30 and sum(d for _, _, d in series) == 1234
    rates = {r["campaign"]: r["response_rate"] for r in report.campaigns.records()}
    assert rates == {"recall": pytest.approx(2 / 34), "reminders": pytest.approx(135 / 1200)}
    # the latest A/B computation only, control first
    assert [(r["campaign"], r["variant"], r["verdict"]) for r in report.ab_tests.records()] == [
        ("reminders", "A", "control"),
        ("reminders", "B", "winner"),
    ]
    assert [(r["model"], r["channel"], r["conversions_credited"]) for r in report.attribution.records()] == [
        ("first_touch", "email", 3.0),
        ("first_touch", "sms", 7.0),
        ("linear", "email", 3.5),
        ("linear", "sms", 6.5),
    ]
    assert dict(report.dashboard.rows)["delivered_30d"] == 1234


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_missing_marts_read_no_data_yet(warehouse: Warehouse, deployment: Deployment) -> None:
    make_marts(warehouse, with_optional=False)
    report = build_report(warehouse, deployment, CLIENT, 30, NOW)
    assert report.attribution.missing and report.dashboard.missing
    assert not report.ab_tests.missing and not report.ab_tests.has_data

    page = render_html(report)
    text = text_of(page)
    for title in ("A/B test results", "Attribution by channel", "Dashboard"):
        assert f"{title} {NO_DATA}" in text
    assert page.count("<svg") == 2  # delivered over time, response rate by campaign
    assert "Delivered 1,234" in text


def test_no_marts_at_all_still_renders(warehouse: Warehouse, deployment: Deployment, tmp_path: Path) -> None:
    with warehouse.session() as s:
        for table in ("campaign_performance_daily", "compliance_daily", "ab_test_results"):
            s.execute(f"drop table if exists analytics.{table}")
    report = build_report(warehouse, deployment, CLIENT, 7, NOW)
    assert report.headline.delivered is None and report.headline.opt_outs is None
    text = text_of(render_html(report))
    assert "Delivered —" in text and f"Delivered over time {NO_DATA}" in text
    render_pdf(report, tmp_path / "empty.pdf")
    render_xlsx(report, tmp_path / "empty.xlsx")


def test_html_has_charts_and_numbers(warehouse: Warehouse, deployment: Deployment) -> None:
    make_marts(warehouse)
    page = render_html(build_report(warehouse, deployment, CLIENT, 30, NOW))

    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "overflow-x: auto" in page
    assert "<script" not in page and "<link" not in page and 'src="http' not in page  # self-contained
    charts = re.findall(r'<svg role="img" aria-label="([^"]+)"', page)
    assert charts == ["Delivered over time", "Response rate by campaign", "A/B test results", "Attribution by channel"]
    assert page.count("<svg") == 4
    text = text_of(page)
    for phrase in (
        "Sent 1,390",
        "Delivered 1,234",
        "Failed 30",
        "Replied 137",
        "Delivery rate 97.9%",
        "Response rate 11.1%",
        "Opt-outs 5",
        "Jun 01, 2025 – Jun 30, 2025",
    ):
        assert phrase in text
    # tables: the campaign response rates, the A/B interval, the dashboard's own numbers
    assert "reminders 1,350 1,200 135 11.2%" in text
    assert "B no 350 300 45 0 replied 12.9% 9.8% 16.8%" in text
    assert "delivered_30d 1,234" in text


def test_pdf_xlsx_csv(warehouse: Warehouse, deployment: Deployment, tmp_path: Path) -> None:
    import fitz  # PyMuPDF
    from openpyxl import load_workbook

    make_marts(warehouse)
    report = build_report(warehouse, deployment, CLIENT, 30, NOW)

    pdf = render_pdf(report, tmp_path / "report.pdf")
    with fitz.open(pdf) as document:
        assert document.page_count >= 1 + 4 + 5
        assert "Delivered" in document[0].get_text() and "1,234" in document[0].get_text()
        pixmap = document[1].get_pixmap(dpi=60)  # the first chart
        png = tmp_path / "chart.png"
        pixmap.save(png)
        assert png.stat().st_size > 1000
        samples = pixmap.samples
        assert len({samples[i : i + 3] for i in range(0, len(samples), 3)}) > 5  # not a blank page

    book = load_workbook(render_xlsx(report, tmp_path / "report.xlsx"))
    assert book.sheetnames == ["summary", "daily", "campaigns", "ab_tests", "attribution", "dashboard"]
    summary = {row[0]: row[1] for row in book["summary"].iter_rows(min_row=2, values_only=True)}
    assert summary["delivered"] == 1234 and summary["opt_outs"] == 5
    assert [c.value for c in book["daily"][1]] == ["send_date", "sent", "delivered", "failed", "replied"]
    assert sum(row[2] for row in book["daily"].iter_rows(min_row=2, values_only=True)) == 1234

    folder = render_csv(report, tmp_path / "csv")
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["summary.csv", "daily.csv", "campaigns.csv", "ab_tests.csv", "attribution.csv", "dashboard.csv"]
    )
    with open(folder / "campaigns.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["campaign"], r["delivered"]) for r in rows] == [("recall", "34"), ("reminders", "1200")]


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
