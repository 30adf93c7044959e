"""The polling fallback against the local Twilio emulator through the real SDK: inbound replies
and status changes are found, the cursor advances, nothing is reported twice; the sensor lands
what it found (files in embedded mode, the landing tables on PostgreSQL) and requests the apply
jobs, and applying the landed statuses updates the outbox."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import dagster as dg
import pytest

from herald.compliance.landing import pending_files
from herald.config import Deployment
from herald.delivery.outbox import OUTBOX, OutboxMessage, enqueue
from herald.events.apply import apply_provider_events
from herald.events.landing import load_events, pending_event_files
from herald.events.polling import AccountCursors, PollCursor, poll_twilio, twilio_client_from_env
from herald.settings import Settings
from herald.warehouse.connection import Warehouse
from resources import HeraldSettingsResource
from sensors.twilio_polling import build_twilio_polling_sensor
from tests.conftest import ENGINES
from tests.provider_emulator import ProviderEmulator

SID, TOKEN = "ACpoll", "poll-token"
SENDER, ANN, BOB = "+15125550100", "+15125550142", "+15125550143"


@pytest.fixture
def emulator() -> Iterator[ProviderEmulator]:
    with ProviderEmulator(twilio_accounts={SID: TOKEN}) as running:
        yield running


def twilio_env(emulator: ProviderEmulator) -> dict[str, str]:
    return {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN, "HERALD_TWILIO_BASE_URL": emulator.url}


def send(emulator: ProviderEmulator, to: str, body: str) -> str:
    client = twilio_client_from_env(twilio_env(emulator))
    return client.messages.create(to=to, from_=SENDER, body=body).sid


def test_polling_finds_replies_and_status_changes_once(emulator: ProviderEmulator) -> None:
    client = twilio_client_from_env(twilio_env(emulator))
    to_ann, to_bob = send(emulator, ANN, "Reminder for Ann"), send(emulator, BOB, "Reminder for Bob")
    reply = emulator.receive_sms(ANN, SENDER, "C")

    inbound, events, cursor = poll_twilio(client, None)
    assert [(m.inbound_id, m.from_address, m.to_address, m.body, m.provider) for m in inbound] == [
        (reply, ANN, SENDER, "C", "twilio")
    ]
    assert sorted(e.event_id for e in events) == sorted([f"{to_ann}:sent", f"{to_bob}:sent"])
    assert {e.kind for e in events} == {"sms_status"} and {e.source for e in events} == {"twilio"}
    assert {e.provider_message_id for e in events} == {to_ann, to_bob}
    assert cursor.date_sent is not None and cursor.date_sent > datetime.utcnow() - timedelta(minutes=5)

    # nothing new: nothing reported, the cursor survives a round trip through JSON
    cursor = PollCursor.from_json(cursor.to_json())
    assert poll_twilio(client, cursor)[:2] == ([], [])

    # the carrier's receipts arrive: one delivered, one undelivered with its error code
    emulator.set_sms_status(to_ann, "delivered")
    emulator.set_sms_status(to_bob, "undelivered", 30003)
    _, events, cursor = poll_twilio(client, cursor)
    assert sorted((e.event_id, e.payload["MessageStatus"], e.payload.get("ErrorCode")) for e in events) == sorted([
        (f"{to_ann}:delivered", "delivered", None), (f"{to_bob}:undelivered", "undelivered", "30003"),
    ])  # fmt: skip
    assert poll_twilio(client, cursor)[:2] == ([], [])

    # a later message moves the watermark forward
    before = cursor.date_sent
    later = send(emulator, ANN, "Another one")
    _, events, cursor = poll_twilio(client, cursor)
    assert [e.event_id for e in events] == [f"{later}:sent"] and cursor.date_sent >= before


@pytest.fixture
def polling_env(
    request: pytest.FixtureRequest, herald_env: Callable[[str], dict[str, str]], emulator: ProviderEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> Settings:  # fmt: skip
    env = {**herald_env(request.param), **twilio_env(emulator)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    Warehouse(settings.warehouse).ensure_schema()
    return settings


@pytest.mark.parametrize("polling_env", ENGINES, indirect=True)
def test_the_sensor_lands_what_it_found_and_requests_the_apply_jobs(
    polling_env: Settings, emulator: ProviderEmulator, deployment: Deployment
) -> None:
    settings, wh = polling_env, Warehouse(polling_env.warehouse)
    sid = send(emulator, ANN, "Reminder for Ann")
    with wh.session() as s:  # the outbox message Twilio accepted
        enqueue(s, [OutboxMessage(
            message_key="m-ann", client_id="bright_smiles_dental", campaign="reminders", step="day_before",
            variant="a", occurrence="o1", contact_id="c-ann", message_type="appointment_reminder",
            category="transactional", channel="sms", to_address=ANN, sender=SENDER,
            send_after=datetime(2026, 1, 1), body_text="Reminder for Ann",
        )], datetime(2026, 1, 1))  # fmt: skip
        s.execute(f"update {OUTBOX} set status = 'sent', provider = 'twilio', provider_message_id = ? "
                  "where message_key = 'm-ann'", [sid])  # fmt: skip
    emulator.set_sms_status(sid, "delivered")
    emulator.receive_sms(ANN, SENDER, "thanks!")

    # the sensor as the definitions build it, with the two jobs it requests (by name)
    twilio_polling_sensor = build_twilio_polling_sensor(
        dg.define_asset_job("apply_provider_events_job"), dg.define_asset_job("apply_replies_job")
    )
    resources = {"herald_settings": HeraldSettingsResource()}
    context = dg.build_sensor_context(resources=resources)
    requests = twilio_polling_sensor(context)
    assert sorted(r.job_name for r in requests) == ["apply_provider_events_job", "apply_replies_job"]
    assert context.cursor and AccountCursors.from_json(context.cursor).get("twilio").date_sent is not None
    assert list(AccountCursors.from_json(context.cursor).accounts) == ["twilio"]  # no second account set
    if settings.warehouse.engine == "duckdb":  # landed as files, never into the warehouse's tables
        assert len(pending_event_files(settings.home)) == 1 and len(pending_files(settings.home)) == 1
        assert load_events(wh, settings.home) == 1
    with wh.session(read_only=True) as s:
        assert s.scalar("select count(*) from herald_raw.provider_events") == 1
    with wh.session() as s:
        [result] = apply_provider_events(s, deployment, datetime.utcnow()).results
    assert (result.action, result.message_key) == ("status_updated", "m-ann")
    with wh.session(read_only=True) as s:
        assert s.scalar(f"select provider_status from {OUTBOX} where message_key = 'm-ann'") == "delivered"

    # the next tick: nothing new
    skipped = twilio_polling_sensor(dg.build_sensor_context(cursor=context.cursor, resources=resources))
    assert isinstance(skipped, dg.SkipReason) and "no new replies or status changes" in (skipped.skip_message or "")
