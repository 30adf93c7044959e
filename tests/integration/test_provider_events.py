"""Provider events applied on both engines: Twilio statuses move forward only (a late 'sent'
never overwrites 'delivered', a 'delivered' after 'failed' is ignored), error codes are
recorded with their meaning, duplicates are processed once; Resend deliveries, hard bounces
(global suppression), complaints (client suppression + consent event), opens and clicks; web
unsubscribes suppress, record consent, cancel the contact's queued emails and are idempotent;
web confirmations record the appointment response; unknown message ids are kept as unmatched.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from herald.compliance.consent import current_consent
from herald.config import Deployment
from herald.delivery.outbox import OUTBOX, SUPPRESSIONS, OutboxMessage, enqueue
from herald.events.apply import ApplyReport, apply_provider_events, is_forward, twilio_error_text
from herald.events.landing import EVENTS_TABLE, FileSink, ProviderEvent, load_events
from herald.warehouse.connection import Warehouse
from herald.warehouse.schema import column_names
from tests.conftest import ENGINES

NOW = datetime(2026, 11, 23, 15, 0)
CLIENT = "bright_smiles_dental"
OTHER_CLIENT = "lakeside_realty"
ANN_PHONE, BOB_PHONE = "+15125550142", "+15125550143"
ANN_EMAIL, BOB_EMAIL = "ann@example.com", "bob@example.org"


def message(
    key: str,
    channel: str,
    to: str,
    *,
    contact: str,
    status: str = "sent",
    provider: str | None = None,
    provider_id: str | None = None,
    client: str = CLIENT,
) -> tuple[OutboxMessage, str | None, str | None]:
    return (
        OutboxMessage(
            message_key=key, client_id=client, campaign="reminders", step="day_before", variant="a",
            occurrence="2026-11-23", contact_id=contact, message_type="appointment_reminder",
            category="transactional", channel=channel, to_address=to, sender="+15125550100",
            send_after=NOW - timedelta(hours=1), body_text=f"Hello {key}", status=status,
        ),
        provider, provider_id,
    )  # fmt: skip


OUTBOX_ROWS = [
    message("sms-ann", "sms", ANN_PHONE, contact="c-ann", provider="twilio", provider_id="SM-ann"),
    message("sms-bob", "sms", BOB_PHONE, contact="c-bob", provider="twilio", provider_id="SM-bob"),
    message("sms-bob-next", "sms", BOB_PHONE, contact="c-bob", status="queued"),
    message("mail-ann", "email", ANN_EMAIL, contact="c-ann", provider="resend", provider_id="re-ann"),
    message("mail-bob", "email", BOB_EMAIL, contact="c-bob", provider="resend", provider_id="re-bob"),
    message("mail-ann-next", "email", ANN_EMAIL, contact="c-ann", status="queued"),
    message("mail-ann-held", "email", ANN_EMAIL, contact="c-ann", status="held"),
    message("sms-ann-next", "sms", ANN_PHONE, contact="c-ann", status="queued"),
    message("mail-bob-next", "email", BOB_EMAIL, contact="c-bob", status="queued"),
    # another client's queued email to Ann: a complaint to one client leaves it alone
    message("mail-ann-other", "email", ANN_EMAIL, contact="o-ann", status="queued", client=OTHER_CLIENT),
]


@pytest.fixture
def wh(warehouse: Warehouse) -> Warehouse:
    with warehouse.session() as s:
        enqueue(s, [m for m, _, _ in OUTBOX_ROWS], NOW - timedelta(days=1))
        for m, provider, provider_id in OUTBOX_ROWS:
            if provider:
                s.execute(f"update {OUTBOX} set provider = ?, provider_message_id = ?, sent_at = ? where message_key = ?",
                          [provider, provider_id, NOW - timedelta(minutes=30), m.message_key])  # fmt: skip
    return warehouse


def land(warehouse: Warehouse, *events: ProviderEvent) -> None:
    with warehouse.session() as s:
        s.insert_rows(EVENTS_TABLE, column_names(EVENTS_TABLE), [e.row(e.received_at) for e in events],
                      ignore_existing=True)  # fmt: skip


def apply(warehouse: Warehouse, deployment: Deployment, now: datetime = NOW) -> ApplyReport:
    with warehouse.session() as s:
        return apply_provider_events(s, deployment, now)


def rows(warehouse: Warehouse, sql: str, params: list | None = None) -> list[tuple]:
    with warehouse.session(read_only=True) as s:
        return s.query(sql, params)[1]


def outbox(warehouse: Warehouse, key: str) -> dict[str, Any]:
    with warehouse.session(read_only=True) as s:
        names, values = s.query(f"select * from {OUTBOX} where message_key = ?", [key])
    return dict(zip(names, values[0], strict=False))


def twilio(sid: str, status: str, minute: int, error: str | None = None, to: str = ANN_PHONE) -> ProviderEvent:
    payload = {"MessageSid": sid, "MessageStatus": status, "To": to, "From": "+15125550100"}
    if error:
        payload["ErrorCode"] = error
    return ProviderEvent(f"{sid}:{status}", "twilio", "sms_status", payload, NOW - timedelta(minutes=30 - minute), sid)


def resend(svix_id: str, type_: str, email_id: str, minute: int, to: str = ANN_EMAIL, **data: Any) -> ProviderEvent:
    at = NOW - timedelta(minutes=30 - minute)
    payload = {"type": type_, "created_at": at.isoformat() + "Z",
               "data": {"email_id": email_id, "to": [to], "from": "Clinic <hi@clinic.example>", **data}}  # fmt: skip
    return ProviderEvent(svix_id, "resend", "email_event", payload, at + timedelta(seconds=1), email_id)


def actions(report: ApplyReport) -> list[tuple[str, str]]:
    return [(r.event_id, r.action) for r in report.results]


# -- pure rules -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "current, new, forward",
    [
        (None, "sent", True), ("queued", "sent", True), ("sent", "delivered", True),
        ("delivered", "sent", False), ("delivered", "delivered", False), ("delivered", "undelivered", True),
        ("failed", "delivered", False), ("undelivered", "failed", False), ("delivered", "bounced", True),
        ("bounced", "complained", True), ("complained", "bounced", False), ("sending", "queued", False),
    ],
)  # fmt: skip
def test_statuses_only_move_forward(current: str | None, new: str, forward: bool) -> None:
    assert is_forward(current, new) is forward


def test_twilio_error_codes_carry_their_meaning() -> None:
    assert twilio_error_text("30003") == "30003: unreachable destination handset"
    assert twilio_error_text("") is None and twilio_error_text("0") is None
    assert twilio_error_text("39999") == "39999: see https://www.twilio.com/docs/api/errors/39999"


# -- Twilio ---------------------------------------------------------------------------------


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_sms_status_progression_and_a_late_sent_is_ignored(wh: Warehouse, deployment: Deployment) -> None:
    land(wh, twilio("SM-ann", "queued", 1), twilio("SM-ann", "sent", 2), twilio("SM-ann", "delivered", 5))
    report = apply(wh, deployment)
    assert actions(report) == [
        ("SM-ann:queued", "status_updated"), ("SM-ann:sent", "status_updated"), ("SM-ann:delivered", "status_updated"),
    ]  # fmt: skip
    ann = outbox(wh, "sms-ann")
    assert (ann["provider_status"], ann["delivered_at"], ann["provider_status_at"]) == (
        "delivered", NOW - timedelta(minutes=25), NOW - timedelta(minutes=25),
    )  # fmt: skip
    assert ann["status"] == "sent" and ann["delivery_error"] is None

    # Twilio retried an older callback (another delivery of 'sent' with a new id)
    late = ProviderEvent("SM-ann:sent:retry", "twilio", "sms_status",
                         {"MessageSid": "SM-ann", "MessageStatus": "sent"}, NOW - timedelta(minutes=10), "SM-ann")  # fmt: skip
    land(wh, late)
    [result] = apply(wh, deployment).results
    assert (result.action, result.message_key) == ("ignored_older", "sms-ann")
    assert result.detail == "delivered kept (sent is not newer)"
    assert outbox(wh, "sms-ann")["provider_status"] == "delivered"
    assert rows(wh, "select event_id, message_key, action from herald_ops.provider_event_processing "
                    "where event_id = 'SM-ann:sent:retry'") == [("SM-ann:sent:retry", "sms-ann", "ignored_older")]  # fmt: skip


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_undelivered_records_the_error_and_a_later_delivered_is_ignored(wh: Warehouse, deployment: Deployment) -> None:
    land(wh, twilio("SM-bob", "sent", 1, to=BOB_PHONE), twilio("SM-bob", "undelivered", 3, "30003", to=BOB_PHONE))
    apply(wh, deployment)
    bob = outbox(wh, "sms-bob")
    assert (bob["provider_status"], bob["delivery_error"]) == ("undelivered", "30003: unreachable destination handset")
    assert bob["provider_status_at"] == NOW - timedelta(minutes=27) and bob["delivered_at"] is None
    # a 30003 is not an opt-out: nothing suppressed
    assert rows(wh, f"select count(*) from {SUPPRESSIONS}") == [(0,)]

    land(wh, twilio("SM-bob", "delivered", 4, to=BOB_PHONE))
    [result] = apply(wh, deployment).results
    assert result.action == "ignored_older"
    assert outbox(wh, "sms-bob")["provider_status"] == "undelivered" and outbox(wh, "sms-bob")["delivered_at"] is None


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_a_duplicate_event_is_processed_once(wh: Warehouse, deployment: Deployment) -> None:
    land(wh, twilio("SM-ann", "delivered", 5))
    land(wh, twilio("SM-ann", "delivered", 5))  # the same callback again: same id
    assert len(apply(wh, deployment).results) == 1
    assert apply(wh, deployment).results == []
    assert rows(wh, "select count(*) from herald_ops.provider_event_processing") == [(1,)]
    assert rows(wh, "select count(*) from herald_raw.provider_events") == [(1,)]


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_a_carrier_stop_suppresses_the_number_for_the_client(wh: Warehouse, deployment: Deployment) -> None:
    land(wh, twilio("SM-bob", "failed", 2, "21610", to=BOB_PHONE))
    [result] = apply(wh, deployment).results
    assert (result.action, result.messages_cancelled) == ("suppressed", 1)
    assert rows(wh, f"select client_id, channel, address, scope, reason, source, contact_id from {SUPPRESSIONS}") == [
        (CLIENT, "sms", BOB_PHONE, "all", "opt_out", "provider", "c-bob")
    ]
    assert outbox(wh, "sms-bob")["delivery_error"] == "21610: recipient unsubscribed (replied STOP to the carrier)"
    assert outbox(wh, "sms-bob-next")["status"] == "cancelled"
    with wh.session(read_only=True) as s:
        assert current_consent(s, CLIENT, "sms", BOB_PHONE) == "revoked"
    audit = rows(wh, "select actor, action, subject from herald_ops.audit_log order by action")
    assert {a[1] for a in audit} == {"suppression", "consent_change", "cancel"}
    assert all(a[0] == "provider_events" and BOB_PHONE not in (a[2] or "") for a in audit)


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_an_unknown_message_id_is_kept_as_unmatched(wh: Warehouse, deployment: Deployment) -> None:
    land(wh, twilio("SM-nobody", "delivered", 1), resend("msg_x", "email.delivered", "re-nobody", 1))
    report = apply(wh, deployment)
    assert sorted(actions(report)) == [("SM-nobody:delivered", "unmatched"), ("msg_x", "unmatched")]
    assert rows(wh, "select count(*) from herald_ops.provider_event_processing where message_key is null") == [(2,)]
    assert rows(wh, "select count(*) from herald_raw.provider_events") == [(2,)]  # kept


# -- Resend -------------------------------------------------------------------------------


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_email_delivered_opened_and_clicked(wh: Warehouse, deployment: Deployment) -> None:
    land(
        wh, resend("msg_1", "email.sent", "re-ann", 1), resend("msg_2", "email.delivered", "re-ann", 2),
        resend("msg_3", "email.opened", "re-ann", 10), resend("msg_4", "email.clicked", "re-ann", 12),
        resend("msg_5", "email.opened", "re-ann", 15),  # a second open: the first one stays
    )  # fmt: skip
    report = apply(wh, deployment)
    assert report.by_action == {"engagement_recorded": 3, "status_updated": 2}
    ann = outbox(wh, "mail-ann")
    assert ann["provider_status"] == "delivered"  # opens and clicks never change the status
    assert (ann["delivered_at"], ann["opened_at"], ann["clicked_at"]) == (
        NOW - timedelta(minutes=28), NOW - timedelta(minutes=20), NOW - timedelta(minutes=18),
    )  # fmt: skip


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_a_hard_bounce_suppresses_the_address_for_every_client(wh: Warehouse, deployment: Deployment) -> None:
    bounce = {"message": "The recipient's mailbox does not exist.", "subType": "General", "type": "Permanent"}
    land(wh, resend("msg_b", "email.bounced", "re-ann", 3, bounce=bounce))
    [result] = apply(wh, deployment).results
    assert (result.action, result.message_key) == ("suppressed", "mail-ann")
    assert rows(wh, f"select client_id, channel, address, scope, reason, source from {SUPPRESSIONS}") == [
        ("*", "email", ANN_EMAIL, "all", "hard_bounce", "provider")
    ]
    ann = outbox(wh, "mail-ann")
    assert (ann["provider_status"], ann["bounced_at"]) == ("bounced", NOW - timedelta(minutes=27))
    assert ann["delivery_error"] == "bounce Permanent/General: The recipient's mailbox does not exist."
    assert rows(wh, "select actor, action, client_id, subject, reason from herald_ops.audit_log") == [
        ("provider_events", "suppression", None, "a•••@example.com", "hard_bounce")
    ]
    assert rows(wh, "select count(*) from herald_ops.consent_events") == [(0,)]  # a bounce is no revocation


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_a_transient_bounce_suppresses_nothing(wh: Warehouse, deployment: Deployment) -> None:
    bounce = {"message": "Mailbox full", "subType": "MailboxFull", "type": "Transient"}
    land(wh, resend("msg_t", "email.bounced", "re-bob", 3, to=BOB_EMAIL, bounce=bounce))
    [result] = apply(wh, deployment).results
    assert result.action == "status_updated"
    assert rows(wh, f"select count(*) from {SUPPRESSIONS}") == [(0,)]
    assert outbox(wh, "mail-bob")["delivery_error"] == "bounce Transient/MailboxFull: Mailbox full"


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_a_complaint_suppresses_for_the_client_and_records_the_revocation(
    wh: Warehouse, deployment: Deployment
) -> None:
    land(wh, resend("msg_d", "email.delivered", "re-ann", 2), resend("msg_c", "email.complained", "re-ann", 20))
    report = apply(wh, deployment)
    assert actions(report) == [("msg_d", "status_updated"), ("msg_c", "suppressed")]
    assert rows(wh, f"select client_id, channel, address, scope, reason, source, contact_id from {SUPPRESSIONS}") == [
        (CLIENT, "email", ANN_EMAIL, "all", "complaint", "provider", "c-ann")
    ]
    assert rows(
        wh, "select client_id, contact_id, channel, address, kind, scope, source from herald_ops.consent_events"
    ) == [(CLIENT, "c-ann", "email", ANN_EMAIL, "opt_out", "all", "provider")]
    ann = outbox(wh, "mail-ann")
    assert (ann["provider_status"], ann["complained_at"], ann["delivered_at"]) == (
        "complained", NOW - timedelta(minutes=10), NOW - timedelta(minutes=28),
    )  # fmt: skip
    # the client's waiting emails to Ann are cancelled; her SMS and the other client's email are not
    assert {k: outbox(wh, k)["status"] for k in ("mail-ann-next", "mail-ann-held", "sms-ann-next", "mail-ann-other")} == {
        "mail-ann-next": "cancelled", "mail-ann-held": "cancelled", "sms-ann-next": "queued", "mail-ann-other": "queued",
    }  # fmt: skip
    assert {r[0] for r in rows(wh, "select action from herald_ops.audit_log")} == {
        "suppression",
        "consent_change",
        "cancel",
    }


# -- the web pages ----------------------------------------------------------------------------


def unsubscribe(event_id: str, contact: str = "c-ann", channel: str = "email", via: str = "one_click") -> ProviderEvent:
    payload = {"client_id": CLIENT, "contact_id": contact, "channel": channel, "scope": "all", "via": via}
    return ProviderEvent(event_id, "web", "unsubscribe", payload, NOW - timedelta(minutes=5))


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_an_unsubscribe_suppresses_cancels_and_is_idempotent(wh: Warehouse, deployment: Deployment) -> None:
    land(wh, unsubscribe("unsubscribe:tok-1"))
    [result] = apply(wh, deployment).results
    assert (result.action, result.messages_cancelled) == ("unsubscribed", 2)
    assert rows(wh, f"select client_id, channel, address, scope, reason, source, contact_id from {SUPPRESSIONS}") == [
        (CLIENT, "email", ANN_EMAIL, "all", "opt_out", "web", "c-ann")
    ]
    assert rows(
        wh, "select client_id, contact_id, channel, address, kind, scope, source from herald_ops.consent_events"
    ) == [(CLIENT, "c-ann", "email", ANN_EMAIL, "opt_out", "all", "web")]
    statuses = {k: (outbox(wh, k)["status"], outbox(wh, k)["status_reason"])
                for k in ("mail-ann-next", "mail-ann-held", "sms-ann-next", "mail-bob-next", "mail-ann-other")}  # fmt: skip
    assert statuses == {
        "mail-ann-next": ("cancelled", "unsubscribed via the web page"),
        "mail-ann-held": ("cancelled", "unsubscribed via the web page"),
        "sms-ann-next": ("queued", None), "mail-bob-next": ("queued", None), "mail-ann-other": ("queued", None),
    }  # fmt: skip
    audit_before = rows(wh, "select action from herald_ops.audit_log order by action")
    assert {a[0] for a in audit_before} == {"suppression", "consent_change", "cancel"}

    # the same event again (same id: the page was submitted twice), and applying again
    land(wh, unsubscribe("unsubscribe:tok-1"))
    assert apply(wh, deployment).results == []
    # another unsubscribe of the same contact (the page, after the one-click): nothing new
    land(wh, unsubscribe("unsubscribe:tok-1:page", via="page"))
    [again] = apply(wh, deployment).results
    assert (again.action, again.messages_cancelled) == ("already_unsubscribed", 0)
    assert rows(wh, f"select count(*) from {SUPPRESSIONS}") == [(1,)]
    assert rows(wh, "select count(*) from herald_ops.consent_events") == [(1,)]
    assert rows(wh, "select action from herald_ops.audit_log order by action") == audit_before


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_a_confirmation_records_the_appointment_response(wh: Warehouse, deployment: Deployment) -> None:
    event = ProviderEvent("confirm:tok-9", "web", "confirm", {"client_id": CLIENT, "contact_id": "c-bob", "channel": "sms"},
                          NOW - timedelta(minutes=2))  # fmt: skip
    land(wh, event)
    [result] = apply(wh, deployment).results
    assert result.action == "confirmed"
    assert rows(
        wh, "select inbound_id, client_id, contact_id, response, received_at from herald_ops.appointment_responses"
    ) == [("confirm:tok-9", CLIENT, "c-bob", "confirmed", NOW - timedelta(minutes=2))]
    assert rows(wh, "select action, client_id, contact_id from herald_ops.audit_log") == [
        ("appointment_response", CLIENT, "c-bob")
    ]


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_events_landed_as_files_are_loaded_then_applied(wh: Warehouse, deployment: Deployment, tmp_path: Any) -> None:
    home = tmp_path / "events-home"
    sink = FileSink(home)
    sink.append(twilio("SM-ann", "sent", 2), twilio("SM-ann", "delivered", 5))
    sink.append(twilio("SM-ann", "delivered", 5))  # a webhook retry
    assert load_events(wh, home) == 3
    report = apply(wh, deployment)
    assert report.by_kind == {"sms_status": 2} and report.by_action == {"status_updated": 2}
    assert load_events(wh, home) == 0 and apply(wh, deployment).results == []


# -- the sensors ----------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_the_sensors_request_a_run_while_events_or_replies_wait(
    engine: str, herald_env: Any, monkeypatch: pytest.MonkeyPatch, deployment: Deployment
) -> None:
    import dagster as dg

    from herald.compliance.landing import InboundMessage
    from herald.events.landing import open_sink
    from herald.settings import Settings
    from resources import HeraldSettingsResource, WarehouseResource
    from sensors.inbound_events import inbound_events_sensor
    from sensors.provider_events import provider_events_sensor

    def context() -> dg.SensorEvaluationContext:
        return dg.build_sensor_context(
            resources={"herald_settings": HeraldSettingsResource(), "warehouse": WarehouseResource()}
        )

    for name, value in herald_env(engine).items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    wh = Warehouse(settings.warehouse)
    wh.ensure_schema()
    assert isinstance(provider_events_sensor(context()), dg.SkipReason)
    assert isinstance(inbound_events_sensor(context()), dg.SkipReason)

    sink = open_sink(settings)  # what the web service does: files, or the landing tables on PostgreSQL
    sink.append(twilio("SM-x", "delivered", 1))
    sink.append_inbound(InboundMessage("SM-in", ANN_PHONE, "+15125550100", "C", NOW))
    first = provider_events_sensor(context())
    replies = inbound_events_sensor(context())
    assert isinstance(first, dg.RunRequest) and first.run_key.startswith("provider_events:")
    assert isinstance(replies, dg.RunRequest) and replies.run_key.startswith("inbound:")
    sink.append(twilio("SM-x", "read", 2))
    assert provider_events_sensor(context()).run_key != first.run_key  # a new batch, a new run

    # once applied (what the runs do), nothing waits
    load_events(wh, settings.home)
    with wh.session() as s:
        apply_provider_events(s, deployment, NOW)
        if engine == "postgres":
            s.execute("insert into herald_ops.inbound_processing (inbound_id, kind, action, messages_cancelled, "
                      "processed_at) values ('SM-in', 'confirm', 'confirmed', 0, ?)", [NOW])  # fmt: skip
    assert isinstance(provider_events_sensor(context()), dg.SkipReason)
    if engine == "postgres":
        assert isinstance(inbound_events_sensor(context()), dg.SkipReason)
