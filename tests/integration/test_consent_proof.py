"""Consent with proof on both engines, through the real paths.

- A person signs up on the hosted form ``/optin/acme`` (the page shows the client's disclosure
  word for word), gets the "reply YES" text through the outbox, replies YES: the confirmation
  is the proof (the wording's sha256, IP, user agent, times), and a marketing text planned for
  them afterwards is sent.
- A consent the client's system sent through the ingest API two years ago has expired under the
  client's ``consent.expires_after``: the plan leaves the text out and says so.
- A consent revoked through the ingest API after the plan chose the text (and it was queued)
  blocks it at the claim: ``suppressed`` with the reason, never sent.
- marts.consent_status shows each of them (and a sign-up nobody confirmed: pending), with its
  source, evidence and expiry.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from herald.compliance.consent import current_consent
from herald.compliance.inbound import apply_inbound
from herald.compliance.landing import InboundMessage, load_landed
from herald.compliance.packet_consent import record_packet_consent
from herald.config import load_deployment
from herald.config.models import Client, ClientConfig, Deployment, LoadMap
from herald.delivery.engine import DeliveryOptions, deliver_due
from herald.delivery.outbox import OutboxMessage, enqueue
from herald.events.apply import apply_provider_events
from herald.events.landing import load_events, open_sink
from herald.providers.sandbox import SandboxSmsProvider
from herald.settings import Settings
from herald.warehouse.connection import Warehouse
from herald.web import optin as optin_web
from herald.web.app import create_app
from tests.conftest import CONFIG_DIR, ENGINES
from tests.integration.test_message_plan import CLIENT, add_contacts, build_plan, dbt_run, insert, occurrence

SENDER = "+13125550000"
DISCLOSURE = (
    "By ticking this box I agree to receive recurring marketing texts from Acme Dental at the number above. "
    "Consent is not a condition of purchase. Msg & data rates may apply. Reply STOP to cancel, HELP for help."
)
API_KEY = "test-consent-key-0123456789"
FORM_PHONE, OLD_PHONE, LATE_PHONE, PACKET_PHONE = "+13125550150", "+13125550151", "+13125550152", "+13125550153"
PENDING_PHONE = "+13125550154"
# Tuesday 8 December 2026, 10:00 in Chicago: inside every window
SEND_AT = datetime(2026, 12, 8, 16, 0)
FAST = DeliveryOptions(batch_size=50, initial_backoff_seconds=0.001, max_backoff_seconds=0.01, pricing=None)


def acme_deployment() -> Deployment:
    import hashlib

    base = load_deployment(CONFIG_DIR)
    config = ClientConfig.model_validate({
        "client_id": CLIENT, "name": "Acme Dental", "time_zone": "America/Chicago",
        "senders": {"sms_from": SENDER},
        "optin": {"disclosures": [{"channel": "sms", "topic": "all", "label": "Offers by text", "text": DISCLOSURE}]},
        "consent": {"expires_after": {"all": "365d"}},
        "ingest_api": {"key_sha256": [hashlib.sha256(API_KEY.encode()).hexdigest()]},
    })  # fmt: skip
    patients = LoadMap.model_validate({
        "packet_type": "patients", "columns": {"Mobile": "phone", "Text OK": "sms_consent"},
        "consent_source": "the patient signed the texting consent on the intake form",
    })  # fmt: skip
    acme = Client(config=config, time_zone="America/Chicago", default_region="US", load_maps={"patients": patients})
    return Deployment(herald=base.herald, clients={**base.clients, CLIENT: acme})


def land_and_apply(warehouse: Warehouse, home: Path, deployment: Deployment, now: datetime) -> list:
    if warehouse.engine == "duckdb":
        load_events(warehouse, home)
        load_landed(warehouse, home)
    with warehouse.session() as s:
        report = apply_provider_events(s, deployment, now)
        inbound = apply_inbound(s, deployment, now)
    return [*(r.action for r in report.results), *(r.action for r in inbound)]


def rows(warehouse: Warehouse, sql: str, params: list | None = None) -> list[tuple]:
    with warehouse.session(read_only=True) as s:
        return s.query(sql, params or [])[1]


def form_fields(html: str) -> dict[str, str]:
    return dict(re.findall(r'name="(form_token|wording_sha256)" value="([^"]*)"', html))


@pytest.mark.parametrize("engine", ENGINES)
def test_form_opt_in_sends_expired_consent_does_not_and_a_revocation_blocks_the_claim(
    engine: str, herald_env, tmp_path: Path
) -> None:
    env = herald_env(engine)  # one deployment (one PostgreSQL database) for the plan and the web service
    warehouse, tmp = build_plan(engine, lambda _: env, tmp_path, run=False)
    settings = Settings.from_env(env)
    home = settings.home
    deployment = acme_deployment()
    optin_web._limiter.storage.reset()  # the per-IP windows live in this process: start afresh
    web = TestClient(create_app(settings, environ={}, deployment=deployment), headers={"user-agent": "Phone/1.0"})
    api = {"Authorization": f"Bearer {API_KEY}"}

    # 1. the form shows the disclosure word for word; the sign-up lands, nothing is granted yet
    page = web.get(f"/optin/{CLIENT}")
    assert page.status_code == 200 and DISCLOSURE.replace("&", "&amp;") in page.text
    sent = web.post(f"/optin/{CLIENT}", data={**form_fields(page.text), "phone": "(312) 555-0150", "agree": "0"})
    assert sent.status_code == 200 and "Reply YES" in sent.text, sent.text
    # another person signs up and never confirms: pending, never granted
    other = TestClient(web.app, headers={"user-agent": "Tablet/2.0"})
    page = other.get(f"/optin/{CLIENT}")
    assert other.post(
        f"/optin/{CLIENT}", data={**form_fields(page.text), "phone": PENDING_PHONE, "agree": "0"}
    ).is_success
    # consents the client's system sends: one two years old (expired by now), one current
    events = [
        {"channel": "sms", "address": OLD_PHONE, "kind": "opt_in", "scope": "all", "consent_level": "express_written",
         "source": "paper form at the front desk", "evidence": "form #118", "occurred_at": "2024-01-02T10:00:00Z"},
        {"channel": "sms", "address": "312-555-0152", "kind": "opt_in", "scope": "announcement",
         "consent_level": "express_written", "source": "crm", "occurred_at": "2026-12-01T10:00:00"},
    ]  # fmt: skip
    answer = web.post(f"/api/v1/clients/{CLIENT}/consent-events", json={"events": events}, headers=api)
    assert answer.status_code == 202 and answer.json()["events"] == 2, answer.text
    now = datetime(2026, 12, 7, 15, 0)
    assert sorted(land_and_apply(warehouse, home, deployment, now)) == [
        "consent_recorded", "optin_requested", "optin_requested"
    ]  # fmt: skip
    request = rows(warehouse, "select channel, address, topics, wording, status, ip, user_agent "
                   "from herald_ops.consent_requests order by address")  # fmt: skip
    assert request == [("sms", FORM_PHONE, "all", DISCLOSURE, "pending", "testclient", "Phone/1.0"),
                       ("sms", PENDING_PHONE, "all", DISCLOSURE, "pending", "testclient", "Tablet/2.0")]  # fmt: skip
    assert rows(warehouse, "select count(*) from herald_ops.consent_events where address = ?", [FORM_PHONE]) == [(0,)]

    # 2. the confirmation request goes out through the outbox; the YES reply is the proof
    sms = SandboxSmsProvider()
    deliver_due(warehouse, {"sms": sms}, now=now, options=FAST)
    confirmation, _ = sorted(sms.sent, key=lambda m: m.to)  # each sign-up gets its confirmation request
    assert confirmation.to == FORM_PHONE and "reply YES" in confirmation.body and "STOP" in confirmation.body
    open_sink(settings).append_inbound(InboundMessage("SMyes1", FORM_PHONE, SENDER, "Yes", now))
    assert land_and_apply(warehouse, home, deployment, now) == ["optin_confirmed"]
    [(kind, level, source, evidence, expires, wording_sha)] = rows(
        warehouse, "select kind, consent_level, source, evidence, expires_at, wording_sha256 "
        "from herald_ops.consent_events where address = ?", [FORM_PHONE],
    )  # fmt: skip
    proof = json.loads(evidence)
    assert (kind, level, source) == ("confirm", "express_written", "web_form")
    assert proof["wording"] == DISCLOSURE and proof["wording_sha256"] == wording_sha and len(wording_sha) == 64
    assert (proof["ip"], proof["user_agent"]) == ("testclient", "Phone/1.0")
    assert proof["confirmation"] == "replied 'Yes' by SMS (inbound SMyes1)"
    assert expires == datetime(2027, 12, 7, 15, 0)  # now + the client's 365 days
    assert rows(warehouse, "select status from herald_ops.consent_requests order by address") == [
        ("confirmed",), ("pending",)
    ]  # fmt: skip

    # 3. the plan: the form's contact and the current consent are planned; the expired one is not
    add_contacts(warehouse, [("m-form", FORM_PHONE, None, None), ("m-old", OLD_PHONE, None, None),
                             ("m-late", LATE_PHONE, None, None)],
                 [("phone", p, "America/Chicago", "IL") for p in (FORM_PHONE, OLD_PHONE, LATE_PHONE)])  # fmt: skip
    # m-packet: the client's packet says yes in its sms_consent column (line 7 of packet p-1)
    add_contacts(
        warehouse, [("m-packet", PACKET_PHONE, None, None)], [("phone", PACKET_PHONE, "America/Chicago", "IL")]
    )
    with warehouse.session() as s:
        for column, type_ in (("packet_id", "varchar"), ("line_number", "bigint"), ("updated_at", "timestamp")):
            s.execute(f"alter table marts.contact_attributes add column {column} {type_}")
        s.execute("insert into marts.contact_attributes values ('m-packet', ?, 'sms_consent', 'boolean', null, null, "
                  "true, null, null, null, 'Y', true, 'p-1', 7, ?)", [CLIENT, datetime(2026, 12, 1, 9, 0)])  # fmt: skip
        arrived = datetime(2026, 12, 1, 9, 0)
        insert(s, "herald_ops.packets", [("p-1", CLIENT, "patients", "patients.csv", "/drop/patients.csv", 10, None,
                                          "utf-8", "landed", None, None, 9, 9, 0, arrived, arrived, arrived)])  # fmt: skip
        assert record_packet_consent(s, deployment, now) == 1
        assert record_packet_consent(s, deployment, now) == 0  # a second pass records nothing twice
        s.execute("update herald_ops.campaigns set daily_limit = null")
        insert(s, "herald_ops.campaign_occurrences", [occurrence("december", "announce", SEND_AT)])
    dbt_run(warehouse, tmp, ("contact_template_variables", "consent_status", *_plan_models()))
    plan = {c: (st, r, k) for c, st, r, k in rows(
        warehouse, "select contact_id, status, reason, message_key from marts.message_plan "
        "where occurrence = 'december' and contact_id like 'm-%'")}  # fmt: skip
    assert {c: (st, r) for c, (st, r, _) in plan.items()} == {
        "m-form": ("planned", None),
        "m-late": ("planned", None),
        "m-packet": ("planned", None),
        "m-old": ("excluded", "no consent: express written consent expired on 2025-01-01"),
    }

    # the current state from every source, with the evidence and expiry (built with the plan)
    status = {a: (st, src, exp) for a, st, src, exp in rows(
        warehouse, "select address, status, source, expires_at from marts.consent_status "
        "where client_id = ? and address in (?, ?, ?, ?, ?)",
        [CLIENT, FORM_PHONE, OLD_PHONE, LATE_PHONE, PACKET_PHONE, PENDING_PHONE])
    }  # fmt: skip
    assert status == {
        FORM_PHONE: ("granted", "web_form", datetime(2027, 12, 7, 15, 0)),
        OLD_PHONE: ("expired", "api:paper form at the front desk", datetime(2025, 1, 1, 10, 0)),
        LATE_PHONE: ("granted", "api:crm", datetime(2027, 12, 1, 10, 0)),  # until the revocation below
        PACKET_PHONE: ("granted", "packet", datetime(2027, 12, 1, 9, 0)),
        PENDING_PHONE: ("pending", "web_form", None),
    }
    [(evidence,)] = rows(warehouse, "select evidence from marts.consent_status where address = ?", [PACKET_PHONE])
    assert evidence == (
        "packet p-1 line 7, column 'Text OK': yes; the client's stated source: the patient signed "
        "the texting consent on the intake form"
    )

    # 4. queued as planned; then the client's system revokes m-late's consent
    with warehouse.session() as s:
        enqueue(s, [OutboxMessage(
            message_key=plan[c][2], client_id=CLIENT, campaign="announce", step="first", variant="a",
            occurrence="december", contact_id=c, message_type="announcement", category="marketing", channel="sms",
            to_address=phone, sender=SENDER, send_after=SEND_AT, body_text="Acme: 20% off whitening this week",
        ) for c, phone in (("m-form", FORM_PHONE), ("m-late", LATE_PHONE))], now)  # fmt: skip
    revoke = {"channel": "sms", "address": LATE_PHONE, "kind": "revoke", "scope": "all", "source": "crm",
              "evidence": "unsubscribed at the front desk", "occurred_at": "2026-12-08T15:00:00"}  # fmt: skip
    assert (
        web.post(f"/api/v1/clients/{CLIENT}/consent-events", json={"events": [revoke]}, headers=api).status_code == 202
    )
    assert land_and_apply(warehouse, home, deployment, SEND_AT) == ["consent_recorded"]
    with warehouse.session(read_only=True) as s:
        assert current_consent(s, CLIENT, "sms", LATE_PHONE, "announcement", now=SEND_AT) == "revoked"
        assert current_consent(s, CLIENT, "sms", OLD_PHONE, "announcement", now=SEND_AT) == "expired"

    # 5. the claim: the form's contact gets the text, the revoked one does not (and says why)
    sms = SandboxSmsProvider()
    deliver_due(warehouse, {"sms": sms}, now=SEND_AT, options=FAST)
    assert [(m.to, m.body) for m in sms.sent] == [(FORM_PHONE, "Acme: 20% off whitening this week")]
    outcome = {c: (st, r) for c, st, r in rows(
        warehouse, "select contact_id, status, status_reason from herald_ops.outbox where campaign = 'announce' "
        "and occurrence = 'december'")}  # fmt: skip
    assert outcome == {
        "m-form": ("sent", None),
        "m-late": ("suppressed", "no consent: revoked (revoke via api:crm at 2026-12-08 15:00 UTC)"),
    }


def _plan_models() -> tuple[str, ...]:
    from herald.campaigns.journeys import PLAN_MODELS

    return tuple(PLAN_MODELS)
