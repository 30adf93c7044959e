"""Provider webhooks over real HTTP to a running server, signed with the real Twilio and Svix
libraries: a valid call lands its event, a tampered or replayed one is refused and lands
nothing, and a duplicate delivery ends up as one row. Both landing modes: files under
HERALD_HOME (embedded DuckDB) and rows straight in the table (PostgreSQL)."""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from svix.webhooks import Webhook
from twilio.request_validator import RequestValidator

from herald.compliance.landing import load_landed, pending_files, read_landed
from herald.events.landing import ProviderEvent, load_events, pending_event_files
from herald.settings import Settings
from herald.warehouse.connection import Warehouse
from herald.web.app import create_app
from herald.web.server import running_server
from tests.conftest import ENGINES, REPO_ROOT

PUBLIC_URL = "https://herald.example"
AUTH_TOKEN = "twilio-test-auth-token"
WHSEC = "whsec_" + base64.b64encode(b"resend-test-signing-secret-32byt").decode()
FROM = "+13125550188"
STATUS = {"MessageSid": "SM0123456789abcdef0123456789abcdef", "MessageStatus": "delivered",
          "To": FROM, "From": "+15125550100", "AccountSid": "AC00000000000000000000000000000000"}  # fmt: skip
INBOUND = {"MessageSid": "SMfeedface0123456789abcdef01234567", "From": FROM, "To": "+15125550100", "Body": "STOP"}
RESEND_EVENT = {"type": "email.bounced", "created_at": "2026-11-20T15:00:00.000Z",
                "data": {"email_id": "4ef9a417-02e9-4d39-ad75-9611e0fcc33c", "to": ["di@example.com"],
                         "bounce": {"type": "Permanent"}}}  # fmt: skip


@dataclass
class Service:
    url: str
    settings: Settings
    env: dict[str, str]

    @property
    def home(self) -> Path:
        return self.settings.home

    def warehouse(self) -> Warehouse:
        w = Warehouse(self.settings.warehouse)
        w.ensure_schema()
        return w

    def rows(self, sql: str) -> list[tuple]:
        with self.warehouse().session(read_only=True) as s:
            return s.query(sql)[1]


@pytest.fixture
def service(request: pytest.FixtureRequest, herald_env: Callable[[str], dict[str, str]]) -> Iterator[Service]:
    """`herald serve`'s app on 127.0.0.1 (an OS-chosen port), configured as if reachable at
    PUBLIC_URL through a proxy."""
    env = {**herald_env(request.param), "HERALD_PUBLIC_URL": PUBLIC_URL, "HERALD_SECRET_KEY": "page-secret",
           "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "RESEND_WEBHOOK_SECRET": WHSEC}  # fmt: skip
    settings = Settings.from_env(env)
    with running_server(create_app(settings, environ=env)) as url:
        yield Service(url, settings, env)


def twilio_post(service: Service, path: str, params: dict[str, str], *, signed_url: str | None = None,
                sent: dict[str, str] | None = None) -> httpx.Response:  # fmt: skip
    """POSTs ``sent`` (default: ``params``) signed over ``params`` for the public URL Twilio calls."""
    signature = RequestValidator(AUTH_TOKEN).compute_signature(signed_url or PUBLIC_URL + path, params)
    return httpx.post(service.url + path, data=sent or params, headers={"X-Twilio-Signature": signature})


def resend_post(service: Service, body: str, *, msg_id: str = "msg_2pYzAbCdEf", at: datetime | None = None,
                sent: str | None = None) -> httpx.Response:  # fmt: skip
    at = at or datetime.now(UTC)
    headers = {
        "svix-id": msg_id, "svix-timestamp": str(int(at.timestamp())),
        "svix-signature": Webhook(WHSEC).sign(msg_id, at, body), "content-type": "application/json",
    }  # fmt: skip
    return httpx.post(service.url + "/webhooks/resend", content=(sent or body).encode(), headers=headers)


def landed_events(service: Service) -> list[ProviderEvent]:
    """Events waiting in files (embedded) — none in PostgreSQL mode, where they go to the table."""
    return [ProviderEvent.from_json(line) for path in pending_event_files(service.home)
            for line in path.read_text().splitlines()]  # fmt: skip


def event_rows(service: Service) -> list[tuple]:
    """herald_raw.provider_events after loading whatever files are waiting (what the sensor does)."""
    load_events(service.warehouse(), service.home)
    return service.rows("select event_id, source, kind, provider_message_id, payload from herald_raw.provider_events")


def embedded(service: Service) -> bool:
    return service.settings.warehouse.engine == "duckdb"


@pytest.mark.parametrize("service", ENGINES, indirect=True)
def test_a_signed_status_callback_lands_and_a_duplicate_delivery_is_one_row(service: Service) -> None:
    for _ in range(2):  # Twilio retries: the same callback delivered twice
        answer = twilio_post(service, "/webhooks/twilio/status", STATUS)
        assert answer.status_code == 204, answer.text
    if embedded(service):
        events = landed_events(service)
        assert [e.event_id for e in events] == [f"{STATUS['MessageSid']}:delivered"] * 2
        assert (events[0].source, events[0].kind, events[0].provider_message_id) == (
            "twilio", "sms_status", STATUS["MessageSid"])  # fmt: skip
        assert events[0].payload == STATUS
    else:
        assert pending_event_files(service.home) == []  # PostgreSQL mode writes the table, no files
    rows = event_rows(service)
    assert len(rows) == 1
    event_id, source, kind, message_id, payload = rows[0]
    assert (event_id, source, kind, message_id) == (f"{STATUS['MessageSid']}:delivered", "twilio", "sms_status",
                                                    STATUS["MessageSid"])  # fmt: skip
    assert json.loads(payload) == STATUS


@pytest.mark.parametrize("service", ENGINES, indirect=True)
def test_a_signed_inbound_sms_lands_for_the_compliance_engine(service: Service) -> None:
    path = "/webhooks/twilio/inbound?client=bright_smiles_dental"  # the query is part of what Twilio signs
    for _ in range(2):
        answer = twilio_post(service, path, INBOUND)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/xml")
        assert answer.text.endswith("<Response/>")
    if embedded(service):
        messages = [m for p in pending_files(service.home) for m in read_landed(p)]
        assert len(messages) == 2
        m = messages[0]
        assert (m.inbound_id, m.from_address, m.to_address, m.body, m.channel, m.provider) == (
            INBOUND["MessageSid"], FROM, "+15125550100", "STOP", "sms", "twilio")  # fmt: skip
        assert abs(m.received_at - datetime.now(UTC).replace(tzinfo=None)) < timedelta(minutes=1)
        load_landed(service.warehouse(), service.home)
    rows = service.rows("select inbound_id, from_address, body, provider from herald_raw.inbound_messages")
    assert rows == [(INBOUND["MessageSid"], FROM, "STOP", "twilio")]


@pytest.mark.parametrize("service", ENGINES, indirect=True)
def test_forged_twilio_calls_get_403_are_logged_without_the_number_and_land_nothing(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="herald.web")
    tampered = {**INBOUND, "Body": "START"}
    assert twilio_post(service, "/webhooks/twilio/inbound", INBOUND, sent=tampered).status_code == 403
    assert httpx.post(service.url + "/webhooks/twilio/inbound", data=INBOUND).status_code == 403  # unsigned
    # signed for the address the request reached rather than the public one: the Host is not trusted
    local = twilio_post(service, "/webhooks/twilio/status", STATUS, signed_url=service.url + "/webhooks/twilio/status")
    assert local.status_code == 403
    other_key = RequestValidator("another-token").compute_signature(PUBLIC_URL + "/webhooks/twilio/status", STATUS)
    wrong = httpx.post(service.url + "/webhooks/twilio/status", data=STATUS, headers={"X-Twilio-Signature": other_key})
    assert wrong.status_code == 403

    assert pending_files(service.home) == [] and pending_event_files(service.home) == []
    assert event_rows(service) == []
    assert service.rows("select * from herald_raw.inbound_messages") == []
    refusals = [r.getMessage() for r in caplog.records if "refused with 403" in r.getMessage()]
    assert len(refusals) == 4
    assert all(FROM not in text and "5550188" not in text for text in caplog.messages)
    assert "+1•••••••188" in refusals[0]


@pytest.mark.parametrize("service", ENGINES, indirect=True)
def test_a_signed_resend_event_lands_once_and_tampered_or_replayed_ones_are_refused(service: Service) -> None:
    body = json.dumps(RESEND_EVENT)
    tampered = body.replace("Permanent", "Transient")
    assert resend_post(service, body, msg_id="msg_tampered", sent=tampered).status_code == 400
    old = datetime.now(UTC) - timedelta(minutes=5, seconds=30)  # beyond Svix's 5-minute tolerance
    replay = resend_post(service, body, msg_id="msg_replayed", at=old)
    assert replay.status_code == 400 and "timestamp" in replay.text.lower()
    unsigned = httpx.post(service.url + "/webhooks/resend", content=body.encode())
    assert unsigned.status_code == 400
    assert landed_events(service) == [] and event_rows(service) == []

    recent = datetime.now(UTC) - timedelta(minutes=4)  # inside the tolerance (a slow retry)
    for _ in range(2):  # Resend retries the same svix-id
        answer = resend_post(service, body, msg_id="msg_2pYzAbCdEf", at=recent)
        assert answer.status_code == 204, answer.text
    if embedded(service):
        assert [e.event_id for e in landed_events(service)] == ["msg_2pYzAbCdEf"] * 2
    rows = event_rows(service)
    assert len(rows) == 1
    assert rows[0][:4] == ("msg_2pYzAbCdEf", "resend", "email_event", RESEND_EVENT["data"]["email_id"])
    assert json.loads(rows[0][4]) == RESEND_EVENT


def test_unconfigured_webhooks_answer_503_naming_the_variable(herald_env) -> None:
    env = {**herald_env("duckdb"), "HERALD_SECRET_KEY": "page-secret"}
    with running_server(create_app(Settings.from_env(env), environ=env)) as url:
        twilio = httpx.post(url + "/webhooks/twilio/status", data=STATUS)
        resend = httpx.post(url + "/webhooks/resend", content=b"{}")
    assert twilio.status_code == 503 and "TWILIO_AUTH_TOKEN" in twilio.text
    assert resend.status_code == 503 and "RESEND_WEBHOOK_SECRET" in resend.text


@pytest.mark.parametrize("service", ENGINES, indirect=True)
def test_healthz(service: Service) -> None:
    answer = httpx.get(service.url + "/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "warehouse": service.settings.warehouse.engine, "landing": "writable"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_herald_serve_answers_healthz(herald_env, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, **herald_env("duckdb"), "HERALD_SECRET_KEY": "page-secret"}
    herald = Path(sys.executable).parent / "herald"
    log = open(tmp_path / "serve.log", "w+")  # noqa: SIM115 - the server writes to it until the test stops it
    process = subprocess.Popen([str(herald), "serve", "--port", str(port)], env=env, cwd=REPO_ROOT,
                               stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None, f"herald serve exited: {Path(log.name).read_text()}"
                assert time.monotonic() < deadline, "herald serve did not answer within 60 s"
                time.sleep(0.2)
        assert answer.status_code == 200
        assert answer.json() == {"status": "ok", "warehouse": "duckdb", "landing": "writable"}
        assert not (Path(env["HERALD_HOME"]) / "warehouse.duckdb").exists()  # the service never opened DuckDB
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()
