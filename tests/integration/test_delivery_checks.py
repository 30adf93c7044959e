"""The delivery side's asset checks on both engines: each passes after a clean delivery and fails,
with its count and masked examples, once a row breaking its promise is planted."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import dagster as dg
import pytest

from assets.delivery import checks as asset_checks
from herald.config import Deployment
from herald.delivery import checks
from herald.delivery.engine import DeliveryOptions, deliver_due
from herald.delivery.outbox import ATTEMPTS, OUTBOX, SUPPRESSIONS, OutboxMessage, enqueue
from herald.providers.sandbox import SandboxEmailProvider, SandboxSmsProvider
from herald.settings import Settings
from herald.warehouse.connection import Warehouse
from resources import HeraldConfigResource, WarehouseResource
from tests.conftest import ENGINES

CLIENT = "bright_smiles_dental"  # America/Chicago, the safe default window (9:00-20:00)
NOW = datetime(2026, 11, 23, 18, 0)  # Monday 12:00 in Austin (CST)
PHONES = ["+15125550101", "+15125550102", "+15125550103"]  # Austin area code: Chicago time, Texas law


def message(key: str, to: str, *, channel: str = "sms", contact: str | None = None) -> OutboxMessage:
    email = channel == "email"
    return OutboxMessage(
        message_key=key, client_id=CLIENT, campaign="appointment_reminder", step="remind", variant="a",
        occurrence="2026-11-23T12:00", contact_id=contact or f"contact-{key}", message_type="appointment_reminder",
        category="transactional", channel=channel, to_address=to,
        sender="hello@brightsmiles.example" if email else "+15125550100", send_after=NOW - timedelta(minutes=5),
        subject="Your visit" if email else None, body_text=f"See you soon ({key})",
        body_html="<p>See you soon</p>" if email else None,
        headers={"List-Unsubscribe": "<mailto:u@herald.example>"} if email else {},
    )  # fmt: skip


@pytest.fixture(params=ENGINES)
def delivered(request: pytest.FixtureRequest, herald_env, monkeypatch: pytest.MonkeyPatch) -> Warehouse:
    """A warehouse where three texts and an email were delivered at NOW by the sandbox providers,
    and the environment points the Dagster resources at it."""
    env = herald_env(request.param)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    warehouse = Warehouse(Settings.from_env(env).warehouse)
    warehouse.ensure_schema()
    with warehouse.session() as s:
        enqueue(s, [message(f"msg-{i}", phone) for i, phone in enumerate(PHONES)], NOW - timedelta(hours=1))
        enqueue(s, [message("mail-1", "jane.doe@example.com", channel="email")], NOW - timedelta(hours=1))
    providers = {"sms": SandboxSmsProvider(), "email": SandboxEmailProvider()}
    report = deliver_due(warehouse, providers, now=NOW, options=DeliveryOptions(batch_size=10))
    assert report.sent == 4
    return warehouse


def run_checks(warehouse: Warehouse, deployment: Deployment) -> dict[str, checks.Finding]:
    with warehouse.session() as s:
        found = [judge(s) for judge in (*checks.OUTBOX_CHECKS, *checks.DELIVERY_CHECKS)]
        found.append(checks.sent_inside_send_windows(s, deployment))
    return {f.name: f for f in found}


def plant(warehouse: Warehouse, sql: str, params: list | None = None) -> None:
    with warehouse.session() as s:
        s.execute(sql, params)


def test_every_check_passes_after_a_clean_delivery(delivered: Warehouse, deployment: Deployment) -> None:
    findings = run_checks(delivered, deployment)
    assert {name: f.violations for name, f in findings.items()} == {
        "no_duplicate_messages": 0, "every_message_accounted_for": 0, "no_message_sent_twice": 0,
        "no_suppressed_recipients": 0, "sent_inside_send_windows": 0,
    }  # fmt: skip
    assert findings["no_message_sent_twice"].counts["messages_sent"] == 4
    assert findings["sent_inside_send_windows"].counts["messages_judged"] == 4
    assert findings["every_message_accounted_for"].counts == {
        "status_sent": 4,
        "unknown_status": 0,
        "without_reason": 0,
    }
    assert findings["no_duplicate_messages"].counts["outbox_rows"] == 4
    # through Dagster: the asset checks as a run executes them, on the same warehouse
    result = asset_checks.no_suppressed_recipients(warehouse=WarehouseResource())
    assert result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert result.metadata["messages_sent"].value == 4 and result.metadata["examples"].value == "none"


def test_a_planted_duplicate_fails_no_duplicate_messages(delivered: Warehouse, deployment: Deployment) -> None:
    # the same message (client, campaign, step, contact, channel, occurrence) under another key
    twin = message("msg-0-again", PHONES[0], contact="contact-msg-0")
    with delivered.session() as s:
        enqueue(s, [twin], NOW)
    finding = run_checks(delivered, deployment)["no_duplicate_messages"]
    assert not finding.passed and finding.violations == 1
    assert finding.counts["duplicate_identities"] == 1 and finding.counts["duplicate_keys"] == 0
    assert finding.examples[0]["rows"] == 2 and "appointment_reminder/remind" in finding.examples[0]["same"]
    result = asset_checks.no_duplicate_messages(warehouse=WarehouseResource())
    assert not result.passed and result.metadata["violations"].value == 1


def test_a_second_accepted_attempt_fails_no_message_sent_twice(delivered: Warehouse, deployment: Deployment) -> None:
    plant(
        delivered,
        f"insert into {ATTEMPTS} (message_key, attempt_number, channel, provider, outcome, started_at, finished_at) "
        "values ('msg-1', 2, 'sms', 'sandbox', 'sent', ?, ?)",
        [NOW + timedelta(minutes=1), NOW + timedelta(minutes=1)],
    )
    finding = run_checks(delivered, deployment)["no_message_sent_twice"]
    assert not finding.passed and finding.violations == 1
    assert finding.examples == [{"message_key": "msg-1", "accepted_attempts": 2, "to": "+1•••••••102"}]
    result = asset_checks.no_message_sent_twice(warehouse=WarehouseResource())
    assert not result.passed and "+15125550102" not in result.metadata["examples"].value


def test_a_message_sent_after_its_suppression_fails_no_suppressed_recipients(
    delivered: Warehouse, deployment: Deployment
) -> None:
    columns = "client_id, channel, address, scope, reason, source, created_at"
    plant(delivered, f"insert into {SUPPRESSIONS} ({columns}) values (?, 'sms', ?, 'all', 'opt_out', 'sms_keyword', ?)",
          [CLIENT, PHONES[2], NOW - timedelta(days=1)])  # fmt: skip
    # an unsubscribe recorded after the email went out is no violation
    plant(delivered, f"insert into {SUPPRESSIONS} ({columns}) values ('*', 'email', ?, 'all', 'complaint', 'provider', ?)",
          ["jane.doe@example.com", NOW + timedelta(hours=1)])  # fmt: skip
    finding = run_checks(delivered, deployment)["no_suppressed_recipients"]
    assert not finding.passed and finding.violations == 1
    assert finding.examples[0]["to"] == "+1•••••••103" and finding.examples[0]["suppressed"].startswith("opt_out")
    result = asset_checks.no_suppressed_recipients(warehouse=WarehouseResource())
    assert not result.passed and result.metadata["sent_to_suppressed"].value == 1


def test_a_message_sent_at_night_fails_sent_inside_send_windows(delivered: Warehouse, deployment: Deployment) -> None:
    # 03:00 UTC on Tuesday is 21:00 on Monday in Austin: after the 20:00 close
    plant(delivered, f"update {OUTBOX} set sent_at = ? where message_key = 'msg-0'", [datetime(2026, 11, 24, 3, 0)])
    finding = run_checks(delivered, deployment)["sent_inside_send_windows"]
    assert not finding.passed and finding.violations == 1
    assert finding.examples == [
        {"message_key": "msg-0", "client": CLIENT, "to": "+1•••••••101", "sent_at_utc": "2026-11-24 03:00",
         "zones": "America/Chicago", "state": "TX"}
    ]  # fmt: skip
    result = asset_checks.sent_inside_send_windows(warehouse=WarehouseResource(), herald_config=HeraldConfigResource())
    assert not result.passed and result.metadata["outside_window"].value == 1


@pytest.mark.parametrize(
    ("sql", "problem"),
    [
        (
            f"update {OUTBOX} set status = 'failed', status_reason = null where message_key = 'mail-1'",
            "no reason given",
        ),
        (f"update {OUTBOX} set status = 'lost' where message_key = 'mail-1'", "status Herald does not know"),
    ],
)
def test_a_row_without_a_state_or_reason_fails_every_message_accounted_for(
    delivered: Warehouse, deployment: Deployment, sql: str, problem: str
) -> None:
    plant(delivered, sql)
    finding = run_checks(delivered, deployment)["every_message_accounted_for"]
    assert not finding.passed and finding.violations == 1
    assert finding.examples[0]["problem"] == problem and finding.examples[0]["to"] == "j•••@example.com"
    check: Callable[..., dg.AssetCheckResult] = asset_checks.every_message_accounted_for
    result = check(warehouse=WarehouseResource())
    assert not result.passed and "jane.doe" not in result.metadata["examples"].value


def test_the_window_check_takes_the_recipients_zone_from_the_regions_the_plan_reads(
    delivered: Warehouse, deployment: Deployment
) -> None:
    # the plan's lookup table says this number is in Hawaii: 18:00 UTC is 08:00 there, before 9:00
    plant(
        delivered,
        "insert into herald_raw.address_regions (kind, address_value, time_zones, state, checked_at) "
        "values ('phone', ?, 'Pacific/Honolulu', 'HI', ?)",
        [PHONES[1], NOW],
    )
    finding = run_checks(delivered, deployment)["sent_inside_send_windows"]
    assert finding.violations == 1
    assert (finding.examples[0]["to"], finding.examples[0]["zones"], finding.examples[0]["state"]) == (
        "+1•••••••102", "Pacific/Honolulu", "HI",
    )  # fmt: skip
