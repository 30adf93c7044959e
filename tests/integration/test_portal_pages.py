"""The portal's Packets and Contacts pages through HTTP (FastAPI's test client on the real app,
a real DuckDB warehouse with two clients' rows, the local drop zone): each page shows its
client's rows and never the other's, viewers cannot upload or block, a missing CSRF token
changes nothing, an upload lands a file and its checksum sidecar, block/unblock round trip, an
opt-out's unblock is refused with its message, rejects.csv is neutralised, hidden contact
details are masked; the contact search on PostgreSQL; screenshots in headless Chromium."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from herald.portal.audit import query
from herald.portal.reads import publish_snapshot, reader_for
from herald.settings import Settings
from herald.warehouse.connection import Warehouse
from herald.web.app import create_app
from herald.web.portal import PREFIX
from tests.integration.portal_support import cheap_argon2, made_warehouse, portal_env  # noqa: F401
from tests.integration.test_portal_data import HOSTILE, PHONE, fill
from tests.integration.test_portal_web import add, client_routes, csrf, sign_in, store

A, B = "bright_smiles_dental", "lakeside_realty"
MAX_UPLOAD = 4096
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(os.environ.get("HERALD_SHOTS_DIR", "/work/shots/portal-pages"))


def environment(home: Path, url: str = "") -> dict[str, str]:
    return portal_env(home, "pages-secret", url, HERALD_PORTAL_MAX_UPLOAD_BYTES=str(MAX_UPLOAD))


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("portal-pages")
    env = environment(home)
    settings, warehouse = made_warehouse(env, fill)
    return {"app": create_app(settings, environ=env), "warehouse": warehouse, "home": home, "settings": settings}


def browser_of(portal: dict[str, Any], role: str, client: str | None = A, **kw: Any) -> tuple[TestClient, Any]:
    user, secret = add(portal, role, client, **kw)
    return sign_in(portal, user.email, secret), user


def zone_files(portal: dict[str, Any]) -> list[str]:
    root = portal["home"] / "dropzone"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def audited(portal: dict[str, Any], user: Any, action: str = "portal_view") -> list[Any]:
    with store(portal).session(read_only=True) as s:
        return query(s, user=user.email, action=action)


def test_the_route_matrix_of_test_portal_web_covers_these_pages(portal: dict[str, Any]) -> None:
    routes = set(client_routes(portal["app"]))
    for path in ("packets", "packets/{packet_id}", "packets/{packet_id}/rejects.csv", "contacts",
                 "contacts/{contact_id}", "missed"):  # fmt: skip
        assert ("GET", f"{PREFIX}/c/{{client_id}}/{path}") in routes, path
    for path in ("packets", "contacts/{contact_id}/block", "contacts/{contact_id}/unblock"):
        assert ("POST", f"{PREFIX}/c/{{client_id}}/{path}") in routes, path


def test_the_packets_pages_show_the_clients_packets_timeline_rejects_and_receipt(portal: dict[str, Any]) -> None:
    browser, user = browser_of(portal, "staff")
    page = browser.get(f"{PREFIX}/c/{A}/packets")
    assert page.status_code == 200
    assert f'data-packet="{A}-p1"' in page.text and 'data-packet="a-new"' in page.text
    assert f"{B}-p2" not in page.text and f"{B}.csv" not in page.text
    # the finished packet has every step reached; the new one only "received"
    one = page.text.split(f'data-packet="{A}-p1"')[1].split("</section>")[0]
    assert re.findall(r'<li class="(\w+)" data-step="(\w+)"', one) == [
        ("done", s) for s in ("received", "verified", "landed", "validated", "mapped", "cleaned")
    ]
    new = page.text.split('data-packet="a-new"')[1].split("</section>")[0]
    assert [c for c, _ in re.findall(r'<li class="(\w+)" data-step="(\w+)"', new)] == ["done"] + ["todo"] * 5
    assert '<select id="packet_type" name="packet_type"' in page.text and ">appointments</option>" in page.text

    detail = browser.get(f"{PREFIX}/c/{A}/packets/{A}-p1")
    assert detail.status_code == 200
    rows = re.findall(r"<tr><td>(\d+)</td><td class=\"wrap\">([^<]*)</td></tr>", detail.text)
    assert [int(line) for line, _ in rows] == list(range(2, 2 + len(HOSTILE)))
    assert rows[0][1] == "=HYPERLINK(&#34;x&#34;) bad phone" and rows[1][1] == "bad phone"
    assert f"Reference: {A}-p1" in detail.text and "Rows rejected:    7" in detail.text  # the receipt
    assert "rejects.csv" in detail.text
    # another client's packet reads as nothing there, on every packet route
    for path in (f"packets/{B}-p2", f"packets/{B}-p2/rejects.csv", "packets/no-such-packet"):
        r = browser.get(f"{PREFIX}/c/{A}/{path}")
        assert r.status_code == 404 and f"{B}.csv" not in r.text and "bad phone" not in r.text
    from herald.portal.dashboard import FIGURES

    with portal["warehouse"].session() as s:  # no figures yet, but readable: the dashboard lists the packets
        s.execute("create schema if not exists analytics")
        s.execute(
            f"create table if not exists analytics.client_dashboard ({', '.join(f + ' varchar' for f in FIGURES)})"
        )
    publish_snapshot(portal["settings"].warehouse)  # as the dbt build that makes the mart does at its end
    board = browser.get(f"{PREFIX}/c/{A}/").text  # the dashboard's recent packets link to their pages
    assert f'href="{PREFIX}/c/{A}/packets/{A}-p1"' in board and f"{B}-p2" not in board
    assert [r.subject for r in audited(portal, user)][1:3] == [
        f"{PREFIX}/c/{A}/packets/{A}-p1", f"{PREFIX}/c/{A}/packets",
    ]  # fmt: skip


def test_rejects_csv_is_neutralised_and_leaves_raw_rows_out_for_hidden_details(portal: dict[str, Any]) -> None:
    browser, user = browser_of(portal, "viewer")
    r = browser.get(f"{PREFIX}/c/{A}/packets/{A}-p1/rejects.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == f'attachment; filename="{A}-p1-rejects.csv"'
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"), newline="")))
    assert rows[0] == ["line", "reason", "raw_text"]
    assert rows[1] == ["2", '\'=HYPERLINK("x") bad phone', "'=cmd|' /C calc'!A0"]
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows for cell in row)
    assert audited(portal, user)[0].subject == f"{PREFIX}/c/{A}/packets/{A}-p1/rejects.csv"
    hidden, _ = browser_of(portal, "staff", hide_contact_details=True)
    rows = list(csv.reader(io.StringIO(hidden.get(f"{PREFIX}/c/{A}/packets/{A}-p1/rejects.csv").content.decode(
        "utf-8-sig"), newline="")))  # fmt: skip
    assert rows[0] == ["line", "reason"] and len(rows) == 1 + len(HOSTILE)


def test_an_upload_lands_the_file_and_its_checksum_in_the_drop_zone(portal: dict[str, Any]) -> None:
    browser, user = browser_of(portal, "staff")
    page = browser.get(f"{PREFIX}/c/{A}/packets")
    body = b"first_name,phone\nAna,+13125550101\n"
    r = browser.post(f"{PREFIX}/c/{A}/packets", data={"csrf_token": csrf(page.text), "packet_type": "appointments"},
                     files={"file": ("C:\\Users\\me\\visits.csv", body, "text/csv")})  # fmt: skip
    assert r.status_code == 200 and "File received" in r.text
    assert "is in your drop zone" in r.text and "will appear in the packets list" in r.text
    path = f"{A}/incoming/appointments/visits.csv"
    assert path in zone_files(portal) and f"{path}.sha256" in zone_files(portal)
    root = portal["home"] / "dropzone"
    assert (root / path).read_bytes() == body
    assert hashlib.sha256(body).hexdigest() in (root / f"{path}.sha256").read_text()
    [row] = audited(portal, user, "portal_packet_uploaded")
    assert row.subject == path and row.detail["size_bytes"] == len(body) and row.client_id == A


@pytest.mark.parametrize(
    ("name", "content", "packet_type", "message"),
    [
        ("report.xlsx", b"a,b\n1,2\n", "appointments", "&#39;report.xlsx&#39; is not a CSV file"),
        ("sheet.csv", b"PK\x03\x04rest of a zip", "appointments", "not CSV text"),
        ("big.csv", b"a,b\n" + b"1,2\n" * MAX_UPLOAD, "appointments", "larger than the upload limit"),
        ("empty.csv", b"", "appointments", "is empty"),
        ("leads.csv", b"a,b\n1,2\n", "buyer_leads", "Unknown packet type &#39;buyer_leads&#39;"),  # B's type
    ],
)
def test_a_refused_upload_says_why_and_leaves_nothing(
    portal: dict[str, Any], name: str, content: bytes, packet_type: str, message: str
) -> None:
    browser, _ = browser_of(portal, "client_admin")
    before = zone_files(portal)
    token = csrf(browser.get(f"{PREFIX}/c/{A}/packets").text)
    r = browser.post(f"{PREFIX}/c/{A}/packets", data={"csrf_token": token, "packet_type": packet_type},
                     files={"file": (name, content, "application/octet-stream")})  # fmt: skip
    assert r.status_code == 400 and 'id="upload-error"' in r.text and message in r.text, r.text[:2000]
    assert zone_files(portal) == before


def test_a_viewer_sees_no_forms_and_cannot_upload_or_block(portal: dict[str, Any]) -> None:
    browser, _ = browser_of(portal, "viewer")
    page = browser.get(f"{PREFIX}/c/{A}/packets")
    assert page.status_code == 200 and 'id="upload"' not in page.text
    contact = browser.get(f"{PREFIX}/c/{A}/contacts/c-{A}")
    assert contact.status_code == 200 and 'id="block"' not in contact.text
    token = csrf(page.text)
    before = zone_files(portal)
    r = browser.post(f"{PREFIX}/c/{A}/packets", data={"csrf_token": token, "packet_type": "appointments"},
                     files={"file": ("v.csv", b"a,b\n1,2\n", "text/csv")})  # fmt: skip
    assert r.status_code == 403 and "Read-only access" in r.text and zone_files(portal) == before
    r = browser.post(f"{PREFIX}/c/{A}/contacts/c-{A}/block", data={"csrf_token": token, "channel": "email",
                                                                  "reason": "viewer tries"})  # fmt: skip
    assert r.status_code == 403 and "Read-only access" in r.text
    with portal["warehouse"].session(read_only=True) as s:
        assert s.scalar("select count(*) from herald_ops.suppressions where reason = 'manual_block' and note = ?",
                        ["viewer tries"]) == 0  # fmt: skip


def test_a_post_without_the_csrf_token_changes_nothing(portal: dict[str, Any]) -> None:
    browser, _ = browser_of(portal, "staff")
    before = zone_files(portal)
    r = browser.post(f"{PREFIX}/c/{A}/packets", data={"packet_type": "appointments"},
                     files={"file": ("x.csv", b"a,b\n1,2\n", "text/csv")})  # fmt: skip
    assert r.status_code == 403 and "Nothing was changed" in r.text and zone_files(portal) == before
    r = browser.post(f"{PREFIX}/c/{A}/contacts/c-{A}/block", data={"channel": "email", "reason": "no token"})
    assert r.status_code == 403 and "Nothing was changed" in r.text
    with portal["warehouse"].session(read_only=True) as s:
        assert s.scalar("select count(*) from herald_ops.suppressions where note = 'no token'") == 0


def test_block_then_unblock_round_trip_on_the_contact_page(portal: dict[str, Any]) -> None:
    browser, user = browser_of(portal, "staff")
    page = browser.get(f"{PREFIX}/c/{A}/contacts/c-{A}")
    assert page.status_code == 200 and 'id="unblock"' not in page.text  # nothing blocked by hand yet
    r = browser.post(f"{PREFIX}/c/{A}/contacts/c-{A}/block",
                     data={"csrf_token": csrf(page.text), "channel": "email", "reason": "asked by phone"})  # fmt: skip
    assert r.status_code == 200 and "Blocked a•••@example.com" in r.text
    assert "asked by phone" in r.text and 'id="unblock"' in r.text  # the page shows it at once
    with portal["warehouse"].session(read_only=True) as s:
        _, rows = s.query("select client_id, reason, note from herald_ops.suppressions where address = ? "
                          "and reason = 'manual_block'", ["ana@example.com"])  # fmt: skip
    assert rows == [(A, "manual_block", "asked by phone")]
    refused = browser.post(f"{PREFIX}/c/{A}/contacts/c-{A}/unblock",
                           data={"csrf_token": csrf(r.text), "channel": "email", "reason": " "})  # fmt: skip
    assert refused.status_code == 400 and "Nothing was changed" in refused.text and "a reason" in refused.text
    r = browser.post(f"{PREFIX}/c/{A}/contacts/c-{A}/unblock",
                     data={"csrf_token": csrf(r.text), "channel": "email", "reason": "resolved"})  # fmt: skip
    assert r.status_code == 200 and "Unblocked a•••@example.com" in r.text and 'id="unblock"' not in r.text
    with portal["warehouse"].session(read_only=True) as s:
        assert s.scalar("select count(*) from herald_ops.suppressions where address = ? and reason = 'manual_block'",
                        ["ana@example.com"]) == 0  # fmt: skip
        _, rows = s.query("select reason from herald_ops.audit_log where actor = ? and action = 'manual_override' "
                          "order by occurred_at", [f"portal:{user.email}"])  # fmt: skip
    assert rows == [("block: asked by phone",), ("unblock: resolved",)]
    assert next(r.contact_id for r in audited(portal, user)) == f"c-{A}"  # the view, with its contact


def test_an_opt_out_is_not_lifted_and_the_refusal_is_the_message(portal: dict[str, Any]) -> None:
    browser, _ = browser_of(portal, "client_admin")
    page = browser.get(f"{PREFIX}/c/{A}/contacts/c-{A}")
    assert "Opted out" in page.text
    r = browser.post(f"{PREFIX}/c/{A}/contacts/c-{A}/unblock",
                     data={"csrf_token": csrf(page.text), "channel": "sms", "reason": "they asked"})  # fmt: skip
    assert r.status_code == 400 and "opted out; staff cannot lift an opt-out" in r.text
    with portal["warehouse"].session(read_only=True) as s:
        assert s.query("select reason from herald_ops.suppressions where client_id = ? and address = ?",
                       [A, PHONE])[1] == [("opt_out",)]  # fmt: skip


def test_contacts_search_detail_and_missed_stay_in_the_client(portal: dict[str, Any]) -> None:
    browser, user = browser_of(portal, "staff")
    found = browser.get(f"{PREFIX}/c/{A}/contacts", params={"q": "(312) 555-0101"})
    assert found.status_code == 200 and f"/contacts/c-{A}" in found.text and f"c-{B}" not in found.text
    assert "Ana O&#39;Neil" in found.text and PHONE in found.text and "Other" not in found.text
    assert f"/contacts/c-{B}" not in browser.get(f"{PREFIX}/c/{A}/contacts", params={"q": "ana"}).text
    assert 'id="no-results"' in browser.get(f"{PREFIX}/c/{A}/contacts", params={"q": "b@x.org"}).text
    detail = browser.get(f"{PREFIX}/c/{A}/contacts/c-{A}")
    assert "opt in" in detail.text and "sms_keyword" in detail.text and "hard bounce (all clients)" in detail.text
    assert f"m-{A}" not in detail.text and "reminder" in detail.text  # the last message's campaign
    assert browser.get(f"{PREFIX}/c/{A}/contacts/c-{B}").status_code == 404
    missed = browser.get(f"{PREFIX}/c/{A}/missed")
    assert f"opted out ({A})" in missed.text and f"opted out ({B})" not in missed.text
    subjects = [r.subject for r in audited(portal, user)]
    assert subjects[:2] == [f"{PREFIX}/c/{A}/missed", f"{PREFIX}/c/{A}/contacts/c-{A}"]
    assert all("555" not in (s or "") for s in subjects)  # what was typed is not in the audit log


def test_hidden_contact_details_are_masked(portal: dict[str, Any]) -> None:
    browser, _ = browser_of(portal, "staff", hide_contact_details=True)
    found = browser.get(f"{PREFIX}/c/{A}/contacts", params={"q": "Ana"}).text
    assert "+1•••••••101" in found and "a•••@example.com" in found
    assert PHONE not in found and "ana@example.com" not in found
    detail = browser.get(f"{PREFIX}/c/{A}/contacts/c-{A}").text
    assert "+1•••••••101" in detail and PHONE not in detail and "ana@example.com" not in detail
    consent = detail.split('id="consent"')[1].split("</table>")[0]
    assert "sms_keyword" in consent and "STOP" not in consent  # the evidence (a reply's text) is hidden too
    # blocking still works: the server finds the address, the page names it masked
    r = browser.post(f"{PREFIX}/c/{A}/contacts/c-{A}/block",
                     data={"csrf_token": csrf(detail), "channel": "sms", "reason": "masked staff block"})  # fmt: skip
    assert r.status_code == 200 and "Blocked +1•••••••101" in r.text and PHONE not in r.text
    browser.post(f"{PREFIX}/c/{A}/contacts/c-{A}/unblock",
                 data={"csrf_token": csrf(r.text), "channel": "sms", "reason": "undo"})  # fmt: skip


@pytest.mark.postgres
def test_the_contact_search_on_postgresql(pg_database_factory: Any, tmp_path: Path) -> None:
    env = environment(tmp_path, pg_database_factory())
    settings = Settings.from_env(env)
    warehouse = Warehouse(settings.warehouse)
    warehouse.ensure_schema()
    fill(warehouse)
    portal = {"app": create_app(settings, environ=env), "warehouse": warehouse}
    browser, user = browser_of(portal, "staff")
    browser_b, _ = browser_of(portal, "staff", B)
    page = browser_b.get(f"{PREFIX}/c/{B}/contacts", params={"q": "312.555.0101"})
    assert page.status_code == 200 and f"/contacts/c-{B}" in page.text and f"c-{A}" not in page.text
    page = browser.get(f"{PREFIX}/c/{A}/contacts", params={"q": "ANA@example"})
    assert f"/contacts/c-{A}" in page.text and "b@x.org" not in page.text
    assert browser.get(f"{PREFIX}/c/{A}/contacts/c-{B}").status_code == 404
    with warehouse.session(read_only=True) as s:
        assert next(r.subject for r in query(s, user=user.email, action="portal_view")) == f"{PREFIX}/c/{A}/contacts"
    reader_for(settings.warehouse).close()  # its pool's connections, before the database is dropped


def test_screenshots_of_the_pages_at_desktop_and_phone_widths(portal: dict[str, Any]) -> None:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: run `make browsers` (Debian's chromium)"
        if os.environ.get("CI"):
            pytest.fail(message + " (under CI the browser test must run)")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    from herald.web.server import running_server

    browser, _ = browser_of(portal, "client_admin")
    cookies = [{"name": k, "value": v} for k, v in browser.cookies.items()]
    SHOTS.mkdir(parents=True, exist_ok=True)
    pages = {"packets": f"c/{A}/packets", "packet": f"c/{A}/packets/{A}-p1", "contacts": f"c/{A}/contacts?q=ana",
             "contact": f"c/{A}/contacts/c-{A}", "missed": f"c/{A}/missed"}  # fmt: skip
    with running_server(portal["app"]) as url, sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--no-first-run"])  # fmt: skip
        try:
            context = chromium.new_context(viewport={"width": 1280, "height": 900})
            context.add_cookies([{**c, "url": f"{url}{PREFIX}/"} for c in cookies])
            page = context.new_page()
            for name, path in pages.items():
                page.goto(f"{url}{PREFIX}/{path}")
                assert page.get_by_role("heading", level=1).count() == 1, name
                for width, height in ((1280, 900), (390, 844)):
                    page.set_viewport_size({"width": width, "height": height})
                    page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
                    if width == 390:  # the page itself is no wider than the phone (tables scroll inside)
                        assert page.evaluate("document.documentElement.scrollWidth") <= width + 1, name
                page.set_viewport_size({"width": 1280, "height": 900})
            # a refused upload: the reason on the form
            page.goto(f"{url}{PREFIX}/c/{A}/packets")
            page.set_input_files("#file", files=[{"name": "report.xlsx", "mimeType": "application/octet-stream",
                                                   "buffer": b"PK\x03\x04"}])  # fmt: skip
            with page.expect_navigation():
                page.get_by_role("button", name="Upload").click()
            assert "is not a CSV file" in page.locator("#upload-error").inner_text()
            for width, height in ((1280, 900), (390, 844)):
                page.set_viewport_size({"width": width, "height": height})
                page.screenshot(path=str(SHOTS / f"upload-refused-{width}.png"), full_page=True)
        finally:
            chromium.close()


def test_an_upload_may_exceed_the_api_body_limit_but_not_its_own(portal: dict[str, Any]) -> None:
    """The app's 5 MB body limit (webhooks, the ingest API) does not cap an upload; the upload's
    own limit does, before the body is read when the browser declares its length."""
    from herald.web.guard import MAX_BODY_BYTES

    env = {k: v for k, v in environment(portal["home"]).items() if k != "HERALD_PORTAL_MAX_UPLOAD_BYTES"}
    roomy = {**portal, "app": create_app(portal["settings"], environ=env)}
    browser, _ = browser_of(roomy, "staff")
    body = b"first_name,phone\n" + b"Ana,+13125550101\n" * (MAX_BODY_BYTES // 17 + 1000)
    assert len(body) > MAX_BODY_BYTES
    token = csrf(browser.get(f"{PREFIX}/c/{A}/packets").text)
    r = browser.post(f"{PREFIX}/c/{A}/packets", data={"csrf_token": token, "packet_type": "appointments"},
                     files={"file": ("large.csv", body, "text/csv")})  # fmt: skip
    assert r.status_code == 200 and "File received" in r.text
    assert (portal["home"] / "dropzone" / A / "incoming" / "appointments" / "large.csv").stat().st_size == len(body)
    # over this app's 4 KB upload limit (plus the form's slack): refused before it is read
    small, _ = browser_of(portal, "staff")
    before = zone_files(portal)
    token = csrf(small.get(f"{PREFIX}/c/{A}/packets").text)
    r = small.post(f"{PREFIX}/c/{A}/packets", data={"csrf_token": token, "packet_type": "appointments"},
                   files={"file": ("huge.csv", body, "text/csv")})  # fmt: skip
    assert (
        r.status_code == 413 and "larger than the upload limit of 4 KB" in r.text and "Nothing was uploaded" in r.text
    )
    assert zone_files(portal) == before
    # every other route keeps the usual limit
    r = small.post(f"{PREFIX}/c/{A}/contacts/c-{A}/block", content=b"x" * (MAX_BODY_BYTES + 1),
                   headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert r.status_code == 413


def test_the_pages_work_on_a_new_warehouse_with_no_snapshot_and_no_marts(tmp_path: Path) -> None:
    env = environment(tmp_path)
    settings = Settings.from_env(env)
    warehouse = Warehouse(settings.warehouse)
    warehouse.ensure_schema()
    portal = {"app": create_app(settings, environ=env), "warehouse": warehouse}
    browser, _ = browser_of(portal, "staff")
    assert "No packets yet" in browser.get(f"{PREFIX}/c/{A}/packets").text  # publishes the first snapshot
    assert 'id="no-results"' in browser.get(f"{PREFIX}/c/{A}/contacts", params={"q": "ana"}).text
    assert 'id="none-missed"' in browser.get(f"{PREFIX}/c/{A}/missed").text
    assert browser.get(f"{PREFIX}/c/{A}/contacts/c-{A}").status_code == 404
    assert browser.get(f"{PREFIX}/c/{A}/packets/nothing").status_code == 404


def test_hostile_contact_names_are_shown_escaped(portal: dict[str, Any]) -> None:
    with portal["warehouse"].session() as s:
        for cid, first, last in (("c-hostile", "<script>alert(1)</script>", "=cmd|' /C calc'!A0"),
                                 ("c-long", "Zed" + "z" * 100_000, None)):  # fmt: skip
            s.execute("insert into marts.contacts values (?, ?, null, ?, ?, null, null, null, null)",
                      [cid, A, first, last])  # fmt: skip
    publish_snapshot(portal["settings"].warehouse)
    browser, _ = browser_of(portal, "staff")
    found = browser.get(f"{PREFIX}/c/{A}/contacts", params={"q": "script"}).text
    assert (
        "<script>alert(1)" not in found and "&lt;script&gt;alert(1)&lt;/script&gt; =cmd|&#39; /C calc&#39;!A0" in found
    )
    detail = browser.get(f"{PREFIX}/c/{A}/contacts/c-hostile").text
    assert "<script>alert(1)" not in detail and "&lt;script&gt;alert(1)&lt;/script&gt;" in detail
    long = browser.get(f"{PREFIX}/c/{A}/contacts/c-long")
    assert long.status_code == 200 and "Zed" + "z" * 100_000 in long.text
