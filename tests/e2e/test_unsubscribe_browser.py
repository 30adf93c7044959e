"""The unsubscribe flow as a recipient lives it, in headless Chromium (Debian's, driven by
Playwright): render a real email, open its unsubscribe link, press the button, read the client's
wording; the event lands for that client and contact, and applying it suppresses the address and
cancels the queued email."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import yaml

from herald.campaigns.enqueue import MessageBuilder
from herald.campaigns.links import Links
from herald.config import load_deployment
from herald.delivery.outbox import enqueue
from herald.events.landing import ProviderEvent, load_events, pending_event_files
from herald.settings import Settings
from herald.warehouse.connection import Warehouse
from herald.web.app import create_app
from herald.web.server import running_server
from tests.conftest import CONFIG_DIR
from tests.e2e.browser_support import CHROMIUM, require_chromium

SECRET = "browser-test-secret"
CLIENT_WORDING = "Northfield College will send you no more emails. We wish you well!"


def email_row() -> dict:
    return {
        "message_key": "k-di", "client_id": "northfield_college", "campaign": "admitted_nurture",
        "step": "welcome", "occurrence": "manual:browser", "contact_id": "di", "message_type": "nurture",
        "category": "marketing", "channel": "email", "to_address": "di@example.com", "variant": "program_focus",
        "template": "nurture_welcome_program.mjml.j2",
        "subject_template": "{{ first_name }}, your place in {{ program }} is waiting",
        "send_after": datetime(2026, 11, 20, 15, 0),
        "variables": json.dumps({"first_name": "Di", "program": "B.S. Nursing", "client_name": "Northfield College"}),
    }  # fmt: skip


def test_unsubscribing_from_a_rendered_email_in_a_real_browser(herald_env, tmp_path: Path) -> None:
    sync_playwright = require_chromium()

    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    client_file = config / "clients" / "northfield_college" / "client.yaml"
    data = yaml.safe_load(client_file.read_text())
    data["verbiage"] = {"unsubscribe": "{client_name} will send you no more emails. We wish you well!"}
    client_file.write_text(yaml.safe_dump(data, sort_keys=False))
    env = {**herald_env("duckdb"), "HERALD_SECRET_KEY": SECRET, "HERALD_CONFIG_DIR": str(config)}
    settings = Settings.from_env(env)
    deployment = load_deployment(config)
    warehouse = Warehouse(settings.warehouse)
    warehouse.ensure_schema()

    with running_server(create_app(settings, environ=env)) as url:
        # the email as Herald renders and queues it, with links to this server
        message = MessageBuilder(deployment, config, Links(url, SECRET)).build(email_row())
        assert message.status == "queued", message.status_reason
        with warehouse.session() as s:
            enqueue(s, [message], datetime.now(UTC).replace(tzinfo=None))
        found = re.search(r'href="(http://127\.0\.0\.1:\d+/u/[A-Za-z0-9_.-]+)"', message.body_html or "")
        assert found, "the email has no unsubscribe link"
        link = found.group(1)
        assert message.headers["List-Unsubscribe"] == f"<{link}/one-click>"

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
            try:
                context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)  # a phone
                page = context.new_page()
                page.goto(link)
                assert page.get_by_role("heading", level=1).inner_text() == "Unsubscribe from Northfield College"
                button = page.get_by_role("button", name="Unsubscribe")
                box = button.bounding_box()
                assert box is not None and box["height"] >= 44  # a comfortable tap target
                with page.expect_navigation():
                    button.click()
                assert page.get_by_role("heading", level=1).inner_text() == "You are unsubscribed"
                assert page.get_by_text(CLIENT_WORDING).is_visible()
                assert context.cookies() == []
            finally:
                browser.close()

    [path] = pending_event_files(settings.home)
    [event] = [ProviderEvent.from_json(line) for line in path.read_text().splitlines()]
    assert (event.source, event.kind) == ("web", "unsubscribe")
    assert event.payload == {"client_id": "northfield_college", "contact_id": "di", "channel": "email",
                             "scope": "all", "via": "page"}  # fmt: skip

    from herald.events.apply import apply_provider_events

    assert load_events(warehouse, settings.home) == 1
    with warehouse.session() as s:
        apply_provider_events(s, deployment, datetime.now(UTC).replace(tzinfo=None))
    with warehouse.session(read_only=True) as s:
        _, suppressions = s.query("select client_id, channel, address, scope, reason, source, contact_id "
                                  "from herald_ops.suppressions")  # fmt: skip
        status = s.scalar("select status from herald_ops.outbox where message_key = 'k-di'")
    assert suppressions == [("northfield_college", "email", "di@example.com", "all", "opt_out", "web", "di")]
    assert status == "cancelled"
