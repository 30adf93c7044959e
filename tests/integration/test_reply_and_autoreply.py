"""Manual replies (`herald reply`, herald/conversations/reply.py) and the after-hours
auto-responder (herald/conversations/autoresponder.py, hooked into apply_inbound), on both
engines: what is queued, when it may go out, what is refused and why, that a double submit or a
second text in the same night sends once, and that delivery sends exactly the text."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

import pytest

from herald.compliance.inbound import apply_inbound
from herald.config import Deployment
from herald.config.models import SendWindow
from herald.conversations.autoresponder import auto_reply_hours, closed_period_start
from herald.conversations.reply import ReplyError, enqueue_reply, queue_reply
from herald.delivery.engine import DeliveryOptions, deliver_due
from herald.delivery.outbox import OUTBOX, SUPPRESSIONS
from herald.providers.sandbox import SandboxEmailProvider, SandboxSmsProvider
from herald.warehouse.connection import Warehouse
from herald.warehouse.schema import column_names
from tests.conftest import ENGINES

CLIENT = "bright_smiles_dental"  # America/Chicago; auto_reply open 08:00-17:00, Sundays 12:00-17:00
SENDER = "+15125550100"
ACTOR = "cli:alice"
ANN, BOB, CY, FLO, DAN = "+15125550142", "+15125550143", "+15125550144", "+13055550100", "+15125550145"
CONTACT_COLUMNS = ["contact_id", "client_id", "phone_e164", "is_phone_valid", "time_zone", "postal_code"]
CONTACTS = [
    ("c-ann", CLIENT, ANN, True, None, None),  # Austin area code: Chicago time, Texas law
    ("c-bob", CLIENT, BOB, True, None, None),  # opted out of reminders
    ("c-cy", CLIENT, CY, True, None, None),  # blocked by support
    ("c-flo", CLIENT, FLO, True, None, "33101"),  # Miami: New York time, Florida law
    ("c-nophone", CLIENT, "+1512", False, None, None),
    ("c-dan", CLIENT, DAN, True, None, None),
]
MONDAY_10AM = datetime(2026, 11, 23, 16, 0)  # 10:00 CST
FAST = DeliveryOptions(batch_size=50, initial_backoff_seconds=0.001, max_backoff_seconds=0.01)
TEXT = "Hi Ann, we moved your visit to Friday 3pm. See you then!"


@pytest.fixture
def wh(warehouse: Warehouse) -> Warehouse:
    with warehouse.session() as s:
        s.execute(
            "create table marts.contacts (contact_id varchar primary key, client_id varchar not null, "
            "phone_e164 varchar, is_phone_valid boolean, time_zone varchar, postal_code varchar)"
        )
        s.insert_rows("marts.contacts", CONTACT_COLUMNS, CONTACTS)
        s.insert_rows(SUPPRESSIONS, column_names(SUPPRESSIONS), [
            (CLIENT, "sms", BOB, "appointment_reminder", "opt_out", "sms_keyword", "STOP", "c-bob", MONDAY_10AM),
            (CLIENT, "sms", CY, "all", "manual_block", "manual", "asked by phone", None, MONDAY_10AM),
        ])  # fmt: skip
    return warehouse


def rows(warehouse: Warehouse, sql: str, params: list | None = None) -> list[tuple]:
    with warehouse.session(read_only=True) as s:
        return s.query(sql, params)[1]


def deliver(warehouse: Warehouse, now: datetime) -> list:
    sms = SandboxSmsProvider()
    deliver_due(warehouse, {"sms": sms, "email": SandboxEmailProvider()}, now=now, options=FAST)
    return sms.sent


def manual(wh: Warehouse, deployment: Deployment, contact: str, text: str = TEXT, now: datetime = MONDAY_10AM):
    with wh.session() as s:
        return queue_reply(s, deployment, CLIENT, contact, text, ACTOR, now)


# --- herald reply ------------------------------------------------------------------------------


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_a_manual_reply_goes_through_the_outbox_audited_and_is_sent_as_typed(
    wh: Warehouse, deployment: Deployment
) -> None:
    with wh.session() as s:
        message = enqueue_reply(s, deployment, CLIENT, "c-ann", TEXT, ACTOR, MONDAY_10AM)
    key = hashlib.md5(f"manual|{CLIENT}|c-ann|{TEXT}|2026-11-23T16:00".encode()).hexdigest()
    assert message.message_key == key
    assert rows(wh, f"select campaign, step, variant, occurrence, contact_id, message_type, category, channel, to_address, "
                    f"sender, body_text, send_after, status from {OUTBOX}") == [
        ("_manual", "reply", "", "2026-11-23T16:00", "c-ann", "conversation_reply", "transactional", "sms", ANN, SENDER,
         TEXT, MONDAY_10AM, "queued"),
    ]  # fmt: skip
    [(actor, action, client_id, contact_id, subject, detail)] = rows(
        wh, "select actor, action, client_id, contact_id, subject, detail from herald_ops.audit_log"
    )
    assert (actor, action, client_id, contact_id, subject) == (ACTOR, "send", CLIENT, "c-ann", "+1•••••••142")
    assert json.loads(detail)["message_key"] == key and ANN not in detail
    # sent exactly as typed: no "Reply STOP" line in a conversation
    [sent] = deliver(wh, MONDAY_10AM + timedelta(minutes=1))
    assert (sent.message_key, sent.to, sent.sender, sent.body) == (key, ANN, SENDER, TEXT)


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_a_double_submit_sends_once_and_the_phone_finds_the_contact(wh: Warehouse, deployment: Deployment) -> None:
    first, new = manual(wh, deployment, "c-ann")
    again, again_new = manual(wh, deployment, "(512) 555-0142", now=MONDAY_10AM + timedelta(seconds=40))
    assert new and not again_new and again.message_key == first.message_key
    later, later_new = manual(wh, deployment, "c-ann", now=MONDAY_10AM + timedelta(minutes=1))
    assert later_new and later.message_key != first.message_key
    assert rows(wh, f"select count(*) from {OUTBOX}") == [(2,)]
    assert rows(wh, "select count(*) from herald_ops.audit_log where action = 'send'") == [(2,)]


@pytest.mark.parametrize(
    ("contact", "now", "expected"),
    [
        # 20:30 CST on Monday: the safe default window (9-20) opens at 9:00 CST on Tuesday
        ("c-ann", datetime(2026, 11, 24, 2, 30), datetime(2026, 11, 24, 15, 0)),
        # 20:15 EST in Miami: Florida's law and the safe default, 9:00 EST
        ("c-flo", datetime(2026, 11, 24, 1, 15), datetime(2026, 11, 24, 14, 0)),
        # Sunday 10:00 CST in Texas: noon
        ("c-ann", datetime(2026, 11, 22, 16, 0), datetime(2026, 11, 22, 18, 0)),
    ],
)
def test_a_reply_outside_the_window_waits_for_the_next_allowed_moment(
    wh: Warehouse, deployment: Deployment, contact: str, now: datetime, expected: datetime
) -> None:
    message, _ = manual(wh, deployment, contact, now=now)
    assert message.send_after == expected
    assert deliver(wh, expected - timedelta(minutes=1)) == []
    assert [m.message_key for m in deliver(wh, expected)] == [message.message_key]


@pytest.mark.parametrize(
    ("contact", "text", "error"),
    [
        ("c-nophone", TEXT, "contact c-nophone of bright_smiles_dental has no valid phone number"),
        ("c-bob", TEXT, "+1•••••••143 is suppressed for bright_smiles_dental (opt_out (appointment_reminder))"),
        ("c-cy", TEXT, "+1•••••••144 is suppressed for bright_smiles_dental (manual_block (all))"),
        ("c-nobody", TEXT, "bright_smiles_dental has no contact 'c-nobody'"),
        ("c-ann", "Please bring your card, DOB 05/06/1980", "refused by the PHI guard: date of birth (DOB **/**/****)"),
        ("c-ann", "Your root canal is on Friday", "refused by the PHI guard: clinical term (root canal)"),
        ("c-ann", "   ", "the reply is empty"),
    ],
)
@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_refused_replies_say_why_and_write_nothing(
    wh: Warehouse, deployment: Deployment, contact: str, text: str, error: str
) -> None:
    with pytest.raises(ReplyError) as refused:
        manual(wh, deployment, contact, text)
    assert error in str(refused.value)
    assert "05/06/1980" not in str(refused.value)
    assert rows(wh, f"select count(*) from {OUTBOX}") == [(0,)]
    assert rows(wh, "select count(*) from herald_ops.audit_log") == [(0,)]


# --- the auto-responder --------------------------------------------------------------------------

OPEN = SendWindow(start="08:00", end="17:00", sunday_start="12:00")


@pytest.mark.parametrize(
    ("received_at", "expected"),
    [
        (datetime(2026, 11, 23, 15, 0), None),  # Monday 09:00 CST: open
        (datetime(2026, 11, 23, 23, 0), "2026-11-23T17:00:00-06:00"),  # Monday 17:00: just closed
        (datetime(2026, 11, 24, 13, 59), "2026-11-23T17:00:00-06:00"),  # Tuesday 07:59: the same night
        (datetime(2026, 11, 22, 17, 0), "2026-11-21T17:00:00-06:00"),  # Sunday 11:00: since Saturday's close
        (datetime(2026, 3, 8, 16, 30), "2026-03-07T17:00:00-06:00"),  # Sunday 11:30 CDT, after spring forward
        (datetime(2026, 3, 8, 23, 0), "2026-03-08T17:00:00-05:00"),  # Sunday 18:00 CDT
    ],
)
def test_closed_periods_run_from_closing_to_the_next_opening(received_at: datetime, expected: str | None) -> None:
    since = closed_period_start(received_at, OPEN, "America/Chicago")
    assert (since.isoformat() if since else None) == expected


def test_auto_reply_hours_fall_back_to_the_send_window(deployment: Deployment) -> None:
    client = deployment.clients[CLIENT]
    assert auto_reply_hours(client, deployment) == OPEN
    bare = client.model_copy(update={"config": client.config.model_copy(
        update={"auto_reply": client.config.auto_reply.model_copy(update={"business_hours": None})})})  # fmt: skip
    assert auto_reply_hours(bare, deployment) == deployment.herald.defaults.send_window


def inbound(wh: Warehouse, inbound_id: str, sender: str, body: str, at: datetime) -> None:
    with wh.session() as s:
        s.insert_rows(
            "herald_raw.inbound_messages",
            ["inbound_id", "channel", "from_address", "to_address", "body", "provider", "received_at", "landed_at"],
            [(inbound_id, "sms", sender, SENDER, body, "test", at, at)],
        )


def apply(wh: Warehouse, deployment: Deployment, inbound_id: str, sender: str, body: str, at: datetime):
    inbound(wh, inbound_id, sender, body, at)
    with wh.session() as s:
        [result] = apply_inbound(s, deployment, at + timedelta(seconds=5))
    return result


def auto_replies(wh: Warehouse) -> list[tuple]:
    return rows(wh, f"select message_key, occurrence, to_address, send_after from {OUTBOX} "
                    "where step = 'auto_reply' order by send_after")  # fmt: skip


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_after_hours_a_text_gets_one_auto_reply_per_closed_period(wh: Warehouse, deployment: Deployment) -> None:
    monday_evening = datetime(2026, 11, 23, 23, 30)  # 17:30 CST
    first = apply(wh, deployment, "SM-1", ANN, "Is there parking near the clinic?", monday_evening)
    key = hashlib.md5(f"autoreply|{CLIENT}|{ANN}|2026-11-23T17:00:00-06:00".encode()).hexdigest()
    assert (first.kind, first.action, first.reply_message_key) == ("other", "auto_replied", key)
    assert rows(wh, f"select campaign, step, message_type, category, contact_id, sender, body_text, send_after, status "
                    f"from {OUTBOX}") == [
        ("_replies", "auto_reply", "auto_reply", "transactional", "c-ann", SENDER,
         deployment.clients[CLIENT].config.auto_reply.text, monday_evening + timedelta(seconds=5), "queued"),
    ]  # fmt: skip
    assert rows(wh, "select action, reply_message_key from herald_ops.inbound_processing") == [("auto_replied", key)]
    assert ("inbound_replies", "send") in rows(wh, "select actor, action from herald_ops.audit_log")

    # the same night — later that evening, and before opening the next morning — nothing more
    for inbound_id, at in (("SM-2", datetime(2026, 11, 24, 3, 0)), ("SM-3", datetime(2026, 11, 24, 13, 30))):
        again = apply(wh, deployment, inbound_id, ANN, "Hello??", at)
        assert (again.action, again.reply_message_key) == ("no_action", None)
    # open hours: no auto-reply (the front desk answers)
    assert apply(wh, deployment, "SM-4", ANN, "Thanks", datetime(2026, 11, 24, 15, 0)).action == "no_action"
    # the next evening is a new closed period
    assert (
        apply(wh, deployment, "SM-5", ANN, "One more question", datetime(2026, 11, 25, 0, 0)).action == "auto_replied"
    )
    assert [r[1] for r in auto_replies(wh)] == ["2026-11-23T17:00:00-06:00", "2026-11-24T17:00:00-06:00"]
    # delivery sends it at once, even at night (an answer to the person's own text)
    assert [m.to for m in deliver(wh, datetime(2026, 11, 25, 0, 1))] == [ANN, ANN]


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_no_auto_reply_to_keywords_suppressed_numbers_or_clients_without_one(
    wh: Warehouse, deployment: Deployment
) -> None:
    night = datetime(2026, 11, 24, 4, 0)  # 22:00 CST
    # HELP at night gets the HELP answer only
    help_result = apply(wh, deployment, "SM-h", ANN, "HELP", night)
    assert help_result.action == "helped"
    # opted out (of one message type) or blocked: never written to
    assert apply(wh, deployment, "SM-b", BOB, "hello?", night).action == "no_action"
    assert apply(wh, deployment, "SM-c", CY, "hello?", night).action == "no_action"
    # a client without auto_reply
    client = deployment.clients[CLIENT]
    quiet = deployment.model_copy(update={"clients": {**deployment.clients, CLIENT: client.model_copy(
        update={"config": client.config.model_copy(update={"auto_reply": None})})}})  # fmt: skip
    assert apply(wh, quiet, "SM-d", DAN, "hello?", night).action == "no_action"
    assert auto_replies(wh) == []
    assert rows(wh, f"select step from {OUTBOX}") == [("help_reply",)]
