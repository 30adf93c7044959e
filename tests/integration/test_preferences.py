"""The preference center at the unsubscribe link, on both engines: choices made on the page (a
topic off, email only, texts only, a two-week pause, weekly frequency) change exactly the planned
rows they should, each with its reason; a transactional reminder continues through a pause;
one-click and "stop everything" still suppress; a bad token or a bad form changes nothing; SMS
PAUSE changes the same preferences; a campaign naming an unknown topic fails ``config check``.

The world is test_message_plan.py's hand-made marts and campaigns (client ``acme``), planned
once before the choices (occurrence ``o-*``) and once after (``o2-*``, two days later).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from herald.clock import utcnow
from herald.compliance.inbound import apply_inbound
from herald.compliance.preferences import Preferences, encode_state
from herald.config import check_config, load_deployment
from herald.config.models import Deployment
from herald.delivery.outbox import OutboxMessage, enqueue
from herald.events.apply import apply_provider_events
from herald.events.landing import load_events
from herald.messages.unsubscribe import make_token
from herald.settings import Settings
from herald.warehouse.connection import Warehouse
from herald.web.app import create_app
from herald.web.server import running_server
from tests.conftest import CONFIG_DIR, ENGINES
from tests.integration.test_message_plan import CLIENT, FIRED, LOADED, build_plan, dbt_run, insert, occurrence

SECRET = "prefs-secret"
SMS_FROM = "+13125550199"
# contact, phone, email (besides test_message_plan's c1..c7; all consent to marketing texts)
MORE_CONTACTS = [
    ("p2", "+13125550202", "p2@example.com"),  # chooses email only
    ("p3", None, "p3@example.com"),  # chooses texts only
    ("p4", None, "p4@example.com"),  # chooses weekly
    ("p5", None, "p5@example.com"),  # one-click unsubscribe (not in the segment)
    ("p6", "+13125550206", "p6@example.com"),  # stops everything (not in the segment)
    ("p7", "+13125550207", None),  # texts PAUSE (not in the segment)
]
SECOND = FIRED + timedelta(days=2)  # Sunday 2026-11-22 03:00 UTC


def config_with_acme(tmp: Path) -> Path:
    """The example configuration plus the plan world's client ``acme`` (default topics)."""
    config = tmp / "config"
    shutil.copytree(CONFIG_DIR, config)
    folder = config / "clients" / CLIENT
    folder.mkdir()
    client = {"client_id": CLIENT, "name": "Acme Dental", "time_zone": "America/Chicago",
              "senders": {"sms_from": SMS_FROM, "email_from": "hello@acme.example"}}  # fmt: skip
    (folder / "client.yaml").write_text(yaml.safe_dump(client))
    shutil.copytree(config / "clients" / "bright_smiles_dental" / "load_maps", folder / "load_maps")
    return config


@dataclass
class World:
    engine: str
    warehouse: Warehouse
    settings: Settings
    deployment: Deployment
    tmp: Path
    url: str
    baseline: dict[tuple[str, str], tuple[str, str | None]]

    def token(self, contact_id: str, channel: str = "email") -> str:
        return make_token(SECRET, CLIENT, contact_id, channel, "all")

    def apply(self) -> None:
        """What the sensors do: land the page's waiting event files, apply every event."""
        load_events(self.warehouse, self.settings.home)
        with self.warehouse.session() as s:
            apply_provider_events(s, self.deployment, utcnow())

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple]:
        with self.warehouse.session(read_only=True) as s:
            _, rows = s.query(sql, params or [])
        return [tuple(r) for r in rows]


def outcomes(warehouse: Warehouse, prefix: str) -> dict[tuple[str, str], tuple[str, str | None]]:
    with warehouse.session(read_only=True) as s:
        _, rows = s.query(
            "select campaign, contact_id, status, reason from marts.message_plan where occurrence like ?",
            [f"{prefix}-%"],
        )
    return {(r[0], r[1]): (r[2], r[3]) for r in rows}


@pytest.fixture(scope="module", params=ENGINES)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    engine = request.param
    tmp = tmp_path_factory.mktemp(f"prefs_{engine}")
    config = config_with_acme(tmp)

    def env_for(engine_name: str) -> dict[str, str]:
        url = request.getfixturevalue("pg_database_factory")() if engine_name == "postgres" else ""
        return {"HERALD_HOME": str(tmp / "home"), "HERALD_CONFIG_DIR": str(config), "HERALD_WAREHOUSE_URL": url,
                "HERALD_SECRET_KEY": SECRET}  # fmt: skip

    made: dict[str, str] = {}

    def herald_env(engine_name: str) -> dict[str, str]:
        made.update(env_for(engine_name))
        return made

    warehouse, _ = build_plan(engine, herald_env, tmp, run=False)
    env = dict(made)
    settings = Settings.from_env(env)
    deployment = load_deployment(config)
    with warehouse.session() as s:
        s.execute("update herald_ops.campaigns set daily_limit = null")
        insert(s, "herald_ops.campaign_topics", [(CLIENT, "announce", "offers"), (CLIENT, "remind", "reminders")])
        # c4 shared c1's phone ('duplicate address'): out of the way, so c1's choices move only c1's rows
        s.execute("delete from marts.segment_members where contact_id = 'c4'")
        for contact_id, phone, email in MORE_CONTACTS:
            s.execute(
                "insert into marts.contacts values (?, ?, ?, ?, null, ?, ?, ?, ?, null, null)",
                [contact_id, CLIENT, contact_id.upper(), f"Name{contact_id}", email, email is not None, phone,
                 phone is not None],
            )  # fmt: skip
            if contact_id in ("p2", "p3", "p4"):
                insert(s, "marts.segment_members", [(CLIENT, "everyone", contact_id, LOADED, LOADED)])
            if phone:
                insert(s, "herald_ops.consent_events", [(f"ev-{contact_id}", CLIENT, contact_id, "sms", phone, "opt_in",
                                                         "all", "express_written", "web", "form", LOADED, LOADED)])  # fmt: skip
    dbt_run(warehouse, tmp)
    baseline = outcomes(warehouse, "o")
    with running_server(create_app(settings, environ=env)) as url:
        yield World(engine, warehouse, settings, deployment, tmp, url, baseline)


def save(world: World, contact_id: str, link: str = "email", **fields: Any) -> httpx.Response:
    """Submits the page's preference form as a person would: start from what the page shows
    (every box checked), change ``fields``."""
    page = httpx.get(f"{world.url}/u/{world.token(contact_id, link)}")
    assert page.status_code == 200
    form_id = re.search(r'name="form_id" value="([^"]+)"', page.text)
    assert form_id is not None
    data: dict[str, Any] = {"action": "save", "form_id": form_id.group(1), "was": encode_state(Preferences()),
                            "topic": ["reminders", "offers", "news"], "channel": ["email", "sms"],
                            "frequency": "all", "pause": "none", "pause_date": ""}  # fmt: skip
    data.update(fields)
    return httpx.post(f"{world.url}/u/{world.token(contact_id, link)}", data=data)


def queued_message(key: str, contact_id: str, campaign: str, category: str, channel: str, to: str) -> OutboxMessage:
    return OutboxMessage(message_key=key, client_id=CLIENT, campaign=campaign, step="s", variant="a", occurrence="q",
                         contact_id=contact_id, message_type="announcement", category=category, channel=channel,
                         to_address=to, sender=None, send_after=datetime(2026, 12, 8, 15, 0), body_text="hello")  # fmt: skip


def test_page_choices_change_exactly_the_planned_rows_they_should_with_reasons(world: World) -> None:
    # the page shows the client's topics, the channels, how often and the pause
    page = httpx.get(f"{world.url}/u/{world.token('c2')}")
    for text in ("<h1>Unsubscribe from Acme Dental</h1>", "<legend>Topics</legend>", "<strong>Offers</strong>",
                 "<strong>Reminders</strong>", "<strong>News</strong>", "<strong>Text messages</strong>",
                 "At most one offer a week", "For two weeks", '<button type="submit">Save my choices</button>',
                 "Stop all emails and texts", '<button type="submit">Unsubscribe</button>'):  # fmt: skip
        assert text in page.text, text

    topic_off = save(world, "c2", topic=["reminders", "news"])
    assert topic_off.status_code == 200
    assert "<h1>Your choices are saved</h1>" in topic_off.text
    assert "<p>You will no longer get Offers from Acme Dental.</p>" in topic_off.text
    assert "<p>Reminders and News continue by email and text.</p>" in topic_off.text
    email_only = save(world, "p2", channel=["email"])
    assert "<p>You will no longer get text messages from Acme Dental.</p>" in email_only.text
    assert "<p>Reminders, Offers and News continue by email.</p>" in email_only.text
    texts_only = save(world, "p3", channel=["sms"])
    assert "<p>You will no longer get emails from Acme Dental.</p>" in texts_only.text
    weekly = save(world, "p4", frequency="weekly")
    assert "How often: at most one offer a week (was every message)." in weekly.text
    pause = save(world, "c1", link="sms", pause="2w")
    until = (utcnow().date() + timedelta(days=14)).isoformat()
    assert "Offers and news are paused until" in pause.text and "appointment reminders" in pause.text
    # messages already queued: the choices withdraw what they leave out, not the reminder
    queued = [queued_message("q-p3", "p3", "announce", "marketing", "email", "p3@example.com"),
              queued_message("q-c1-offer", "c1", "announce", "marketing", "sms", "+13125550101"),
              queued_message("q-c1-reminder", "c1", "remind", "transactional", "sms", "+13125550101")]  # fmt: skip
    with world.warehouse.session() as s:
        enqueue(s, queued, utcnow())
    world.apply()
    statuses = world.query("select message_key, status, status_reason from herald_ops.outbox "
                           "where message_key like 'q-%' order by message_key")  # fmt: skip
    assert statuses == [
        ("q-c1-offer", "cancelled", "preferences: the contact's choice"),
        ("q-c1-reminder", "queued", None),
        ("q-p3", "cancelled", "preferences: the contact's choice"),
    ]

    # the preferences and their history (one row per change, source page)
    prefs = world.query("select contact_id, topics_off, email_off, sms_off, frequency, cast(paused_until as varchar), "
                        "source from herald_ops.contact_preferences order by contact_id")  # fmt: skip
    assert prefs == [
        ("c1", "", False, False, "all", until, "page"),
        ("c2", "offers", False, False, "all", None, "page"),
        ("p2", "", False, True, "all", None, "page"),
        ("p3", "", True, False, "all", None, "page"),
        ("p4", "", False, False, "weekly", None, "page"),
    ]
    history = world.query("select contact_id, field, old_value, new_value, source from herald_ops.preference_events "
                          "order by contact_id")  # fmt: skip
    assert history == [
        ("c1", "paused_until", None, until, "page"),
        ("c2", "topic:offers", "on", "off", "page"),
        ("p2", "sms", "on", "off", "page"),
        ("p3", "email", "on", "off", "page"),
        ("p4", "frequency", "all", "weekly", "page"),
    ]

    # the next pass, two days later: c1's appointment moved on, so its reminder is due again
    with world.warehouse.session() as s:
        s.execute("update herald_ops.campaign_occurrences set planned_at = ?", [LOADED])
        s.execute("update marts.contact_attributes set timestamp_value = ? where contact_id = 'c1' "
                  "and attribute_name = 'appointment_at'", [datetime(2026, 11, 28, 9, 0)])  # fmt: skip
        insert(s, "herald_ops.campaign_occurrences",
               [occurrence(f"o2-{c}", c, SECOND) for c in ("announce", "remind")])  # fmt: skip
    dbt_run(world.warehouse, world.tmp)
    after = outcomes(world.warehouse, "o2")
    before = {key: value for key, value in world.baseline.items() if key[0] in ("announce", "remind")}
    changed = {key: (before[key], after[key]) for key in before if before[key] != after[key]}
    assert changed == {
        ("announce", "c1"): (("planned", None), ("excluded", f"preference: paused until {until}")),
        ("announce", "c2"): (("planned", None), ("excluded", "preference: topic offers off")),
        ("announce", "p2"): (("planned", None), ("excluded", "preference: sms off")),
        ("announce", "p3"): (("planned", None), ("excluded", "preference: email off")),
        ("announce", "p4"): (("planned", None), ("excluded", "preference: frequency weekly (1 sent in the last 7 days)")),
    }  # fmt: skip
    assert after.keys() == before.keys()
    # a pause leaves a transactional reminder alone
    assert after[("remind", "c1")] == ("planned", None)


def test_one_click_and_stop_everything_still_suppress_and_say_exactly_what_stopped(world: World) -> None:
    one_click = httpx.post(f"{world.url}/u/{world.token('p5')}/one-click", content=b"List-Unsubscribe=One-Click",
                           headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert (one_click.status_code, one_click.text) == (200, "You are unsubscribed.")
    everything = httpx.post(f"{world.url}/u/{world.token('p6')}", data={"action": "unsubscribe_all"})
    assert everything.status_code == 200 and "<h1>You are unsubscribed</h1>" in everything.text
    assert "<p>You will no longer get emails or text messages from Acme Dental.</p>" in everything.text
    email_only = httpx.post(f"{world.url}/u/{world.token('p7', 'sms')}")  # the plain button on a text's link
    assert "You will no longer get text messages from Acme Dental. This does not stop emails" in email_only.text
    assert "will not message you again" not in email_only.text
    world.apply()
    rows = world.query("select contact_id, channel, address, scope, reason, source from herald_ops.suppressions "
                       "where contact_id in ('p5', 'p6', 'p7') order by contact_id, channel")  # fmt: skip
    assert rows == [
        ("p5", "email", "p5@example.com", "all", "opt_out", "web"),
        ("p6", "email", "p6@example.com", "all", "opt_out", "web"),
        ("p6", "sms", "+13125550206", "all", "opt_out", "web"),
        ("p7", "sms", "+13125550207", "all", "opt_out", "web"),
    ]


def test_a_bad_token_or_a_bad_form_changes_nothing(world: World) -> None:
    world.apply()
    before = world.query("select count(*) from herald_raw.provider_events")
    prefs = world.query("select * from herald_ops.contact_preferences order by contact_id")
    good = world.token("c3")
    payload, mac = good.split(".")
    tampered = f"{payload[:-1]}{'A' if payload[-1] != 'A' else 'B'}.{mac}"
    bad = httpx.post(f"{world.url}/u/{tampered}", data={"action": "save", "topic": ["news"]})
    assert bad.status_code == 400 and "This link does not work" in bad.text and "Acme" not in bad.text
    unknown = save(world, "c3", topic=["news", "bogus"])
    assert unknown.status_code == 400 and "<h1>Please check your choices</h1>" in unknown.text
    assert "Nothing was changed. Topics: &#x27;bogus&#x27; is not one of this sender&#x27;s topics" in unknown.text
    past = save(world, "c3", pause="date", pause_date="2020-01-01")
    assert past.status_code == 400 and "Pause until: 2020-01-01 must be after today" in past.text
    not_a_date = save(world, "c3", pause="date", pause_date="next tuesday")
    assert not_a_date.status_code == 400 and "is not a date (YYYY-MM-DD)" in not_a_date.text
    strange = httpx.post(f"{world.url}/u/{good}", data={"action": "delete_everyone"})
    assert strange.status_code == 400 and "which this page does not do" in strange.text
    world.apply()
    assert world.query("select count(*) from herald_raw.provider_events") == before
    assert world.query("select * from herald_ops.contact_preferences order by contact_id") == prefs


def test_sms_pause_and_resume_change_the_same_preferences(world: World) -> None:
    received = datetime(2026, 12, 7, 15, 0)
    with world.warehouse.session() as s:
        insert(s, "herald_raw.inbound_messages", [
            ("in-pause", "sms", "+13125550207", SMS_FROM, "Pause", "twilio", received, received),
        ])  # fmt: skip
        [result] = apply_inbound(s, world.deployment, received)
    assert (result.kind, result.action) == ("pause", "paused")
    assert world.query("select cast(paused_until as varchar), source from herald_ops.contact_preferences "
                       "where contact_id = 'p7'") == [("2027-01-06", "sms_keyword")]  # fmt: skip
    reply = world.query("select body_text from herald_ops.outbox where message_key = ?", [result.reply_message_key])
    assert reply[0][0].startswith("Acme Dental: offers and news are paused until 6 January 2027.")
    with world.warehouse.session() as s:
        insert(s, "herald_raw.inbound_messages", [
            ("in-resume", "sms", "+13125550207", SMS_FROM, "RESUME", "twilio", received, received),
        ])  # fmt: skip
        [result] = apply_inbound(s, world.deployment, received)
    assert result.action == "resumed"
    assert world.query("select paused_until from herald_ops.contact_preferences where contact_id = 'p7'") == [(None,)]
    history = world.query("select new_value, source, evidence from herald_ops.preference_events "
                          "where contact_id = 'p7' order by recorded_at, new_value")  # fmt: skip
    assert sorted(history, key=str) == sorted([("2027-01-06", "sms_keyword", "Pause"),
                                               (None, "sms_keyword", "RESUME")], key=str)  # fmt: skip
    # STOP is still an opt-out of every text, never a pause
    with world.warehouse.session() as s:
        insert(s, "herald_raw.inbound_messages", [
            ("in-stop", "sms", "+13125550207", SMS_FROM, "STOP", "twilio", received, received),
        ])  # fmt: skip
        [result] = apply_inbound(s, world.deployment, received)
    assert result.kind == "opt_out"


def test_a_campaign_with_an_unknown_topic_fails_config_check(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    path = config / "clients" / "summit_roofing" / "campaigns" / "roof_check_offer.yaml"
    path.write_text(path.read_text().replace("topic: offers", "topic: coupons"))
    _, problems = check_config(config)
    assert [str(p) for p in problems] == [
        "config/clients/summit_roofing/campaigns/roof_check_offer.yaml: topic: no topic 'coupons' for this client "
        "(client.yaml topics: reminders, offers, news)"
    ]
    client = config / "clients" / "summit_roofing" / "client.yaml"
    data = yaml.safe_load(client.read_text())
    data["topics"] = [{"name": "coupons", "label": "Coupons"}, {"name": "coupons", "label": "Again"}]
    client.write_text(yaml.safe_dump(data))
    _, problems = check_config(config)
    assert any("topic 'coupons' is listed more than once" in str(p) for p in problems), problems


def test_a_message_enqueued_after_a_preference_change_is_held_back_at_the_claim(world: World) -> None:
    """A send pass that read the plan just before a change enqueues after it: the change's own
    cancellation cannot see the message, so the claim re-reads the preferences and suppresses
    it with the plan's reason. An answer to the person's own text is never held back."""
    from herald.compliance.preferences import apply_preferences
    from herald.delivery.engine import deliver_due
    from herald.providers.sandbox import SandboxSmsProvider

    now = utcnow().replace(microsecond=0)
    topics = [t.name for t in world.deployment.clients[CLIENT].config.topics]
    choices = {
        "q1": Preferences(sms_off=True),
        "q2": Preferences(topics_off=frozenset({"offers"})),
        "q3": Preferences(paused_until=(now + timedelta(days=14)).date()),
        "q4": Preferences(topics_off=frozenset({"news"})),  # another topic: q4's offer goes
    }
    with world.warehouse.session() as s:
        insert(s, "herald_ops.campaign_topics", [(CLIENT, "late_offer", "offers")])
        for contact_id, new in choices.items():
            apply_preferences(s, client_id=CLIENT, contact_id=contact_id, new=new, topics=topics, source="api",
                              event_id=f"claim-{contact_id}-{now:%H%M%S%f}", occurred_at=now, now=now)  # fmt: skip

        def message(key: str, contact_id: str, phone: str, campaign: str = "late_offer") -> OutboxMessage:
            category = "transactional" if campaign == "_replies" else "marketing"
            return OutboxMessage(key, CLIENT, campaign, "first", "a", f"o-{key}", contact_id, "announcement", category,
                                 "sms", phone, SMS_FROM, now, body_text=f"Hi {contact_id}")  # fmt: skip

        enqueue(s, [message("late-q1", "q1", "+13125550301"), message("late-q2", "q2", "+13125550302"),
                    message("late-q3", "q3", "+13125550303"), message("late-q4", "q4", "+13125550304"),
                    message("answer-q1", "q1", "+13125550301", campaign="_replies")], now)  # fmt: skip
    provider = SandboxSmsProvider()
    deliver_due(world.warehouse, {"sms": provider}, now=now)
    with world.warehouse.session(read_only=True) as s:
        _, rows = s.query("select message_key, status, status_reason from herald_ops.outbox "
                          "where message_key like 'late-%' or message_key = 'answer-q1' order by message_key")  # fmt: skip
    assert rows == [
        ("answer-q1", "sent", None),
        ("late-q1", "suppressed", "preference: sms off"),
        ("late-q2", "suppressed", "preference: topic offers off"),
        ("late-q3", "suppressed", f"preference: paused until {choices['q3'].paused_until.isoformat()}"),
        ("late-q4", "sent", None),
    ]
    assert sorted(m.to for m in provider.sent) == ["+13125550301", "+13125550304"]
