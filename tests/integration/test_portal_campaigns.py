"""The portal's Campaigns pages through HTTP (FastAPI's test client on the real app), on DuckDB and
PostgreSQL: the college's nurture journey over 20 admitted leads (tests/integration/test_simulate.py's
warehouse). The status figures are the enrollment ledger's; the message review is
``herald campaign preview``'s own output; a pause makes the plan leave everyone out with
"paused by <user> in the portal" and the delivery claim cancel a message planned before it; a
resume plans them again; a test message reaches the sandbox journal only at the signed-in user's
own address; another client's campaign is a 404, a viewer's pause a 403; screenshots.

The tests of one engine share one warehouse and run in the order written (each takes up where
the last one left it).
"""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from herald.campaigns.links import links_from_env
from herald.campaigns.occurrences import Occurrence
from herald.campaigns.preview import preview_plan
from herald.campaigns.simulate import plan_pass
from herald.config import load_deployment
from herald.delivery.checks import sent_inside_send_windows
from herald.delivery.engine import DeliveryOptions, deliver_due
from herald.portal.audit import query
from herald.portal.reads import publish_snapshot, reader_for
from herald.providers.factory import providers_from_env
from herald.providers.sandbox import read_journal
from herald.web.app import create_app
from herald.web.portal import PREFIX
from tests.conftest import CONFIG_DIR, ENGINES
from tests.integration.portal_support import cheap_argon2, engine_url, portal_env  # noqa: F401
from tests.integration.test_portal_web import add, client_routes, csrf, sign_in, store
from tests.integration.test_simulate import COLLEGE, LEADS, START, build

CAMPAIGN = "admitted_nurture"
OTHER = "bright_smiles_dental"  # its campaign appointment_reminder sends texts
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(os.environ.get("HERALD_SHOTS_DIR", "/work/shots/campaigns"))
PAGE = f"{PREFIX}/c/{COLLEGE}/campaigns/{CAMPAIGN}"


@pytest.fixture(scope="module", params=ENGINES)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp(f"portal-campaigns-{request.param}")
    env = portal_env(tmp / "home", "campaigns-secret", engine_url(request))
    warehouse, settings = build(env, tmp)
    publish_snapshot(settings.warehouse)
    portal = {"app": create_app(settings, environ=env), "warehouse": warehouse, "home": settings.home,
              "settings": settings, "env": env, "tmp": tmp, "engine": request.param}  # fmt: skip
    portal["staff"], secret = add(portal, "staff", COLLEGE, display_name="Dana Staff")
    portal["browser"] = sign_in(portal, portal["staff"].email, secret)
    yield portal
    if request.param == "postgres":
        reader_for(settings.warehouse).close()  # before the database is dropped


def _figures(page: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r'data-figure="(\w+)">(\d+)<', page)}


def test_the_route_matrix_covers_the_campaigns_pages(world: dict[str, Any]) -> None:
    routes = set(client_routes(world["app"]))
    for path in ("campaigns", "campaigns/{campaign}", "campaigns/{campaign}/review"):
        assert ("GET", f"{PREFIX}/c/{{client_id}}/{path}") in routes, path
    for action in ("pause", "resume", "phone", "test"):
        assert ("POST", f"{PREFIX}/c/{{client_id}}/campaigns/{{campaign}}/{action}") in routes, action


def test_a_paused_campaign_is_left_out_of_the_review_with_who_paused_it(world: dict[str, Any]) -> None:
    browser, staff = world["browser"], world["staff"]
    listing = browser.get(f"{PREFIX}/c/{COLLEGE}/campaigns")
    assert listing.status_code == 200 and f'data-campaign="{CAMPAIGN}"' in listing.text
    assert ">Campaigns</a>" in listing.text and "At 10:00 AM (America/New_York)" in listing.text
    page = browser.get(PAGE)
    token = csrf(page.text)
    assert page.status_code == 200 and 'id="pause"' in page.text and _figures(page.text)["enrolled"] == 0
    paused = browser.post(f"{PAGE}/pause", data={"csrf_token": token})
    assert paused.status_code == 200 and 'id="resume"' in paused.text
    assert f"paused by {staff.email} in the portal" in paused.text
    shoot(world, "campaign-paused", html=paused.text)
    assert [r.subject for r in query_rows(world, "campaign_paused")] == [CAMPAIGN]

    review = browser.get(f"{PAGE}/review")  # on PostgreSQL the route lets go of the portal's read pool itself
    assert review.status_code == 200, review.text[-2000:]
    reason = f"paused by {staff.email} in the portal"
    assert f"{reason} (20)" in review.text  # every lead's welcome, with the reason
    assert review.text.count('data-outcome="excluded"') == 20 and 'data-outcome="planned"' not in review.text
    with store(world).session(read_only=True) as s:  # page views: the portal's own store (the warehouse on PostgreSQL)
        assert query(s, user=staff.email, action="portal_view")[0].subject == f"{PAGE}/review"
    if world["engine"] != "duckdb":
        return  # the function is the same on both engines: one comparison (a dbt run) is enough
    # the same function as `herald campaign preview`, at the same moment: the same rows
    when = re.search(r"As if it fired (\S+ \S+) UTC", review.text).group(1)  # type: ignore[union-attr]
    at = datetime.fromisoformat(when)
    settings, deployment = world["settings"], load_deployment(CONFIG_DIR)
    direct = preview_plan(settings.warehouse, deployment, CONFIG_DIR, links_from_env(settings.home), COLLEGE,
                          deployment.clients[COLLEGE].campaigns[CAMPAIGN], at)  # fmt: skip
    shown = re.findall(
        r'<li class="card" data-contact="([^"]+)" data-outcome="([^"]+)" data-step="([^"]+)"', review.text
    )
    assert sorted(shown) == sorted((r.contact_id, r.outcome, r.step or "(enrollment)") for r in direct.rows)
    assert {r.reason for r in direct.rows if r.outcome == "excluded"} == {reason}


def test_resumed_the_review_shows_each_rendered_welcome_masked_for_hidden_details(world: dict[str, Any]) -> None:
    browser = world["browser"]
    resumed = browser.post(f"{PAGE}/resume", data={"csrf_token": csrf(browser.get(PAGE).text)})
    assert resumed.status_code == 200 and "Resumed admitted_nurture" in resumed.text and 'id="pause"' in resumed.text
    assert [r.subject for r in query_rows(world, "campaign_resumed")] == [CAMPAIGN]
    if world["engine"] != "duckdb":
        return  # the next test's real send pass shows the plan again on both engines; one review is enough
    hidden, secret = add(world, "staff", COLLEGE, hide_contact_details=True)
    masked = sign_in(world, hidden.email, secret)
    review = masked.get(f"{PAGE}/review")
    assert review.status_code == 200
    assert (
        review.text.count('data-outcome="planned"') == 20 and "paused by" not in review.text.split("Message review")[1]
    )
    for lead in LEADS:  # each welcome with its recipient (masked) and its rendered text
        assert f'data-contact="{lead}" data-outcome="planned"' in review.text
        assert f"{lead}@example.com" not in review.text and f"{lead[0]}•••@example.com" in review.text
    assert (
        review.text.count('<p class="wrap subject"><strong>') == 20
        and "your place in B.S. Nursing is waiting" in review.text
    )
    world["review_html"] = review.text
    shoot(world, "campaign-review", html=review.text)


def test_the_status_figures_are_the_ledger_s_and_a_pause_stops_a_planned_message(world: dict[str, Any]) -> None:
    warehouse, settings, browser = world["warehouse"], world["settings"], world["browser"]
    deployment = load_deployment(CONFIG_DIR)
    # a real send pass at the schedule's firing: 20 welcomes queued, 20 enrollments
    occurrence = Occurrence(COLLEGE, CAMPAIGN, "2026-11-16T10:00", "schedule", START)
    plan_pass(warehouse, deployment, CONFIG_DIR, links_from_env(settings.home), START, [occurrence], world["tmp"])
    publish_snapshot(settings.warehouse)  # as the send run's dbt build does at its end
    with warehouse.session(read_only=True) as s:
        _, rows = s.query("select status, count(*) from herald_ops.enrollments where campaign = ? group by 1",
                          [CAMPAIGN])  # fmt: skip
        queued = s.scalar("select count(*) from herald_ops.outbox where campaign = ? and status = 'queued'", [CAMPAIGN])
    ledger = {status: int(n) for status, n in rows}
    assert sum(ledger.values()) == 20 and queued == 20
    page = browser.get(PAGE)
    assert _figures(page.text) == {
        "enrolled": sum(ledger.values()), "active": ledger.get("active", 0) + ledger.get("waiting", 0),
        "completed": ledger.get("completed", 0), "exited": ledger.get("exited", 0),
    }  # fmt: skip
    listing = browser.get(f"{PREFIX}/c/{COLLEGE}/campaigns").text
    assert "2026-11-16T10:00" in listing and _figures(listing)["enrolled"] == 20
    # the funnel and the A/B verdicts as the marts hold them (rows as the analytics build and
    # herald.analytics.ab_tests write them)
    with warehouse.session() as s:
        s.execute("create table analytics.journey_funnel (client_id varchar, campaign varchar, step varchar, "
                  "reached bigint, messaged bigint, waiting_now bigint, moved_on bigint, carried_over bigint, "
                  "exited bigint, converted bigint)")  # fmt: skip
        for step, reached, messaged, now in (("welcome", 20, 20, 0), ("wait_for_click", 20, 0, 20)):
            s.execute("insert into analytics.journey_funnel values (?, ?, ?, ?, ?, ?, 0, 0, 0, 0)",
                      [COLLEGE, CAMPAIGN, step, reached, messaged, now])  # fmt: skip
        for variant, control, sent, rate, verdict in (("program_focus", True, 10, 0.2, "control"),
                                                      ("campus_focus", False, 10, 0.4, "not enough data")):  # fmt: skip
            s.execute("insert into analytics.ab_test_results values (?, ?, 'welcome', ?, ?, ?, ?, 0, 0, 'delivered', "
                      "?, 0.05, 0.6, null, null, ?, null, ?)",
                      [COLLEGE, CAMPAIGN, variant, control, sent, int(sent * rate), rate, verdict, START])  # fmt: skip
    publish_snapshot(settings.warehouse)
    page = browser.get(PAGE)
    funnel = re.findall(r'<tr data-step="([^"]+)"><td>[^<]*</td><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td>', page.text)
    assert funnel == [("welcome", "20", "20", "0"), ("wait_for_click", "20", "0", "20")]  # the journey's order
    assert 'data-variant="welcome/program_focus"' in page.text and "20.0%" in page.text and "40.0%" in page.text
    assert "not enough data" in page.text and "5.0–60.0%" in page.text
    # paused after they were planned: the claim cancels them, nothing reaches the provider
    browser.post(f"{PAGE}/pause", data={"csrf_token": csrf(page.text)})
    providers = providers_from_env(world["env"])
    report = deliver_due(warehouse, providers, now=START + timedelta(minutes=1), options=DeliveryOptions())
    assert report.sent == 0 and report.paused == 20
    with warehouse.session(read_only=True) as s:
        _, rows = s.query("select status, status_reason, count(*) from herald_ops.outbox where campaign = ? "
                          "group by 1, 2", [CAMPAIGN])  # fmt: skip
    assert rows == [("cancelled", f"campaign paused by {world['staff'].email} in the portal", 20)]
    assert read_journal(world["home"] / "sandbox" / "email.jsonl") == []
    browser.post(f"{PAGE}/resume", data={"csrf_token": csrf(browser.get(PAGE).text)})


def test_a_test_message_goes_only_to_the_signed_in_user(world: dict[str, Any]) -> None:
    browser, staff, warehouse = world["browser"], world["staff"], world["warehouse"]
    token = csrf(browser.get(PAGE).text)
    sent = browser.post(f"{PAGE}/test", data={"csrf_token": token, "channel": "email"})
    assert sent.status_code == 200 and "A test email of step welcome" in sent.text, sent.text[-1500:]
    # a text: this campaign sends none; the clinic's does, but only to the user's own saved number
    refused = browser.post(f"{PAGE}/test", data={"csrf_token": token, "channel": "sms"})
    assert refused.status_code == 400 and "sends no sms message" in refused.text
    clinic_staff, secret = add(world, "client_admin", OTHER, display_name="Clinic Admin")
    clinic = sign_in(world, clinic_staff.email, secret)
    reminder = f"{PREFIX}/c/{OTHER}/campaigns/appointment_reminder"
    token = csrf(clinic.get(reminder).text)
    no_phone = clinic.post(f"{reminder}/test", data={"csrf_token": token, "channel": "sms"})
    assert no_phone.status_code == 400 and "save your own phone number first" in no_phone.text
    typo = clinic.post(f"{reminder}/phone", data={"csrf_token": token, "phone": "(312) 555-0177",
                                                  "confirm": "(312) 555-0178"})  # fmt: skip
    assert typo.status_code == 400 and "the two numbers differ" in typo.text
    saved = clinic.post(f"{reminder}/phone", data={"csrf_token": token, "phone": "(312) 555-0177",
                                                   "confirm": "312.555.0177"})  # fmt: skip
    assert saved.status_code == 200 and "Saved your phone +1•••••••177" in saved.text
    texted = clinic.post(f"{reminder}/test", data={"csrf_token": token, "channel": "sms"})
    assert texted.status_code == 200 and "A test sms of step reminder" in texted.text, texted.text[-1500:]
    report = deliver_due(warehouse, providers_from_env(world["env"]), options=DeliveryOptions())
    assert report.sent == 2
    emails = read_journal(world["home"] / "sandbox" / "email.jsonl")
    texts = read_journal(world["home"] / "sandbox" / "sms.jsonl")
    assert [m["to"] for m in emails] == ["s•••@example.com"] and [m["to"] for m in texts] == ["+1•••••••177"]
    assert texts[0]["text"].startswith("Hi Clinic, Bright Smiles Dental here: see you "), texts[0]["text"]
    with warehouse.session(read_only=True) as s:  # the journal masks: the outbox says where each went
        _, sent_rows = s.query("select message_key, to_address, campaign from herald_ops.outbox where status = 'sent'")
        assert (
            s.scalar("select count(*) from herald_ops.outbox where campaign = ? and status = 'sent'", [CAMPAIGN]) == 0
        )
    addressed = {key: (to, campaign) for key, to, campaign in sent_rows}
    assert addressed[emails[0]["message_key"]] == (staff.email, "_portal_test")  # outside every campaign's figures
    assert addressed[texts[0]["message_key"]] == ("+13125550177", "_portal_test")
    with warehouse.session(read_only=True) as s:  # sent at once, by design: not judged by the contacts' hours
        assert sent_inside_send_windows(s, load_deployment(CONFIG_DIR)).counts["messages_judged"] == 0
    assert [r.detail["to"] for r in query_rows(world, "campaign_test_sent")] == ["s•••@example.com"]


def test_scope_viewers_and_hidden_details(world: dict[str, Any]) -> None:
    browser = world["browser"]
    # another client's campaign, or a campaign this client does not have: 404 on every route
    for url in (f"{PREFIX}/c/{OTHER}/campaigns", f"{PREFIX}/c/{OTHER}/campaigns/appointment_reminder",
                f"{PREFIX}/c/{COLLEGE}/campaigns/appointment_reminder",
                f"{PREFIX}/c/{COLLEGE}/campaigns/appointment_reminder/review"):  # fmt: skip
        assert browser.get(url).status_code == 404, url
    token = csrf(browser.get(PAGE).text)
    for action in ("pause", "resume", "test", "phone"):
        r = browser.post(f"{PREFIX}/c/{OTHER}/campaigns/appointment_reminder/{action}", data={"csrf_token": token})
        assert r.status_code == 404, action
    viewer, secret = add(world, "viewer", COLLEGE)
    seeing = sign_in(world, viewer.email, secret)
    page = seeing.get(PAGE)
    assert page.status_code == 200 and 'id="pause"' not in page.text and 'id="test"' not in page.text
    for action in ("pause", "resume", "test", "phone"):
        r = seeing.post(f"{PAGE}/{action}", data={"csrf_token": csrf(page.text), "channel": "email"})
        assert r.status_code == 403 and "Read-only access" in r.text, action
    with world["warehouse"].session(read_only=True) as s:
        assert s.scalar("select count(*) from herald_ops.campaign_pauses") == 0
    shoot(world, "campaign", PAGE)
    shoot(world, "campaigns", f"{PREFIX}/c/{COLLEGE}/campaigns")


def query_rows(world: dict[str, Any], action: str) -> list[Any]:
    with world["warehouse"].session(read_only=True) as s:
        return query(s, user=world["staff"].email, action=action)


def shoot(world: dict[str, Any], name: str, url: str = "", html: str = "") -> None:
    """Screenshots at desktop and phone widths (skipped without Chromium, failed under CI)."""
    if world["engine"] != "duckdb":
        return
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing")
        return
    pytest.importorskip("playwright")
    from playwright.sync_api import sync_playwright

    page_html = (html or world["browser"].get(url).text).replace('src="/static/', 'src="http://127.0.0.1/static/')
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        for width, label in ((1280, "desktop"), (390, "phone")):
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.set_content(page_html)
            page.screenshot(path=str(SHOTS / f"{name}-{label}.png"), full_page=True)
            page.close()
        browser.close()
