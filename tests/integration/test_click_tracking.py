"""Click tracking on a real warehouse, once per engine: ``GET /l/<token>`` of the web service
refuses anything but an untouched token with a 404 page and lands nothing; a valid click lands
one row in ``herald_raw.link_clicks`` (a file the provider-events run loads on DuckDB, the table
itself on PostgreSQL) and redirects; the clicks and Resend's opens and clicks then reach
``marts.engagement_events``, ``analytics.campaign_performance_daily`` and the A/B counts."""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from herald.analytics.ab_tests import read_counts
from herald.campaigns.tracking import LinkTracker, load_clicks, make_link_token, pending_click_files
from herald.settings import Settings
from herald.warehouse.connection import Warehouse
from herald.warehouse.schema import column_names
from herald.web.app import create_app
from tests.conftest import ENGINES
from tests.dbt_harness import (
    CLIENTS,
    DBT_PROJECT_DIR,
    MESSAGE_PLAN_COLUMNS,
    dbt,
    outbox_row,
    row,
    rows,
)

SECRET = "click-secret"
PUBLIC = "https://herald.example"
SMS_KEY = hashlib.md5(b"sms").hexdigest()
EMAIL_KEY = hashlib.md5(b"email").hexdigest()
QUIET_KEY = hashlib.md5(b"quiet").hexdigest()  # sent, never opened or clicked
BOOK = "https://brightsmiles.example/book?slot=tue-10"
LISTING = "https://lakesiderealty.example/listing/42"
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1"
WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36"
SLACK = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"
SENT_AT = datetime(2024, 3, 12, 3, 1)
OPENED_AT = datetime(2024, 3, 12, 3, 20)

OUTBOX = [
    outbox_row(SMS_KEY, status="sent", sent_at=SENT_AT, provider="twilio", provider_message_id="SM-1"),
    outbox_row(QUIET_KEY, status="sent", sent_at=SENT_AT, provider="twilio", provider_message_id="SM-2"),
    outbox_row(
        EMAIL_KEY,
        channel="email",
        to_address="ana@example.com",
        sender="news@clinic.example",
        status="sent",
        sent_at=SENT_AT,
        provider="resend",
        provider_message_id="re-1",
        delivered_at=SENT_AT,
        opened_at=OPENED_AT,
        clicked_at=OPENED_AT,
    ),
]


def resend_event(event_id: str, type_: str, data: dict[str, Any]) -> tuple[Any, ...]:
    payload = {"type": type_, "created_at": "2024-03-12T03:20:00.000Z", "data": {"email_id": "re-1", **data}}
    return row("herald_raw.provider_events", event_id=event_id, source="resend", kind="email_event",
               provider_message_id="re-1", payload=json.dumps(payload), received_at=OPENED_AT,
               landed_at=OPENED_AT)  # fmt: skip


# what herald.events.apply recorded for Resend's webhooks about the email
PROVIDER_EVENTS = [
    resend_event("msg_delivered", "email.delivered", {}),
    resend_event("msg_opened", "email.opened", {}),
    resend_event("msg_clicked", "email.clicked", {"click": {"link": LISTING, "userAgent": WINDOWS}}),
]
PROCESSING = [
    ("msg_delivered", EMAIL_KEY, "status_updated", "delivered", OPENED_AT),
    ("msg_opened", EMAIL_KEY, "engagement_recorded", "opened_at 2024-03-12 03:20:00", OPENED_AT),
    ("msg_clicked", EMAIL_KEY, "engagement_recorded", "clicked_at 2024-03-12 03:20:00", OPENED_AT),
]


@dataclass
class Site:
    client: TestClient
    settings: Settings
    warehouse: Warehouse
    env: dict[str, str]

    def link(self, message_key: str, url: str) -> str:
        """The path of a tracked link, as the message builder renders it."""
        return LinkTracker(SECRET, PUBLIC, message_key).track(url).removeprefix(PUBLIC)

    def click(self, path: str, user_agent: str = IPHONE, method: str = "GET") -> Any:
        return self.client.request(method, path, headers={"user-agent": user_agent}, follow_redirects=False)

    def clicks(self) -> list[dict[str, Any]]:
        """Every landed click, after the provider-events run's loading (files on DuckDB)."""
        load_clicks(self.warehouse, self.settings.home)
        return rows(self.warehouse, "select * from herald_raw.link_clicks order by clicked_at, click_id")


def open_site(env: dict[str, str]) -> Site:
    env = {**env, "HERALD_SECRET_KEY": SECRET, "HERALD_PUBLIC_URL": PUBLIC}
    settings = Settings.from_env(env)
    warehouse = Warehouse(settings.warehouse)
    warehouse.ensure_schema()
    with warehouse.session() as s:
        s.insert_rows("herald_ops.outbox", column_names("herald_ops.outbox"), OUTBOX)
    return Site(TestClient(create_app(settings, environ=env)), settings, warehouse, env)


@pytest.fixture
def site(request: pytest.FixtureRequest, herald_env: Callable[[str], dict[str, str]]) -> Iterator[Site]:
    built = open_site(herald_env(request.param))
    with built.client:
        yield built


def assert_refused(answer: Any) -> None:
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert "<h1>Link not found</h1>" in answer.text
    assert "location" not in answer.headers


@pytest.mark.parametrize("site", ENGINES, indirect=True)
def test_a_tampered_unknown_or_swapped_link_is_refused_and_nothing_lands(site: Site) -> None:
    token = site.link(SMS_KEY, BOOK).removeprefix("/l/")
    payload, mac = token.split(".")
    middle = len(payload) // 2
    tampered = payload[:middle] + ("A" if payload[middle] != "A" else "B") + payload[middle + 1 :]
    # a URL that was not in the message, under the message's own signature
    swapped = make_link_token(SECRET, SMS_KEY, "https://evil.example/login").split(".")[0]
    unknown = make_link_token("another-deployments-secret", SMS_KEY, BOOK)
    paths = [f"/l/{tampered}.{mac}", f"/l/{payload}.{mac[:-2]}", f"/l/{swapped}.{mac}", f"/l/{unknown}",
             "/l/not-a-token", f"/l/{uuid.uuid4().hex}.{uuid.uuid4().hex[:16]}"]  # fmt: skip
    for path in paths:
        assert_refused(site.click(path))
    assert site.click(paths[0], method="HEAD").status_code == 404
    assert pending_click_files(site.settings.home) == []
    assert site.clicks() == []


@pytest.mark.parametrize("site", ENGINES, indirect=True)
def test_a_valid_click_lands_one_row_and_redirects(site: Site) -> None:
    answer = site.click(site.link(SMS_KEY, BOOK))
    assert answer.status_code == 302
    assert answer.headers["location"] == BOOK
    assert answer.headers["referrer-policy"] == "no-referrer" and answer.headers["cache-control"] == "no-store"
    assert site.click(site.link(SMS_KEY, BOOK), method="HEAD").status_code == 302  # link checkers land nothing

    [click] = site.clicks()
    assert (click["message_key"], click["client_id"], click["contact_id"]) == (SMS_KEY, "clinic", f"contact-{SMS_KEY}")
    assert (click["url"], click["user_agent_class"], click["user_agent"]) == (BOOK, "mobile", IPHONE)
    assert pending_click_files(site.settings.home) == []  # loaded files move to loaded/
    with site.warehouse.session(read_only=True) as s:
        stamped = s.scalar("select clicked_at from herald_ops.outbox where message_key = ?", [SMS_KEY])
    assert stamped == click["clicked_at"]


@pytest.mark.parametrize("site", ENGINES, indirect=True)
def test_a_link_preview_bot_is_recorded_as_a_bot_and_does_not_count(site: Site) -> None:
    assert site.click(site.link(SMS_KEY, BOOK), user_agent=SLACK).status_code == 302
    [click] = site.clicks()
    assert click["user_agent_class"] == "bot"
    with site.warehouse.session(read_only=True) as s:
        assert s.scalar("select clicked_at from herald_ops.outbox where message_key = ?", [SMS_KEY]) is None


@pytest.mark.parametrize("site", ENGINES, indirect=True)
def test_the_provider_events_sensor_requests_a_run_while_clicks_wait(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dagster as dg

    from resources import HeraldSettingsResource, WarehouseResource
    from sensors.provider_events import provider_events_sensor

    def evaluate() -> Any:
        context = dg.build_sensor_context(
            resources={"herald_settings": HeraldSettingsResource(), "warehouse": WarehouseResource()}
        )
        return provider_events_sensor(context)

    for name, value in site.env.items():
        monkeypatch.setenv(name, value)
    assert isinstance(evaluate(), dg.SkipReason)
    assert site.click(site.link(SMS_KEY, BOOK)).status_code == 302
    waiting = evaluate()  # a file on DuckDB, an unapplied row on PostgreSQL
    assert isinstance(waiting, dg.RunRequest), waiting
    site.clicks()  # the run: loaded, attributed, stamped
    assert isinstance(evaluate(), dg.SkipReason)


# -- the marts --------------------------------------------------------------------------------

MODELS = ("engagement_events", "campaign_performance_daily")


@dataclass
class Marts:
    warehouse: Warehouse
    run: dict[str, Any]


@pytest.fixture(scope="module", params=ENGINES)
def marts(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Marts]:
    """Clicks through the web service into a warehouse with three sent messages and Resend's
    events about the email, loaded as the provider-events run does; then dbt builds the marts."""
    engine: str = request.param
    tmp = tmp_path_factory.mktemp(f"clicks-{engine}")
    url = request.getfixturevalue("pg_database_factory")() if engine == "postgres" else ""
    site = open_site({"HERALD_HOME": str(tmp / "home"), "HERALD_WAREHOUSE_URL": url,
                      "HERALD_CONFIG_DIR": str(Path(__file__).resolve().parents[2] / "config")})  # fmt: skip
    with site.warehouse.session() as s:
        s.insert_rows("herald_ops.clients", ["client_id", "name", "industry", "time_zone", "default_region",
                                             "loaded_at"], CLIENTS)  # fmt: skip
        s.insert_rows("herald_raw.provider_events", column_names("herald_raw.provider_events"), PROVIDER_EVENTS)
        s.insert_rows("herald_ops.provider_event_processing", column_names("herald_ops.provider_event_processing"),
                      PROCESSING)  # fmt: skip
        s.execute(f"create table marts.message_plan ({', '.join(f'{n} {t}' for n, t in MESSAGE_PLAN_COLUMNS)})")
        # what the A/B counts read besides the marts under test
        s.execute("create table marts.messages (message_key varchar, client_id varchar, campaign varchar, "
                  "step varchar, variant varchar, contact_id varchar, status varchar, sent_at timestamp)")  # fmt: skip
        s.execute("create table marts.funnel_events (client_id varchar, contact_id varchar, to_stage varchar, "
                  "occurred_at timestamp)")  # fmt: skip
    with site.client:
        for path, agent in [(site.link(SMS_KEY, BOOK), IPHONE), (site.link(SMS_KEY, BOOK), IPHONE),
                            (site.link(SMS_KEY, BOOK), SLACK), (site.link(EMAIL_KEY, LISTING), WINDOWS)]:  # fmt: skip
            assert site.click(path, agent).status_code == 302
    assert len(site.clicks()) == 4
    target_path = DBT_PROJECT_DIR / "target" / f"{engine}-clicks-test-{uuid.uuid4().hex[:10]}"
    try:
        run = dbt(site.warehouse, target_path, tmp / "logs", "build", "--select", *MODELS)
        yield Marts(site.warehouse, run)
    finally:
        shutil.rmtree(target_path, ignore_errors=True)


def test_the_marts_and_their_data_tests_pass(marts: Marts) -> None:
    statuses = {r["unique_id"]: r["status"] for r in marts.run["results"]}
    assert {"model.herald.engagement_events", "model.herald.campaign_performance_daily"} <= set(statuses)
    assert all(status in ("success", "pass") for status in statuses.values()), statuses


def test_engagement_events_hold_the_clicks_by_people_and_resends_opens_and_clicks(marts: Marts) -> None:
    found = rows(
        marts.warehouse,
        "select message_key, client_id, campaign, step, variant, contact_id, channel, event, url, event_id "
        "from marts.engagement_events order by channel desc, event, url, event_id",
    )
    sms = {"message_key": SMS_KEY, "client_id": "clinic", "campaign": "reminders", "step": "day_before",
           "variant": "a", "contact_id": f"contact-{SMS_KEY}", "channel": "sms", "event": "clicked", "url": BOOK}  # fmt: skip
    email = {**sms, "message_key": EMAIL_KEY, "contact_id": f"contact-{EMAIL_KEY}", "channel": "email"}
    expected = [
        sms,
        sms,
        {**email, "url": LISTING},
        {**email, "url": LISTING},
        {**email, "event": "opened", "url": None},
    ]
    assert [{k: v for k, v in r.items() if k != "event_id"} for r in found] == expected
    assert {r["event_id"] for r in found} >= {"msg_opened", "msg_clicked"}  # the bot's click and the delivery are not


def test_campaign_performance_counts_each_message_opened_or_clicked_once(marts: Marts) -> None:
    found = rows(
        marts.warehouse,
        "select channel, sent, delivered, opened, clicked, click_rate from analytics.campaign_performance_daily "
        "where campaign = 'reminders' order by channel",
    )
    assert found == [
        # clicked twice and once by Resend too: one message, one click; per delivered message
        {"channel": "email", "sent": 1, "delivered": 1, "opened": 1, "clicked": 1, "click_rate": 1.0},
        # two people's clicks and a bot's on one of two texts; no receipts: per sent message
        {"channel": "sms", "sent": 2, "delivered": 0, "opened": 0, "clicked": 1, "click_rate": 0.5},
    ]


def test_ab_counts_read_opens_and_clicks_per_message(marts: Marts) -> None:
    with marts.warehouse.session(read_only=True) as s:
        counts = read_counts(s, engagement=True)
    assert counts[("clinic", "reminders", "day_before", "a")] == {
        "sent": 3, "delivered": 1, "replied": 0, "converted": 0, "opened": 1, "clicked": 2,
    }  # fmt: skip
