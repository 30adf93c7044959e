"""Click tracking without a warehouse: signed link tokens, ``{{ track(url) }}`` in SMS templates,
email links rewritten (never the unsubscribe links, not at all with ``track_links: false``), and
the user-agent classes."""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from herald.analytics.ab_tests import ArmCounts, compare_arms
from herald.campaigns.enqueue import MessageBuilder
from herald.campaigns.links import Links
from herald.campaigns.tracking import (
    InvalidLinkToken,
    LinkTarget,
    LinkTracker,
    make_link_token,
    read_link_token,
    user_agent_class,
)
from herald.config import load_deployment
from herald.config.campaigns import AbTest, CampaignConfig
from herald.config.models import Deployment
from herald.messages.render import Renderer
from tests.conftest import CONFIG_DIR

SECRET = "link-secret"
PUBLIC = "https://herald.example"
KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"  # a message key is an md5
BOOK = "https://lakesiderealty.example/book?listing=42&src=sms"
NOW = datetime(2026, 11, 20, 15, 0)
SMS_TEMPLATE = "tracked.sms.j2"
EMAIL_TEMPLATE = "tracked.mjml.j2"
MJML = """<mjml><mj-body><mj-section><mj-column>
<mj-text>Hi {{ first_name }}, see <a href="https://lakesiderealty.example/listing/42?a=1&b=2">the listing</a>
or <a href='http://lakesiderealty.example/map'>the map</a>;
write to <a href="mailto:agent@lakesiderealty.example">us</a>.</mj-text>
<mj-text><a href="{{ unsubscribe_url }}">{{ unsubscribe_text }}</a></mj-text>
</mj-column></mj-section></mj-body></mjml>"""


def test_a_token_round_trips_and_is_short() -> None:
    token = make_link_token(SECRET, KEY, BOOK)
    assert read_link_token(SECRET, token) == LinkTarget(KEY, BOOK)
    # 1 byte for the format and scheme + 17 for the key + the URL without "https://", base64url;
    # then "." and 16 characters of signature: 103 characters for this 54-character URL
    assert len(token) == len(base64.urlsafe_b64encode(b"x" * (18 + len(BOOK) - 8)).rstrip(b"=")) + 17 == 103
    http = make_link_token(SECRET, KEY, "http://example.com/A")
    assert read_link_token(SECRET, http).url == "http://example.com/A"


def test_a_changed_token_is_refused() -> None:
    token = make_link_token(SECRET, KEY, BOOK)
    payload, mac = token.split(".")
    middle = len(payload) // 2
    flipped = payload[:middle] + ("A" if payload[middle] != "A" else "B") + payload[middle + 1 :]
    # the same key with another URL, under the first token's signature: a URL not in the message
    other_url = make_link_token(SECRET, KEY, "https://evil.example/phish").split(".")[0]
    refused = [
        f"{flipped}.{mac}", f"{payload}.{mac[:-1]}", f"{other_url}.{mac}", make_link_token("other-secret", KEY, BOOK),
        "not-a-token", "", f"{payload}.{mac}.x", "a" * 3000,
    ]  # fmt: skip
    for bad in refused:
        with pytest.raises(InvalidLinkToken):
            read_link_token(SECRET, bad)


def test_track_needs_an_absolute_http_url() -> None:
    tracker = LinkTracker(SECRET, PUBLIC, KEY)
    for bad in ("javascript:alert(1)", "/relative", "https://", "https://a b.example", 42):
        with pytest.raises(ValueError, match="track"):
            tracker.track(bad)
    assert tracker.track(f"{PUBLIC}/u/abc") == f"{PUBLIC}/u/abc"  # Herald's own pages stay as they are
    assert LinkTracker(SECRET, PUBLIC, KEY, enabled=False).track(BOOK) == BOOK


def test_user_agent_classes() -> None:
    iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1"
    android = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/124.0 Mobile Safari/537.36"
    windows = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36"
    bots = [
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "WhatsApp/2.23.20.0", "TelegramBot (like TwitterBot)",
        "facebookexternalhit/1.1", "Mozilla/5.0 (compatible; Googlebot/2.1)", "curl/8.4.0", "python-requests/2.32", "",
        None, "Mozilla/5.0 (Windows NT 10.0) HeadlessChrome/120.0", "Mozilla/5.0 (compatible; BingPreview/1.0b)",
    ]  # fmt: skip
    assert [user_agent_class(ua) for ua in (iphone, android, windows)] == ["mobile", "mobile", "desktop"]
    assert {user_agent_class(ua) for ua in bots} == {"bot"}


# -- through the message builder ---------------------------------------------------------------


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    templates = tmp_path / "clients" / "lakeside_realty" / "templates"
    templates.mkdir(parents=True)
    (templates / SMS_TEMPLATE).write_text("Hi {{ first_name }}, book a showing: {{ track('" + BOOK + "') }}")
    (templates / EMAIL_TEMPLATE).write_text(MJML)
    return tmp_path


def builder(config_dir: Path, *, track_links: bool = True) -> MessageBuilder:
    deployment = load_deployment(CONFIG_DIR)
    client = deployment.clients["lakeside_realty"]
    campaign = client.campaigns["new_listings"].model_copy(update={"track_links": track_links})
    client = client.model_copy(update={"campaigns": {**client.campaigns, "new_listings": campaign}})
    deployment = Deployment(herald=deployment.herald, clients={**deployment.clients, "lakeside_realty": client})
    return MessageBuilder(deployment, config_dir, Links(PUBLIC, SECRET), Renderer())


def plan_row(channel: str) -> dict[str, Any]:
    return {
        "message_key": KEY, "client_id": "lakeside_realty", "campaign": "new_listings", "step": "announcement",
        "occurrence": "2026-11-20T09:30", "contact_id": "ana", "message_type": "home_for_sale",
        "category": "marketing", "channel": channel, "variant": "standard", "send_after": NOW,
        "to_address": "+13035550100" if channel == "sms" else "ana@example.com",
        "template": SMS_TEMPLATE if channel == "sms" else EMAIL_TEMPLATE, "subject_template": "New listing",
        "variables": json.dumps({"first_name": "Ana", "client_name": "Lakeside Realty Group"}),
    }  # fmt: skip


def test_track_in_an_sms_template_renders_a_short_signed_link(config_dir: Path) -> None:
    message = builder(config_dir).build(plan_row("sms"))
    assert message.status == "queued", message.status_reason
    first_line = message.body_text.splitlines()[0]
    assert first_line.startswith("Hi Ana, book a showing: https://herald.example/l/")
    link = first_line.split(": ", 1)[1]
    assert read_link_token(SECRET, link.rsplit("/", 1)[1]) == LinkTarget(KEY, BOOK)
    # 128 characters for this 54-character URL: the message stays in two GSM segments
    assert len(link) == len(f"{PUBLIC}/l/") + 103
    assert message.sms_segments == 2

    untracked = builder(config_dir, track_links=False).build(plan_row("sms"))
    assert untracked.body_text.splitlines()[0] == f"Hi Ana, book a showing: {BOOK}"


def hrefs(html: str) -> list[str]:
    return [unescape(h) for h in re.findall(r"""href=["']([^"']+)["']""", html)]


def test_email_links_are_rewritten_but_never_the_unsubscribe_link(config_dir: Path) -> None:
    message = builder(config_dir).build(plan_row("email"))
    assert message.status == "queued", message.status_reason
    links = hrefs(message.body_html)
    tracked = [h for h in links if h.startswith(f"{PUBLIC}/l/")]
    targets = [read_link_token(SECRET, h.rsplit("/", 1)[1]).url for h in tracked]
    assert targets == ["https://lakesiderealty.example/listing/42?a=1&b=2", "http://lakesiderealty.example/map"]
    assert "mailto:agent@lakesiderealty.example" in links
    unsubscribe = [h for h in links if h.startswith(f"{PUBLIC}/u/")]
    assert unsubscribe and all("/l/" not in h for h in unsubscribe)
    assert message.headers["List-Unsubscribe"].startswith(f"<{PUBLIC}/u/")

    plain = builder(config_dir, track_links=False).build(plan_row("email"))
    assert not [h for h in hrefs(plain.body_html) if "/l/" in h]
    assert "https://lakesiderealty.example/listing/42?a=1&b=2" in hrefs(plain.body_html)


def test_track_without_a_message_leaves_the_url_for_previews() -> None:
    sms = Renderer().render_sms("t.sms.j2", "Go: {{ track('" + BOOK + "') }}", {}, "ana", include_opt_out=False)
    assert sms.body == f"Go: {BOOK}"


def test_ab_tests_may_judge_by_clicks_or_opens() -> None:
    arms = [
        ArmCounts("welcome", "plain", sent=400, clicked=20, opened=120),
        ArmCounts("welcome", "bold", sent=400, clicked=60, opened=118),
    ]
    by_clicks = {r.variant: r for r in compare_arms(arms, "plain", 0.05, 100, metric="clicked")}
    assert (by_clicks["bold"].verdict, by_clicks["bold"].winner, by_clicks["bold"].rate) == ("winner", "bold", 0.15)
    by_opens = {r.variant: r for r in compare_arms(arms, "plain", 0.05, 100, metric="opened")}
    assert by_opens["bold"].verdict == "no significant difference"
    assert AbTest(metric="clicked").metric == "clicked" and AbTest(metric="opened").metric == "opened"


def test_campaigns_track_links_unless_they_say_not_to() -> None:
    campaign = load_deployment(CONFIG_DIR).clients["lakeside_realty"].campaigns["new_listings"]
    assert campaign.track_links is True
    data = campaign.model_dump(exclude_none=True)
    assert CampaignConfig.model_validate({**data, "track_links": False}).track_links is False
