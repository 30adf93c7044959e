"""Provider failover: the delivery engine driving the real Twilio and Resend SDKs against two local
emulators (tests/provider_emulator.py), one standing in for each account. The primary fails with
injected 5xx and timeouts; its circuit (herald_ops.provider_circuits) opens, the client's messages
go to the secondary under the same message key, a half-open probe closes the circuit once the
primary answers again, and every key is accepted exactly once across both providers. A message
whose outcome at the primary is unknown never reaches the secondary."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from herald.delivery.circuit import CIRCUITS, BreakerPolicy, CircuitBreakers
from herald.delivery.engine import HELD_TIMEOUT_REASON, DeliveryOptions, Failover, Route, deliver_due
from herald.delivery.outbox import ATTEMPTS, OUTBOX, OutboxMessage, enqueue
from herald.providers.base import OutboundMessage
from herald.providers.resend_email import ResendEmailProvider
from herald.providers.twilio_sms import TwilioSmsProvider
from herald.warehouse.connection import Warehouse
from tests.conftest import ENGINES
from tests.provider_emulator import ProviderEmulator, delay, twilio_error

SID1, TOKEN1, KEY1 = "ACprimary001", "primary-token", "re_primary_key"
SID2, TOKEN2, KEY2 = "ACsecondary02", "secondary-token", "re_secondary_key"
NOW = datetime(2026, 11, 23, 15, 0)
OPTIONS = DeliveryOptions(max_attempts_per_run=3, initial_backoff_seconds=0.001, max_backoff_seconds=0.02)
SECONDARY_FROM = "+15550000099"
FIVE_HUNDRED = twilio_error(500, 20500, "Internal Server Error")


@pytest.fixture(scope="module")
def emulators() -> Iterator[tuple[ProviderEmulator, ProviderEmulator]]:
    with (
        ProviderEmulator(twilio_accounts={SID1: TOKEN1}, resend_api_key=KEY1) as first,
        ProviderEmulator(twilio_accounts={SID2: TOKEN2}, resend_api_key=KEY2) as second,
    ):
        yield first, second


@pytest.fixture
def fresh(emulators: tuple[ProviderEmulator, ProviderEmulator]) -> tuple[ProviderEmulator, ProviderEmulator]:
    for emulator in emulators:
        emulator.reset()
    return emulators


def twilio_pair(primary: ProviderEmulator, secondary: ProviderEmulator) -> tuple[TwilioSmsProvider, TwilioSmsProvider]:
    first = TwilioSmsProvider(SID1, TOKEN1, base_url=primary.url, timeout=0.5)
    second = TwilioSmsProvider(SID2, TOKEN2, base_url=secondary.url, timeout=0.5)
    second.name = "twilio_secondary"
    return first, second


def failover(warehouse: Warehouse, routes: dict, threshold: int, cooldown: float = 60.0) -> Failover:
    breakers = CircuitBreakers(warehouse, BreakerPolicy(threshold, cooldown))
    return Failover(routes, breakers)


def message(key: str, channel: str, to: str, client: str = "acme") -> OutboxMessage:
    email = channel == "email"
    return OutboxMessage(
        message_key=key, client_id=client, campaign="welcome", step="hello", variant="a",
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


def history(warehouse: Warehouse) -> dict[str, list[tuple]]:
    found: dict[str, list[tuple]] = {}
    for key, number, outcome, provider, code in rows(
        warehouse,
        f"select message_key, attempt_number, outcome, provider, error_code from {ATTEMPTS} "
        "order by message_key, started_at, attempt_number, outcome desc",
    ):
        found.setdefault(key, []).append((number, outcome, provider, code))
    return found


def circuit(warehouse: Warehouse, provider: str) -> tuple:
    return rows(warehouse, f"select state, consecutive_failures from {CIRCUITS} where provider = '{provider}'")[0]


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_breaker_opens_and_the_rest_goes_to_the_secondary(warehouse: Warehouse, fresh) -> None:
    primary_api, secondary_api = fresh
    numbers = {f"m{i:02d}": f"+1555123{i:04d}" for i in range(1, 11)}
    put(warehouse, *(message(key, "sms", to) for key, to in numbers.items()))
    primary_api.script(*[FIVE_HUNDRED] * 20)  # the primary is down for as long as it is asked
    primary, secondary = twilio_pair(primary_api, secondary_api)
    plan = failover(warehouse, {("acme", "sms"): Route(primary, secondary, SECONDARY_FROM)}, threshold=4)

    report = deliver_due(warehouse, {"sms": primary}, now=NOW, options=OPTIONS, failover=plan)

    # m01: three 500s (the run's quick retries), requeued; m02's first 500 is the fourth in a row:
    # the circuit opens and m02's retry, and every later message, go to the secondary.
    assert primary_api.request_count == 4 and primary_api.sms_sent == []
    assert (report.sent, report.requeued, report.failed_over) == (9, 1, 9)
    assert report.sent_by_provider == Counter({"twilio_secondary": 9})
    assert len(report.circuit_events) == 1 and "opened after 4 consecutive transient errors" in report.circuit_events[0]
    assert "+1555" not in report.circuit_events[0]  # no address in the log line
    assert circuit(warehouse, "twilio") == ("open", 4)
    h = history(warehouse)
    assert h["m01"] == [(n, "transient_error", "twilio", "20500") for n in (1, 2, 3)]
    assert h["m02"] == [(1, "transient_error", "twilio", "20500"), (2, "sent", "twilio_secondary", None)]
    assert all(h[k] == [(1, "sent", "twilio_secondary", None)] for k in numbers if k not in ("m01", "m02"))

    # the requeued message falls due later: the circuit is still open, so the secondary sends it
    later = deliver_due(warehouse, {"sms": primary}, now=NOW + timedelta(hours=1), options=OPTIONS, failover=plan)
    assert (later.sent, later.failed_over) == (1, 1)
    assert h["m01"] + [(4, "sent", "twilio_secondary", None)] == history(warehouse)["m01"]
    assert rows(warehouse, f"select status, provider, count(*) from {OUTBOX} group by 1, 2") == [
        ("sent", "twilio_secondary", 10)
    ]
    # each key accepted exactly once overall, from the secondary's own number
    assert Counter(m["To"] for m in secondary_api.sms_sent) == Counter(numbers.values())
    assert {m["From"] for m in secondary_api.sms_sent} == {SECONDARY_FROM}
    ids = {r[0] for r in rows(warehouse, f"select provider_message_id from {OUTBOX}")}
    assert ids == {m["sid"] for m in secondary_api.sms_sent}
    assert deliver_due(warehouse, {"sms": primary}, now=NOW, options=OPTIONS, failover=plan).claimed == 0


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_half_open_probe_reopens_then_closes_once_the_primary_recovers(warehouse: Warehouse, fresh) -> None:
    primary_api, secondary_api = fresh
    primary, secondary = twilio_pair(primary_api, secondary_api)
    plan = failover(warehouse, {("acme", "sms"): Route(primary, secondary)}, threshold=2, cooldown=1.5)

    def send(*keys: str) -> object:
        put(warehouse, *(message(k, "sms", f"+1555777{i:04d}") for i, k in enumerate(keys, start=len(sent_keys))))
        sent_keys.extend(keys)
        return deliver_due(warehouse, {"sms": primary}, now=NOW, options=OPTIONS, failover=plan)

    sent_keys: list[str] = []
    primary_api.script(FIVE_HUNDRED, FIVE_HUNDRED)
    first = send("a1", "a2")  # a1: 500, 500 → open → its third call goes to the secondary
    assert (first.sent, first.failed_over) == (2, 2) and circuit(warehouse, "twilio")[0] == "open"

    time.sleep(1.6)  # the cool-down ends: the next call is the probe, and it fails
    primary_api.script(FIVE_HUNDRED)
    second = send("b1", "b2")
    assert (second.sent, second.failed_over) == (2, 2), history(warehouse)
    assert any("half open" in e for e in second.circuit_events)
    assert any("reopened: the probe failed" in e for e in second.circuit_events)
    assert circuit(warehouse, "twilio")[0] == "open"

    time.sleep(1.6)  # the primary has recovered: the probe succeeds and closes the circuit
    third = send("c1", "c2", "c3")
    assert (third.sent, third.failed_over) == (3, 0)
    assert third.circuit_events[-1] == "circuit of provider twilio closed: the probe succeeded"
    assert circuit(warehouse, "twilio") == ("closed", 0)

    h = history(warehouse)
    assert h["a1"] == [
        (1, "transient_error", "twilio", "20500"),
        (2, "transient_error", "twilio", "20500"),
        (3, "sent", "twilio_secondary", None),
    ]
    assert h["b1"] == [(1, "transient_error", "twilio", "20500"), (2, "sent", "twilio_secondary", None)]
    assert [h[k] for k in ("c1", "c2", "c3")] == [[(1, "sent", "twilio", None)]] * 3
    # exactly once across the two accounts
    accepted = Counter(m["Body"] for m in [*primary_api.sms_sent, *secondary_api.sms_sent])
    assert accepted == Counter(f"Hello {k}" for k in sent_keys)
    assert {m["Body"] for m in primary_api.sms_sent} == {"Hello c1", "Hello c2", "Hello c3"}


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_an_unknown_outcome_at_the_primary_is_never_sent_through_the_secondary(warehouse: Warehouse, fresh) -> None:
    primary_api, secondary_api = fresh
    primary, secondary = twilio_pair(primary_api, secondary_api)
    resend = ResendEmailProvider(KEY1, base_url=primary_api.url, timeout=0.5)
    resend_2 = ResendEmailProvider(KEY2, base_url=secondary_api.url, timeout=0.5)
    resend_2.name = "resend_secondary"
    routes = {("acme", "sms"): Route(primary, secondary), ("acme", "email"): Route(resend, resend_2)}
    plan = failover(warehouse, routes, threshold=1)  # one timeout opens a circuit
    put(
        warehouse,
        message("sms-a-timeout", "sms", "+15551110001"),
        message("sms-b-next", "sms", "+15551110002"),
        message("mail-1", "email", "ada@example.com"),
        message("mail-2", "email", "grace@example.com"),
    )
    # the primary accepts both the SMS and the email batch, too late for the client's timeout
    primary_api.script(delay(1.0), delay(1.0))
    once = DeliveryOptions(max_attempts_per_run=1, initial_backoff_seconds=0.001, max_backoff_seconds=0.02)
    sending = {"sms": primary, "email": resend}

    report = deliver_due(warehouse, sending, now=NOW, options=once, failover=plan)

    status = dict(rows(warehouse, f"select message_key, status from {OUTBOX}"))
    assert status == {"sms-a-timeout": "held", "sms-b-next": "sent", "mail-1": "queued", "mail-2": "queued"}
    assert rows(warehouse, f"select status_reason from {OUTBOX} where message_key = 'sms-a-timeout'") == [
        (HELD_TIMEOUT_REASON,)
    ]
    assert (report.held, report.failed_over) == (1, 1)  # sms-b-next went to the secondary: the circuit opened
    h = history(warehouse)
    assert h["sms-a-timeout"] == [
        (1, "transient_error", "twilio", None),
        (1, "held_unknown", "twilio", "outcome_unknown"),
    ]
    assert h["mail-1"] == [(1, "transient_error", "resend", "timeout")]

    # Later, both circuits still open: the requeued emails go back to Resend's first account under
    # the same idempotency key (which drops the duplicate), never to the second account.
    again = deliver_due(warehouse, sending, now=NOW + timedelta(hours=1), options=once, failover=plan)
    primary_api.wait_idle()
    assert (again.sent, again.failed_over, again.claimed) == (2, 0, 2)
    assert circuit(warehouse, "resend")[0] == "open"
    assert history(warehouse)["mail-2"][-1] == (2, "sent", "resend", None)
    assert Counter(e["to"][0] for e in primary_api.emails_sent) == Counter(
        {"ada@example.com": 1, "grace@example.com": 1}
    )
    assert secondary_api.emails_sent == []
    # the SMS whose outcome was unknown reached the primary once and never the secondary
    assert [m["To"] for m in primary_api.sms_sent] == ["+15551110001"]
    assert [m["To"] for m in secondary_api.sms_sent] == ["+15551110002"]


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_without_a_secondary_delivery_is_as_before(warehouse: Warehouse, fresh) -> None:
    """A client without a route of its own never fails over and never touches a circuit, even
    beside a client that has one."""
    primary_api, secondary_api = fresh
    primary, secondary = twilio_pair(primary_api, secondary_api)
    plan = failover(warehouse, {("acme", "sms"): Route(primary, secondary)}, threshold=1)
    put(warehouse, *(message(f"p{i}", "sms", f"+1555222000{i}", client="plain") for i in range(3)))
    primary_api.script(*[FIVE_HUNDRED] * 9)

    report = deliver_due(warehouse, {"sms": primary}, now=NOW, options=OPTIONS, failover=plan)

    assert (report.sent, report.requeued, report.failed_over) == (0, 3, 0)
    assert primary_api.request_count == 9 and secondary_api.request_count == 0
    assert rows(warehouse, f"select count(*) from {CIRCUITS}") == [(0,)]
    assert all(
        steps == [(n, "transient_error", "twilio", "20500") for n in (1, 2, 3)] for steps in history(warehouse).values()
    )
    later = deliver_due(warehouse, {"sms": primary}, now=NOW + timedelta(hours=1), options=OPTIONS, failover=plan)
    assert later.sent == 3 and Counter(m["To"] for m in primary_api.sms_sent) == Counter(
        f"+1555222000{i}" for i in range(3)
    )


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_a_crashed_run_is_settled_by_asking_both_providers(warehouse: Warehouse, fresh) -> None:
    primary_api, secondary_api = fresh
    primary, secondary = twilio_pair(primary_api, secondary_api)
    plan = failover(warehouse, {("acme", "sms"): Route(primary, secondary)}, threshold=5)
    put(warehouse, message("crash-secondary", "sms", "+15553330001"), message("crash-nowhere", "sms", "+15553330002"))
    # a dead run had failed over and handed one message to the secondary before dying
    accepted = secondary.send(
        OutboundMessage("crash-secondary", "sms", "+15553330001", sender="+15550000000", body="Hello crash-secondary")
    )
    with warehouse.session() as s:
        s.execute(
            f"update {OUTBOX} set status = 'sending', claim_token = 'dead-run', claimed_at = ?, attempts = 1",
            [datetime.now() - timedelta(hours=1)],  # older than the lease
        )

    report = deliver_due(warehouse, {"sms": primary}, options=OPTIONS, failover=plan)

    assert (report.reconciled_sent, report.held, report.sent) == (1, 1, 0)
    assert rows(warehouse, f"select message_key, status, provider, provider_message_id from {OUTBOX} order by 1") == [
        ("crash-nowhere", "held", None, None),
        ("crash-secondary", "sent", "twilio_secondary", accepted.provider_message_id),
    ]
    assert len(secondary_api.sms_sent) == 1 and primary_api.sms_sent == []  # nothing resent


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_circuits_are_shared_by_workers(warehouse: Warehouse) -> None:
    """Two workers' breakers over one warehouse: failures add up, one worker's opening is the
    other's, and only one of them gets the half-open probe."""
    policy = BreakerPolicy(failure_threshold=2, cooldown_seconds=1.0)
    one, two = (CircuitBreakers(warehouse, policy, refresh_seconds=0.0) for _ in range(2))
    assert one.route("twilio") == ("primary", None)
    one.failure("twilio", "500")
    two.failure("twilio", "503")  # the second in a row, from another worker: open
    assert one.route("twilio") == ("secondary", None) and two.route("twilio") == ("secondary", None)
    assert circuit(warehouse, "twilio") == ("open", 2)
    time.sleep(1.1)
    first, second = one.route("twilio"), two.route("twilio")
    assert first[0] == "probe" and second == ("secondary", None)
    two.success("twilio")  # a late answer from an ordinary call does not close it
    assert circuit(warehouse, "twilio")[0] == "half_open"
    one.success("twilio", first[1])
    assert circuit(warehouse, "twilio") == ("closed", 0) and two.route("twilio") == ("primary", None)
