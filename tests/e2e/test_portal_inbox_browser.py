"""The Inbox as the front desk lives it, in headless Chromium (Debian's, driven by Playwright): a
client admin signs in with 2FA, adds a quick reply with a variable, opens the Inbox, opens Ana's
conversation, picks the quick reply (filled in with her name), sends it, and the reply goes
through the outbox and the sandbox SMS provider into its journal with exactly that text.
Screenshots of the Inbox, the conversation and the settings at 1280 and 390 px go to
/work/shots/inbox/ (outside the repository) to be looked at."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from argon2 import PasswordHasher

from herald.clock import utcnow
from herald.delivery.engine import DeliveryOptions, deliver_due
from herald.portal import accounts
from herald.portal.reads import publish_snapshot
from herald.providers.factory import providers_from_env
from herald.providers.sandbox import read_journal
from herald.settings import Settings
from herald.warehouse.connection import Warehouse
from herald.web.app import create_app
from herald.web.server import running_server
from tests.conftest import CONFIG_DIR
from tests.integration.test_portal_inbox import A, make_inbox
from tests.integration.test_portal_web import PASSWORD, add

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(os.environ.get("HERALD_SHOTS_DIR", "/work/shots/inbox"))
WIDTHS = ((1280, 900), (390, 844))


@pytest.fixture
def cheap_argon2() -> Iterator[None]:
    product = accounts._hasher
    accounts._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # real argon2, cheap
    yield
    accounts._hasher = product


def shoot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width, height in WIDTHS:
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
        if width == 390:  # nothing wider than the phone's screen
            assert page.evaluate("document.documentElement.scrollWidth") <= width + 1, name
    page.set_viewport_size({"width": 1280, "height": 900})


def submit(page: Any, button: str) -> None:
    with page.expect_navigation():
        page.get_by_role("button", name=button).click()


@pytest.mark.usefixtures("cheap_argon2")
def test_reply_to_a_conversation_with_a_quick_reply_and_see_it_in_the_sandbox_journal(tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: run `make browsers` (Debian's chromium)"
        if os.environ.get("CI"):
            pytest.fail(message + " (under CI the browser test must run)")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    home = tmp_path / "home"
    env = {"HERALD_HOME": str(home), "HERALD_CONFIG_DIR": str(CONFIG_DIR), "HERALD_SECRET_KEY": "inbox-browser",
           "HERALD_SANDBOX_RECEIPTS": "off", "HERALD_SMS_PROVIDER": "sandbox"}  # fmt: skip
    settings = Settings.from_env(env)
    warehouse = Warehouse(settings.warehouse)
    warehouse.ensure_schema()
    make_inbox(warehouse, utcnow())
    publish_snapshot(settings.warehouse)
    user, secret = add({"warehouse": warehouse}, "client_admin", A, email="frontdesk@brightsmiles.example")

    with running_server(create_app(settings, environ=env)) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                          "--disable-component-update", "--disable-sync", "--no-first-run"])  # fmt: skip
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.goto(f"{url}/app/c/{A}/inbox")  # not signed in: the sign-in page, then back here
            page.get_by_label("Email").fill(user.email)
            page.get_by_label("Password").fill(PASSWORD)
            submit(page, "Continue")
            page.get_by_label("6-digit code from your authenticator app").fill(pyotp.TOTP(secret).now())
            submit(page, "Sign in")
            assert page.get_by_role("heading", level=1).inner_text() == "Inbox"
            assert page.locator("[data-conversation]").count() == 4
            shoot(page, "inbox")

            # a quick reply with a variable, from the Inbox settings
            page.get_by_role("link", name="Quick replies & auto-reply").click()
            page.get_by_label("Title").fill("Friday slot")
            page.get_by_label("Quick reply text").fill("Hi {{ first_name }}, Friday at 3pm works. See you then!")
            submit(page, "Add quick reply")
            assert page.locator("#action-done").inner_text() == "Quick reply saved."
            shoot(page, "inbox-settings")

            # open Ana's conversation, pick the quick reply, send it
            page.get_by_role("link", name="Inbox", exact=True).click()
            page.locator('[data-conversation="conv-ana"] a').click()
            assert page.get_by_role("heading", level=1).inner_text() == "Ana O'Neil"
            assert "cleaning" in page.locator("#appointments").inner_text()
            page.get_by_role("link", name="Friday slot").click()
            text = "Hi Ana, Friday at 3pm works. See you then!"
            assert page.get_by_label("Reply by SMS").input_value() == text
            submit(page, "Send reply")
            assert page.locator("#action-done").inner_text().startswith("Reply queued")
            assert page.locator('#thread li[data-kind="manual"]').last.inner_text().startswith(text)
            assert page.locator("#status").inner_text() == "closed"
            shoot(page, "conversation")
        finally:
            browser.close()

    # the delivery run (what `herald tick` starts) sends it through the sandbox provider
    with warehouse.session(read_only=True) as s:
        [(key, send_after)] = s.query("select message_key, send_after from herald_ops.outbox")[1]
    deliver_due(warehouse, providers_from_env(env, home=home), now=send_after + timedelta(seconds=1),
                options=DeliveryOptions(batch_size=10))  # fmt: skip
    journal = read_journal(home / "sandbox" / "sms.jsonl")
    assert [(e["message_key"], e["to"], e["text"]) for e in journal] == [(key, "+1•••••••142", text)]
    assert re.fullmatch(r"\+15125550100", journal[0]["sender"])
