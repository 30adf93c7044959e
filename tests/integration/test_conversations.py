"""``marts.conversation_messages`` and ``marts.conversations`` (the unified inbox as data) on a
real warehouse, once per engine: a hand-made outbox, inbound messages and their processing in,
one ``dbt build`` of the two models (with their data tests) out. ``marts.contacts`` is another
model's output: the test creates that table itself with the columns these models read."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.conftest import ENGINES
from tests.dbt_harness import Built, MartBuild, build_marts, failed_nodes, row, rows

MODELS = ("conversation_messages", "conversations")
SOURCE_TABLES = (
    "herald_ops.clients",
    "herald_ops.outbox",
    "herald_raw.inbound_messages",
    "herald_ops.inbound_processing",
)
LOADED_AT = datetime(2024, 3, 1, 12, 0)
CLIENTS = [
    ("clinic", "Bright Smiles Dental", "healthcare", "America/Chicago", "US", LOADED_AT),
    ("realty", "Harbor Realty", "real_estate", "America/New_York", "US", LOADED_AT),
]
CLINIC_SMS = "+15125550100"
ANN, BOB, CY, STRANGER = "+15125550142", "+15125550143", "+15125550144", "+15125550199"
CONTACT_COLUMNS = [("contact_id", "varchar"), ("client_id", "varchar"), ("phone_e164", "varchar")]
CONTACTS = [("c-ann", "clinic", ANN), ("c-bob", "clinic", BOB), ("c-cy", "clinic", CY), ("c-dee", "realty", None)]
DAY = datetime(2024, 3, 11, 15, 0)


def out(key: str, campaign: str, message_type: str, contact_id: str, to: str, status: str, at: datetime,
        body: str, channel: str = "sms", client_id: str = "clinic") -> tuple[Any, ...]:  # fmt: skip
    return row(
        "herald_ops.outbox", message_key=key, client_id=client_id, campaign=campaign, step="s", variant="",
        occurrence="o", contact_id=contact_id, message_type=message_type, category="transactional", channel=channel,
        to_address=to, sender=CLINIC_SMS if channel == "sms" else "news@harbor.example", send_after=at,
        status=status, attempts=0, enqueued_at=at, updated_at=at, sent_at=at if status == "sent" else None,
        body_text=body if channel == "sms" else "long email text", subject=None if channel == "sms" else body,
    )  # fmt: skip


def inbound(inbound_id: str, sender: str, body: str, at: datetime, to: str = CLINIC_SMS) -> tuple[Any, ...]:
    return row("herald_raw.inbound_messages", inbound_id=inbound_id, channel="sms", from_address=sender,
               to_address=to, body=body, provider="test", received_at=at, landed_at=at)  # fmt: skip


def processed(inbound_id: str, contact_id: str | None, kind: str, action: str, at: datetime) -> tuple[Any, ...]:
    return row("herald_ops.inbound_processing", inbound_id=inbound_id, client_id="clinic", contact_id=contact_id,
               kind=kind, action=action, messages_cancelled=0, processed_at=at)  # fmt: skip


OUTBOX = [
    # Ann: a reminder, her question, the front desk's manual answer → closed
    out("m-ann-1", "reminders", "appointment_reminder", "c-ann", ANN, "sent", DAY, "Reminder: tomorrow 3pm"),
    out("m-ann-2", "_manual", "conversation_reply", "c-ann", ANN, "sent", DAY + timedelta(hours=1, minutes=30),
        "Sure, 4pm works"),
    # Bob: a reminder, a question at night, the auto-reply and a cancelled manual reply → still open
    out("m-bob-1", "reminders", "appointment_reminder", "c-bob", BOB, "sent", DAY, "Reminder: tomorrow 9am"),
    out("m-bob-2", "_replies", "auto_reply", "c-bob", BOB, "sent", DAY + timedelta(hours=10, seconds=5), "We are closed"),
    out("m-bob-3", "_manual", "conversation_reply", "c-bob", BOB, "cancelled", DAY + timedelta(hours=11), "Yes it is"),
    # Cy: HELP answered (queued), then a new message not applied yet → open
    out("m-cy-1", "_replies", "help_reply", "c-cy", CY, "queued", DAY + timedelta(hours=19, seconds=5), "Help text"),
    # realty: an email, no reply → closed
    out("m-dee-1", "listings", "home_for_sale", "c-dee", "dee@example.com", "sent", DAY, "New listing", "email", "realty"),
]  # fmt: skip
INBOUND = [
    inbound("in-ann", ANN, "Can I come at 4 instead?", DAY + timedelta(hours=1)),
    inbound("in-bob", BOB, "Is parking free?", DAY + timedelta(hours=10)),
    inbound("in-cy-1", CY, "HELP", DAY + timedelta(hours=19)),
    inbound("in-cy-2", CY, "thanks", DAY + timedelta(hours=20)),  # not applied yet: matched by sender and phone
    inbound("in-stranger", STRANGER, "who is this?", DAY + timedelta(hours=2)),  # no contact has the number
    inbound("in-nobody", ANN, "hello", DAY, to="+15125559999"),  # no client sends from that number
]
PROCESSING = [
    processed("in-ann", "c-ann", "other", "no_action", DAY + timedelta(hours=1)),
    processed("in-bob", "c-bob", "other", "auto_replied", DAY + timedelta(hours=10)),
    processed("in-cy-1", "c-cy", "help", "helped", DAY + timedelta(hours=19)),
    processed("in-stranger", None, "other", "no_action", DAY + timedelta(hours=2)),
]


BUILD = MartBuild(
    name="conversations",
    models=MODELS,
    sources=SOURCE_TABLES,
    hand_made={"marts.contacts": CONTACT_COLUMNS},
    rows={
        "herald_ops.clients": CLIENTS,
        "herald_ops.outbox": OUTBOX,
        "herald_raw.inbound_messages": INBOUND,
        "herald_ops.inbound_processing": PROCESSING,
        "marts.contacts": CONTACTS,
    },
)


@pytest.fixture(scope="module", params=ENGINES)
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    with build_marts(request, tmp_path_factory, BUILD) as result:
        yield result


def thread_id(client_id: str, channel: str, party: str) -> str:
    return hashlib.md5(f"{client_id}|{channel}|{party}".encode()).hexdigest()


def test_both_models_and_their_data_tests_pass(built: Built) -> None:
    statuses = {r["unique_id"]: r["status"] for r in built.run["results"]}
    assert failed_nodes(built) == {}
    assert {f"model.herald.{m}" for m in MODELS} <= set(statuses)
    tests = [k for k in statuses if k.startswith("test.")]
    for expected in (
        "unique_conversations_conversation_id",
        "unique_conversation_messages_conversation_message_id",
        "accepted_values_conversations_status",
        "relationships_conversation_messages_conversation_id",
    ):
        assert any(expected in t for t in tests), expected  # fmt: skip


def test_one_timeline_per_thread_with_kinds_and_answers(built: Built) -> None:
    got = sorted(
        (m["conversation_id"], m["occurred_at"], m["conversation_message_id"], m["client_id"], m["contact_id"],
         m["direction"], m["kind"], m["status"], m["is_answer"], m["body"], m["address_masked"])
        for m in rows(built.warehouse, "select * from marts.conversation_messages")
    )  # fmt: skip
    ann, bob, cy = (thread_id("clinic", "sms", c) for c in ("c-ann", "c-bob", "c-cy"))
    stranger, dee = thread_id("clinic", "sms", STRANGER), thread_id("realty", "email", "c-dee")
    h = lambda hours, seconds=0: DAY + timedelta(hours=hours, seconds=seconds)  # noqa: E731
    assert got == sorted([
        (ann, DAY, "out:m-ann-1", "clinic", "c-ann", "outbound", "automated", "sent", False,
         "Reminder: tomorrow 3pm", "+1********42"),
        (ann, h(1), "in:in-ann", "clinic", "c-ann", "inbound", "inbound", "received", False,
         "Can I come at 4 instead?", "+1********42"),
        (ann, h(1.5), "out:m-ann-2", "clinic", "c-ann", "outbound", "manual", "sent", True, "Sure, 4pm works", "+1********42"),
        (bob, DAY, "out:m-bob-1", "clinic", "c-bob", "outbound", "automated", "sent", False,
         "Reminder: tomorrow 9am", "+1********43"),
        (bob, h(10), "in:in-bob", "clinic", "c-bob", "inbound", "inbound", "received", False, "Is parking free?", "+1********43"),
        (bob, h(10, 5), "out:m-bob-2", "clinic", "c-bob", "outbound", "reply", "sent", False, "We are closed", "+1********43"),
        (bob, h(11), "out:m-bob-3", "clinic", "c-bob", "outbound", "manual", "cancelled", False, "Yes it is", "+1********43"),
        (cy, h(19), "in:in-cy-1", "clinic", "c-cy", "inbound", "inbound", "received", False, "HELP", "+1********44"),
        (cy, h(19, 5), "out:m-cy-1", "clinic", "c-cy", "outbound", "reply", "queued", True, "Help text", "+1********44"),
        (cy, h(20), "in:in-cy-2", "clinic", "c-cy", "inbound", "inbound", "received", False, "thanks", "+1********44"),
        (stranger, h(2), "in:in-stranger", "clinic", None, "inbound", "inbound", "received", False,
         "who is this?", "+1********99"),
        (dee, DAY, "out:m-dee-1", "realty", "c-dee", "outbound", "automated", "sent", False, "New listing", "d***@example.com"),
    ])  # fmt: skip


def test_threads_are_open_until_the_latest_inbound_message_is_answered(built: Built) -> None:
    got = {
        (c["client_id"], c["contact_id"], c["channel"]): (
            c["status"], c["last_direction"], c["last_kind"], c["inbound_count"], c["outbound_count"],
            c["first_activity_at"], c["last_activity_at"], c["address_masked"],
        )
        for c in rows(built.warehouse, "select * from marts.conversations")
    }  # fmt: skip
    h = lambda hours, seconds=0: DAY + timedelta(hours=hours, seconds=seconds)  # noqa: E731
    assert got == {
        # answered by the front desk
        ("clinic", "c-ann", "sms"): ("closed", "outbound", "manual", 1, 2, DAY, h(1.5), "+1********42"),
        # an auto-reply and a cancelled reply answer nobody
        ("clinic", "c-bob", "sms"): ("open", "outbound", "manual", 1, 3, DAY, h(11), "+1********43"),
        # HELP was answered, the later message is not
        ("clinic", "c-cy", "sms"): ("open", "inbound", "inbound", 2, 1, h(19), h(20), "+1********44"),
        ("clinic", None, "sms"): ("open", "inbound", "inbound", 1, 0, h(2), h(2), "+1********99"),
        ("realty", "c-dee", "email"): ("closed", "outbound", "automated", 0, 1, DAY, DAY, "d***@example.com"),
    }


def test_no_raw_address_is_exposed(built: Built) -> None:
    for table in MODELS:
        names = {
            r["column_name"]
            for r in rows(
                built.warehouse,
                "select column_name from information_schema.columns "
                f"where table_schema = 'marts' and table_name = '{table}'",
            )
        }
        assert names and not names & {"address", "to_address", "from_address"}, table
