"""Staff of a clinic in headless Chromium (Debian's, driven by Playwright) against ``herald serve``'s
app on the embedded default (DuckDB): they upload a packet on the Packets page and watch it reach
"cleaned" while ``herald tick`` (the command the embedded default processes drops with) runs
between page loads; they block one of its contacts on the contact page; on the Reports page they
see the credits bought with ``herald credits add`` (once the billing marts are built) and
download the client report as PDF and XLSX, which are opened (PyMuPDF, openpyxl) to find the
client's name and its figures. One server
for the module. Screenshots of the Reports page at 1280 and 390 px, and the PDF's first page as a
PNG, go to /work/shots/reports/ to be looked at."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest

from herald.config import load_deployment
from herald.demo.packets import sized_packet
from herald.portal import accounts
from herald.portal.reads import publish_snapshot
from herald.settings import Settings
from herald.warehouse.connection import Warehouse
from herald.web.app import create_app
from herald.web.server import running_server
from tests.conftest import CONFIG_DIR, REPO_ROOT
from tests.dbt_harness import dbt
from tests.e2e.browser_support import launch, require_chromium, shoot, sign_in, submit
from tests.integration.portal_support import cheap_argon2  # noqa: F401  (module-wide: the site's users and sign-ins)

SHOTS = Path(os.environ.get("HERALD_SHOTS_DIR", "/work/shots/reports"))
HERALD = str(Path(sys.executable).parent / "herald")
CLIENT, NAME = "bright_smiles_dental", "Bright Smiles Dental"
EMAIL, PASSWORD = "staff@brightsmiles.example", "a long staff password"
MAX_TICKS = 5


def herald(env: dict[str, str], *args: str, check: bool = True) -> str:
    proc = subprocess.run([HERALD, *args], env={**os.environ, **env, "COLUMNS": "250"}, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    assert proc.returncode == 0 or not check, f"herald {' '.join(args)}: {proc.stdout[-3000:]}{proc.stderr[-3000:]}"
    return proc.stdout


def tick(env: dict[str, str]) -> None:
    """One ``herald tick --force``. Its exit status is not judged here: on a home with one packet
    and no demo a schedule's data-quality run can fail on marts not built yet; what this test
    judges is what the pages show."""
    herald(env, "tick", "--force", check=False)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    sync_playwright = require_chromium()

    tmp = tmp_path_factory.mktemp("portal-reports-browser")
    env = {"HERALD_HOME": str(tmp / "home"), "HERALD_CONFIG_DIR": str(CONFIG_DIR), "HERALD_WAREHOUSE_URL": "",
           "HERALD_SECRET_KEY": "browser-reports-secret", "HERALD_SANDBOX_RECEIPTS": "off"}  # fmt: skip
    herald(env, "credits", "add", CLIENT, "250", "--note", "invoice 7")  # the warehouse, and a purchase
    settings = Settings.from_env(env)
    secret = pyotp.random_base32()
    with Warehouse(settings.warehouse).session() as s:
        user = accounts.add_user(s, EMAIL, PASSWORD, "staff", CLIENT)
        accounts.enroll_totp(s, user, secret, pyotp.TOTP(secret).now())
        s.execute("update herald_ops.portal_users set totp_last_step = 0 where user_id = ?", [user.user_id])
    packet = sized_packet(load_deployment(CONFIG_DIR), CLIENT, "appointments", rows=12, bad_rows=2, seed=5)
    upload = tmp / "spring-appointments.csv"
    upload.write_bytes(packet.content)
    with running_server(create_app(settings, environ=env)) as url, sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True).new_page()
            page.goto(f"{url}/app/login")
            sign_in(page, EMAIL, PASSWORD, secret)
            assert page.get_by_role("heading", level=1).inner_text() == NAME
            yield {"page": page, "url": url, "env": env, "upload": upload, "tmp": tmp, "packet": packet}
        finally:
            browser.close()


def done_steps(page: Any, file_name: str) -> list[str]:
    section = page.locator("section.packet", has_text=file_name)
    if section.count() == 0:
        return []
    return section.first.locator("li.done").evaluate_all("els => els.map(e => e.dataset.step)")


def test_upload_a_packet_and_watch_it_reach_cleaned(site: dict[str, Any]) -> None:
    page, url, name = site["page"], site["url"], site["upload"].name
    page.goto(f"{url}/app/c/{CLIENT}/packets")
    page.get_by_label("Packet type").select_option("appointments")
    page.get_by_label("CSV file").set_input_files(str(site["upload"]))
    # the progress bar (static/upload.js sends the form itself and shows the bytes sent)
    assert page.locator("#upload-progress").is_hidden() and page.locator("#upload-progress").count() == 1
    page.evaluate(
        "window.__progress = [];"
        "new MutationObserver(() => window.__progress.push(document.getElementById('upload-progress-note')"
        ".textContent)).observe(document.getElementById('upload-progress-note'), {childList: true});"
    )
    page.get_by_role("button", name="Upload", exact=True).click()
    page.get_by_role("heading", name="File received").wait_for()
    assert page.get_by_role("heading", level=1).inner_text() == "File received"
    assert page.url.endswith(f"/app/c/{CLIENT}/packets")
    notes = page.evaluate("window.__progress")  # what the note said while the file went up
    assert notes[0] == "Uploading…" and notes[-1] == "Uploaded; Herald is checking the file…", notes
    assert name in page.locator("#uploaded").inner_text()
    seen: list[list[str]] = []
    for _ in range(MAX_TICKS):  # the embedded default processes a drop when `herald tick` runs
        tick(site["env"])
        page.goto(f"{url}/app/c/{CLIENT}/packets")
        seen.append(done_steps(page, name))
        if "cleaned" in seen[-1]:
            break
    assert seen[-1] == ["received", "verified", "landed", "validated", "mapped", "cleaned"], seen
    section = page.locator("section.packet", has_text=name).first
    assert f"{len(site['packet'].bad_lines)} rejected" in section.inner_text()


def test_block_a_contact_of_the_packet(site: dict[str, Any]) -> None:
    page, url = site["page"], site["url"]
    first = site["packet"].content.decode().splitlines()[1].split(",")  # Patient ID, First Name, Last Name, …
    page.goto(f"{url}/app/c/{CLIENT}/contacts")
    page.get_by_label("Phone, email or name").fill(first[2])
    submit(page, "Search", exact=True)
    with page.expect_navigation():
        page.locator("#results a", has_text=first[1]).first.click()
    page.locator("#block-channel").select_option("sms")
    page.locator("#block-reason").fill("asked the front desk: no texts")
    submit(page, "Block", exact=True)
    notice = page.locator("#action-done").inner_text()
    assert re.fullmatch(r"Blocked \+1•+\d+: \d+ queued message\(s\) cancelled\.", notice), notice
    rows = page.locator("#suppressions tbody tr").all_inner_texts()
    assert any("manual block" in r and "asked the front desk: no texts" in r for r in rows), rows


def test_download_the_report_as_pdf_and_xlsx_from_the_reports_page(site: dict[str, Any]) -> None:
    import fitz  # PyMuPDF
    from openpyxl import load_workbook

    page, url = site["page"], site["url"]
    # The credit transactions and the dashboard are analytics marts: `herald tick` builds them in
    # the analytics refresh, several runs after the transform (journeys, sends first). The test
    # builds just these three with dbt, then publishes the snapshot as that refresh does at its end.
    settings = Settings.from_env(site["env"])
    dbt(Warehouse(settings.warehouse), site["tmp"] / "dbt-target", site["tmp"] / "dbt-logs", "run", "--select",
        "credit_transactions", "deliveries", "client_dashboard")  # fmt: skip
    publish_snapshot(settings.warehouse)
    page.goto(f"{url}/app/c/{CLIENT}/reports")
    assert page.get_by_role("heading", level=1).inner_text() == "Reports and billing"
    assert page.locator("[data-figure=balance]").inner_text() == "250.00"
    row = page.locator("#transactions tbody tr").first.inner_text()
    assert "Purchase" in row and "+250.00" in row and "invoice 7" in row
    shoot(page, SHOTS, "reports")

    files = {}
    for fmt in ("pdf", "xlsx"):
        page.get_by_label("Format").select_option(fmt)
        with page.expect_download() as info:
            page.get_by_role("button", name="Download the report").click()
        download = info.value
        assert re.fullmatch(rf"{CLIENT}-report-\d{{4}}-\d\d-\d\d\.{fmt}", download.suggested_filename)
        files[fmt] = site["tmp"] / download.suggested_filename
        download.save_as(files[fmt])

    with fitz.open(files["pdf"]) as document:
        text = " ".join(p.get_text() for p in document)
        SHOTS.mkdir(parents=True, exist_ok=True)
        document[0].get_pixmap(dpi=100).save(str(SHOTS / "report-pdf-page1.png"))
    assert NAME in text and "30 days" in text
    book = load_workbook(io.BytesIO(files["xlsx"].read_bytes()), read_only=True)
    summary = {r[0]: r[1] for r in book["summary"].iter_rows(min_row=2, values_only=True)}
    dashboard = {r[0]: r[1] for r in book["dashboard"].iter_rows(min_row=2, values_only=True)}
    assert (summary["Client"], summary["Sent"]) == (NAME, 0)  # nothing sent yet: the packet's reminders are due later
    assert dashboard["Credit balance"] == 250
