"""Staff alerts on both engines: each kind (failed or held messages, low delivery rate, provider
outage) fires once at its crossing with its counts and masked reasons, stays quiet while open,
recovers and fires again at a new crossing; a client without contact.email is recorded as such;
a credit purchase requeues the messages held for insufficient credits, audited."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import pytest

from herald.alerts import FAILED_OR_HELD, LOW_DELIVERY_RATE, PROVIDER_OUTAGE, STAFF_ALERTS, check_staff_alerts
from herald.billing.credits import add_credits
from herald.config import Deployment
from herald.delivery.engine import deliver_due
from herald.providers.sandbox import SandboxEmailProvider
from herald.warehouse.connection import Warehouse
from tests.conftest import ENGINES
from tests.integration.test_delivery_engine import FAST, NOW, outbox_message, put, rows, sandbox, statuses

CLINIC = "bright_smiles_dental"  # contact.email frontdesk@brightsmiles.example
PHONE = "+15125550142"


def set_status(warehouse: Warehouse, keys: list[str], status: str, reason: str | None, at: datetime) -> None:
    with warehouse.session() as s:
        for key in keys:
            s.execute("update herald_ops.outbox set status = ?, status_reason = ?, updated_at = ? where message_key = ?",
                      [status, reason, at, key])  # fmt: skip


def receipts(warehouse: Warehouse, keys: list[str], provider_status: str, at: datetime) -> None:
    with warehouse.session() as s:
        for key in keys:
            s.execute("update herald_ops.outbox set status = 'sent', provider_status = ?, provider_status_at = ?, "
                      "updated_at = ? where message_key = ?", [provider_status, at, at, key])  # fmt: skip


def messages(prefix: str, n: int, client: str = CLINIC) -> list[str]:
    keys = [f"{prefix}-{i:02d}" for i in range(n)]
    put(Warehouse_of[0], *[outbox_message(k, client=client) for k in keys])
    return keys


Warehouse_of: list[Warehouse] = []  # the test's warehouse, for the helpers above


@pytest.fixture(autouse=True)
def _current(warehouse: Warehouse):
    Warehouse_of[:] = [warehouse]
    yield
    Warehouse_of.clear()


def checker(warehouse: Warehouse, deployment: Deployment, email: SandboxEmailProvider):
    def check(at: datetime):
        with warehouse.session() as s:
            return check_staff_alerts(s, deployment, {"email": email}, at)

    return check


def alert_rows(warehouse: Warehouse) -> list[tuple]:
    return rows(warehouse, f"select client_id, kind, subject, observed, total, status, email_status from {STAFF_ALERTS} "
                           "order by crossed_at, kind, subject")  # fmt: skip


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_failed_or_held_fires_once_per_crossing_with_counts_and_masked_reasons(
    warehouse: Warehouse, deployment: Deployment, caplog: pytest.LogCaptureFixture
) -> None:
    email = SandboxEmailProvider()
    check = checker(warehouse, deployment, email)
    at = NOW - timedelta(hours=1)
    keys = messages("m", 14)
    set_status(warehouse, keys[0:3], "held", "insufficient credits (balance 0, needs 1)", at)
    set_status(
        warehouse, keys[3:5], "held", "template 'reminder': variable 'first_name' is undefined for contact c1", at
    )
    set_status(warehouse, keys[5:6], "held", "PHI guard: SSN-like number (***-**-6789)", at)
    set_status(warehouse, keys[6:9], "failed", f"The 'To' number {PHONE} is not a valid phone number (code 21211)", at)
    assert check(NOW).fired == []  # 9 failed or held: under 10

    set_status(warehouse, keys[9:10], "failed", f"The 'To' number {PHONE} is not a valid phone number (code 21211)", at)
    with caplog.at_level(logging.WARNING, logger="herald.alerts"):
        result = check(NOW)
    assert [(a.client_id, a.kind, a.observed, a.total, a.email_status) for a in result.fired] == [
        (CLINIC, FAILED_OR_HELD, 10, 14, "sent")
    ]
    details = result.fired[0].details
    assert {k: details[k] for k in ("failed", "insufficient_credits", "missing_variable", "phi", "other_held")} == {
        "failed": 4, "insufficient_credits": 3, "missing_variable": 2, "phi": 1, "other_held": 0,
    }  # fmt: skip
    (sent,) = email.sent
    assert sent.to == "frontdesk@brightsmiles.example" and sent.message_key == result.fired[0].message_key
    assert "10 of your 14 messages failed or were held" in sent.text
    assert "held for insufficient credits: 3" in sent.text and "held by the PHI guard: 1" in sent.text
    assert PHONE not in sent.text and "+1•••••••142" in sent.text and "buy credits" in sent.text
    assert any("staff alert" in r.message and r.levelno == logging.WARNING for r in caplog.records)
    assert PHONE not in caplog.text

    assert check(NOW + timedelta(minutes=5)).fired == []  # still the same crossing
    assert len(email.sent) == 1

    recovered = check(NOW + timedelta(hours=24))  # the failures left the 24 h window
    assert [a.kind for a in recovered.recovered] == [FAILED_OR_HELD] and recovered.fired == []
    later = NOW + timedelta(hours=25)
    set_status(warehouse, messages("n", 10), "failed", "carrier rejected", later)
    again = check(later)
    assert [(a.kind, a.observed) for a in again.fired] == [(FAILED_OR_HELD, 10)]
    assert len(email.sent) == 2 and email.sent[1].message_key != email.sent[0].message_key
    assert [r[1:] for r in alert_rows(warehouse)] == [
        (FAILED_OR_HELD, "", 10, 14, "recovered", "sent"), (FAILED_OR_HELD, "", 10, 10, "open", "sent"),
    ]  # fmt: skip


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_low_delivery_rate_fires_once_past_the_minimum_outcomes(warehouse: Warehouse, deployment: Deployment) -> None:
    email = SandboxEmailProvider()
    check = checker(warehouse, deployment, email)
    at = NOW - timedelta(hours=2)
    keys = messages("d", 19)
    receipts(warehouse, keys[:17], "delivered", at)
    receipts(warehouse, keys[17:18], "undelivered", at)
    receipts(warehouse, keys[18:], "bounced", at)
    assert check(NOW).fired == []  # 19 final outcomes: under the 20 needed to judge

    more = messages("e", 1)
    receipts(warehouse, more, "failed", at)
    fired = check(NOW).fired
    assert [(a.kind, a.observed, a.total) for a in fired] == [(LOW_DELIVERY_RATE, 17, 20)]
    assert fired[0].details["rate"] == 0.85
    assert "17 of 20 messages" in email.sent[0].text and "85.0%" in email.sent[0].subject
    assert check(NOW + timedelta(minutes=5)).fired == []

    receipts(warehouse, messages("f", 40), "delivered", NOW)  # 57 of 60: 95%, not below
    assert [a.kind for a in check(NOW + timedelta(minutes=10)).recovered] == [LOW_DELIVERY_RATE]
    receipts(warehouse, messages("g", 5), "bounced", NOW)  # 57 of 65
    again = check(NOW + timedelta(minutes=15)).fired
    assert [(a.kind, a.observed, a.total) for a in again] == [(LOW_DELIVERY_RATE, 57, 65)]
    assert len(email.sent) == 2


def attempts(warehouse: Warehouse, key: str, outcomes: list[str], start: datetime, provider: str = "twilio") -> None:
    with warehouse.session() as s:
        s.insert_rows(
            "herald_ops.delivery_attempts",
            ["message_key", "attempt_number", "channel", "provider", "outcome", "error_code", "error_reason",
             "started_at", "finished_at"],
            [(key, n + 1, "sms", provider, outcome, None if outcome == "sent" else "503",
              None if outcome == "sent" else f"service unavailable for {PHONE}",
              start + timedelta(minutes=n), start + timedelta(minutes=n, seconds=1))
             for n, outcome in enumerate(outcomes)],
        )  # fmt: skip


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_a_provider_outage_fires_once_after_k_transient_failures(warehouse: Warehouse, deployment: Deployment) -> None:
    email = SandboxEmailProvider()
    check = checker(warehouse, deployment, email)
    (key,) = messages("p", 1)
    attempts(warehouse, key, ["sent", *["transient_error"] * 4], NOW - timedelta(hours=1))
    assert check(NOW).fired == []  # 4 failures after a success
    attempts(warehouse, key, ["transient_error"], NOW - timedelta(minutes=10))
    fired = check(NOW).fired
    assert [(a.kind, a.subject, a.observed, a.total) for a in fired] == [(PROVIDER_OUTAGE, "twilio", 5, 5)]
    assert PHONE not in email.sent[0].text and "twilio" in email.sent[0].subject
    assert "+1•••••••142" in (fired[0].details["latest_error"] or "")
    assert check(NOW + timedelta(minutes=1)).fired == []

    attempts(warehouse, key, ["sent"], NOW + timedelta(minutes=2))
    assert [a.kind for a in check(NOW + timedelta(minutes=5)).recovered] == [PROVIDER_OUTAGE]
    attempts(warehouse, key, ["transient_error"] * 5, NOW + timedelta(minutes=10))
    assert [a.subject for a in check(NOW + timedelta(minutes=20)).fired] == ["twilio"]
    assert [r[1:3] + r[5:] for r in alert_rows(warehouse)] == [
        (PROVIDER_OUTAGE, "twilio", "recovered", "sent"), (PROVIDER_OUTAGE, "twilio", "open", "sent"),
    ]  # fmt: skip


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_a_client_without_contact_email_is_recorded_and_the_operator_is_emailed(
    warehouse: Warehouse, deployment: Deployment
) -> None:
    clinic = deployment.clients[CLINIC]
    no_contact = clinic.model_copy(update={"config": clinic.config.model_copy(update={"contact": type(
        clinic.config.contact)()})})  # fmt: skip
    herald = deployment.herald.model_copy(update={"operator_email": "ops@herald.example"})
    changed = deployment.model_copy(update={"herald": herald, "clients": {**deployment.clients, CLINIC: no_contact}})
    email = SandboxEmailProvider()
    set_status(warehouse, messages("h", 10), "failed", "carrier rejected", NOW - timedelta(hours=1))
    with warehouse.session() as s:
        (alert,) = check_staff_alerts(s, changed, {"email": email}, NOW).fired
    assert (alert.email_status, alert.email_error) == (
        "no_contact",
        f"{CLINIC} has no contact.email in its client.yaml",
    )
    assert alert.operator_email_status == "sent"
    assert [m.to for m in email.sent] == ["ops@herald.example"]
    assert alert.alert_id in email.sent[0].text
    assert alert_rows(warehouse) == [(CLINIC, FAILED_OR_HELD, "", 10, 10, "open", "no_contact")]


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_a_purchase_requeues_the_messages_held_for_insufficient_credits(warehouse: Warehouse) -> None:
    with warehouse.session() as s:
        add_credits(s, "acme", "1", "first", "test", NOW - timedelta(hours=2))
    put(warehouse, *[outbox_message(k, to=f"+1555000000{i}") for i, k in enumerate(["a", "b", "c"])])
    put(warehouse, outbox_message("phi", status="held", reason="PHI guard: SSN-like number (***-**-6789)"))
    put(warehouse, outbox_message("other", client="other", status="held",
                                  reason="insufficient credits (balance 0, needs 1)"))  # fmt: skip
    first = deliver_due(warehouse, sandbox(), now=NOW, options=FAST)
    assert (first.sent, first.held) == (1, 2)
    held = {k for k, v in statuses(warehouse).items() if v == "held"}
    assert held == {"b", "c", "phi", "other"}

    with warehouse.session() as s:
        add_credits(s, "acme", "-0.5", "adjustment", "test", NOW, kind="adjustment")
    assert {k for k, v in statuses(warehouse).items() if v == "held"} == held  # an adjustment requeues nothing

    with warehouse.session() as s:
        add_credits(s, "acme", "1.5", "INV-7", "cli:ops", NOW + timedelta(minutes=1))
    now_statuses = statuses(warehouse)
    assert {k: now_statuses[k] for k in ("b", "c", "phi", "other")} == {
        "b": "queued", "c": "queued", "phi": "held", "other": "held",
    }  # fmt: skip
    assert rows(warehouse, "select status_reason from herald_ops.outbox where message_key = 'b'") == [(None,)]
    audited = rows(warehouse, "select actor, client_id, reason, detail from herald_ops.audit_log "
                              "where action = 'requeue'")  # fmt: skip
    assert [(a, c, r) for a, c, r, _ in audited] == [("cli:ops", "acme", "insufficient credits: credits purchased")]
    assert '"requeued": 2' in audited[0][3]

    # the claim checks the balance again: 1 credit (0 - 0.5 + 1.5) sends one, the other is held again
    second = deliver_due(warehouse, sandbox(), now=NOW + timedelta(minutes=2), options=FAST)
    assert (second.sent, second.held) == (1, 1)


def test_the_asset_records_alerts_as_metadata_and_a_failed_check(
    warehouse: Warehouse, herald_env, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dagster as dg

    from assets.alerts.staff_alerts import NO_OPEN_ALERTS_CHECK, STAFF_ALERTS_KEY, staff_alerts, utcnow
    from resources import HeraldConfigResource, ProvidersResource, WarehouseResource

    for name, value in herald_env("duckdb").items():
        if name.startswith("HERALD_"):
            monkeypatch.setenv(name, value)
    from herald.settings import Settings

    target = Warehouse(Settings.from_env().warehouse)
    target.ensure_schema()
    Warehouse_of[:] = [target]
    set_status(target, messages("z", 10), "failed", f"refused {PHONE}", utcnow() - timedelta(hours=1))
    resources = {"warehouse": WarehouseResource(), "herald_config": HeraldConfigResource(),
                 "providers": ProvidersResource()}  # fmt: skip

    result = dg.materialize([staff_alerts], resources=resources)
    assert result.success
    (materialization,) = result.asset_materializations_for_node(staff_alerts.node_def.name)
    assert materialization.asset_key == STAFF_ALERTS_KEY
    assert materialization.metadata["alerts_fired"].value == 1
    table = materialization.metadata["open_alerts"].value
    assert f"| {CLINIC} | {FAILED_OR_HELD} | - | 10 | 10 | >= 10 |" in table and PHONE not in table
    (check,) = result.get_asset_check_evaluations()
    assert (check.check_name, check.passed) == (NO_OPEN_ALERTS_CHECK, False)


def test_the_sensor_requests_one_check_per_outbox_change() -> None:
    import dagster as dg

    from assets.delivery.campaigns import DELIVERY_KEY
    from sensors.staff_alerts import staff_alerts_sensor

    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance)
        assert isinstance(staff_alerts_sensor(context), dg.SkipReason)
        instance.report_runless_asset_event(dg.AssetMaterialization(DELIVERY_KEY))
        request = staff_alerts_sensor(context)
        assert isinstance(request, dg.RunRequest) and request.run_key.startswith("staff_alerts-after:")
        assert isinstance(staff_alerts_sensor(dg.build_sensor_context(instance=instance, cursor=context.cursor)),
                          dg.SkipReason)  # fmt: skip


def test_the_cli_lists_alerts(warehouse: Warehouse, deployment: Deployment, herald_env) -> None:
    import os
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    env = {**os.environ, **herald_env("duckdb")}
    set_status(warehouse, messages("c", 10), "failed", "carrier rejected", NOW - timedelta(hours=1))
    with warehouse.session() as s:
        check_staff_alerts(s, deployment, {"email": SandboxEmailProvider()}, NOW)

    def herald(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "herald.cli", "alerts", "list", *args], env=env, cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=120)  # fmt: skip

    listed = herald(CLINIC, "--open")
    assert listed.returncode == 0, listed.stderr
    assert CLINIC in listed.stdout and FAILED_OR_HELD in listed.stdout and "open" in listed.stdout
    unknown = herald("nobody")
    assert unknown.returncode == 1 and "unknown client 'nobody'" in unknown.stderr


def test_reasons_are_masked_but_dates_and_codes_stay_readable() -> None:
    from herald.alerts.staff import mask_text

    assert mask_text(f"To {PHONE} at 2026-11-23 15:00 (code 21211), 5125550142, jane@x.example") == (
        "To +1•••••••142 at 2026-11-23 15:00 (code 21211), •••••••142, j•••@x.example"
    )
