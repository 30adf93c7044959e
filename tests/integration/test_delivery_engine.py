"""The delivery engine on both engines with the sandbox providers: what is due is sent once,
what is not due or held waits, magic numbers fail with their reason, suppressions recorded
after enqueue win at claim time, and every provider call leaves an attempt row."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from herald.delivery.engine import DeliveryOptions, DeliveryReport, deliver_due
from herald.delivery.outbox import ATTEMPTS, OUTBOX, SUPPRESSIONS, OutboxMessage, enqueue, status_counts
from herald.providers.base import OutboundMessage, SendResult, TransientProviderError
from herald.providers.sandbox import SandboxEmailProvider, SandboxSmsProvider
from herald.warehouse.connection import Warehouse
from tests.conftest import ENGINES

NOW = datetime(2026, 11, 23, 15, 0)
FAST = DeliveryOptions(batch_size=3, initial_backoff_seconds=0.001, max_backoff_seconds=0.01)


def outbox_message(
    key: str,
    channel: str = "sms",
    to: str | None = None,
    *,
    client: str = "acme",
    send_after: datetime = NOW - timedelta(minutes=5),
    status: str = "queued",
    reason: str | None = None,
) -> OutboxMessage:
    email = channel == "email"
    return OutboxMessage(
        message_key=key,
        client_id=client,
        campaign="welcome",
        step="hello",
        variant="a",
        occurrence="2026-11-23",
        contact_id=f"contact-{key}",
        message_type="welcome",
        category="marketing",
        channel=channel,
        to_address=to or (f"{key}@example.com" if email else "+1555" + str(abs(hash(key)) % 10**7).zfill(7)),
        sender="news@herald.example" if email else "+15550000000",
        send_after=send_after,
        subject="Welcome" if email else None,
        body_text=f"Hello {key}",
        body_html=f"<p>Hello {key}</p>" if email else None,
        headers={"List-Unsubscribe": "<mailto:u@herald.example>"} if email else {},
        status=status,
        status_reason=reason,
    )


def put(warehouse: Warehouse, *messages: OutboxMessage) -> None:
    with warehouse.session() as s:
        enqueue(s, messages, NOW - timedelta(hours=1))


def rows(warehouse: Warehouse, sql: str, params: list | None = None) -> list[tuple]:
    with warehouse.session(read_only=True) as s:
        return s.query(sql, params)[1]


def statuses(warehouse: Warehouse) -> dict[str, str]:
    return dict(rows(warehouse, f"select message_key, status from {OUTBOX}"))


def sandbox() -> dict:
    return {"sms": SandboxSmsProvider(), "email": SandboxEmailProvider()}


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_due_messages_are_sent_once_and_the_rest_wait(warehouse: Warehouse) -> None:
    put(
        warehouse,
        outbox_message("sms-1"),
        outbox_message("sms-2"),
        outbox_message("sms-3"),
        outbox_message("mail-1", "email"),
        outbox_message("mail-2", "email"),
        outbox_message("later", send_after=NOW + timedelta(hours=1)),
        outbox_message("held", status="held", reason="template failed: missing first_name"),
        outbox_message("bad-number", to="+15005550001"),
        outbox_message("no-route", to="+15005550002"),
        outbox_message("bounce", "email", to="bounce@example.com"),
    )
    providers = sandbox()
    progress: list[int] = []
    report = deliver_due(warehouse, providers, now=NOW, options=FAST, progress=lambda r: progress.append(r.claimed))

    assert statuses(warehouse) == {
        "sms-1": "sent", "sms-2": "sent", "sms-3": "sent", "mail-1": "sent", "mail-2": "sent",
        "later": "queued", "held": "held",
        "bad-number": "failed", "no-route": "failed", "bounce": "failed",
    }  # fmt: skip
    assert sorted(m.message_key for m in providers["sms"].sent) == ["sms-1", "sms-2", "sms-3"]
    assert sorted(m.message_key for m in providers["email"].sent) == ["mail-1", "mail-2"]
    assert (report.claimed, report.sent, report.failed, report.requeued) == (8, 5, 3, 0)
    assert progress == [3, 6, 8]  # batch_size 3: called after each batch
    assert report.failure_reasons == Counter(
        {
            "invalid 'To' phone number (code 21211)": 1,
            "cannot route to this number (code 21612)": 1,
            "hard bounce (code bounce)": 1,
        }
    )
    assert "5 sent, 3 failed" in report.summary()
    failed = dict(rows(warehouse, f"select message_key, status_reason from {OUTBOX} where status = 'failed'"))
    assert failed["bad-number"] == "invalid 'To' phone number (code 21211)"
    sent = rows(
        warehouse,
        f"select provider, provider_message_id, sent_at, attempts, claim_token from {OUTBOX} where message_key = 'sms-1'",
    )[0]
    assert sent[0] == "sandbox_sms" and sent[1].startswith("SM") and sent[2] == NOW and sent[3] == 1 and sent[4]

    # one attempt row per provider call, with what happened
    attempts = rows(
        warehouse,
        f"select message_key, attempt_number, outcome, error_code, provider_message_id, claim_token "
        f"from {ATTEMPTS} order by message_key",
    )
    assert [(k, n, o) for k, n, o, *_ in attempts] == [
        ("bad-number", 1, "permanent_error"),
        ("bounce", 1, "permanent_error"),
        ("mail-1", 1, "sent"),
        ("mail-2", 1, "sent"),
        ("no-route", 1, "permanent_error"),
        ("sms-1", 1, "sent"),
        ("sms-2", 1, "sent"),
        ("sms-3", 1, "sent"),
    ]
    assert {k: c for k, _, _, c, *_ in attempts}["bad-number"] == "21211"
    assert all(a[5] for a in attempts)

    # Re-running sends nothing new and adds no attempt rows.
    again = deliver_due(warehouse, providers, now=NOW, options=FAST)
    assert (again.claimed, again.sent) == (0, 0)
    assert len(providers["sms"].sent) == 3
    assert len(rows(warehouse, f"select * from {ATTEMPTS}")) == 8

    # Later, the message that was not due yet goes; held stays held.
    later = deliver_due(warehouse, providers, now=NOW + timedelta(hours=2), options=FAST)
    assert (later.claimed, later.sent) == (1, 1)
    assert status_counts(warehouse) == {"sent": 6, "failed": 3, "held": 1}


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_suppression_recorded_after_enqueue_wins_at_claim_time(warehouse: Warehouse) -> None:
    put(
        warehouse,
        outbox_message("opted-out", to="+15551110001"),
        outbox_message("complained", "email", to="ada@example.com"),
        outbox_message("other-client", to="+15551110002"),
        outbox_message("email-only-block", to="+15551110003"),
        outbox_message("fine", to="+15551110004"),
    )
    with warehouse.session() as s:
        s.insert_rows(
            SUPPRESSIONS,
            ["client_id", "channel", "address", "scope", "reason", "created_at"],
            [
                ("*", "sms", "+15551110001", "all", "opt_out", NOW),
                ("acme", "*", "ada@example.com", "all", "complaint", NOW),
                ("globex", "*", "+15551110002", "all", "manual_block", NOW),  # another client's block
                ("acme", "email", "+15551110003", "all", "manual_block", NOW),  # another channel
            ],
        )
    providers = sandbox()
    report = deliver_due(warehouse, providers, now=NOW, options=FAST)

    assert statuses(warehouse) == {
        "opted-out": "suppressed", "complained": "suppressed",
        "other-client": "sent", "email-only-block": "sent", "fine": "sent",
    }  # fmt: skip
    assert (report.claimed, report.suppressed, report.sent) == (5, 2, 3)
    assert sorted(m.message_key for m in providers["sms"].sent) == ["email-only-block", "fine", "other-client"]
    assert providers["email"].sent == []
    reasons = dict(rows(warehouse, f"select message_key, status_reason from {OUTBOX} where status = 'suppressed'"))
    assert "opt_out" in reasons["opted-out"] and "complaint" in reasons["complained"]
    outcomes = rows(
        warehouse, f"select message_key, outcome, error_reason from {ATTEMPTS} where outcome = 'suppressed'"
    )
    assert sorted(outcomes) == [("complained", "suppressed", "complaint"), ("opted-out", "suppressed", "opt_out")]


def typed(key: str, to: str, message_type: str) -> OutboxMessage:
    return replace(outbox_message(key, to=to), message_type=message_type)


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_a_suppression_covers_its_scope_and_the_opt_out_confirmation_still_goes(warehouse: Warehouse) -> None:
    put(
        warehouse,
        typed("reminder", "+15551110001", "appointment_reminder"),  # scope matches → suppressed
        typed("newsletter", "+15551110001", "newsletter"),  # another message type → sent
        typed("confirmation", "+15551110001", "opt_out_confirmation"),  # the one allowed reply → sent
        typed("help", "+15551110001", "help_reply"),  # HELP is always answered → sent
        typed("all-scope", "+15551110002", "newsletter"),  # scope 'all' covers every type
        typed("blocked-confirmation", "+15551110003", "opt_out_confirmation"),  # a manual block still wins
    )
    with warehouse.session() as s:
        s.insert_rows(
            SUPPRESSIONS,
            ["client_id", "channel", "address", "scope", "reason", "source", "created_at"],
            [
                ("acme", "sms", "+15551110001", "appointment_reminder", "opt_out", "sms_keyword", NOW),
                ("acme", "sms", "+15551110002", "all", "opt_out", "sms_keyword", NOW),
                ("acme", "sms", "+15551110003", "all", "opt_out", "sms_keyword", NOW),
                ("*", "*", "+15551110003", "all", "manual_block", "manual", NOW),
            ],
        )
    providers = sandbox()
    report = deliver_due(warehouse, providers, now=NOW, options=FAST)

    assert statuses(warehouse) == {
        "reminder": "suppressed", "newsletter": "sent", "confirmation": "sent", "help": "sent",
        "all-scope": "suppressed", "blocked-confirmation": "suppressed",
    }  # fmt: skip
    assert (report.suppressed, report.sent) == (3, 3)
    reasons = dict(rows(warehouse, f"select message_key, status_reason from {OUTBOX} where status = 'suppressed'"))
    assert "manual_block" in reasons["blocked-confirmation"]


class FlakySms(SandboxSmsProvider):
    """A sandbox SMS provider whose first ``failures`` calls per message fail transiently."""

    def __init__(self, failures: int, retry_after: float | None = None) -> None:
        super().__init__()
        self.failures, self.retry_after = failures, retry_after
        self.calls: Counter[str] = Counter()

    def send(self, message: OutboundMessage) -> SendResult:
        self.calls[message.message_key] += 1
        if self.calls[message.message_key] <= self.failures:
            raise TransientProviderError("busy", provider=self.name, code=503, retry_after=self.retry_after)
        return super().send(message)


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_transient_errors_retry_quickly_then_requeue_then_fail(warehouse: Warehouse) -> None:
    put(warehouse, outbox_message("flaky"))
    options = DeliveryOptions(
        max_attempts_per_run=2, max_attempts=3, initial_backoff_seconds=0.001, max_backoff_seconds=0.01
    )
    providers = {"sms": FlakySms(failures=10)}

    first = deliver_due(warehouse, providers, now=NOW, options=options)
    assert (first.claimed, first.retried, first.requeued, first.failed) == (1, 1, 1, 0)
    status, attempts, next_at, reason = rows(
        warehouse, f"select status, attempts, next_attempt_at, status_reason from {OUTBOX}"
    )[0]
    assert (status, attempts) == ("queued", 2)
    assert next_at > NOW and reason == "busy (code 503)"
    # not due again until next_attempt_at
    assert deliver_due(warehouse, providers, now=NOW, options=options).claimed == 0

    second = deliver_due(warehouse, providers, now=next_at, options=options)
    assert (second.claimed, second.failed) == (1, 1)
    status, attempts, reason = rows(warehouse, f"select status, attempts, status_reason from {OUTBOX}")[0]
    assert (status, attempts) == ("failed", 3)
    assert reason == "gave up after 3 attempts: busy (code 503)"
    numbers = rows(warehouse, f"select attempt_number, outcome from {ATTEMPTS} order by attempt_number")
    assert numbers == [(1, "transient_error"), (2, "transient_error"), (3, "transient_error")]
    assert providers["sms"].calls["flaky"] == 3


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_a_transient_error_then_success_is_sent_in_the_same_run(warehouse: Warehouse) -> None:
    put(warehouse, outbox_message("once-busy"))
    providers = {"sms": FlakySms(failures=1, retry_after=0.005)}
    report = deliver_due(warehouse, providers, now=NOW, options=FAST)
    assert (report.sent, report.retried) == (1, 1)
    assert rows(warehouse, f"select status, attempts from {OUTBOX}") == [("sent", 2)]
    outcomes = rows(warehouse, f"select attempt_number, outcome from {ATTEMPTS} order by attempt_number")
    assert outcomes == [(1, "transient_error"), (2, "sent")]


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_a_long_retry_after_goes_back_to_the_outbox_instead_of_sleeping(warehouse: Warehouse) -> None:
    put(warehouse, outbox_message("slow-down"))
    providers = {"sms": FlakySms(failures=1, retry_after=120)}
    report = deliver_due(warehouse, providers, now=NOW, options=FAST)
    assert (report.requeued, report.retried) == (1, 0)
    status, next_at = rows(warehouse, f"select status, next_attempt_at from {OUTBOX}")[0]
    assert status == "queued" and next_at >= NOW + timedelta(seconds=120)
    assert deliver_due(warehouse, providers, now=next_at, options=FAST).sent == 1


def test_client_filter_and_channels_without_provider(warehouse: Warehouse) -> None:
    put(
        warehouse,
        outbox_message("acme-sms"),
        outbox_message("acme-mail", "email"),
        outbox_message("globex-sms", client="globex"),
    )
    report = deliver_due(warehouse, {"sms": SandboxSmsProvider()}, now=NOW, client_id="acme", options=FAST)
    assert isinstance(report, DeliveryReport)
    assert statuses(warehouse) == {"acme-sms": "sent", "acme-mail": "queued", "globex-sms": "queued"}
