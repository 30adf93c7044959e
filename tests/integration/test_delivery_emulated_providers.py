"""The delivery engine driving the real Twilio and Resend SDKs against the local emulator
(tests/provider_emulator.py): injected 429s, 500s, an invalid number and timeouts end in the
right statuses and attempt rows, and the emulator accepts every message exactly once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from herald.delivery.engine import HELD_TIMEOUT_REASON, HELD_UNKNOWN_REASON, DeliveryOptions, deliver_due
from herald.delivery.outbox import ATTEMPTS, OUTBOX, OutboxMessage, enqueue
from herald.providers.base import OutboundMessage
from herald.providers.resend_email import ResendEmailProvider
from herald.providers.twilio_sms import TwilioSmsProvider
from herald.warehouse.connection import Warehouse
from tests.conftest import ENGINES
from tests.provider_emulator import ProviderEmulator, delay, resend_error, respond, twilio_error

SID, TOKEN, RESEND_KEY = "ACdelivery01", "delivery-token", "re_delivery_key"
NOW = datetime(2026, 11, 23, 15, 0)
OPTIONS = DeliveryOptions(max_attempts_per_run=4, initial_backoff_seconds=0.001, max_backoff_seconds=0.02)
PASS = delay(0.0)  # a scripted slot that is handled normally


@pytest.fixture(scope="module")
def emulator() -> Iterator[ProviderEmulator]:
    with ProviderEmulator(twilio_accounts={SID: TOKEN}, resend_api_key=RESEND_KEY) as server:
        yield server


@pytest.fixture
def fresh(emulator: ProviderEmulator) -> ProviderEmulator:
    emulator.reset()
    return emulator


def message(key: str, channel: str, to: str) -> OutboxMessage:
    email = channel == "email"
    return OutboxMessage(
        message_key=key, client_id="acme", campaign="welcome", step="hello", variant="a",
        occurrence="o1", contact_id=f"c-{key}", message_type="welcome", category="marketing",
        channel=channel, to_address=to,
        sender="news@herald.example" if email else "+15550000000",
        send_after=NOW - timedelta(minutes=1), subject="Welcome" if email else None,
        body_text=f"Hello {key}", body_html=f"<p>Hello {key}</p>" if email else None,
    )  # fmt: skip


def put(warehouse: Warehouse, *messages: OutboxMessage) -> None:
    with warehouse.session() as s:
        enqueue(s, messages, NOW - timedelta(hours=1))


def rows(warehouse: Warehouse, sql: str) -> list[tuple]:
    with warehouse.session(read_only=True) as s:
        return s.query(sql)[1]


def attempts_by_key(warehouse: Warehouse) -> dict[str, list[tuple]]:
    found: dict[str, list[tuple]] = {}
    for key, number, outcome, code in rows(
        warehouse,
        f"select message_key, attempt_number, outcome, error_code from {ATTEMPTS} "
        "order by message_key, started_at, attempt_number, outcome desc",
    ):
        found.setdefault(key, []).append((number, outcome, code))
    return found


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_twilio_through_deliver_due(warehouse: Warehouse, fresh: ProviderEmulator) -> None:
    put(
        warehouse,
        message("sms-a-429", "sms", "+15551230001"),
        message("sms-b-500", "sms", "+15551230002"),
        message("sms-c-invalid", "sms", "+15551230003"),
        message("sms-d-ok", "sms", "+15551230004"),
        message("sms-e-timeout", "sms", "+15551230005"),
    )
    # Requests arrive in claim order (send_after, message_key); each slot is one POST.
    fresh.script(
        respond(429, {"code": 20429, "message": "Too Many Requests", "status": 429}, {"Retry-After": "0"}),
        PASS,
        twilio_error(500, 20500, "Internal Server Error"),
        PASS,
        twilio_error(400, 21211, "The 'To' number is not a valid phone number."),
        PASS,
        delay(1.0),  # longer than the client's timeout: Twilio still accepts it afterwards
    )
    twilio = TwilioSmsProvider(SID, TOKEN, base_url=fresh.url, timeout=0.5)
    report = deliver_due(warehouse, {"sms": twilio}, now=NOW, options=OPTIONS)
    fresh.wait_idle()

    assert dict(rows(warehouse, f"select message_key, status from {OUTBOX}")) == {
        "sms-a-429": "sent", "sms-b-500": "sent", "sms-c-invalid": "failed",
        "sms-d-ok": "sent", "sms-e-timeout": "held",
    }  # fmt: skip
    reasons = dict(rows(warehouse, f"select message_key, status_reason from {OUTBOX} where status <> 'sent'"))
    assert reasons["sms-c-invalid"].endswith("The 'To' number is not a valid phone number. (code 21211)")
    # An SMS whose outcome is unknown is never resent blindly.
    assert reasons["sms-e-timeout"] == HELD_TIMEOUT_REASON
    assert (report.sent, report.failed, report.held, report.retried) == (3, 1, 1, 2)

    accepted = Counter(m["To"] for m in fresh.sms_sent)
    assert accepted == Counter({"+15551230001": 1, "+15551230002": 1, "+15551230004": 1, "+15551230005": 1})
    sids = dict(rows(warehouse, f"select to_address, provider_message_id from {OUTBOX} where status = 'sent'"))
    assert set(sids.values()) <= {m["sid"] for m in fresh.sms_sent}

    assert attempts_by_key(warehouse) == {
        "sms-a-429": [(1, "transient_error", "20429"), (2, "sent", None)],
        "sms-b-500": [(1, "transient_error", "20500"), (2, "sent", None)],
        "sms-c-invalid": [(1, "permanent_error", "21211")],
        "sms-d-ok": [(1, "sent", None)],
        "sms-e-timeout": [(1, "transient_error", None), (1, "held_unknown", "outcome_unknown")],
    }
    # re-running sends nothing new
    assert deliver_due(warehouse, {"sms": twilio}, now=NOW, options=OPTIONS).claimed == 0
    assert len(fresh.sms_sent) == 4


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_resend_batches_through_deliver_due(warehouse: Warehouse, fresh: ProviderEmulator) -> None:
    put(
        warehouse,
        message("mail-1", "email", "ada@example.com"),
        message("mail-2", "email", "grace@example.com"),
        message("mail-3", "email", "alan@example.com"),
        message("mail-bad", "email", "nobody@invalid.example"),
    )
    fresh.script(
        resend_error(500, "application_error", "boom"),
        resend_error(429, "rate_limit_exceeded", "Too many requests", {"Retry-After": "0"}),
        delay(1.0),  # timeout: the emulator still handles it later, under the same key
    )
    resend = ResendEmailProvider(RESEND_KEY, base_url=fresh.url, timeout=0.5)
    report = deliver_due(warehouse, {"email": resend}, now=NOW, options=OPTIONS)
    fresh.wait_idle()

    assert dict(rows(warehouse, f"select message_key, status from {OUTBOX}")) == {
        "mail-1": "sent", "mail-2": "sent", "mail-3": "sent", "mail-bad": "failed",
    }  # fmt: skip
    assert rows(warehouse, f"select status_reason from {OUTBOX} where status = 'failed'") == [
        ("Invalid `to` field. (code 422)",)
    ]
    # one batch request per call, the same idempotency key each time: each email once
    assert Counter(tuple(e["to"]) for e in fresh.emails_sent) == Counter(
        {("ada@example.com",): 1, ("grace@example.com",): 1, ("alan@example.com",): 1}
    )
    assert len({e["batch_idempotency_key"] for e in fresh.emails_sent}) == 1
    ids = {r[0] for r in rows(warehouse, f"select provider_message_id from {OUTBOX} where status = 'sent'")}
    assert ids == {e["id"] for e in fresh.emails_sent}
    assert (report.sent, report.failed, report.retried) == (3, 1, 12)

    history = attempts_by_key(warehouse)
    assert [outcome for _, outcome, _ in history["mail-1"]] == ["transient_error"] * 3 + ["sent"]
    assert [outcome for _, outcome, _ in history["mail-bad"]] == ["transient_error"] * 3 + ["permanent_error"]
    assert [number for number, _, _ in history["mail-2"]] == [1, 2, 3, 4]
    assert [code for _, _, code in history["mail-3"]][:2] == ["500", "429"]


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_twilio_lookup_settles_a_crashed_run(warehouse: Warehouse, fresh: ProviderEmulator) -> None:
    put(
        warehouse,
        message("crash-accepted", "sms", "+15551239001"),
        message("crash-unknown", "sms", "+15551239002"),
    )
    twilio = TwilioSmsProvider(SID, TOKEN, base_url=fresh.url, timeout=2)
    # A dead run claimed both and got as far as handing one to Twilio.
    accepted = twilio.send(
        OutboundMessage("crash-accepted", "sms", "+15551239001", sender="+15550000000", body="Hello crash-accepted")
    )
    claimed_at = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)
    with warehouse.session() as s:
        s.execute(
            f"update {OUTBOX} set status = 'sending', claim_token = 'dead-run', claimed_at = ?, attempts = 1",
            [claimed_at],
        )

    report = deliver_due(warehouse, {"sms": twilio}, options=OPTIONS)  # real clock, lease 600 s

    assert (report.reconciled_sent, report.held, report.sent) == (1, 1, 0)
    assert dict(rows(warehouse, f"select message_key, status from {OUTBOX}")) == {
        "crash-accepted": "sent", "crash-unknown": "held",
    }  # fmt: skip
    assert rows(warehouse, f"select provider_message_id from {OUTBOX} where message_key = 'crash-accepted'") == [
        (accepted.provider_message_id,)
    ]
    assert rows(warehouse, f"select status_reason from {OUTBOX} where message_key = 'crash-unknown'") == [
        (HELD_UNKNOWN_REASON,)
    ]
    assert sorted(rows(warehouse, f"select message_key, outcome from {ATTEMPTS}")) == [
        ("crash-accepted", "reconciled_sent"),
        ("crash-unknown", "held_unknown"),
    ]
    assert len(fresh.sms_sent) == 1  # nothing resent
