"""Unsubscribe and confirmation pages over real HTTP: a tampered token gets a plain error page
with nobody's data; a valid one shows the page, lands the event on POST and answers with the
wording in this precedence: herald.yaml, then the client's ``verbiage``, then the
contact's own ``<key>_wording`` attribute (read from the warehouse, falling back to the client's
wording while a run holds DuckDB's lock)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from herald.events.landing import ProviderEvent, load_events, pending_event_files
from herald.messages.unsubscribe import make_token
from herald.settings import Settings
from herald.warehouse.connection import Warehouse
from herald.web.app import create_app
from herald.web.pages import token_id
from herald.web.server import running_server
from tests.conftest import CONFIG_DIR, ENGINES

SECRET = "page-secret"
GLOBAL_UNSUBSCRIBE = "Thank you: Bright Smiles Dental has recorded your request."
GLOBAL_CONFIRMATION = "Thank you! Your appointment with Bright Smiles Dental is confirmed."
CLIENT_UNSUBSCRIBE = "Lakeside Realty Group has taken you off its listing alerts."
CLIENT_CONFIRMATION = "Lakeside Realty Group: your showing is confirmed."
ANA_UNSUBSCRIBE = "Listo, Ana: Lakeside Realty Group ya no le escribirá."
ANA_CONFIRMATION = "¡Gracias, Ana! Su visita está confirmada."


@dataclass
class Site:
    url: str
    settings: Settings

    def token(self, client_id: str, contact_id: str, channel: str = "email", scope: str = "all") -> str:
        return make_token(SECRET, client_id, contact_id, channel, scope)

    def events(self) -> list[ProviderEvent]:
        """Every landed page event, after loading waiting files (what the sensor does)."""
        w = Warehouse(self.settings.warehouse)
        w.ensure_schema()
        load_events(w, self.settings.home)
        with w.session(read_only=True) as s:
            _, rows = s.query("select event_id, source, kind, payload, received_at from herald_raw.provider_events")
        return [ProviderEvent(r[0], r[1], r[2], json.loads(r[3]), r[4]) for r in rows]


def config_with_client_wording(tmp_path: Path) -> Path:
    """A copy of the example configuration where Lakeside Realty overrides both page wordings."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    client_file = config / "clients" / "lakeside_realty" / "client.yaml"
    data = yaml.safe_load(client_file.read_text())
    data["verbiage"] = {"unsubscribe": "{client_name} has taken you off its listing alerts.",
                        "confirmation": "{client_name}: your showing is confirmed."}  # fmt: skip
    client_file.write_text(yaml.safe_dump(data, sort_keys=False))
    return config


def add_contact_wording(settings: Settings) -> None:
    """marts.contact_attributes by hand: Ana (a Lakeside contact) has her own wordings."""
    w = Warehouse(settings.warehouse)
    w.ensure_schema()
    with w.session() as s:
        s.execute("create schema if not exists marts")
        s.execute("""create table marts.contact_attributes (contact_id varchar, client_id varchar,
                     attribute_name varchar, attribute_type varchar, string_value varchar, is_parsed boolean)""")
        for name, text in (("unsubscribe_wording", ANA_UNSUBSCRIBE), ("confirmation_wording", ANA_CONFIRMATION)):
            s.execute("insert into marts.contact_attributes values (?, ?, ?, 'string', ?, true)",
                      ["ana", "lakeside_realty", name, text])  # fmt: skip
        # another client's contact with the same id must not lend Ana's wording
        s.execute("insert into marts.contact_attributes values ('ana', 'northfield_college', "
                  "'unsubscribe_wording', 'string', 'not for this client', true)")  # fmt: skip


@pytest.fixture
def site(request: pytest.FixtureRequest, herald_env: Callable[[str], dict[str, str]], tmp_path: Path) -> Iterator[Site]:
    env = {**herald_env(request.param), "HERALD_SECRET_KEY": SECRET,
           "HERALD_CONFIG_DIR": str(config_with_client_wording(tmp_path))}  # fmt: skip
    settings = Settings.from_env(env)
    add_contact_wording(settings)
    with running_server(create_app(settings, environ=env)) as url:
        yield Site(url, settings)


def assert_plain_accessible_page(answer: httpx.Response) -> None:
    html = answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert '<html lang="en">' in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "<h1>" in html and "<script" not in html
    assert "set-cookie" not in answer.headers
    assert answer.headers["referrer-policy"] == "no-referrer" and answer.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("site", ENGINES, indirect=True)
def test_a_tampered_or_foreign_token_gets_an_error_page_without_anyones_data(site: Site) -> None:
    good = site.token("lakeside_realty", "ana")
    payload, mac = good.split(".")
    flipped = payload[:-1] + ("A" if payload[-1] != "A" else "B")
    forged = make_token("another-secret", "lakeside_realty", "ana", "email", "all")
    confirm_token = site.token("lakeside_realty", "ana", scope="confirm")
    bad_urls = [f"/u/{flipped}.{mac}", f"/u/{payload}.{mac[:-1]}", f"/u/{forged}", "/u/not-a-token",
                f"/u/{confirm_token}", f"/c/{good}", f"/c/{forged}"]  # fmt: skip
    for url in bad_urls:
        for method in ("GET", "POST"):
            answer = httpx.request(method, site.url + url)
            assert answer.status_code == 400, (method, url)
            assert_plain_accessible_page(answer)
            assert "This link does not work" in answer.text
            for private in ("Lakeside", "ana", "Ana", "lakeside_realty"):
                assert private not in answer.text, (url, private)
    one_click = httpx.post(f"{site.url}/u/{forged}/one-click", content=b"List-Unsubscribe=One-Click")
    assert one_click.status_code == 400
    assert pending_event_files(site.settings.home) == [] and site.events() == []


@pytest.mark.parametrize("site", ENGINES, indirect=True)
def test_the_unsubscribe_page_lands_the_request_and_shows_the_global_wording(site: Site) -> None:
    token = site.token("bright_smiles_dental", "bob")
    page = httpx.get(f"{site.url}/u/{token}")
    assert page.status_code == 200
    assert_plain_accessible_page(page)
    assert "<h1>Unsubscribe from Bright Smiles Dental</h1>" in page.text
    assert '<form method="post">' in page.text and '<button type="submit">Unsubscribe</button>' in page.text
    assert pending_event_files(site.settings.home) == [] and site.events() == []  # looking changes nothing

    done = httpx.post(f"{site.url}/u/{token}")
    assert done.status_code == 200
    assert_plain_accessible_page(done)
    assert f"<p>{GLOBAL_UNSUBSCRIBE}</p>" in done.text
    # exactly what stopped: an email link stops emails, not texts (it used to say "will not message you again")
    assert ("<p>You will no longer get emails from Bright Smiles Dental. This does not stop text messages: "
            "to stop those too, reply STOP to any of them.</p>") in done.text  # fmt: skip
    assert "will not message you again" not in done.text
    # the mail provider's one-click for the same link: same event id, so one row
    one_click = httpx.post(f"{site.url}/u/{token}/one-click", content=b"List-Unsubscribe=One-Click",
                           headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert (one_click.status_code, one_click.text) == (200, "You are unsubscribed.")
    assert "set-cookie" not in one_click.headers and not one_click.is_redirect
    [event] = site.events()
    assert (event.event_id, event.source, event.kind) == (token_id("unsubscribe", token), "web", "unsubscribe")
    assert event.payload == {"client_id": "bright_smiles_dental", "contact_id": "bob", "channel": "email",
                             "scope": "all", "via": "page"}  # fmt: skip


@pytest.mark.parametrize("site", ENGINES, indirect=True)
def test_client_wording_beats_global_and_the_contacts_own_beats_the_clients(site: Site) -> None:
    # a Lakeside contact without their own wording: the client's override
    ben = httpx.post(f"{site.url}/u/{site.token('lakeside_realty', 'ben')}")
    assert f"<p>{CLIENT_UNSUBSCRIBE}</p>" in ben.text
    # Ana has her own wording (HTML-escaped on the page)
    ana = httpx.post(f"{site.url}/u/{site.token('lakeside_realty', 'ana', channel='sms')}")
    assert "Listo, Ana: Lakeside Realty Group ya no le escribirá." in ana.text
    # Bright Smiles' "ana" is another person: the wording of other clients' "ana"s is not hers
    other = httpx.post(f"{site.url}/u/{site.token('bright_smiles_dental', 'ana')}")
    assert f"<p>{GLOBAL_UNSUBSCRIBE}</p>" in other.text
    events = {(e.payload["client_id"], e.payload["contact_id"], e.payload["channel"]) for e in site.events()}
    assert events == {("lakeside_realty", "ben", "email"), ("lakeside_realty", "ana", "sms"),
                      ("bright_smiles_dental", "ana", "email")}  # fmt: skip


@pytest.mark.parametrize("site", ENGINES, indirect=True)
def test_the_confirmation_page_confirms_with_each_level_of_wording(site: Site) -> None:
    token = site.token("lakeside_realty", "ana", channel="sms", scope="confirm")
    page = httpx.get(f"{site.url}/c/{token}")
    assert page.status_code == 200
    assert_plain_accessible_page(page)
    assert "<h1>Confirm with Lakeside Realty Group</h1>" in page.text and ">Confirm</button>" in page.text
    assert ANA_CONFIRMATION in httpx.post(f"{site.url}/c/{token}").text
    ben = httpx.post(f"{site.url}/c/{site.token('lakeside_realty', 'ben', channel='sms', scope='confirm')}")
    assert CLIENT_CONFIRMATION in ben.text
    bob = httpx.post(f"{site.url}/c/{site.token('bright_smiles_dental', 'bob', channel='sms', scope='confirm')}")
    assert GLOBAL_CONFIRMATION in bob.text
    httpx.post(f"{site.url}/c/{token}")  # pressed twice: one event
    events = sorted(site.events(), key=lambda e: e.payload["contact_id"])
    assert [(e.kind, e.payload["contact_id"]) for e in events] == [("confirm", "ana"), ("confirm", "ben"),
                                                                   ("confirm", "bob")]  # fmt: skip
    assert events[0].event_id == token_id("confirm", token)
    assert events[0].payload == {"client_id": "lakeside_realty", "contact_id": "ana", "channel": "sms"}


@pytest.mark.parametrize("site", ["duckdb"], indirect=True)
def test_while_a_run_holds_duckdbs_lock_the_page_still_works_with_the_clients_wording(site: Site) -> None:
    path = site.settings.warehouse.duckdb_path
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "c.execute('begin transaction'); print('locked', flush=True); time.sleep(60)", str(path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        answer = httpx.post(f"{site.url}/u/{site.token('lakeside_realty', 'ana')}", timeout=30)
        assert answer.status_code == 200
        assert f"<p>{CLIENT_UNSUBSCRIBE}</p>" in answer.text  # Ana's own wording cannot be read now
        assert time.monotonic() - started < 5
        assert len(pending_event_files(site.settings.home)) == 1  # landed as a file, not in DuckDB
    finally:
        holder.kill()
        holder.wait()
    assert ANA_UNSUBSCRIBE in httpx.post(f"{site.url}/u/{site.token('lakeside_realty', 'ana')}").text


@pytest.mark.parametrize("site", ["duckdb"], indirect=True)
def test_a_reminders_confirm_url_opens_the_confirmation_page_for_that_contact(site: Site) -> None:
    from datetime import datetime

    from herald.campaigns.enqueue import MessageBuilder
    from herald.campaigns.links import Links
    from herald.config import load_deployment

    config = site.settings.config_dir
    (config / "clients" / "bright_smiles_dental" / "templates" / "confirm_link.sms.j2").write_text(
        "Hi {{ first_name }}, confirm your visit: {{ confirm_url }}"
    )
    row = {
        "message_key": "k1", "client_id": "bright_smiles_dental", "campaign": "appointment_reminder",
        "step": "reminder", "occurrence": "packet:p1", "contact_id": "bob", "message_type": "appointment_reminder",
        "category": "transactional", "channel": "sms", "to_address": "+13125550100", "variant": "friendly",
        "template": "confirm_link.sms.j2", "subject_template": None, "send_after": datetime(2026, 11, 20, 15),
        "variables": json.dumps({"first_name": "Bob", "client_name": "Bright Smiles Dental"}),
    }  # fmt: skip
    message = MessageBuilder(load_deployment(config), config, Links(site.url, SECRET)).build(row)
    assert message.status == "queued", message.status_reason
    url = message.body_text.split("confirm your visit: ")[1].split()[0]
    assert url.startswith(f"{site.url}/c/")
    assert "<h1>Confirm with Bright Smiles Dental</h1>" in httpx.get(url).text
    assert GLOBAL_CONFIRMATION in httpx.post(url).text
    [event] = site.events()
    assert event.payload == {"client_id": "bright_smiles_dental", "contact_id": "bob", "channel": "sms"}
