"""messages_due_sensor on both engines, on the controlled clock (HERALD_CLOCK_OFFSET): nothing is
requested while nothing is due (the skip says when the next message is); a deferred message is
requested by the first evaluation after its time, once (the run key names what is due); a retry
waits for its backoff; a message a dead run left in `sending` is requested once its lease is over;
an embedded warehouse is not opened while a run executes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import dagster as dg
import pytest
from dagster._core.storage.dagster_run import DagsterRun  # no public way to record a run in a given state

from herald.clock import realnow, utcnow
from herald.delivery.engine import DeliveryOptions, deliver_due
from herald.delivery.outbox import OUTBOX, OutboxMessage, enqueue
from herald.providers.sandbox import SandboxSmsProvider
from herald.settings import Settings
from herald.warehouse.connection import Warehouse
from resources import HeraldSettingsResource, WarehouseResource
from sensors.messages_due import messages_due_sensor
from tests.conftest import ENGINES

CLIENT = "bright_smiles_dental"
LEASE = DeliveryOptions().lease_seconds


@pytest.fixture
def deployment_env(
    request: pytest.FixtureRequest, herald_env: Callable[[str], dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Warehouse]:
    """HERALD_* set for the sensor's resources, on the engine of the test; the warehouse."""
    env = herald_env(request.param)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("HERALD_CLOCK_OFFSET", raising=False)
    warehouse = Warehouse(Settings.from_env(env).warehouse)
    warehouse.ensure_schema()
    yield warehouse


def clock_at(monkeypatch: pytest.MonkeyPatch, at: datetime) -> None:
    """Moves the business clock so that it reads ``at`` (naive UTC) now."""
    monkeypatch.setenv("HERALD_CLOCK_OFFSET", str((at - realnow()).total_seconds()))


def evaluate(instance: dg.DagsterInstance) -> dg.RunRequest | dg.SkipReason:
    context = dg.build_sensor_context(
        instance=instance, resources={"herald_settings": HeraldSettingsResource(), "warehouse": WarehouseResource()}
    )
    return messages_due_sensor(context)


def message(key: str, send_after: datetime, address: str = "+15125550142") -> OutboxMessage:
    return OutboxMessage(
        message_key=key, client_id=CLIENT, campaign="appointment_reminder", step="reminder", variant="",
        occurrence="o1", contact_id="c1", message_type="appointment_reminder", category="transactional",
        channel="sms", to_address=address, sender="+15125550100", send_after=send_after, body_text="See you",
    )  # fmt: skip


def status(warehouse: Warehouse, key: str) -> str:
    with warehouse.session(read_only=True) as s:
        return s.scalar(f"select status from {OUTBOX} where message_key = ?", [key])


@pytest.mark.parametrize("deployment_env", ENGINES, indirect=True)
def test_a_deferred_message_is_requested_by_the_first_evaluation_after_its_time(
    deployment_env: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = deployment_env
    instance = dg.DagsterInstance.ephemeral()
    empty = evaluate(instance)
    assert isinstance(empty, dg.SkipReason) and empty.skip_message == "no queued message in the outbox"

    window_opens = utcnow().replace(microsecond=0) + timedelta(hours=3)  # deferred to the recipient's window
    with warehouse.session() as s:
        enqueue(s, [message("deferred", window_opens)], utcnow())

    clock_at(monkeypatch, window_opens - timedelta(seconds=1))
    before = evaluate(instance)
    assert isinstance(before, dg.SkipReason)
    assert before.skip_message == f"no message due; the next one is due at {window_opens:%Y-%m-%d %H:%M:%S} UTC"

    clock_at(monkeypatch, window_opens + timedelta(seconds=1))
    request = evaluate(instance)
    assert isinstance(request, dg.RunRequest) and request.run_key.startswith(f"deliver:{window_opens.isoformat()}")
    assert request.tags["herald/messages_due"] == "1"
    assert evaluate(instance).run_key == request.run_key  # the same outbox: the same run, requested once

    # the run sends it; nothing is due any more
    deliver_due(warehouse, {"sms": SandboxSmsProvider()}, now=utcnow())
    assert status(warehouse, "deferred") == "sent"
    after = evaluate(instance)
    assert isinstance(after, dg.SkipReason) and after.skip_message == "no queued message in the outbox"


@pytest.mark.parametrize("deployment_env", ENGINES, indirect=True)
def test_a_retry_waits_for_its_backoff_and_a_stale_claim_for_its_lease(
    deployment_env: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = deployment_env
    instance = dg.DagsterInstance.ephemeral()
    now = utcnow().replace(microsecond=0)
    with warehouse.session() as s:
        enqueue(s, [message("retry", now - timedelta(minutes=5)), message("claimed", now - timedelta(minutes=5))], now)
        s.execute(f"update {OUTBOX} set next_attempt_at = ? where message_key = 'retry'", [now + timedelta(minutes=2)])
        s.execute(
            f"update {OUTBOX} set status = 'sending', claim_token = 't', claimed_at = ? where message_key = 'claimed'",
            [now - timedelta(seconds=60)],
        )
    clock_at(monkeypatch, now)
    waiting = evaluate(instance)
    assert isinstance(waiting, dg.SkipReason)
    assert f"due at {now + timedelta(minutes=2):%Y-%m-%d %H:%M:%S}" in (waiting.skip_message or "")

    clock_at(monkeypatch, now + timedelta(minutes=2, seconds=1))
    retry = evaluate(instance)
    assert isinstance(retry, dg.RunRequest) and retry.tags == {"herald/messages_due": "1", "herald/stale_claims": "0"}

    # the claim a dead run left: requested once its lease is over (the run reconciles it)
    clock_at(monkeypatch, now - timedelta(seconds=60) + timedelta(seconds=LEASE + 1))
    stale = evaluate(instance)
    assert isinstance(stale, dg.RunRequest) and stale.tags["herald/stale_claims"] == "1"
    assert stale.run_key != retry.run_key


def test_an_embedded_warehouse_is_not_opened_while_a_run_executes(
    monkeypatch: pytest.MonkeyPatch, herald_env: Callable[[str], dict[str, str]]
) -> None:
    for name, value in herald_env("duckdb").items():
        monkeypatch.setenv(name, value)
    warehouse = Warehouse(Settings.from_env().warehouse)
    warehouse.ensure_schema()
    with warehouse.session() as s:
        enqueue(s, [message("due", utcnow() - timedelta(minutes=1))], utcnow())
    instance = dg.DagsterInstance.ephemeral()
    instance.add_run(DagsterRun(job_name="transform_packets_job", run_id="a" * 36, status=dg.DagsterRunStatus.STARTED))
    busy = evaluate(instance)
    assert isinstance(busy, dg.SkipReason)
    assert busy.skip_message == (
        f"run {'a' * 36} (transform_packets_job) is executing and may hold the embedded warehouse: "
        "the outbox is read once no run is"
    )
    instance.report_run_failed(instance.get_run_by_id("a" * 36))
    assert isinstance(evaluate(instance), dg.RunRequest)
