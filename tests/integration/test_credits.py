"""Credits on both engines: a delivery run sends up to a metered client's balance and holds the
rest, never debits a message twice, refunds one that failed, and two runs at once on PostgreSQL
never overspend; the low-credit alert fires once per crossing; the CLI adds and shows credits."""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from herald.billing.alerts import CREDIT_ALERTS, alert_key, check_low_credit
from herald.billing.credits import CREDIT_LEDGER, add_credits, balances
from herald.config import Deployment
from herald.delivery.engine import DeliveryOptions, DeliveryReport, deliver_due
from herald.delivery.outbox import OutboxMessage, status_counts
from herald.providers.sandbox import SandboxEmailProvider, SandboxSmsProvider
from herald.settings import Settings
from herald.warehouse.connection import Warehouse
from tests.conftest import ENGINES, REPO_ROOT
from tests.integration.test_delivery_engine import FAST, NOW, FlakySms, outbox_message, put, rows, sandbox, statuses

CLINIC = "bright_smiles_dental"  # credit_alert_threshold_pct: 20


def buy(warehouse: Warehouse, client: str, amount: str, *, kind: str = "purchase", at: datetime = NOW) -> str:
    with warehouse.session() as s:
        return add_credits(s, client, amount, "test", "test", at, kind=kind)


def balance(warehouse: Warehouse, client: str) -> Decimal:
    with warehouse.session(read_only=True) as s:
        return balances(s, client)[client].balance


def ledger(warehouse: Warehouse) -> list[tuple]:
    return rows(warehouse, f"select kind, message_key, amount from {CREDIT_LEDGER} where kind in ('debit', 'release') "
                           "order by kind, message_key")  # fmt: skip


def sms(key: str, segments: int = 1, **values) -> OutboxMessage:
    return replace(outbox_message(key, **values), sms_segments=segments)


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_a_run_past_the_balance_sends_up_to_it_and_holds_the_rest(warehouse: Warehouse) -> None:
    buy(warehouse, "acme", "3.5")
    put(
        warehouse,
        sms("a-sms"),  # 1 credit → 2.5 left
        sms("b-sms", segments=2),  # 2 → 0.5 left
        sms("c-sms"),  # needs 1: held
        outbox_message("d-email", "email"),  # 0.25 → 0.25 left (a cheaper message still fits)
        outbox_message("e-email", "email"),  # 0.25 → 0
        sms("f-sms"),  # needs 1: held
        sms("unmetered", client="other"),  # no ledger row: unmetered
    )
    report = deliver_due(warehouse, sandbox(), now=NOW, options=FAST)  # batches of 3

    assert (report.claimed, report.sent, report.held) == (7, 5, 2)
    assert statuses(warehouse) == {
        "a-sms": "sent", "b-sms": "sent", "c-sms": "held", "d-email": "sent", "e-email": "sent", "f-sms": "held",
        "unmetered": "sent",
    }  # fmt: skip
    reasons = dict(rows(warehouse, "select message_key, status_reason from herald_ops.outbox where status = 'held'"))
    assert reasons["c-sms"] == "insufficient credits (balance 0.5, needs 1)"
    assert reasons["f-sms"] == "insufficient credits (balance 0, needs 1)"
    assert balance(warehouse, "acme") == 0
    debits = ledger(warehouse)
    assert [(k, m, float(a)) for k, m, a in debits] == [
        ("debit", "a-sms", -1.0), ("debit", "b-sms", -2.0), ("debit", "d-email", -0.25), ("debit", "e-email", -0.25),
    ]  # fmt: skip
    held_audit = rows(warehouse, "select actor, client_id, reason from herald_ops.audit_log where action = 'hold'")
    assert {r[:2] for r in held_audit} == {("delivery", "acme")}

    # a re-run claims nothing and debits nothing; held messages wait for a person
    again = deliver_due(warehouse, sandbox(), now=NOW + timedelta(hours=1), options=FAST)
    assert (again.claimed, again.sent) == (0, 0)
    assert ledger(warehouse) == debits


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_a_retried_message_is_debited_once_and_a_failed_one_refunded(warehouse: Warehouse) -> None:
    buy(warehouse, "acme", "10")
    put(warehouse, sms("flaky"), sms("refused", to="+15005550001"))
    options = DeliveryOptions(max_attempts_per_run=1, initial_backoff_seconds=0.001, requeue_backoff_seconds=1)
    flaky = FlakySms(failures=1)
    flaky.calls["refused"] = 1  # only "flaky" fails transiently (once); "refused" is refused for good
    providers = {"sms": flaky}

    first = deliver_due(warehouse, providers, now=NOW, options=options)
    assert (first.requeued, first.failed) == (1, 1)
    assert balance(warehouse, "acme") == 9  # the refused one is refunded, the requeued one stays paid

    # the requeued message is claimed again: already paid for, so no second debit
    second = deliver_due(warehouse, providers, now=NOW + timedelta(minutes=5), options=options)
    assert second.sent == 1
    assert [(k, m, float(a)) for k, m, a in ledger(warehouse)] == [
        ("debit", "flaky", -1.0), ("debit", "refused", -1.0), ("release", "refused", 1.0),
    ]  # fmt: skip
    assert balance(warehouse, "acme") == 9


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_a_paid_message_withdrawn_before_it_went_out_is_refunded_once(warehouse: Warehouse) -> None:
    buy(warehouse, "acme", "10")
    put(warehouse, sms("withdrawn"), sms("delivered"))
    options = DeliveryOptions(max_attempts_per_run=1, initial_backoff_seconds=0.001, requeue_backoff_seconds=1)
    flaky = FlakySms(failures=1)
    flaky.calls["delivered"] = 1  # only "withdrawn" fails transiently: paid for, back in the queue
    first = deliver_due(warehouse, {"sms": flaky}, now=NOW, options=options)
    assert (first.sent, first.requeued, first.refunded) == (1, 1, 0)
    assert balance(warehouse, "acme") == 8

    # before the next run, the recipient's STOP (or the journey's exit) withdraws it
    with warehouse.session() as s:
        s.execute("update herald_ops.outbox set status = 'cancelled', status_reason = 'opted out: STOP' "
                  "where message_key = 'withdrawn'")  # fmt: skip
    second = deliver_due(warehouse, {"sms": flaky}, now=NOW + timedelta(minutes=5), options=options)
    assert (second.claimed, second.refunded) == (0, 1)
    assert balance(warehouse, "acme") == 9
    notes = rows(warehouse, f"select note from {CREDIT_LEDGER} where entry_id = 'release:withdrawn'")
    assert notes == [("refund: the message was withdrawn before it was sent",)]

    third = deliver_due(warehouse, {"sms": flaky}, now=NOW + timedelta(minutes=10), options=options)
    assert third.refunded == 0 and balance(warehouse, "acme") == 9  # once


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_a_message_already_paid_for_needs_no_credit_and_billing_off_meters_nothing(warehouse: Warehouse) -> None:
    buy(warehouse, "acme", "1")
    put(warehouse, sms("one"), sms("two"))
    off = deliver_due(warehouse, sandbox(), now=NOW, options=replace(FAST, pricing=None))
    assert off.sent == 2
    assert ledger(warehouse) == []
    assert balance(warehouse, "acme") == 1


@pytest.mark.postgres
@pytest.mark.parametrize("warehouse", ["postgres"], indirect=True)
def test_two_delivery_runs_at_once_never_overspend(warehouse: Warehouse) -> None:
    buy(warehouse, "acme", "60")
    put(warehouse, *[sms(f"m-{n:03d}", to=f"+1555400{n:04d}") for n in range(150)])
    start = threading.Barrier(2)
    reports: list[DeliveryReport] = []
    errors: list[BaseException] = []

    def run() -> None:
        providers = {"sms": SandboxSmsProvider(send_delay_seconds=0.001)}
        start.wait()
        try:
            reports.append(deliver_due(warehouse, providers, now=NOW, options=DeliveryOptions(batch_size=20)))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert all(r.claimed > 0 for r in reports), "both runs took part"
    assert status_counts(warehouse) == {"sent": 60, "held": 90}
    assert sum(r.sent for r in reports) == 60
    assert balance(warehouse, "acme") == 0
    debited = rows(warehouse, f"select count(*), count(distinct message_key) from {CREDIT_LEDGER} where kind = 'debit'")
    assert debited == [(60, 60)]


def alerts(warehouse: Warehouse) -> list[tuple]:
    return rows(
        warehouse, f"select client_id, balance, threshold, email_status from {CREDIT_ALERTS} order by crossed_at"
    )


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_the_low_credit_alert_fires_once_per_crossing(warehouse: Warehouse, deployment: Deployment) -> None:
    email = SandboxEmailProvider()
    providers = {"email": email}

    def check(at: datetime) -> list:
        with warehouse.session() as s:
            return check_low_credit(s, deployment, providers, at)

    first_purchase = buy(warehouse, CLINIC, "100")
    assert check(NOW) == []  # 100 left, threshold 20
    buy(warehouse, CLINIC, "-80", kind="adjustment")
    assert check(NOW) == []  # 20 left: not below 20
    buy(warehouse, CLINIC, "-5", kind="adjustment")
    fired = check(NOW + timedelta(minutes=1))
    assert [(a.client_id, a.balance, a.threshold, a.email_status) for a in fired] == [(CLINIC, 15, 20, "sent")]
    assert fired[0].message_key == alert_key(CLINIC, first_purchase)
    assert [(m.to, m.message_key) for m in email.sent] == [("frontdesk@brightsmiles.example", fired[0].message_key)]
    assert "15 credits" in (email.sent[0].subject or "") and "20%" in (email.sent[0].text or "")

    buy(warehouse, CLINIC, "-10", kind="adjustment")
    assert check(NOW + timedelta(minutes=2)) == []  # still the same crossing: no second email
    assert len(email.sent) == 1

    buy(warehouse, CLINIC, "50", at=NOW + timedelta(minutes=3))  # 55 left, threshold now 10: re-armed
    assert check(NOW + timedelta(minutes=4)) == []
    buy(warehouse, CLINIC, "-50", kind="adjustment")
    again = check(NOW + timedelta(minutes=5))
    assert [(a.balance, a.threshold, a.email_status) for a in again] == [(5, 10, "sent")]
    assert len(email.sent) == 2 and email.sent[1].message_key != email.sent[0].message_key
    assert [(c, float(b), float(t), s) for c, b, t, s in alerts(warehouse)] == [
        (CLINIC, 15.0, 20.0, "sent"), (CLINIC, 5.0, 10.0, "sent"),
    ]  # fmt: skip


@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_an_alert_email_that_failed_is_tried_again(warehouse: Warehouse, deployment: Deployment) -> None:
    buy(warehouse, CLINIC, "10")
    buy(warehouse, CLINIC, "-9", kind="adjustment")
    with warehouse.session() as s:
        failed = check_low_credit(s, deployment, {}, NOW)  # no email provider
    assert [(a.email_status, a.email_error) for a in failed] == [("failed", "no email provider is configured")]
    email = SandboxEmailProvider()
    with warehouse.session() as s:
        retried = check_low_credit(s, deployment, {"email": email}, NOW + timedelta(minutes=1))
    assert [a.email_status for a in retried] == ["sent"] and len(email.sent) == 1
    assert [r[3] for r in alerts(warehouse)] == ["sent"]
    off = deployment.model_copy(update={"herald": deployment.herald.model_copy(update={"billing_enabled": False})})
    buy(warehouse, CLINIC, "-0.5", kind="adjustment")
    with warehouse.session() as s:
        assert check_low_credit(s, off, {"email": email}, NOW) == []


def herald(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "herald.cli", *args], env={**os.environ, **env}, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_the_cli_adds_and_shows_credits(herald_env: Callable[[str], dict[str, str]]) -> None:
    env = herald_env("duckdb")
    added = herald(env, "credits", "add", CLINIC, "500", "--note", "INV-1001")
    assert added.returncode == 0, added.stderr
    assert f"added 500 credits to {CLINIC}: balance 500" in added.stdout
    assert herald(env, "credits", "add", CLINIC, "12.5", "--note", "top-up").returncode == 0

    shown = herald(env, "credits", "balance", CLINIC)
    assert shown.returncode == 0, shown.stderr
    assert CLINIC in shown.stdout and "512.5" in shown.stdout and "12.5 on" in shown.stdout
    assert "no credits yet" in herald(env, "credits", "balance", "lakeside_realty").stdout

    refused = herald(env, "credits", "add", CLINIC, "0", "--note", "oops")
    assert refused.returncode == 1 and "a purchase must add credits (amount > 0), got 0" in refused.stderr
    not_a_number = herald(env, "credits", "add", CLINIC, "ten", "--note", "oops")
    assert not_a_number.returncode == 1 and "amount must be a number of credits, got 'ten'" in not_a_number.stderr
    unknown = herald(env, "credits", "add", "nobody", "5", "--note", "x")
    assert unknown.returncode == 1 and "unknown client 'nobody'" in unknown.stderr

    warehouse = Warehouse(Settings.from_env(env).warehouse)
    audited = rows(warehouse, "select actor, action, client_id, reason from herald_ops.audit_log order by occurred_at")
    assert audited == [(f"cli:{getpass.getuser()}", "credit_purchase", CLINIC, "INV-1001"),
                       (f"cli:{getpass.getuser()}", "credit_purchase", CLINIC, "top-up")]  # fmt: skip


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_a_paid_retry_an_unsubscribe_or_a_block_cancels_is_refunded_in_that_transaction(
    warehouse: Warehouse, deployment: Deployment
) -> None:
    """No delivery run needs to come by (messages_due_sensor starts one only when a message is due):
    the provider-event run or the block that cancels a message already paid for refunds it."""
    from herald.compliance.manual import Address, block
    from herald.events.apply import apply_provider_events
    from herald.events.landing import EVENTS_TABLE, ProviderEvent
    from herald.warehouse.schema import column_names

    buy(warehouse, CLINIC, "10")
    put(warehouse, sms("unsubscribed", client=CLINIC), sms("blocked", client=CLINIC))
    options = DeliveryOptions(max_attempts_per_run=1, initial_backoff_seconds=0.001, requeue_backoff_seconds=60)
    first = deliver_due(warehouse, {"sms": FlakySms(failures=1)}, now=NOW, options=options)
    assert (first.requeued, balance(warehouse, CLINIC)) == (2, 8)  # paid for, queued for their retry

    payload = {"client_id": CLINIC, "contact_id": "contact-unsubscribed", "channel": "sms", "scope": "all",
               "via": "page"}  # fmt: skip
    event = ProviderEvent("unsubscribe:tok-paid", "web", "unsubscribe", payload, NOW)
    with warehouse.session() as s:
        s.insert_rows(EVENTS_TABLE, column_names(EVENTS_TABLE), [event.row(NOW)])
        [result] = apply_provider_events(s, deployment, NOW + timedelta(minutes=1)).results
    assert (result.action, result.messages_cancelled) == ("unsubscribed", 1)
    assert balance(warehouse, CLINIC) == 9

    [(address,)] = rows(warehouse, "select to_address from herald_ops.outbox where message_key = 'blocked'")
    with warehouse.session() as s:
        assert block(s, CLINIC, Address("sms", address), "asked by phone", "support:test", NOW) == 1
    assert balance(warehouse, CLINIC) == 10
    assert [(k, m) for k, m, _ in ledger(warehouse)] == [
        ("debit", "blocked"), ("debit", "unsubscribed"), ("release", "blocked"), ("release", "unsubscribed"),
    ]  # fmt: skip
