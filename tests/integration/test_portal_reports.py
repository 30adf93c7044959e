"""The portal's Reports and billing page through HTTP (FastAPI's test client on the real app), on
DuckDB (read from the published snapshot) and on PostgreSQL (live): the client report downloads
as HTML, PDF and XLSX made by the report's own code, for the signed-in user's client only, with
its name and its figures; each download is audited; a bad format or period is a 400 page that
names it; the credit balance and the transactions, newest first, 50 a page, never another
client's."""

from __future__ import annotations

import html
import io
import re
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from herald.clock import utcnow
from herald.portal.audit import query
from herald.portal.reads import publish_snapshot
from herald.warehouse.connection import Warehouse
from herald.web.app import create_app
from herald.web.portal import PREFIX
from tests.conftest import ENGINES
from tests.integration.portal_support import cheap_argon2, engine_url, made_warehouse, portal_env  # noqa: F401
from tests.integration.test_portal_web import add, client_routes, sign_in, store

A, B = "bright_smiles_dental", "lakeside_realty"
NAME_A, NAME_B = "Bright Smiles Dental", "Lakeside Realty"
SENT_A, DELIVERED_A, FAILED_A = 7, 5, 1  # A's messages in the last days (B has 3, all delivered)
ENTRIES_A = 60  # credit ledger rows: a purchase then 59 debits → two pages of 50
DELIVERIES = ("message_key varchar(64), client_id varchar(64), campaign varchar(64), channel varchar(8), "
              "sent_at timestamp, failed_at timestamp, delivered_at timestamp, final_status varchar(16)")  # fmt: skip
TRANSACTIONS = ("entry_id varchar(80), client_id varchar(64), kind varchar(16), amount decimal(18, 4), "
                "message_key varchar(64), note varchar(200), actor varchar(64), created_at timestamp, "
                "balance_after decimal(18, 4)")  # fmt: skip


def fill(warehouse: Warehouse) -> None:
    """Hand-made ``marts.deliveries`` and ``marts.credit_transactions`` for two clients."""
    now = utcnow().replace(microsecond=0)
    with warehouse.session() as s:
        s.execute("create schema if not exists marts")
        s.execute(f"create table marts.deliveries ({DELIVERIES})")
        s.execute(f"create table marts.credit_transactions ({TRANSACTIONS})")
        rows = []
        for i in range(SENT_A):
            at = now - timedelta(days=1, minutes=i)
            status = "delivered" if i < DELIVERED_A else "failed" if i < DELIVERED_A + FAILED_A else "sent"
            rows.append((f"a-{i}", A, "appointment_reminder", "sms", at, at if status == "failed" else None,
                         at if status == "delivered" else None, status))  # fmt: skip
        rows += [(f"b-{i}", B, "new_listing", "sms", now - timedelta(days=2), None, now, "delivered") for i in range(3)]
        for r in rows:
            s.execute("insert into marts.deliveries values (?, ?, ?, ?, ?, ?, ?, ?)", list(r))
        balance = Decimal(0)
        for i in range(ENTRIES_A):
            amount = Decimal(100) if i == 0 else Decimal("-0.75")
            balance += amount
            s.execute(
                "insert into marts.credit_transactions values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [f"e-{i:03d}", A, "purchase" if i == 0 else "debit", amount, None if i == 0 else f"a-{i}",
                 "invoice 42" if i == 0 else f"sms, 1 segment(s) #{i}", "cli:ops", now - timedelta(hours=ENTRIES_A - i),
                 balance],
            )  # fmt: skip
        s.execute(
            "insert into marts.credit_transactions values ('b-1', ?, 'purchase', 999, null, 'secret-of-b', "
            "'cli:ops', ?, 999)",
            [B, now],
        )


@pytest.fixture(scope="module", params=ENGINES)
def portal(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    home = tmp_path_factory.mktemp(f"portal-reports-{request.param}")
    env = portal_env(home, "reports-secret", engine_url(request))
    settings, warehouse = made_warehouse(env, fill)  # on DuckDB the page reads its snapshot; not on PostgreSQL
    user, secret = add({"warehouse": warehouse}, "viewer", A)  # the least role: reports are for every role
    portal = {"app": create_app(settings, environ=env), "warehouse": warehouse, "engine": request.param,
              "settings": settings}  # fmt: skip
    portal["browser"], portal["user"] = sign_in(portal, user.email, secret), user
    yield portal


def audited(portal: dict[str, Any], action: str) -> list[Any]:
    with store(portal).session(read_only=True) as s:
        return query(s, user=portal["user"].email, action=action)


def test_the_route_matrix_of_test_portal_web_covers_the_reports_routes(portal: dict[str, Any]) -> None:
    routes = set(client_routes(portal["app"]))
    for path in ("reports", "reports/download"):
        assert ("GET", f"{PREFIX}/c/{{client_id}}/{path}") in routes, path


def test_the_page_shows_the_balance_and_the_transactions_newest_first_fifty_a_page(portal: dict[str, Any]) -> None:
    browser = portal["browser"]
    page = browser.get(f"{PREFIX}/c/{A}/reports")
    assert page.status_code == 200
    assert 'aria-current="page">Reports</a>' in page.text
    figures = dict(re.findall(r'data-figure="(\w+)">([^<]+)<', page.text))
    assert figures == {"balance": "55.75", "purchased": "100.00", "spent": "44.25"}  # 100 - 59 × 0.75
    entries = re.findall(r'data-entry="([^"]+)"', page.text)
    assert entries == [f"e-{i:03d}" for i in range(ENTRIES_A - 1, ENTRIES_A - 51, -1)]  # the 50 newest
    assert "60 in all, page 1 of 2" in page.text and 'rel="next"' in page.text
    older = browser.get(f"{PREFIX}/c/{A}/reports?page=2")
    assert re.findall(r'data-entry="([^"]+)"', older.text) == [f"e-{i:03d}" for i in range(9, -1, -1)]
    assert "invoice 42" in older.text and "Purchase" in older.text and "+100.00" in older.text
    assert "secret-of-b" not in page.text + older.text and "b-1" not in page.text + older.text
    # a page past the end shows the last one; a page that is not a number shows the first
    assert re.findall(r'data-entry="([^"]+)"', browser.get(f"{PREFIX}/c/{A}/reports?page=99").text)[0] == "e-009"
    assert browser.get(f"{PREFIX}/c/{A}/reports?page=x%27").status_code == 200
    assert f"{PREFIX}/c/{A}/reports" in [r.subject for r in audited(portal, "portal_view")]


def test_the_report_downloads_in_each_format_with_the_clients_name_and_figures(portal: dict[str, Any]) -> None:
    import fitz  # PyMuPDF
    from openpyxl import load_workbook

    browser = portal["browser"]
    got = {}
    for fmt in ("html", "pdf", "xlsx"):
        r = browser.get(f"{PREFIX}/c/{A}/reports/download", params={"format": fmt, "period": "30"})
        assert r.status_code == 200, r.text[:300]
        assert re.fullmatch(rf'attachment; filename="{A}-report-\d{{4}}-\d\d-\d\d\.{fmt}"',
                            r.headers["content-disposition"])  # fmt: skip
        got[fmt] = r
    assert got["pdf"].headers["content-type"] == "application/pdf" and got["pdf"].content.startswith(b"%PDF")
    assert NAME_A in got["html"].text and NAME_B not in got["html"].text
    # DuckDB: built from the snapshot, and the file says as of when; PostgreSQL: live
    assert ("Figures as of" in got["html"].text) == (portal["engine"] == "duckdb")
    with fitz.open(stream=got["pdf"].content, filetype="pdf") as document:
        text = " ".join(page.get_text() for page in document)
    assert NAME_A in text and NAME_B not in text and "30 days" in text
    book = load_workbook(io.BytesIO(got["xlsx"].content), read_only=True)
    summary = {row[0]: row[1] for row in book["summary"].iter_rows(min_row=2, values_only=True)}
    assert (summary["Client"], summary["Sent"], summary["Delivered"], summary["Failed"]) == (
        NAME_A, SENT_A, DELIVERED_A, FAILED_A)  # fmt: skip
    rows = audited(portal, "portal_report_downloaded")
    assert sorted(r.detail["format"] for r in rows[:3]) == ["html", "pdf", "xlsx"]
    assert {(r.client_id, r.detail["period_days"]) for r in rows} == {(A, 30)}


def test_the_period_choice_changes_the_report(portal: dict[str, Any]) -> None:
    from openpyxl import load_workbook

    r = portal["browser"].get(f"{PREFIX}/c/{A}/reports/download", params={"format": "xlsx", "period": "7"})
    book = load_workbook(io.BytesIO(r.content), read_only=True)
    summary = {row[0]: row[1] for row in book["summary"].iter_rows(min_row=2, values_only=True)}
    assert (summary["Period end"] - summary["Period start"]).days == 6


@pytest.mark.parametrize(
    ("params", "named"),
    [({"format": "docx", "period": "30"}, "Unknown report format 'docx'"),
     ({"format": "pdf", "period": "31"}, "Unknown period '31'"),
     ({"format": "pdf", "period": "<b>x</b>"}, "Unknown period '<b>x</b>'")],
)  # fmt: skip
def test_a_bad_choice_is_a_400_page_naming_it_and_nothing_is_downloaded(
    portal: dict[str, Any], params: dict[str, str], named: str
) -> None:
    before = len(audited(portal, "portal_report_downloaded"))
    r = portal["browser"].get(f"{PREFIX}/c/{A}/reports/download", params=params)
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/html")
    assert "Nothing was downloaded" in r.text and named in html.unescape(r.text) and "<b>" not in r.text
    assert "content-disposition" not in r.headers
    assert len(audited(portal, "portal_report_downloaded")) == before


def test_another_clients_report_and_credits_are_not_found(portal: dict[str, Any]) -> None:
    for path in ("reports", "reports?page=2", "reports/download?format=pdf&period=30"):
        r = portal["browser"].get(f"{PREFIX}/c/{B}/{path}")
        assert r.status_code == 404 and NAME_B not in r.text and "secret-of-b" not in r.text


def test_a_client_without_credits_is_shown_as_unmetered(portal: dict[str, Any]) -> None:
    user, secret = add(portal, "staff", "northfield_college", email=f"nf-{uuid.uuid4().hex[:6]}@example.com")
    page = sign_in(portal, user.email, secret).get(f"{PREFIX}/c/northfield_college/reports")
    assert page.status_code == 200 and 'id="unmetered"' in page.text and "data-entry" not in page.text


def test_a_table_named_twice_in_the_snapshot_list_is_copied_once(portal: dict[str, Any]) -> None:
    """The pages each add the tables they read to PORTAL_TABLES; two pages may name one table."""
    info = publish_snapshot(portal["settings"].warehouse, tables=("marts.deliveries", "marts.deliveries"))
    if portal["engine"] != "duckdb":  # PostgreSQL's pages read live: nothing is published
        assert info is None
        return
    assert info is not None and info.tables == ("marts.deliveries",)
    publish_snapshot(portal["settings"].warehouse)  # the full snapshot again, for the other tests
