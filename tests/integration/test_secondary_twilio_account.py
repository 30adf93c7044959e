"""A client's second Twilio account (``twilio_secondary``, its failover provider) is heard like the
first: `herald serve` accepts webhooks signed with either account's auth token and names the
account on what it lands; a STOP sent to the secondary number suppresses the number once
applied; a status callback of a message the delivery engine sent through the secondary reaches
its outbox row; polling lists the secondary account too (the local emulator holding both
accounts, through the real SDK). Both engines wherever the warehouse is touched."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import httpx
import pytest
from twilio.request_validator import RequestValidator

from herald.compliance.inbound import apply_inbound
from herald.compliance.landing import load_landed, pending_files
from herald.config import Deployment
from herald.config.models import ChannelProviders, ClientProviders
from herald.delivery.circuit import BreakerPolicy, CircuitBreakers
from herald.delivery.engine import DeliveryOptions, Failover, Route, deliver_due
from herald.delivery.outbox import OUTBOX, SUPPRESSIONS, OutboxMessage, enqueue
from herald.events.apply import apply_provider_events
from herald.events.landing import load_events, pending_event_files
from herald.events.polling import AccountCursors, poll_accounts, twilio_clients_from_env
from herald.providers.twilio_sms import TwilioSmsProvider
from herald.settings import Settings
from herald.warehouse.connection import Warehouse
from herald.web.app import create_app
from herald.web.server import running_server
from resources import HeraldSettingsResource
from sensors.twilio_polling import build_twilio_polling_sensor
from tests.conftest import ENGINES
from tests.provider_emulator import ProviderEmulator, twilio_error

PUBLIC_URL = "https://herald.example"
SID1, TOKEN1 = "ACprimary0000000000000000000000001", "primary-auth-token"
SID2, TOKEN2 = "ACsecondary00000000000000000000002", "secondary-auth-token"
CLIENT = "bright_smiles_dental"
PRIMARY_NUMBER = "+15125550100"  # the client's senders.sms_from
SECONDARY_NUMBER = "+15125550199"  # the number its secondary account sends from
ANN, BOB = "+15125550142", "+15125550143"
NOW = datetime(2026, 11, 23, 15, 0)


@dataclass
class Service:
    url: str
    settings: Settings

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
    """`herald serve` with both Twilio accounts' credentials, reachable at PUBLIC_URL."""
    env = {**herald_env(request.param), "HERALD_PUBLIC_URL": PUBLIC_URL, "HERALD_SECRET_KEY": "page-secret",
           "TWILIO_ACCOUNT_SID": SID1, "TWILIO_AUTH_TOKEN": TOKEN1,
           "TWILIO_SECONDARY_ACCOUNT_SID": SID2, "TWILIO_SECONDARY_AUTH_TOKEN": TOKEN2}  # fmt: skip
    settings = Settings.from_env(env)
    with running_server(create_app(settings, environ=env)) as url:
        yield Service(url, settings)


def signed_post(service_url: str, path: str, params: dict[str, str], token: str) -> httpx.Response:
    signature = RequestValidator(token).compute_signature(PUBLIC_URL + path, params)
    return httpx.post(service_url + path, data=params, headers={"X-Twilio-Signature": signature})


def with_secondary(deployment: Deployment) -> Deployment:
    """The example deployment with bright_smiles_dental failing over to the second account."""
    client = deployment.clients[CLIENT]
    providers = ClientProviders(sms=ChannelProviders(primary="twilio", secondary="twilio_secondary",
                                                     secondary_sender=SECONDARY_NUMBER))  # fmt: skip
    config = client.config.model_copy(update={"providers": providers})
    return deployment.model_copy(
        update={"clients": {**deployment.clients, CLIENT: client.model_copy(update={"config": config})}}
    )


def reminder(key: str, to: str, client: str = CLIENT) -> OutboxMessage:
    return OutboxMessage(
        message_key=key, client_id=client, campaign="reminders", step="day_before", variant="a",
        occurrence="o1", contact_id=f"c-{key}", message_type="appointment_reminder", category="transactional",
        channel="sms", to_address=to, sender=PRIMARY_NUMBER, send_after=NOW - timedelta(minutes=1),
        body_text=f"Reminder {key}",
    )  # fmt: skip


def load_landing(service: Service) -> None:
    """What the landing sensors' runs do in embedded mode (PostgreSQL mode landed in the tables)."""
    load_landed(service.warehouse(), service.home)
    load_events(service.warehouse(), service.home)


@pytest.mark.parametrize("service", ENGINES, indirect=True)
def test_a_stop_to_the_secondary_number_signed_by_the_secondary_account_lands_and_suppresses(
    service: Service, deployment: Deployment
) -> None:
    with service.warehouse().session() as s:
        enqueue(s, [reminder("ann-due", ANN), reminder("bob-due", BOB)], NOW - timedelta(hours=1))
    stop = {"MessageSid": "SM5ec0ddaa0123456789abcdef01234567", "AccountSid": SID2, "From": ANN,
            "To": SECONDARY_NUMBER, "Body": "STOP"}  # fmt: skip

    answer = signed_post(service.url, "/webhooks/twilio/inbound", stop, TOKEN2)

    assert answer.status_code == 200, answer.text
    assert answer.text.endswith("<Response/>")
    if service.settings.warehouse.engine == "duckdb":
        assert len(pending_files(service.home)) == 1
    load_landing(service)
    assert service.rows("select inbound_id, from_address, to_address, body, provider from herald_raw.inbound_messages") == [
        (stop["MessageSid"], ANN, SECONDARY_NUMBER, "STOP", "twilio_secondary")
    ]  # fmt: skip

    with service.warehouse().session() as s:
        [result] = apply_inbound(s, with_secondary(deployment), NOW)
    assert (result.client_id, result.kind, result.action, result.scope) == (CLIENT, "opt_out", "suppressed", "all")
    assert result.messages_cancelled == 1
    assert service.rows(f"select client_id, channel, address, scope, reason from {SUPPRESSIONS}") == [
        (CLIENT, "sms", ANN, "all", "opt_out")
    ]
    statuses = dict(service.rows(f"select message_key, status from {OUTBOX} where campaign = 'reminders'"))
    assert statuses == {"ann-due": "cancelled", "bob-due": "queued"}
    assert service.rows(f"select to_address, message_type from {OUTBOX} where campaign = '_replies'") == [
        (ANN, "opt_out_confirmation")
    ]


@pytest.mark.parametrize("service", ENGINES, indirect=True)
def test_a_call_signed_with_an_unknown_token_is_refused_and_lands_nothing(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="herald.web")
    stop = {"MessageSid": "SMbad0000000000000000000000000000", "AccountSid": SID2, "From": ANN,
            "To": SECONDARY_NUMBER, "Body": "STOP"}  # fmt: skip
    assert signed_post(service.url, "/webhooks/twilio/inbound", stop, "a-third-token").status_code == 403
    status = {"MessageSid": "SMbad0000000000000000000000000001", "MessageStatus": "delivered", "AccountSid": SID2}
    assert signed_post(service.url, "/webhooks/twilio/status", status, "a-third-token").status_code == 403
    # signed by the secondary over other parameters than those sent: still refused
    signature = RequestValidator(TOKEN2).compute_signature(PUBLIC_URL + "/webhooks/twilio/inbound", stop)
    tampered = httpx.post(service.url + "/webhooks/twilio/inbound", data={**stop, "Body": "START"},
                          headers={"X-Twilio-Signature": signature})  # fmt: skip
    assert tampered.status_code == 403

    assert pending_files(service.home) == [] and pending_event_files(service.home) == []
    load_landing(service)
    assert service.rows("select count(*) from herald_raw.inbound_messages") == [(0,)]
    assert service.rows("select count(*) from herald_raw.provider_events") == [(0,)]
    refusals = [m for m in caplog.messages if "refused with 403" in m]
    assert len(refusals) == 3 and all("twilio and twilio_secondary" in m for m in refusals)
    assert all("5550142" not in m for m in caplog.messages)


def test_only_the_secondary_token_set_accepts_its_calls_and_refuses_the_primary(herald_env) -> None:
    env = {**herald_env("duckdb"), "HERALD_PUBLIC_URL": PUBLIC_URL, "HERALD_SECRET_KEY": "page-secret",
           "TWILIO_SECONDARY_AUTH_TOKEN": TOKEN2}  # fmt: skip
    status = {"MessageSid": "SM0000000000000000000000000000abc", "MessageStatus": "sent"}
    with running_server(create_app(Settings.from_env(env), environ=env)) as url:
        accepted = signed_post(url, "/webhooks/twilio/status", status, TOKEN2)
        refused = signed_post(url, "/webhooks/twilio/status", status, TOKEN1)
    assert (accepted.status_code, refused.status_code) == (204, 403)
    home = Path(env["HERALD_HOME"])
    [path] = pending_event_files(home)
    assert '"source": "twilio_secondary"' in path.read_text()


def test_no_token_at_all_answers_503_naming_both_variables(herald_env) -> None:
    env = {**herald_env("duckdb"), "HERALD_PUBLIC_URL": PUBLIC_URL, "HERALD_SECRET_KEY": "page-secret"}
    with running_server(create_app(Settings.from_env(env), environ=env)) as url:
        answer = signed_post(url, "/webhooks/twilio/inbound", {"MessageSid": "SMx", "From": ANN, "To": BOB}, TOKEN1)
    assert answer.status_code == 503
    assert "TWILIO_AUTH_TOKEN" in answer.text and "TWILIO_SECONDARY_AUTH_TOKEN" in answer.text


@pytest.fixture
def emulator() -> Iterator[ProviderEmulator]:
    """One emulator holding both accounts (each answers only with its own credentials)."""
    with ProviderEmulator(twilio_accounts={SID1: TOKEN1, SID2: TOKEN2}) as running:
        yield running


@pytest.mark.parametrize("service", ENGINES, indirect=True)
def test_a_status_callback_of_a_message_sent_through_the_secondary_reaches_its_outbox_row(
    service: Service, emulator: ProviderEmulator, deployment: Deployment
) -> None:
    wh = service.warehouse()
    with wh.session() as s:
        enqueue(
            s, [reminder("ann-1", ANN, client="acme"), reminder("bob-1", BOB, client="acme")], NOW - timedelta(hours=1)
        )
    primary = TwilioSmsProvider(SID1, TOKEN1, base_url=emulator.url, timeout=0.5)
    secondary = TwilioSmsProvider(SID2, TOKEN2, base_url=emulator.url, timeout=0.5)
    secondary.name = "twilio_secondary"
    # the primary answers its first call with a 500 and the circuit (threshold 1) opens: ann-1's
    # retry and bob-1 go through the secondary account
    emulator.script(twilio_error(500, 20500, "Internal Server Error"))
    plan = Failover({("acme", "sms"): Route(primary, secondary, SECONDARY_NUMBER)},
                    CircuitBreakers(wh, BreakerPolicy(1, 60.0)))  # fmt: skip
    options = DeliveryOptions(max_attempts_per_run=3, initial_backoff_seconds=0.001, max_backoff_seconds=0.01)
    report = deliver_due(wh, {"sms": primary}, now=NOW, options=options, failover=plan)
    assert report.sent == 2 and report.failed_over == 2
    sent = {m["To"]: m for m in emulator.sms_sent}
    assert {m["account_sid"] for m in sent.values()} == {SID2} and sent[ANN]["From"] == SECONDARY_NUMBER
    outbox = {
        k: (p, sid) for k, p, sid in service.rows(f"select message_key, provider, provider_message_id from {OUTBOX}")
    }
    assert outbox == {"ann-1": ("twilio_secondary", sent[ANN]["sid"]), "bob-1": ("twilio_secondary", sent[BOB]["sid"])}

    callback = {"MessageSid": sent[ANN]["sid"], "MessageStatus": "delivered", "AccountSid": SID2,
                "To": ANN, "From": SECONDARY_NUMBER}  # fmt: skip
    assert signed_post(service.url, "/webhooks/twilio/status", callback, TOKEN2).status_code == 204
    load_landing(service)
    assert service.rows("select event_id, source, provider_message_id from herald_raw.provider_events") == [
        (f"{sent[ANN]['sid']}:delivered", "twilio_secondary", sent[ANN]["sid"])
    ]
    with wh.session() as s:
        [result] = apply_provider_events(s, deployment, NOW + timedelta(minutes=1)).results
    assert (result.source, result.action, result.message_key) == ("twilio_secondary", "status_updated", "ann-1")
    assert dict(service.rows(f"select message_key, provider_status from {OUTBOX}")) == {
        "ann-1": "delivered", "bob-1": None
    }  # fmt: skip


def polling_env(emulator: ProviderEmulator, *, secondary: bool = True) -> dict[str, str]:
    env = {"TWILIO_ACCOUNT_SID": SID1, "TWILIO_AUTH_TOKEN": TOKEN1, "HERALD_TWILIO_BASE_URL": emulator.url}
    if secondary:
        env |= {"TWILIO_SECONDARY_ACCOUNT_SID": SID2, "TWILIO_SECONDARY_AUTH_TOKEN": TOKEN2,
                "HERALD_TWILIO_SECONDARY_BASE_URL": emulator.url}  # fmt: skip
    return env


def test_polling_lists_both_accounts_each_under_its_own_cursor(emulator: ProviderEmulator) -> None:
    clients = twilio_clients_from_env(polling_env(emulator))
    assert sorted(clients) == ["twilio", "twilio_secondary"]
    via_primary = clients["twilio"].messages.create(to=ANN, from_=PRIMARY_NUMBER, body="from the first").sid
    via_secondary = clients["twilio_secondary"].messages.create(to=BOB, from_=SECONDARY_NUMBER, body="second").sid
    stop = emulator.receive_sms(BOB, SECONDARY_NUMBER, "STOP", account_sid=SID2)

    inbound, events, cursors, errors = poll_accounts(clients, AccountCursors())
    assert errors == {}
    assert [(m.inbound_id, m.from_address, m.to_address, m.body, m.provider) for m in inbound] == [
        (stop, BOB, SECONDARY_NUMBER, "STOP", "twilio_secondary")
    ]
    assert sorted((e.event_id, e.source) for e in events) == sorted([
        (f"{via_primary}:sent", "twilio"), (f"{via_secondary}:sent", "twilio_secondary"),
    ])  # fmt: skip
    assert sorted(cursors.accounts) == ["twilio", "twilio_secondary"]
    cursors = AccountCursors.from_json(cursors.to_json())
    assert poll_accounts(clients, cursors)[:2] == ([], [])

    emulator.set_sms_status(via_secondary, "delivered")
    _, events, cursors, _ = poll_accounts(clients, cursors)
    assert [(e.event_id, e.source) for e in events] == [(f"{via_secondary}:delivered", "twilio_secondary")]

    # without the secondary's credentials only the first account is polled
    assert sorted(twilio_clients_from_env(polling_env(emulator, secondary=False))) == ["twilio"]


def test_one_account_failing_does_not_hold_back_the_other(emulator: ProviderEmulator) -> None:
    env = polling_env(emulator) | {"TWILIO_AUTH_TOKEN": "a-revoked-token"}  # the primary answers 401
    clients = twilio_clients_from_env(env)
    stop = emulator.receive_sms(ANN, SECONDARY_NUMBER, "STOP", account_sid=SID2)
    earlier = AccountCursors.from_json('{"date_sent": "2026-01-01T00:00:00", "seen": []}')  # a one-account cursor
    assert earlier.get("twilio").date_sent == datetime(2026, 1, 1)

    inbound, _, cursors, errors = poll_accounts(clients, earlier)
    assert [m.inbound_id for m in inbound] == [stop]
    assert list(errors) == ["twilio"] and "401" in errors["twilio"]
    assert cursors.get("twilio") == earlier.get("twilio")  # unchanged: the next poll asks again
    assert cursors.get("twilio_secondary").date_sent is not None


@pytest.fixture
def polled_settings(
    request: pytest.FixtureRequest, herald_env: Callable[[str], dict[str, str]], emulator: ProviderEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> Settings:  # fmt: skip
    """A deployment on the parametrized engine polling both accounts (the sensor reads os.environ)."""
    for name, value in {**herald_env(request.param), **polling_env(emulator)}.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    Warehouse(settings.warehouse).ensure_schema()
    return settings


@pytest.mark.parametrize("polled_settings", ENGINES, indirect=True)
def test_the_polling_sensor_lands_a_stop_from_the_secondary_and_applying_it_suppresses(
    polled_settings: Settings, emulator: ProviderEmulator, deployment: Deployment
) -> None:
    settings, wh = polled_settings, Warehouse(polled_settings.warehouse)
    stop = emulator.receive_sms(ANN, SECONDARY_NUMBER, "Stop", account_sid=SID2)

    sensor = build_twilio_polling_sensor(dg.define_asset_job("apply_provider_events_job"),
                                         dg.define_asset_job("apply_replies_job"))  # fmt: skip
    resources = {"herald_settings": HeraldSettingsResource()}
    context = dg.build_sensor_context(resources=resources)
    [request] = sensor(context)
    assert request.job_name == "apply_replies_job"
    assert sorted(AccountCursors.from_json(context.cursor).accounts) == ["twilio", "twilio_secondary"]
    if settings.warehouse.engine == "duckdb":  # landed as a file, never into the warehouse by the sensor
        assert len(pending_files(settings.home)) == 1
        assert load_landed(wh, settings.home) == 1
    with wh.session() as s:
        [result] = apply_inbound(s, with_secondary(deployment), NOW)
    assert (result.client_id, result.action) == (CLIENT, "suppressed")
    with wh.session(read_only=True) as s:
        assert s.query(f"select address, reason from {SUPPRESSIONS}")[1] == [(ANN, "opt_out")]
        assert s.query("select inbound_id, provider from herald_raw.inbound_messages")[1] == [
            (stop, "twilio_secondary")
        ]

    skipped = sensor(dg.build_sensor_context(cursor=context.cursor, resources=resources))
    assert isinstance(skipped, dg.SkipReason)
    assert "twilio since" in skipped.skip_message and "twilio_secondary since" in skipped.skip_message
