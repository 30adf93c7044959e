"""STOP wins every race: a delivery run is sending a long batch through a
slow provider when one recipient's STOP reaches Herald — as a landed file (embedded mode, and
`herald inbound` on either engine) or as a herald_raw row (the PostgreSQL web service). No text
to that address starts after the STOP's arrival; everyone else's go out; the held-back messages
stay queued (not lost) until the STOP is applied, which then cancels them and confirms once."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from herald.clock import utcnow
from herald.compliance.inbound import apply_inbound
from herald.compliance.landing import InboundMessage, load_landed
from herald.config import Deployment
from herald.delivery.engine import STOP_PENDING_REASON, UNSUBSCRIBE_PENDING_REASON, DeliveryOptions, deliver_due
from herald.delivery.outbox import OUTBOX, OutboxMessage, enqueue
from herald.events.apply import apply_provider_events
from herald.events.landing import FileSink, ProviderEvent, TableSink, load_events
from herald.providers.base import OutboundMessage, SendResult
from herald.providers.sandbox import SandboxEmailProvider, SandboxSmsProvider
from herald.warehouse.connection import Warehouse

CLIENT = "bright_smiles_dental"
SENDER = "+15125550100"  # the client's sms_from: its STOP is applied for this client
ADDRESSES = [f"+1512555{2000 + i:04d}" for i in range(8)]
VICTIM = ADDRESSES[2]  # m02, m10, m18, m26, m34 in claim order
COUNT = 40
SLOW = 0.03  # seconds per provider call
OPTIONS = DeliveryOptions(
    batch_size=100, initial_backoff_seconds=0.001, max_backoff_seconds=0.01, rate_per_second={"sms": 10_000}
)
# (engine, how the STOP lands)
CASES = [("duckdb", "file"), ("postgres", "row"), ("postgres", "file")]


class _Slowed:
    """A sandbox provider, slowed down, noting when each call started (monotonic); while sending
    ``trigger`` it lets the opt-out land and waits until it has."""

    def __init__(self, trigger: str, land) -> None:
        super().__init__()
        self.trigger, self.land = trigger, land
        self.started: list[tuple[str, str, float]] = []
        self.arrived: float | None = None

    def send(self, message: OutboundMessage) -> SendResult:
        self.started.append((message.message_key, message.to, time.monotonic()))
        if message.message_key == self.trigger:
            thread = threading.Thread(target=self.land)
            thread.start()
            thread.join()
            self.arrived = time.monotonic()  # it has reached Herald (file renamed / row committed)
        time.sleep(SLOW)
        return super().send(message)  # type: ignore[misc]


class SlowSms(_Slowed, SandboxSmsProvider):
    pass


def _message(i: int, due: datetime) -> OutboxMessage:
    return OutboxMessage(
        message_key=f"m{i:02d}", client_id=CLIENT, campaign="recall", step="s1", variant="", occurrence="o1",
        contact_id=f"c{i % len(ADDRESSES)}", message_type="recall", category="marketing", channel="sms",
        to_address=ADDRESSES[i % len(ADDRESSES)], sender=SENDER, send_after=due, body_text=f"Recall {i}",
    )  # fmt: skip


def _setup(warehouse: Warehouse) -> None:
    due = utcnow() - timedelta(minutes=5)
    with warehouse.session() as s:
        enqueue(s, [_message(i, due) for i in range(COUNT)], due - timedelta(hours=1))


def _stop(warehouse: Warehouse, home: Path, route: str, inbound_id: str):
    def land() -> None:
        message = InboundMessage(inbound_id, VICTIM, SENDER, "Stop", utcnow(), provider="test")
        (FileSink(home) if route == "file" else TableSink(warehouse)).append_inbound(message)

    return land


def _statuses(warehouse: Warehouse) -> dict[str, tuple[str, str | None]]:
    with warehouse.session(read_only=True) as s:
        _, rows = s.query(f"select message_key, status, status_reason from {OUTBOX}")
    return {k: (status, reason) for k, status, reason in rows}


def _victim_keys() -> set[str]:
    return {f"m{i:02d}" for i in range(COUNT) if ADDRESSES[i % len(ADDRESSES)] == VICTIM}


@pytest.mark.parametrize(("warehouse", "route"), CASES, indirect=["warehouse"])
def test_a_stop_arriving_mid_batch_stops_the_rest_of_the_batch(
    warehouse: Warehouse, route: str, tmp_path: Path, deployment: Deployment
) -> None:
    home = tmp_path / "home"
    _setup(warehouse)
    # the STOP lands while m09 is with the provider; the very next call (m10) is to the victim
    sms = SlowSms("m09", _stop(warehouse, home, route, "SM-stop-race"))
    report = deliver_due(warehouse, {"sms": sms}, options=OPTIONS, inbound_home=home)

    assert sms.arrived is not None
    to_victim = [(key, at) for key, to, at in sms.started if to == VICTIM]
    assert [key for key, _ in to_victim] == ["m02"]  # sent before the STOP arrived
    assert all(at < sms.arrived for _, at in to_victim)
    statuses = _statuses(warehouse)
    held_back = _victim_keys() - {"m02"}
    assert {k for k, (status, _) in statuses.items() if status == "sent"} == {
        f"m{i:02d}" for i in range(COUNT)
    } - held_back
    # not lost: queued, with the reason, until the STOP is applied
    assert {k: statuses[k] for k in held_back} == dict.fromkeys(held_back, ("queued", STOP_PENDING_REASON))
    assert (report.sent, report.deferred) == (COUNT - len(held_back), len(held_back))

    # a second run before the STOP is applied sends nothing to the victim either
    again = SlowSms("none", lambda: None)
    deliver_due(warehouse, {"sms": again}, now=utcnow() + timedelta(minutes=5), options=OPTIONS, inbound_home=home)
    assert again.started == []

    # applying it cancels what was held back and queues the one confirmation, which goes out
    load_landed(warehouse, home)
    with warehouse.session() as s:
        [result] = apply_inbound(s, deployment, utcnow())
    assert result.action == "suppressed"
    statuses = _statuses(warehouse)
    assert {statuses[k][0] for k in held_back} == {"cancelled"}
    last = SlowSms("none", lambda: None)
    deliver_due(warehouse, {"sms": last}, now=utcnow() + timedelta(minutes=5), options=OPTIONS, inbound_home=home)
    assert [to for _, to, _ in last.started] == [VICTIM]  # the opt-out confirmation only
    assert statuses[result.reply_message_key][0] == "queued"


@pytest.mark.parametrize(("warehouse", "route"), CASES, indirect=["warehouse"])
def test_a_stop_landed_before_the_run_but_not_loaded_or_applied_holds_every_message(
    warehouse: Warehouse, route: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    _setup(warehouse)
    _stop(warehouse, home, route, "SM-stop-early")()
    # another address's START and a plain reply change nothing for anyone
    FileSink(home).append_inbound(InboundMessage("SM-other", ADDRESSES[0], SENDER, "see you then", utcnow()))
    sms = SlowSms("none", lambda: None)
    report = deliver_due(warehouse, {"sms": sms}, options=OPTIONS, inbound_home=home)
    assert VICTIM not in {to for _, to, _ in sms.started}
    assert len(sms.started) == COUNT - len(_victim_keys())
    assert report.deferred == len(_victim_keys())
    statuses = _statuses(warehouse)
    assert {statuses[k] for k in _victim_keys()} == {("queued", STOP_PENDING_REASON)}


def test_the_watch_reads_files_loaded_during_the_run_never_older_ones(tmp_path: Path) -> None:
    """A STOP loaded (perhaps applied) by another process between two looks is still seen
    through landing/inbound/loaded/; files loaded before the run are the warehouse's to tell
    (an old STOP may have been followed by a START)."""
    from herald.compliance.landing import inbound_dir
    from herald.compliance.stops import StopWatch

    home = tmp_path / "home"
    old = ADDRESSES[0]
    FileSink(home).append_inbound(InboundMessage("SM-old", old, SENDER, "STOP", utcnow()))
    folder = inbound_dir(home)
    (folder / "loaded").mkdir(parents=True)
    for path in folder.glob("*.jsonl"):
        path.rename(folder / "loaded" / path.name)
    watch = StopWatch(home)
    assert watch.scan(None) == set()
    FileSink(home).append_inbound(InboundMessage("SM-new", VICTIM, SENDER, "stop texting me", utcnow()))
    FileSink(home).append_inbound(InboundMessage("SM-help", ADDRESSES[1], SENDER, "HELP", utcnow()))
    for path in folder.glob("*.jsonl"):  # loaded before the watch looks again
        path.rename(folder / "loaded" / path.name)
    assert watch.scan(None) == {VICTIM}
    assert watch.covers([VICTIM, old, ADDRESSES[1]]) == {VICTIM}


# --- an email unsubscribe (the page or the one-click header) wins the same race ------------------

EMAILS = [f"patient{i}@example.com" for i in range(len(ADDRESSES))]
UNSUBSCRIBER = "c2"  # its emails e02, e10, e18, e26, e34 in claim order


class SlowEmail(_Slowed, SandboxEmailProvider):
    pass


def _email(i: int, due: datetime) -> OutboxMessage:
    n = i % len(EMAILS)
    return OutboxMessage(
        message_key=f"e{i:02d}", client_id=CLIENT, campaign="newsletter", step="s1", variant="", occurrence="o1",
        contact_id=f"c{n}", message_type="newsletter", category="marketing", channel="email",
        to_address=EMAILS[n], sender="Bright Smiles <hello@brightsmiles.example>", send_after=due,
        subject=f"News {i}", body_text=f"News {i}", body_html=f"<p>News {i}</p>",
    )  # fmt: skip


def _unsubscribe(warehouse: Warehouse, home: Path, route: str):
    def land() -> None:
        event = ProviderEvent(
            event_id="unsubscribe:race", source="web", kind="unsubscribe", received_at=utcnow(),
            payload={"client_id": CLIENT, "contact_id": UNSUBSCRIBER, "channel": "email", "scope": "all",
                     "via": "one-click"},
        )  # fmt: skip
        (FileSink(home) if route == "file" else TableSink(warehouse)).append(event)

    return land


@pytest.mark.parametrize(("warehouse", "route"), CASES, indirect=["warehouse"])
def test_an_email_unsubscribe_arriving_mid_batch_stops_that_contacts_emails(
    warehouse: Warehouse, route: str, tmp_path: Path, deployment: Deployment
) -> None:
    home = tmp_path / "home"
    due = utcnow() - timedelta(minutes=5)
    with warehouse.session() as s:
        enqueue(s, [_email(i, due) for i in range(COUNT)], due - timedelta(hours=1))
    email = SlowEmail("e09", _unsubscribe(warehouse, home, route))
    options = replace(OPTIONS, rate_per_second={"email": 10_000})
    report = deliver_due(warehouse, {"email": email}, options=options, inbound_home=home)

    assert email.arrived is not None
    theirs = {f"e{i:02d}" for i in range(COUNT) if f"c{i % len(EMAILS)}" == UNSUBSCRIBER}
    started = [(key, at) for key, to, at in email.started if to == EMAILS[2]]
    assert [key for key, _ in started] == ["e02"]  # the one before the unsubscribe arrived
    assert all(at < email.arrived for _, at in started)
    statuses = _statuses(warehouse)
    held_back = theirs - {"e02"}
    assert {k: statuses[k] for k in held_back} == dict.fromkeys(held_back, ("queued", UNSUBSCRIBE_PENDING_REASON))
    assert {k for k, (status, _) in statuses.items() if status == "sent"} == {
        f"e{i:02d}" for i in range(COUNT)
    } - held_back
    assert (report.sent, report.deferred) == (COUNT - len(held_back), len(held_back))

    # applied: the held-back emails are cancelled, the address suppressed; nothing more goes to it
    if route == "file":
        load_events(warehouse, home)
    with warehouse.session() as s:
        applied = apply_provider_events(s, deployment, utcnow())
    assert applied is not None
    statuses = _statuses(warehouse)
    assert {statuses[k][0] for k in held_back} == {"cancelled"}
    last = SlowEmail("none", lambda: None)
    deliver_due(warehouse, {"email": last}, now=utcnow() + timedelta(minutes=5), options=options, inbound_home=home)
    assert last.started == []
