"""The Inbox as the front desk lives it, in headless Chromium (Debian's, driven by Playwright): a
client admin signs in with 2FA, adds a quick reply with a variable, opens the Inbox, opens Ana's
conversation, picks the quick reply (filled in with her name), sends it, and the reply goes
through the outbox and the sandbox SMS provider into its journal with exactly that text.
Screenshots of the Inbox, the conversation and the settings at 1280 and 390 px go to
/work/shots/inbox/ (outside the repository) to be looked at."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

from herald.clock import utcnow
from herald.delivery.engine import DeliveryOptions, deliver_due
from herald.providers.factory import providers_from_env
from herald.providers.sandbox import read_journal
from herald.web.app import create_app
from herald.web.server import running_server
from tests.e2e.browser_support import launch, require_chromium, shoot, sign_in, submit
from tests.integration.portal_support import cheap_argon2, made_warehouse, portal_env  # noqa: F401
from tests.integration.test_portal_inbox import A, make_inbox
from tests.integration.test_portal_web import PASSWORD, add

SHOTS = Path(os.environ.get("HERALD_SHOTS_DIR", "/work/shots/inbox"))


def test_reply_to_a_conversation_with_a_quick_reply_and_see_it_in_the_sandbox_journal(tmp_path: Path) -> None:
    sync_playwright = require_chromium()

    home = tmp_path / "home"
    env = portal_env(home, "inbox-browser", HERALD_SMS_PROVIDER="sandbox")
    settings, warehouse = made_warehouse(env, lambda w: make_inbox(w, utcnow()))
    user, secret = add({"warehouse": warehouse}, "client_admin", A, email="frontdesk@brightsmiles.example")

    with running_server(create_app(settings, environ=env)) as url, sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.goto(f"{url}/app/c/{A}/inbox")  # not signed in: the sign-in page, then back here
            sign_in(page, user.email, PASSWORD, secret)
            assert page.get_by_role("heading", level=1).inner_text() == "Inbox"
            assert page.locator("[data-conversation]").count() == 4
            shoot(page, SHOTS, "inbox")

            # a quick reply with a variable, from the Inbox settings
            page.get_by_role("link", name="Quick replies & auto-reply").click()
            page.get_by_label("Title").fill("Friday slot")
            page.get_by_label("Quick reply text").fill("Hi {{ first_name }}, Friday at 3pm works. See you then!")
            submit(page, "Add quick reply")
            assert page.locator("#action-done").inner_text() == "Quick reply saved."
            shoot(page, SHOTS, "inbox-settings")

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
            shoot(page, SHOTS, "conversation")
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
