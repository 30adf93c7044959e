"""Inbound replies applied on both engines: an opt-out suppresses, cancels everything queued to
the number and sends exactly one confirmation — and delivery then sends only that confirmation;
a second STOP sends nothing; START restores; HELP answers; C and R record appointment
responses; a reply to an unknown number is ignored with its reason; applying twice adds nothing;
the landing area loads idempotently."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from herald.compliance.consent import current_consent
from herald.compliance.inbound import InboundResult, apply_inbound, reply_message_key
from herald.compliance.keywords import ReplyKind, classify_reply
from herald.compliance.landing import InboundMessage, append_inbound, inbound_dir, load_landed, pending_files
from herald.config import Deployment
from herald.delivery.engine import DeliveryOptions, deliver_due
from herald.delivery.outbox import OUTBOX, SUPPRESSIONS, OutboxMessage, enqueue
from herald.providers.sandbox import SandboxEmailProvider, SandboxSmsProvider
from herald.warehouse.connection import Warehouse
from tests.conftest import ENGINES

NOW = datetime(2026, 11, 23, 15, 0)
FAST = DeliveryOptions(batch_size=50, initial_backoff_seconds=0.001, max_backoff_seconds=0.01)
CLIENT = "bright_smiles_dental"
CLIENT_NAME = "Bright Smiles Dental"
SENDER = "+15125550100"  # bright_smiles_dental's sms_from
ANN, BOB, CY = "+15125550142", "+15125550143", "+15125550144"
CONTACTS = [("c-ann", ANN), ("c-bob", BOB), ("c-cy", CY), ("c-cy-child", CY)]  # Cy's household shares a phone
REMINDER = "appointment_reminder"


def configured(deployment: Deployment, **compliance: object) -> Deployment:
    """The example deployment with the client's compliance settings changed."""
    client = deployment.clients[CLIENT]
    config = client.config.model_copy(update={"compliance": client.config.compliance.model_copy(update=compliance)})
    clients = {**deployment.clients, CLIENT: client.model_copy(update={"config": config})}
    return deployment.model_copy(update={"clients": clients})


@pytest.fixture
def deploy(deployment: Deployment) -> Deployment:
    return configured(deployment, revoke_all=False, probable_opt_out="suppress")


def message(
    key: str,
    to: str,
    message_type: str = REMINDER,
    *,
    send_after: datetime = NOW - timedelta(minutes=5),
    status: str = "queued",
) -> OutboxMessage:
    return OutboxMessage(
        message_key=key, client_id=CLIENT, campaign="reminders", step="day_before", variant="a",
        occurrence="2026-11-23", contact_id=key.split("-")[0], message_type=message_type,
        category="transactional" if message_type == REMINDER else "marketing", channel="sms", to_address=to,
        sender=SENDER, send_after=send_after, body_text=f"Hello from {key}", status=status,
    )  # fmt: skip


@pytest.fixture
def wh(warehouse: Warehouse) -> Warehouse:
    """Contacts (marts.contacts by hand), and Ann with a sent reminder and three waiting ones."""
    with warehouse.session() as s:
        s.execute(
            "create table marts.contacts (contact_id varchar primary key, client_id varchar not null, phone_e164 varchar)"
        )
        s.insert_rows(
            "marts.contacts", ["contact_id", "client_id", "phone_e164"], [(c, CLIENT, p) for c, p in CONTACTS]
        )
        enqueue(s, [
            message("ann-sent", ANN, status="sent", send_after=NOW - timedelta(days=1)),
            message("ann-due", ANN),  # due now
            message("ann-later", ANN, send_after=NOW + timedelta(days=2)),  # deferred
            message("ann-held", ANN, status="held"),
            message("bob-due", BOB),
        ], NOW - timedelta(days=2))  # fmt: skip
        s.execute(f"update {OUTBOX} set sent_at = ? where message_key = 'ann-sent'", [NOW - timedelta(days=1)])
    return warehouse


def reply(
    warehouse: Warehouse,
    inbound_id: str,
    sender: str,
    body: str,
    to: str = SENDER,
    at: datetime = NOW - timedelta(minutes=1),
) -> None:
    with warehouse.session() as s:
        s.insert_rows(
            "herald_raw.inbound_messages",
            ["inbound_id", "channel", "from_address", "to_address", "body", "provider", "received_at", "landed_at"],
            [(inbound_id, "sms", sender, to, body, "test", at, at)],
        )


def apply(warehouse: Warehouse, deployment: Deployment, now: datetime = NOW) -> list[InboundResult]:
    with warehouse.session() as s:
        return apply_inbound(s, deployment, now)


def rows(warehouse: Warehouse, sql: str, params: list | None = None) -> list[tuple]:
    with warehouse.session(read_only=True) as s:
        return s.query(sql, params)[1]


def statuses(warehouse: Warehouse) -> dict[str, tuple[str, str | None]]:
    return {k: (st, r) for k, st, r in rows(warehouse, f"select message_key, status, status_reason from {OUTBOX}")}


def replies(warehouse: Warehouse) -> list[tuple]:
    return rows(
        warehouse,
        f"select message_key, message_type, to_address, body_text, status from {OUTBOX} "
        "where campaign = '_replies' order by enqueued_at, message_key",
    )


def deliver(warehouse: Warehouse, now: datetime = NOW) -> list:
    sms = SandboxSmsProvider()
    deliver_due(warehouse, {"sms": sms, "email": SandboxEmailProvider()}, now=now, options=FAST)
    return sms.sent


@pytest.mark.parametrize("text", ["Stop texting me pls", "SOTP", "BASTA"])
@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_an_opt_out_cancels_everything_queued_and_only_the_confirmation_is_sent(
    wh: Warehouse, deploy: Deployment, text: str
) -> None:
    reply(wh, "SM-stop", ANN, text)
    [result] = apply(wh, deploy)

    assert result.kind in ("opt_out", "probable_opt_out") and result.action == "suppressed"
    assert (result.client_id, result.contact_ids, result.scope) == (CLIENT, ("c-ann",), REMINDER)
    assert result.messages_cancelled == 3 and result.from_masked == "+1•••••••142"
    # the suppression, scoped to the message type Ann answered
    assert rows(
        wh, f"select client_id, channel, address, scope, reason, source, note, contact_id from {SUPPRESSIONS}"
    ) == [(CLIENT, "sms", ANN, REMINDER, "opt_out", "sms_keyword", text, "c-ann")]
    assert rows(
        wh,
        "select client_id, contact_id, channel, address, kind, scope, source, evidence from herald_ops.consent_events",
    ) == [(CLIENT, "c-ann", "sms", ANN, "opt_out", REMINDER, "sms_keyword", text)]
    with wh.session(read_only=True) as s:
        assert current_consent(s, CLIENT, "sms", ANN, REMINDER) == "revoked"
        assert current_consent(s, CLIENT, "sms", ANN, "newsletter") is None
    # every queued, deferred and held message to Ann cancelled with the reason; Bob's untouched
    outbox = statuses(wh)
    for key in ("ann-due", "ann-later", "ann-held"):
        assert outbox[key] == ("cancelled", f"opted out: {text}")
    assert outbox["ann-sent"][0] == "sent" and outbox["bob-due"][0] == "queued"
    # exactly one confirmation, due now
    key = reply_message_key("SM-stop")
    [(reply_key, message_type, to, body, status)] = replies(wh)
    assert (reply_key, message_type, to, status) == (key, "opt_out_confirmation", ANN, "queued")
    assert CLIENT_NAME in body and result.reply_message_key == key
    assert rows(
        wh,
        f"select campaign, step, variant, occurrence, category, sender, send_after from {OUTBOX} where message_key = ?",
        [key],
    ) == [("_replies", "opt_out_confirmation", "", "SM-stop", "transactional", SENDER, NOW)]
    # audit rows with the masked number, never the number itself
    audit = rows(wh, "select actor, action, client_id, contact_id, subject, detail from herald_ops.audit_log")
    assert {a[1] for a in audit} == {"suppression", "consent_change", "cancel", "send"}
    assert all(
        a[0] == "inbound_replies" and a[2] == CLIENT and a[3] == "c-ann" and a[4] == "+1•••••••142" for a in audit
    )
    assert not any(ANN in (a[5] or "") for a in audit)
    cancel = next(json.loads(a[5]) for a in audit if a[1] == "cancel")
    assert sorted(cancel["message_keys"]) == ["ann-due", "ann-held", "ann-later"]
    assert rows(wh, "select inbound_id, client_id, contact_id, kind, action, scope, messages_cancelled, reply_message_key "
                    "from herald_ops.inbound_processing") == [
        ("SM-stop", CLIENT, "c-ann", result.kind, "suppressed", REMINDER, 3, key)
    ]  # fmt: skip

    # delivery: the confirmation goes to Ann even though she is suppressed, nothing else does
    sent = deliver(wh)
    assert sorted((m.message_key, m.to) for m in sent) == sorted([(key, ANN), ("bob-due", BOB)])
    assert [m.body for m in sent if m.to == ANN] == [body]
    # later, when the deferred reminder would have been due: nothing more for Ann
    assert deliver(wh, NOW + timedelta(days=3)) == []


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_a_second_stop_sends_no_second_confirmation_and_applying_twice_adds_nothing(
    wh: Warehouse, deploy: Deployment
) -> None:
    reply(wh, "SM-1", ANN, "STOP")
    assert [r.action for r in apply(wh, deploy)] == ["suppressed"]
    deliver(wh)
    reply(wh, "SM-2", ANN, "stop", at=NOW)
    [second] = apply(wh, deploy, NOW + timedelta(minutes=1))
    assert (second.action, second.scope, second.reply_message_key) == ("already_suppressed", REMINDER, None)
    assert len(replies(wh)) == 1
    assert deliver(wh, NOW + timedelta(minutes=2)) == []

    before = {
        t: rows(wh, f"select count(*) from {t}")[0][0]
        for t in (
            SUPPRESSIONS,
            "herald_ops.consent_events",
            "herald_ops.audit_log",
            "herald_ops.inbound_processing",
            OUTBOX,
        )
    }
    assert apply(wh, deploy, NOW + timedelta(minutes=5)) == []
    after = {t: rows(wh, f"select count(*) from {t}")[0][0] for t in before}
    assert after == before


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_revoke_all_and_a_number_never_messaged_suppress_every_message_type(
    wh: Warehouse, deployment: Deployment
) -> None:
    with wh.session() as s:
        enqueue(s, [message("ann-news", ANN, "newsletter"), message("bob-news", BOB, "newsletter")], NOW)
    reply(wh, "SM-ann", ANN, "STOP")
    reply(wh, "SM-cy", CY, "UNSUBSCRIBE")  # Cy was never sent anything: scope falls back to 'all'
    results = {r.inbound_id: r for r in apply(wh, configured(deployment, revoke_all=True))}
    assert (results["SM-ann"].scope, results["SM-ann"].messages_cancelled) == ("all", 4)
    assert results["SM-cy"].scope == "all" and results["SM-cy"].contact_ids == ("c-cy", "c-cy-child")
    assert statuses(wh)["ann-news"][0] == "cancelled"

    # without revoke-all, Bob's STOP after a reminder leaves his newsletter alone
    reply(wh, "SM-bob", BOB, "STOP")
    with wh.session() as s:
        s.execute(f"update {OUTBOX} set status = 'sent', sent_at = ? where message_key = 'bob-due'", [NOW])
    [bob] = apply(wh, configured(deployment, revoke_all=False), NOW + timedelta(minutes=1))
    assert (bob.scope, bob.messages_cancelled) == (REMINDER, 0)
    sent = deliver(wh, NOW + timedelta(minutes=2))
    assert sorted(m.message_key for m in sent if m.to == BOB) == sorted(["bob-news", reply_message_key("SM-bob")])


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_start_restores_an_opted_out_number_but_never_lifts_a_block(wh: Warehouse, deploy: Deployment) -> None:
    reply(wh, "SM-stop", ANN, "STOP", at=NOW - timedelta(minutes=10))
    apply(wh, deploy, NOW - timedelta(minutes=9))
    with wh.session() as s:
        s.insert_rows(
            SUPPRESSIONS,
            ["client_id", "channel", "address", "scope", "reason", "source", "created_at"],
            [(CLIENT, "email", ANN, "all", "manual_block", "manual", NOW)],
        )
    reply(wh, "SM-start", ANN, "START")
    [result] = apply(wh, deploy)
    assert (result.kind, result.action) == ("opt_in", "restored")
    assert rows(wh, f"select channel, reason from {SUPPRESSIONS}") == [("email", "manual_block")]
    with wh.session(read_only=True) as s:
        assert current_consent(s, CLIENT, "sms", ANN, REMINDER) == "granted"
    confirmation = [r for r in replies(wh) if r[1] == "opt_in_confirmation"]
    assert len(confirmation) == 1 and confirmation[0][0] == reply_message_key("SM-start")
    assert "unsuppression" in {a for (a,) in rows(wh, "select action from herald_ops.audit_log")}
    sent = deliver(wh)
    assert reply_message_key("SM-start") in {m.message_key for m in sent}

    # START from a number that never opted out: consent recorded, no answer
    reply(wh, "SM-bob-start", BOB, "START")
    [bob] = apply(wh, deploy, NOW + timedelta(minutes=1))
    assert (bob.action, bob.reply_message_key) == ("opt_in_recorded", None)
    assert rows(wh, "select count(*) from herald_ops.consent_events where address = ? and kind = 'opt_in'", [BOB]) == [
        (1,)
    ]


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_help_is_answered_even_when_opted_out(wh: Warehouse, deploy: Deployment) -> None:
    reply(wh, "SM-stop", ANN, "STOP", at=NOW - timedelta(minutes=10))
    apply(wh, deploy, NOW - timedelta(minutes=9))
    reply(wh, "SM-help", ANN, "HELP")
    [result] = apply(wh, deploy)
    assert (result.kind, result.action) == ("help", "helped")
    [(_, message_type, to, body, _)] = [r for r in replies(wh) if r[0] == reply_message_key("SM-help")]
    assert (message_type, to) == ("help_reply", ANN)
    assert CLIENT_NAME in body and "Msg & data rates may apply" in body and "STOP" in body
    contact = deploy.clients[CLIENT].config.contact
    assert (contact.email or "") in body or "".join(ch for ch in contact.phone or "" if ch.isdigit())[-4:] in body
    sent = deliver(wh)
    assert reply_message_key("SM-help") in {m.message_key for m in sent}


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_c_and_r_record_appointment_responses_and_unknown_numbers_are_ignored(
    wh: Warehouse, deploy: Deployment
) -> None:
    reply(wh, "SM-c", ANN, "C")
    reply(wh, "SM-r", CY, "R", at=NOW)
    reply(wh, "SM-x", ANN, "STOP", to="+15559990000")  # a number no client sends from
    results = {r.inbound_id: r for r in apply(wh, deploy)}
    assert (results["SM-c"].kind, results["SM-c"].action) == ("confirm", "confirmed")
    assert (results["SM-r"].kind, results["SM-r"].action) == ("reschedule", "reschedule_requested")
    assert results["SM-x"].action == "ignored: no client sends from +1•••••••000"
    assert results["SM-x"].client_id is None
    assert sorted(
        rows(wh, "select inbound_id, client_id, contact_id, response from herald_ops.appointment_responses")
    ) == [
        ("SM-c", CLIENT, "c-ann", "confirmed"),
        ("SM-r", CLIENT, "c-cy", "reschedule_requested"),
        ("SM-r", CLIENT, "c-cy-child", "reschedule_requested"),
    ]
    assert replies(wh) == [] and rows(wh, f"select count(*) from {SUPPRESSIONS}") == [(0,)]
    assert rows(wh, "select count(*) from herald_ops.consent_events") == [(0,)]  # a confirmation is not consent
    assert rows(wh, "select client_id, action from herald_ops.inbound_processing where inbound_id = 'SM-x'") == [
        (None, "ignored: no client sends from +1•••••••000")
    ]


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_a_c_to_a_client_without_appointments_is_an_ordinary_reply(wh: Warehouse, deploy: Deployment) -> None:
    # the roofer's packets carry no appointments: "C" to its offer answers nothing
    assert not deploy.clients["summit_roofing"].takes_appointments
    assert deploy.clients[CLIENT].takes_appointments
    reply(wh, "SM-roof-c", ANN, "C", to="+13035550177")
    (result,) = apply(wh, deploy)
    assert (result.client_id, result.kind, result.action) == ("summit_roofing", "other", "no_action")
    assert rows(wh, "select count(*) from herald_ops.appointment_responses") == [(0,)]


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_a_probable_opt_out_under_clarify_asks_and_suppresses_nothing(wh: Warehouse, deployment: Deployment) -> None:
    text = next(t for t in ("STEP", "SHOP", "TOP", "STPO") if classify_reply(t).kind == ReplyKind.PROBABLE_OPT_OUT)
    reply(wh, "SM-p", ANN, text)
    [result] = apply(wh, configured(deployment, probable_opt_out="clarify"))
    assert (result.kind, result.action) == ("probable_opt_out", "clarification_sent")
    [(_, message_type, _, body, _)] = replies(wh)
    assert message_type == "opt_out_clarification"
    assert body == f"Did you mean to stop messages from {CLIENT_NAME}? Reply STOP to opt out."
    assert rows(wh, f"select count(*) from {SUPPRESSIONS}") == [(0,)]
    assert statuses(wh)["ann-due"][0] == "queued"


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_landed_replies_load_once_and_apply(wh: Warehouse, deploy: Deployment, tmp_path: Path) -> None:
    home = tmp_path / "landing-home"
    first = InboundMessage("SM-l1", ANN, SENDER, "STOP", NOW - timedelta(minutes=2))
    append_inbound(home, first)
    append_inbound(home, InboundMessage("SM-l2", CY, SENDER, "C", NOW - timedelta(minutes=1)))
    (inbound_dir(home) / ".half.tmp").write_text('{"inbound_id": "SM-half", "bo')  # a writer mid-write
    assert load_landed(wh, home, NOW) == 2
    assert pending_files(home) == [] and len(list((inbound_dir(home) / "loaded").glob("*.jsonl"))) == 2
    assert load_landed(wh, home, NOW) == 0
    append_inbound(home, first)  # the webhook delivered the same message twice
    assert load_landed(wh, home, NOW) == 0
    (inbound_dir(home) / "broken.jsonl").write_text("not json\n")
    assert load_landed(wh, home, NOW) == 0
    assert (inbound_dir(home) / "rejected" / "broken.jsonl.reason.txt").read_text().startswith("broken.jsonl line 1:")
    assert rows(wh, "select inbound_id, from_address, body from herald_raw.inbound_messages order by inbound_id") == [
        ("SM-l1", ANN, "STOP"), ("SM-l2", CY, "C"),
    ]  # fmt: skip
    assert sorted(r.action for r in apply(wh, deploy)) == ["confirmed", "suppressed"]


def test_the_asset_loads_and_applies_landed_replies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The thin Dagster adapter on DuckDB: landed replies → applied, counts and a masked preview."""
    import dagster as dg

    from assets.compliance.inbound import build_inbound_processing
    from assets.transform.dbt import load_dbt_models
    from herald.settings import Settings
    from resources import HeraldConfigResource, WarehouseResource
    from tests.conftest import CONFIG_DIR

    home = tmp_path / "home"
    monkeypatch.setenv("HERALD_HOME", str(home))
    monkeypatch.setenv("HERALD_CONFIG_DIR", str(CONFIG_DIR))
    monkeypatch.delenv("HERALD_WAREHOUSE_URL", raising=False)
    warehouse = Warehouse(Settings.from_env().warehouse)
    warehouse.ensure_schema()
    append_inbound(home, InboundMessage("SM-a1", ANN, SENDER, "STOP", NOW))
    append_inbound(home, InboundMessage("SM-a2", ANN, "+15559990000", "HELP", NOW))
    inbound_processing = build_inbound_processing(load_dbt_models("duckdb"))
    result = dg.materialize(
        [inbound_processing], resources={"warehouse": WarehouseResource(), "herald_config": HeraldConfigResource()}
    )
    assert result.success
    by_key = {
        m.asset_key.to_user_string(): m.metadata
        for m in result.asset_materializations_for_node("herald_ops__inbound_processing")
    }
    assert by_key["herald_raw/inbound_messages"]["replies_loaded"].value == 2
    metadata = by_key["herald_ops/inbound_processing"]
    assert metadata["replies_loaded"].value == 2 and metadata["replies_applied"].value == 2
    assert metadata["by_kind"].value == {"opt_out": 1, "other": 1}
    assert "+1•••••••142" in metadata["preview"].value and ANN not in metadata["preview"].value
    assert pending_files(home) == []
    assert rows(warehouse, f"select address, scope from {SUPPRESSIONS}") == [(ANN, "all")]  # no marts.contacts yet
