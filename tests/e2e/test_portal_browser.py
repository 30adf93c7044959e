"""The portal as its users live it, in headless Chromium (Debian's, driven by Playwright): a
client admin's first sign-in sets up 2FA (the TOTP computed with pyotp) and lands on the
dashboard, whose figures equal ``analytics.client_dashboard`` as dbt built it; a recovery code
signs in once; a forgotten password is reset through the link in the sandbox email journal, and
the new password signs in. Screenshots of the sign-in, 2FA and dashboard pages at 1280 and 390
px go to /work/shots/portal-auth/ (outside the repository) to be looked at."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest

from herald.portal import accounts
from herald.portal.store import PortalStore
from herald.settings import Settings
from herald.warehouse.schema import ddl_statements
from herald.web.app import create_app
from herald.web.server import running_server
from tests.conftest import CONFIG_DIR
from tests.dbt_harness import Built, MartBuild, build_marts, rows
from tests.e2e.browser_support import launch, require_chromium, shoot, submit
from tests.integration import test_client_dashboard as dashboard_case
from tests.integration.portal_support import cheap_argon2  # noqa: F401  (real argon2 with small costs; the server runs in this process)

SHOTS = Path(os.environ.get("HERALD_SHOTS_DIR", "/work/shots/portal-auth"))
CLIENT = "bright_smiles_dental"
EMAIL = "admin@brightsmiles.example"
PASSWORD, NEW_PASSWORD = "first long password", "second long password"


def as_client(table_rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The dashboard test's rows, for a client the example configuration has."""
    return [tuple(CLIENT if value == "clinic" else value for value in r) for r in table_rows]


BUILD = MartBuild(
    name="portal",
    models=tuple(m for m in dashboard_case.MODELS if m != "packet_report"),
    sources=dashboard_case.SOURCE_TABLES,
    hand_made=dashboard_case.BUILD.hand_made,
    rows={table: as_client(list(r)) for table, r in dashboard_case.BUILD.rows.items()},
    dbt_args=dashboard_case.BUILD.dbt_args,
    command="run",
)


@pytest.fixture(scope="module", params=["duckdb"])
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    with build_marts(request, tmp_path_factory, BUILD) as result:
        with result.warehouse.session() as s:  # the rest of Herald's tables (the portal's, the audit log)
            for statement in ddl_statements("duckdb"):
                s.execute(statement)
        yield result


def test_sign_in_with_2fa_see_the_dashboard_and_reset_the_password(built: Built) -> None:
    sync_playwright = require_chromium()

    home = built.tmp / "home"
    env = {"HERALD_HOME": str(home), "HERALD_CONFIG_DIR": str(CONFIG_DIR), "HERALD_SECRET_KEY": "browser-secret",
           "HERALD_WAREHOUSE_URL": f"duckdb:///{built.warehouse.target.duckdb_path}",
           "HERALD_SANDBOX_RECEIPTS": "off"}  # fmt: skip
    settings = Settings.from_env(env)
    with PortalStore(settings.warehouse).session() as s:  # the portal's own store beside the DuckDB file
        accounts.add_user(s, EMAIL, PASSWORD, "client_admin", CLIENT)
    [mart] = rows(built.warehouse, f"select * from analytics.client_dashboard where client_id = '{CLIENT}'")

    with running_server(create_app(settings, environ=env)) as url, sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.goto(f"{url}/app/c/{CLIENT}/")  # not signed in: the sign-in page, then back here
            assert page.get_by_role("heading", level=1).inner_text() == "Sign in to Herald"
            shoot(page, SHOTS, "login")
            page.get_by_label("Email").fill(EMAIL)
            page.get_by_label("Password").fill(PASSWORD)
            submit(page, "Continue")

            # first sign-in: set up the authenticator
            assert page.get_by_role("heading", level=1).inner_text() == "Set up two-factor sign-in"
            assert page.locator(".qr svg").count() == 1
            shoot(page, SHOTS, "2fa-setup")
            secret = page.locator("code.secret").inner_text()
            page.get_by_label("6-digit code").fill(pyotp.TOTP(secret).now())
            submit(page, "Turn on two-factor sign-in")
            codes = page.locator("ol.codes li").all_inner_texts()
            assert len(codes) == accounts.RECOVERY_CODE_COUNT
            with page.expect_navigation():
                page.get_by_role("link", name=re.compile("I have saved them")).click()

            # the dashboard: the mart's figures
            assert page.get_by_role("heading", level=1).inner_text() == "Bright Smiles Dental"
            shown = {el.get_attribute("data-figure"): el.inner_text() for el in page.locator("[data-figure]").all()}
            assert shown == {
                "credit_balance": f"{mart['credit_balance']:,.2f}",
                "delivered_24h": str(mart["delivered_24h"]), "delivered_3d": str(mart["delivered_3d"]),
                "delivered_7d": str(mart["delivered_7d"]), "delivered_30d": str(mart["delivered_30d"]),
                "response_pct_30d": f"{mart['response_pct_30d']:.1f}%", "opt_outs_30d": str(mart["opt_outs_30d"]),
                "failed_30d": str(mart["failed_30d"]),
            }  # fmt: skip
            assert page.locator("#as-of").inner_text() == f"Figures as of {mart['as_of_at']:%Y-%m-%d %H:%M} UTC"
            assert page.locator("#low-credit").is_visible() == bool(mart["credit_alerts_30d"])
            shoot(page, SHOTS, "dashboard")

            # sign out; sign in again with a recovery code (the TOTP code of this step is spent)
            submit(page, "Sign out")
            page.get_by_label("Email").fill(EMAIL)
            page.get_by_label("Password").fill(PASSWORD)
            submit(page, "Continue")
            assert page.get_by_role("heading", level=1).inner_text() == "Enter your code"
            shoot(page, SHOTS, "2fa-code")
            page.get_by_text("Lost your phone? Use a recovery code").click()
            page.get_by_label("Recovery code").fill(codes[0])
            submit(page, "Sign in")
            assert page.get_by_role("heading", level=1).inner_text() == "Bright Smiles Dental"
            submit(page, "Sign out")

            # forgotten password: the link from the sandbox journal, then the new password
            page.get_by_role("link", name="Forgot your password?").click()
            page.get_by_label("Email").fill(EMAIL)
            submit(page, "Send the link")
            assert page.get_by_role("heading", level=1).inner_text() == "Check your email"
            journal = [json.loads(line) for line in (home / "sandbox" / "email.jsonl").read_text().splitlines()]
            [mail] = [m for m in journal if m["subject"] == "Reset your Herald portal password"]
            assert mail["to"] == "a•••@brightsmiles.example"
            path = re.search(r"https?://[^/\s]+(/app/reset/\S+)", mail["text"]).group(1)  # type: ignore[union-attr]
            page.goto(url + path)
            page.get_by_label("New password").fill(NEW_PASSWORD)
            page.get_by_label("The same password again").fill(NEW_PASSWORD)
            submit(page, "Change my password")
            assert page.get_by_role("heading", level=1).inner_text() == "Password changed"
            page.get_by_role("link", name="Sign in").click()
            page.get_by_label("Email").fill(EMAIL)
            page.get_by_label("Password").fill(PASSWORD)  # the old one no longer works
            submit(page, "Continue")
            assert page.get_by_role("alert").inner_text().startswith("The email or password is wrong")
            page.get_by_label("Password").fill(NEW_PASSWORD)
            submit(page, "Continue")
            page.get_by_text("Lost your phone? Use a recovery code").click()
            page.get_by_label("Recovery code").fill(codes[1])
            submit(page, "Sign in")
            assert page.get_by_role("heading", level=1).inner_text() == "Bright Smiles Dental"
        finally:
            browser.close()
