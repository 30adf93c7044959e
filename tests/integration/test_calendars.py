"""Send calendars and CAN-SPAM footers on both engines.

- The plan (marts.message_plan, from test_message_plan's hand-made marts) defers a message due
  on a public holiday, a client-listed closed day or a day that is not a send day to the next
  allowed moment, its deferral_reason naming the first such day and why; the Python twin
  (herald.compliance.send_window with the same calendar) agrees to the minute; a campaign's own
  calendar replaces the client's.
- Every marketing email the example clients send — rendered from the plan by enqueue, sent by
  the delivery engine through the real Resend SDK to the provider emulator — carries the
  client's name and postal address in the HTML and the text the provider received.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime
from html import escape
from pathlib import Path

import pytest

from herald.campaigns.enqueue import enqueue_planned
from herald.campaigns.links import Links
from herald.compliance.calendars import SendCalendar, holiday_reasons
from herald.compliance.send_window import next_allowed_moment
from herald.config.calendars import HolidayCalendar
from herald.delivery.engine import DeliveryOptions, deliver_due
from herald.delivery.outbox import OUTBOX
from herald.providers.resend_email import ResendEmailProvider
from herald.warehouse.config_tables import calendar_table_rows
from herald.warehouse.connection import Warehouse
from tests.conftest import CONFIG_DIR, ENGINES
from tests.integration.test_message_plan import (
    CLIENT,
    LOADED,
    add_contacts,
    build_plan,
    dbt_run,
    insert,
    occurrence,
    plan_rows,
)
from tests.provider_emulator import ProviderEmulator

# -- the plan ---------------------------------------------------------------------------------

# the client's calendar for 'announce': Monday to Friday 09:00-20:00 (Sundays from 12:00, unused),
# the US public holidays, and one closed day of its own
WEEKDAY_HOURS = (540, 1200)
ANNOUNCE = SendCalendar(
    hours=(WEEKDAY_HOURS,) * 5 + (None, None),
    closed={**holiday_reasons(HolidayCalendar(country="US"), 2026), date(2026, 11, 27): "a closed day (inventory)"},
)
# 'remind' keeps its own calendar: every day, no holidays (a campaign's window replaces the client's)
REMIND = SendCalendar(hours=(WEEKDAY_HOURS,) * 6 + ((720, 1200),))
RECIPIENT = ("m-chi", "+13125550140", None, None)  # a Chicago number
RECIPIENT_REGION = ("phone", "+13125550140", "America/Chicago", "IL")

# occurrence → (fired at, naive UTC; Chicago is UTC-6 in late November), expected send_after, deferral_reason
CASES = {
    # Tuesday 24th 10:00: inside the window, sent when due
    "tue-morning": (datetime(2026, 11, 24, 16, 0), datetime(2026, 11, 24, 16, 0), None),
    # Tuesday 21:00: after hours only → Wednesday 09:00; deferred, but no closed day to name
    "tue-night": (datetime(2026, 11, 25, 3, 0), datetime(2026, 11, 25, 15, 0), None),
    # Wednesday 21:00: Thanksgiving, the closed Friday, the weekend → Monday 30th 09:00
    "wed-night": (
        datetime(2026, 11, 26, 3, 0),
        datetime(2026, 11, 30, 15, 0),
        "deferred: 2026-11-26 is a holiday (Thanksgiving Day, US)",
    ),
    # Friday 10:00, the client's closed day
    "fri-morning": (
        datetime(2026, 11, 27, 16, 0),
        datetime(2026, 11, 30, 15, 0),
        "deferred: 2026-11-27 is a closed day (inventory)",
    ),
    # Saturday 10:00, not a send day
    "sat-morning": (
        datetime(2026, 11, 28, 16, 0),
        datetime(2026, 11, 30, 15, 0),
        "deferred: 2026-11-28 is not a send day (Saturday)",
    ),
}


def set_calendars(warehouse: Warehouse) -> None:
    with warehouse.session() as s:
        s.execute("delete from herald_ops.campaign_send_windows")
        s.execute("delete from herald_ops.closed_days")
        for campaign, calendar in (("announce", ANNOUNCE), ("remind", REMIND), ("quiet", ANNOUNCE)):
            windows, closed = calendar_table_rows(CLIENT, campaign, calendar)
            insert(s, "herald_ops.campaign_send_windows", windows)
            if closed:
                insert(s, "herald_ops.closed_days", closed)
        s.execute("update herald_ops.campaigns set daily_limit = null")
        s.execute("delete from herald_ops.frequency_caps")  # several sends to one person here
        insert(s, "herald_ops.consent_events", [
            ("ev-m-chi", CLIENT, "m-chi", "sms", RECIPIENT[1], "opt_in", "all", "express_written", "web", "form",
             LOADED, LOADED),
        ])  # fmt: skip


@pytest.mark.parametrize("engine", ENGINES)
def test_a_message_due_on_a_closed_day_waits_for_the_next_open_day_and_says_why(
    engine: str, herald_env, tmp_path: Path
) -> None:
    warehouse, tmp = build_plan(engine, herald_env, tmp_path, run=False)  # one dbt run plans it all, below
    add_contacts(warehouse, [RECIPIENT], [RECIPIENT_REGION])
    set_calendars(warehouse)
    with warehouse.session() as s:
        # 'remind' sends at its trigger's time here, so both campaigns are due Thanksgiving morning
        s.execute("update herald_ops.campaign_steps set anchor_field = null, anchor_minutes = 0")
        insert(s, "herald_ops.campaign_occurrences", [
            *(occurrence(name, "announce", fired) for name, (fired, _, _) in CASES.items()),
            *(occurrence("thanksgiving", name, datetime(2026, 11, 26, 16, 0)) for name in ("announce", "remind")),
        ])  # fmt: skip
    dbt_run(warehouse, tmp)

    cases = ", ".join(f"'{name}'" for name in CASES)
    rows = plan_rows(warehouse, f"where contact_id = 'm-chi' and campaign = 'announce' and occurrence in ({cases})")
    found = {
        occ: (r["status"], r["send_after"], r["is_deferred"], r["deferral_reason"]) for (_, occ, _), r in rows.items()
    }
    assert found == {
        name: ("planned", send_after, send_after > fired, reason) for name, (fired, send_after, reason) in CASES.items()
    }
    # the Python twin (manual replies, the delivery check) gives the same moments
    for fired, send_after, _ in CASES.values():
        assert next_allowed_moment(fired, ("America/Chicago",), "IL", ANNOUNCE) == send_after

    # the other campaign keeps its own every-day calendar: Thanksgiving morning is open to it
    rows = plan_rows(warehouse, "where occurrence = 'thanksgiving' and contact_id = 'm-chi'")
    assert {campaign: (r["send_after"], r["deferral_reason"]) for (campaign, _, _), r in rows.items()} == {
        "announce": (datetime(2026, 11, 30, 15, 0), "deferred: 2026-11-26 is a holiday (Thanksgiving Day, US)"),
        "remind": (datetime(2026, 11, 26, 16, 0), None),
    }


# -- CAN-SPAM: the footer of every marketing email sent ------------------------------------------

NOW = datetime(2026, 11, 20, 15, 0)
LINKS = Links("https://herald.example", "test-secret")
RESEND_KEY = "re_calendars_key"
PLAN_DDL = """create table marts.message_plan (
    message_key varchar, client_id varchar, campaign varchar, step varchar, occurrence varchar,
    contact_id varchar, message_type varchar, category varchar, channel varchar, to_address varchar,
    variant varchar, template varchar, subject_template varchar, send_after timestamp,
    variables {json}, status varchar)"""
COLLEGE = {"client_id": "northfield_college", "campaign": "admitted_nurture", "message_type": "lead_nurture"}
REALTY = {"client_id": "lakeside_realty", "campaign": "new_listings", "message_type": "home_for_sale"}
# key → (client and campaign, step, variant, template, subject, variables)
EMAILS = {
    "welcome": (COLLEGE, "welcome", "program_focus", "nurture_welcome_program.mjml.j2", "Welcome {{ first_name }}",
                {"first_name": "Di", "program": "B.S. Nursing", "client_name": "Northfield College"}),
    "follow": (COLLEGE, "follow_up", "standard", "nurture_follow_up.mjml.j2", "Still thinking, {{ first_name }}?",
               {"first_name": "Ed", "program": "History", "client_name": "Northfield College"}),
    "listing": (REALTY, "announcement", "standard", "new_listing.mjml.j2", "New listing",
                {"first_name": "Flo", "property_address": "12 Elm St", "property_city": "Denver",
                 "list_price": 450000, "client_name": "Lakeside Realty Group"}),
}  # fmt: skip


@pytest.fixture(scope="module")
def emulator() -> Iterator[ProviderEmulator]:
    with ProviderEmulator(resend_api_key=RESEND_KEY) as server:
        yield server


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_every_sent_marketing_email_carries_the_clients_name_and_postal_address(
    warehouse: Warehouse, deployment, emulator: ProviderEmulator
) -> None:
    emulator.reset()
    json_type = "json" if warehouse.engine == "duckdb" else "jsonb"
    with warehouse.session() as s:
        s.execute(PLAN_DDL.format(json=json_type))
        for key, (who, step, variant, template, subject, variables) in EMAILS.items():
            row = [
                key, who["client_id"], who["campaign"], step, "o1", f"c-{key}", who["message_type"], "marketing",
                "email", f"{key}@example.com", variant, template, subject, NOW, json.dumps(variables), "planned",
            ]  # fmt: skip
            s.execute(f"insert into marts.message_plan values ({', '.join('?' * len(row))})", row)
        report = enqueue_planned(s, deployment, CONFIG_DIR, LINKS, NOW)
    assert (report.enqueued, report.held) == (3, 0)

    resend = ResendEmailProvider(RESEND_KEY, base_url=emulator.url, timeout=5)
    sent = deliver_due(warehouse, {"email": resend}, now=NOW, options=DeliveryOptions(max_attempts_per_run=1))
    emulator.wait_idle()
    assert sent.sent == 3
    with warehouse.session(read_only=True) as s:
        assert s.query(f"select count(*) from {OUTBOX} where status = 'sent'")[1] == [(3,)]

    received = {e["to"][0].split("@")[0]: e for e in emulator.emails_sent}
    assert set(received) == set(EMAILS)
    for key, (who, *_) in EMAILS.items():
        config = deployment.clients[who["client_id"]].config
        footer = f"{config.name} · {config.postal_address}"
        assert escape(footer) in received[key]["html"], key
        assert footer in received[key]["text"], key
        assert "/u/" in received[key]["html"]  # the unsubscribe link stays
        assert received[key]["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
