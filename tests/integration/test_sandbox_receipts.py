"""The sandbox behaves like a provider end to end, on both engines: after a delivery run its
status events and replies are landed through the web service's sinks, loaded and applied like
real webhooks, and the outbox shows exactly the delivered / failed / bounced messages, opens,
clicks and replies the deterministic outcome function predicts. The same events posted as
signed Twilio and Resend webhooks for messages sent through the emulated providers end in the
same rows. HERALD_SANDBOX_RECEIPTS=off restores the silent sandbox; the journal keeps the
rendered text with the recipient masked; bad HERALD_SANDBOX_* values are refused by name."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from svix.webhooks import Webhook
from twilio.request_validator import RequestValidator

from herald.compliance.landing import load_landed
from herald.config import Deployment
from herald.delivery.engine import DeliveryOptions, deliver_due
from herald.delivery.outbox import OUTBOX, OutboxMessage, enqueue
from herald.events.apply import apply_provider_events, twilio_error_text
from herald.events.landing import FileSink, load_events, pending_event_files
from herald.providers.base import OutboundMessage, PermanentProviderError, Provider
from herald.providers.factory import providers_from_env, sandbox_rates_from_env
from herald.providers.resend_email import ResendEmailProvider
from herald.providers.sandbox import SandboxSmsProvider, read_journal
from herald.providers.sandbox_events import (
    SandboxRates,
    SandboxReceipts,
    email_events,
    sandbox_outcome,
    sms_events,
)
from herald.providers.twilio_sms import TwilioSmsProvider
from herald.settings import Settings, SettingsError, check_environment
from herald.warehouse.connection import Warehouse
from herald.web.app import create_app
from herald.web.server import running_server
from tests.conftest import ENGINES
from tests.provider_emulator import ProviderEmulator

NOW = datetime(2026, 11, 23, 15, 0)
CLIENT = "bright_smiles_dental"
SMS_COUNT, EMAIL_COUNT = 8, 8
RATES = {
    "HERALD_SANDBOX_FAILURE_RATE": "0.25", "HERALD_SANDBOX_BOUNCE_RATE": "0.25", "HERALD_SANDBOX_REPLY_RATE": "0.4",
    "HERALD_SANDBOX_OPEN_RATE": "0.6", "HERALD_SANDBOX_CLICK_RATE": "0.3", "HERALD_SANDBOX_RECEIPT_DELAY_SECONDS": "2",
}  # fmt: skip
OPTIONS = DeliveryOptions(initial_backoff_seconds=0.001, max_backoff_seconds=0.01, pricing=None)
SID, TOKEN, RESEND_KEY = "ACsandbox0001", "sandbox-token", "re_sandbox_key"
PUBLIC_URL = "https://herald.example"
WHSEC = "whsec_" + base64.b64encode(b"sandbox-test-signing-secret-32by").decode()
LINK = "https://clinic.example/book"


def phone(n: int) -> str:
    return f"+1512555{n:04d}"


def email(n: int) -> str:
    return f"patient{n}@example.com"


def outbox_messages(sender: str, channels: tuple[str, ...]) -> list[OutboxMessage]:
    found = []
    for channel, count in (("sms", SMS_COUNT), ("email", EMAIL_COUNT)):
        if channel not in channels:
            continue
        for n in range(count):
            is_email = channel == "email"
            found.append(OutboxMessage(
                message_key=f"{channel}-{n:02d}", client_id=CLIENT, campaign="reminders", step="day_before",
                variant="a", occurrence="2026-11-23", contact_id=f"c-{n:02d}", message_type="appointment_reminder",
                category="transactional", channel=channel, to_address=email(n) if is_email else phone(n),
                sender="hi@clinic.example" if is_email else sender, send_after=NOW - timedelta(minutes=5),
                subject="Your visit" if is_email else None, body_text=f"See you tomorrow, patient {n}",
                body_html=f'<p>See you tomorrow</p><a href="{LINK}">Book</a>' if is_email else None,
            ))  # fmt: skip
    return found


def predicted(channel: str, rates: SandboxRates) -> dict[str, str]:
    """message key → the provider status the outcome function says it ends in."""
    count = SMS_COUNT if channel == "sms" else EMAIL_COUNT
    return {f"{channel}-{n:02d}": sandbox_outcome(channel, f"{channel}-{n:02d}", rates).status for n in range(count)}


def rows(warehouse: Warehouse, sql: str, params: list | None = None) -> list[tuple]:
    with warehouse.session(read_only=True) as s:
        return s.query(sql, params)[1]


def statuses(warehouse: Warehouse, channel: str) -> dict[str, str]:
    return dict(rows(warehouse, f"select message_key, provider_status from {OUTBOX} where channel = ?", [channel]))


def land_and_apply(warehouse: Warehouse, home: Path, deployment: Deployment) -> dict[str, int]:
    """What the provider_events and inbound jobs do: load waiting files, apply the events."""
    load_events(warehouse, home)
    load_landed(warehouse, home)
    with warehouse.session() as s:
        return apply_provider_events(s, deployment, NOW).by_action


@pytest.fixture
def setup(request: pytest.FixtureRequest, herald_env: Callable[[str], dict[str, str]], deployment: Deployment):
    env = {**herald_env(request.param), **RATES}
    settings = Settings.from_env(env)
    warehouse = Warehouse(settings.warehouse)
    warehouse.ensure_schema()
    sender = deployment.clients[CLIENT].config.senders.sms_from
    return env, settings, warehouse, sender


@pytest.mark.parametrize("setup", ENGINES, indirect=True)
def test_sandbox_receipts_end_in_the_predicted_rows(setup, deployment: Deployment) -> None:
    env, settings, warehouse, sender = setup
    rates = sandbox_rates_from_env(env)
    with warehouse.session() as s:
        enqueue(s, outbox_messages(sender, ("sms", "email")), NOW - timedelta(hours=1))
    report = deliver_due(warehouse, providers_from_env(env), now=NOW, options=OPTIONS)
    assert report.sent == SMS_COUNT + EMAIL_COUNT

    by_action = land_and_apply(warehouse, settings.home, deployment)
    assert "unmatched" not in by_action
    sms, mail = predicted("sms", rates), predicted("email", rates)
    # the rates make every outcome appear among these keys (a fixed fact of the hash)
    assert {"delivered", "undelivered"} <= set(sms.values()) and {"delivered", "bounced"} <= set(mail.values())
    assert statuses(warehouse, "sms") == sms
    assert statuses(warehouse, "email") == mail

    errors = dict(rows(warehouse, f"select message_key, delivery_error from {OUTBOX} where delivery_error is not null"))
    for key, status in sms.items():
        if status != "delivered":
            assert errors[key] == twilio_error_text(sandbox_outcome("sms", key, rates).error_code)
    assert {k for k in errors if k.startswith("email")} == {k for k, v in mail.items() if v == "bounced"}
    delivered_at = {r[0] for r in rows(warehouse, f"select message_key from {OUTBOX} where delivered_at is not null")}
    assert delivered_at == {k for k, v in {**sms, **mail}.items() if v == "delivered"}

    opened = {r[0] for r in rows(warehouse, f"select message_key from {OUTBOX} where opened_at is not null")}
    clicked = {r[0] for r in rows(warehouse, f"select message_key from {OUTBOX} where clicked_at is not null")}
    outcomes = {k: sandbox_outcome("email", k, rates) for k in mail}
    assert opened == {k for k, o in outcomes.items() if o.opened} and opened
    assert clicked == {k for k, o in outcomes.items() if o.clicked} and clicked and clicked <= opened
    # a hard bounce suppresses the address for every client, as a real Resend bounce does
    bounced_to = {email(int(k[-2:])) for k, v in mail.items() if v == "bounced"}
    suppressed = {
        r[0] for r in rows(warehouse, "select address from herald_ops.suppressions where reason = 'hard_bounce'")
    }
    assert suppressed == bounced_to

    replies = {k: sandbox_outcome("sms", k, rates).reply for k in sms}
    expected = sorted((phone(int(k[-2:])), sender, body) for k, body in replies.items() if body)
    assert expected and "STOP" not in {body for *_, body in expected}
    landed = rows(warehouse, "select from_address, to_address, body from herald_raw.inbound_messages")
    assert sorted(landed) == expected

    # landing the same events again (a retried send, a provider's retry) adds nothing
    events_before = rows(warehouse, "select count(*) from herald_raw.provider_events")[0][0]
    deliver_due(warehouse, providers_from_env(env), now=NOW, options=OPTIONS)  # nothing due: nothing sent
    land_and_apply(warehouse, settings.home, deployment)
    assert rows(warehouse, "select count(*) from herald_raw.provider_events")[0][0] == events_before


@pytest.fixture(scope="module")
def emulator() -> Iterator[ProviderEmulator]:
    with ProviderEmulator(twilio_accounts={SID: TOKEN}, resend_api_key=RESEND_KEY) as server:
        yield server


def post_as_webhooks(url: str, events: list) -> None:
    """Each event as the provider would post it: Twilio form-signed, Resend Svix-signed."""
    for event in events:
        if event.source == "twilio":
            path = "/webhooks/twilio/status"
            signature = RequestValidator(TOKEN).compute_signature(PUBLIC_URL + path, event.payload)
            answer = httpx.post(url + path, data=event.payload, headers={"X-Twilio-Signature": signature})
        else:
            body, at = json.dumps(event.payload), datetime.now(UTC)
            headers = {"svix-id": event.event_id, "svix-timestamp": str(int(at.timestamp())),
                       "svix-signature": Webhook(WHSEC).sign(event.event_id, at, body),
                       "content-type": "application/json"}  # fmt: skip
            answer = httpx.post(url + "/webhooks/resend", content=body.encode(), headers=headers)
        assert answer.status_code == 204, answer.text


@pytest.mark.parametrize("setup", ENGINES, indirect=True)
@pytest.mark.parametrize("provider", ["sandbox", "twilio_emulator", "resend_emulator"])
def test_sandbox_and_real_webhooks_end_in_the_same_rows(
    setup, provider: str, emulator: ProviderEmulator, deployment: Deployment
) -> None:
    env, settings, warehouse, sender = setup
    rates = sandbox_rates_from_env(env)
    channel = "email" if provider == "resend_emulator" else "sms"
    with warehouse.session() as s:
        enqueue(s, outbox_messages(sender, (channel,)), NOW - timedelta(hours=1))
    emulator.reset()
    providers: dict[str, Provider]
    if provider == "sandbox":
        providers = providers_from_env(env)
    elif provider == "twilio_emulator":
        providers = {"sms": TwilioSmsProvider(SID, TOKEN, base_url=emulator.url)}
    else:
        providers = {"email": ResendEmailProvider(RESEND_KEY, base_url=emulator.url)}
    assert deliver_due(warehouse, providers, now=NOW, options=OPTIONS).sent == (
        EMAIL_COUNT if channel == "email" else SMS_COUNT
    )

    if provider != "sandbox":  # the callbacks a provider would post, through the real web service
        web_env = {**env, "HERALD_PUBLIC_URL": PUBLIC_URL, "HERALD_SECRET_KEY": "page-secret",
                   "TWILIO_AUTH_TOKEN": TOKEN, "RESEND_WEBHOOK_SECRET": WHSEC}  # fmt: skip
        sent = rows(warehouse, f"select message_key, to_address, sender, provider_message_id from {OUTBOX}")
        events = []
        for key, to, from_, pmid in sent:
            message = OutboundMessage(key, channel, to, from_, body="x", text="x", html=f'<a href="{LINK}">x</a>')
            build = sms_events if channel == "sms" else email_events
            events += build(message, pmid, NOW, rates)
        with running_server(create_app(settings, environ=web_env)) as url:
            post_as_webhooks(url, events)

    by_action = land_and_apply(warehouse, settings.home, deployment)
    assert "unmatched" not in by_action
    assert statuses(warehouse, channel) == predicted(channel, rates)
    delivered = rows(warehouse, f"select count(*) from {OUTBOX} where delivered_at is not null")[0][0]
    assert delivered == sum(v == "delivered" for v in predicted(channel, rates).values())


@pytest.mark.parametrize("setup", ENGINES, indirect=True)
def test_receipts_off_is_the_silent_sandbox(setup, deployment: Deployment) -> None:
    env, settings, warehouse, sender = setup
    env = {**env, "HERALD_SANDBOX_RECEIPTS": "off"}
    with warehouse.session() as s:
        enqueue(s, outbox_messages(sender, ("sms", "email")), NOW - timedelta(hours=1))
    assert deliver_due(warehouse, providers_from_env(env), now=NOW, options=OPTIONS).sent == SMS_COUNT + EMAIL_COUNT
    assert pending_event_files(settings.home) == []
    assert land_and_apply(warehouse, settings.home, deployment) == {}
    assert rows(warehouse, "select count(*) from herald_raw.inbound_messages")[0][0] == 0
    # accepted, and nothing more is ever known
    assert rows(warehouse, f"select status, provider_status, count(*) from {OUTBOX} group by 1, 2") == [
        ("sent", None, SMS_COUNT + EMAIL_COUNT)
    ]


def test_journal_keeps_the_rendered_text_with_the_address_masked(tmp_path: Path) -> None:
    provider = SandboxSmsProvider(journal_dir=tmp_path / "sandbox", receipts=SandboxReceipts(FileSink(tmp_path)))
    message = OutboundMessage("k1", "sms", "+15125550142", "+15125550100", body="See you at 3pm. Reply C to confirm")
    provider.send(message)
    provider.send(message)  # a retry: the same events, so the same ids
    (entry, _) = read_journal(tmp_path / "sandbox" / "sms.jsonl")
    assert entry["to"] == "+1•••••••142" and entry["text"] == "See you at 3pm. Reply C to confirm"
    assert "5550142" not in (tmp_path / "sandbox" / "sms.jsonl").read_text()
    assert provider.lookup(message, since=NOW) is not None
    magic = OutboundMessage("k2", "sms", "+15005550001", "+15125550100", body="hello")
    with pytest.raises(PermanentProviderError, match="21211"):
        provider.send(magic)  # a magic failing recipient is still refused at send, with no receipts
    files = pending_event_files(tmp_path)
    ids = [json.loads(line)["event_id"] for path in files for line in path.read_text().splitlines()]
    assert len(files) == 2 and ids[:3] == ids[3:] and [i.split(":")[1] for i in ids[:3]][:2] == ["queued", "sent"]


def test_a_sink_that_fails_never_fails_the_send(tmp_path: Path) -> None:
    def broken() -> FileSink:
        raise OSError("the landing folder is gone")

    provider = SandboxSmsProvider(journal_dir=tmp_path / "sandbox", receipts=SandboxReceipts(broken))
    result = provider.send(OutboundMessage("k1", "sms", "+15125550142", "+15125550100", body="hello"))
    assert result.status == "queued" and provider.journal_counts() == {"k1": 1}


def test_outcomes_follow_the_rates_and_the_key_only() -> None:
    defaults = SandboxRates()
    fates = [sandbox_outcome("sms", f"key-{n}", defaults) for n in range(4000)]
    failed = sum(not o.delivered for o in fates) / len(fates)
    assert 0.02 < failed < 0.04  # the default 3%
    assert sandbox_outcome("sms", "key-7", defaults) == fates[7]
    assert all(o.reply != "STOP" for o in fates)
    assert any(o.reply == "STOP" for n in range(400) if (o := sandbox_outcome(
        "sms", f"key-{n}", SandboxRates(reply_rate=1.0, stop_replies=True))))  # fmt: skip
    assert sandbox_rates_from_env({"HERALD_SANDBOX_DELIVERY_RATE": "0.9"}).sms_failure_rate == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("HERALD_SANDBOX_REPLY_RATE", "1.5", "above 1"),
        ("HERALD_SANDBOX_BOUNCE_RATE", "lots", "not a number"),
        ("HERALD_SANDBOX_RECEIPT_DELAY_SECONDS", "-1", "must not be negative"),
        ("HERALD_SANDBOX_RECEIPTS", "maybe", "accepts on, off"),
    ],
)
def test_bad_sandbox_settings_are_refused_by_name(tmp_path: Path, name: str, value: str, says: str) -> None:
    with pytest.raises(SettingsError, match=name) as error:
        check_environment({"HERALD_HOME": str(tmp_path), name: value})
    assert says in str(error.value)
