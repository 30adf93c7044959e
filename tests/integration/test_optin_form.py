"""The hosted opt-in form and the ingest API's consent events: bad input is a clear answer
naming what is wrong, and nothing is landed; the email double opt-in confirms through its link.
"""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from herald.config.models import ClientConfig
from herald.events.apply import apply_provider_events
from herald.events.landing import load_events
from herald.settings import Settings
from herald.warehouse.connection import Warehouse
from herald.web import optin as optin_web
from herald.web.app import create_app
from tests.conftest import ENGINES
from tests.integration.test_consent_proof import API_KEY, DISCLOSURE, acme_deployment, form_fields

CLIENT = "acme"
EMAIL_TEXT = "I agree to receive the Acme Dental newsletter and offers by email; I can unsubscribe at any time."


def deployment_with_email():  # acme with an email disclosure too
    deployment = acme_deployment()
    acme = deployment.clients[CLIENT]
    data = acme.config.model_dump()
    data["optin"]["disclosures"].append({"channel": "email", "topic": "announcement", "text": EMAIL_TEXT})
    data["senders"]["email_from"] = "Acme Dental <news@acme.example>"
    client = acme.model_copy(update={"config": ClientConfig.model_validate(data)})
    return deployment.model_copy(update={"clients": {**deployment.clients, CLIENT: client}})


@pytest.fixture(params=ENGINES)
def site(request: pytest.FixtureRequest, herald_env) -> tuple[TestClient, Warehouse, Settings, object]:
    env = {**herald_env(request.param), "HERALD_PUBLIC_URL": "https://herald.example"}
    settings = Settings.from_env(env)
    warehouse = Warehouse(settings.warehouse)
    warehouse.ensure_schema()
    deployment = deployment_with_email()
    optin_web._limiter.storage.reset()  # the per-IP windows live in this process: start each test afresh
    web = TestClient(
        create_app(settings, environ=env, deployment=deployment),
        headers={"user-agent": "Phone/1.0"},
        base_url="https://testserver",
    )  # the cookie is Secure: the site is served over https
    return web, warehouse, settings, deployment


def landed(warehouse: Warehouse, settings: Settings) -> int:
    if warehouse.engine == "duckdb":
        load_events(warehouse, settings.home)
    with warehouse.session(read_only=True) as s:
        return int(s.scalar("select count(*) from herald_raw.provider_events"))


def test_bad_sign_ups_are_refused_with_the_reason_and_nothing_is_landed(site) -> None:
    web, warehouse, settings, _ = site
    assert web.get("/optin/northfield_college").status_code == 404  # a client without an optin: block
    page = web.get(f"/optin/{CLIENT}")
    assert DISCLOSURE.replace("&", "&amp;") in page.text and EMAIL_TEXT in page.text
    fields = form_fields(page.text)
    cases = [
        ({**fields, "phone": "3125550150"}, 400, "Tick at least one box to agree to the wording shown."),
        ({**fields, "phone": "not a phone", "agree": "0"}, 400, "The mobile number &#x27;not a phone&#x27; is not"),
        ({**fields, "agree": "0"}, 400, "Enter your mobile number: you ticked a box for texts."),
        ({**fields, "email": "nobody@", "agree": "1"}, 400, "The email &#x27;nobody@&#x27; is not an email address"),
        ({**fields, "phone": "3125550150", "agree": "7"}, 400, "Unknown choice &#x27;7&#x27;"),
        ({**fields, "wording_sha256": "0" * 64, "phone": "3125550150", "agree": "0"}, 400,
         "The wording of this form has changed since you opened it."),
        ({**fields, "form_token": "forged", "phone": "3125550150", "agree": "0"}, 403,
         "This form was not sent from this page."),
    ]  # fmt: skip
    for data, status, message in cases:
        optin_web._limiter.storage.reset()  # each case in a minute of its own (the rate limit is tested below)
        answer = web.post(f"/optin/{CLIENT}", data=data)
        assert (answer.status_code, message in answer.text) == (status, True), (data, answer.text[-600:])
        assert DISCLOSURE.replace("&", "&amp;") in answer.text  # the form again, with the wording
    # a page on another site cannot send the form: it has no cookie (SameSite=Strict)
    optin_web._limiter.storage.reset()
    stranger = TestClient(web.app, base_url="https://testserver")
    refused = stranger.post(f"/optin/{CLIENT}", data={**fields, "phone": "3125550150", "agree": "0"})
    assert refused.status_code == 403 and "Nothing was recorded" in refused.text
    assert landed(warehouse, settings) == 0
    # seven sign-ups from one IP within a minute: the limit answers the sixth and seventh, before reading the form
    optin_web._limiter.storage.reset()
    codes = [web.post(f"/optin/{CLIENT}", data={}).status_code for _ in range(7)]
    assert codes == [403] * 5 + [429] * 2
    assert "Too many sign-ups" in web.post(f"/optin/{CLIENT}", data={}).text


def test_the_api_refuses_an_unknown_scope_or_address_and_records_none(site) -> None:
    web, warehouse, settings, _ = site
    api = {"Authorization": f"Bearer {API_KEY}"}
    good = {"channel": "sms", "address": "+13125550150", "kind": "opt_in", "scope": "all", "source": "crm",
            "occurred_at": "2026-12-01T10:00:00"}  # fmt: skip
    answer = web.post(f"/api/v1/clients/{CLIENT}/consent-events", headers=api,
                      json={"events": [good, {**good, "scope": "newsletterz"}]})  # fmt: skip
    assert answer.status_code == 422
    [problem] = answer.json()["detail"]
    assert problem["loc"] == ["body", "events", 1, "scope"] and "unknown consent scope 'newsletterz'" in problem["msg"]
    answer = web.post(f"/api/v1/clients/{CLIENT}/consent-events", headers=api,
                      json={"events": [good, {**good, "address": "12"}]})  # fmt: skip
    assert answer.status_code == 422
    assert answer.json()["detail"] == [
        {"loc": ["body", "events", 1, "address"], "msg": "'12' is not a valid phone number"}
    ]
    missing = web.post(
        f"/api/v1/clients/{CLIENT}/consent-events", headers=api, json={"events": [{**good, "source": ""}]}
    )
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["body", "events", 0, "source"]
    assert web.post(f"/api/v1/clients/{CLIENT}/consent-events", json={"events": [good]}).status_code == 401
    assert landed(warehouse, settings) == 0


def test_an_email_sign_up_is_confirmed_by_its_link(site) -> None:
    web, warehouse, settings, deployment = site
    page = web.get(f"/optin/{CLIENT}")
    sent = web.post(f"/optin/{CLIENT}", data={**form_fields(page.text), "email": "Ana@Example.com", "agree": "1"})
    assert sent.status_code == 200 and "Open the link" in sent.text
    now = datetime(2026, 12, 7, 15, 0)
    landed(warehouse, settings)
    with warehouse.session() as s:
        apply_provider_events(s, deployment, now)
        _, [(subject, text, status)] = s.query(
            "select subject, body_text, status from herald_ops.outbox where message_type = 'optin_confirmation'"
        )
    assert subject == "Please confirm your subscription to Acme Dental" and status == "queued"
    link = re.search(r"https://herald\.example(/optin/acme/confirm/\S+)", text).group(1)
    assert "Press the button to confirm" in web.get(link).text
    assert web.get(link.replace("/optin/acme/confirm/", "/u/")).status_code == 400  # not an unsubscribe token
    assert web.get(link.replace("/optin/acme/", "/optin/northfield_college/")).status_code == 400
    assert "You are subscribed" in web.post(link).text
    landed(warehouse, settings)
    with warehouse.session() as s:
        apply_provider_events(s, deployment, now)
        _, events = s.query("select address, kind, scope, source, evidence, expires_at from herald_ops.consent_events")
        _, requests = s.query("select status, confirmation from herald_ops.consent_requests")
    [(address, kind, scope, source, evidence, expires)] = events
    assert (address, kind, scope, source) == ("ana@example.com", "confirm", "announcement", "web_form")
    proof = json.loads(evidence)
    assert proof["wording"] == EMAIL_TEXT and proof["confirmation"] == "link pressed from IP testclient with Phone/1.0"
    assert expires is not None and requests == [("confirmed", proof["confirmation"])]


def test_an_opt_in_form_without_its_disclosure_wording_is_a_configuration_error() -> None:
    base = {"client_id": "acme", "name": "Acme"}
    for optin, where, message in [
        ({"disclosures": []}, ("optin", "disclosures"), "at least 1 item"),
        ({"disclosures": [{"channel": "sms", "text": ""}]}, ("optin", "disclosures", 0, "text"), "at least 20"),
        ({"disclosures": [{"channel": "sms", "topic": "newsletterz", "text": DISCLOSURE}]},
         ("optin", "disclosures", 0, "topic"), "unknown consent scope 'newsletterz'"),
    ]:  # fmt: skip
        with pytest.raises(ValidationError) as caught:
            ClientConfig.model_validate({**base, "optin": optin})
        [error] = caught.value.errors()
        assert error["loc"] == where and message in error["msg"], error
    with pytest.raises(ValidationError, match="'1y' is not a duration"):
        ClientConfig.model_validate({**base, "consent": {"expires_after": {"all": "1y"}}})


def test_a_bare_y_confirms_a_pending_text_sign_up_and_lifts_an_old_opt_out_but_c_does_not(site) -> None:
    from herald.compliance.inbound import apply_inbound
    from herald.compliance.landing import InboundMessage, load_landed
    from herald.events.landing import open_sink
    from tests.integration.test_consent_proof import SENDER

    web, warehouse, settings, deployment = site
    phone, now = "+13125550160", datetime(2026, 12, 7, 15, 0)
    with warehouse.session() as s:  # the person once texted STOP
        s.execute("insert into herald_ops.suppressions (client_id, channel, address, scope, reason, source, "
                  "created_at) values (?, 'sms', ?, 'all', 'opt_out', 'sms_keyword', ?)", [CLIENT, phone, now])  # fmt: skip
    page = web.get(f"/optin/{CLIENT}")
    assert web.post(f"/optin/{CLIENT}", data={**form_fields(page.text), "phone": phone, "agree": "0"}).is_success
    landed(warehouse, settings)
    with warehouse.session() as s:
        apply_provider_events(s, deployment, now)
    sink = open_sink(settings)

    def reply(inbound_id: str, body: str) -> str:
        sink.append_inbound(InboundMessage(inbound_id, phone, SENDER, body, now))
        if warehouse.engine == "duckdb":
            load_landed(warehouse, settings.home)
        with warehouse.session() as s:
            [result] = apply_inbound(s, deployment, now)
        return result.action

    assert reply("SMc", "C") == "no_action"  # C confirms appointments, never a sign-up
    assert reply("SMy", "Y") == "optin_confirmed"
    with warehouse.session(read_only=True) as s:
        _, events = s.query(
            "select kind, scope, consent_level from herald_ops.consent_events where address = ?", [phone]
        )
        suppressed = s.scalar("select count(*) from herald_ops.suppressions where address = ?", [phone])
    assert events == [("confirm", "all", "express_written")] and suppressed == 0
