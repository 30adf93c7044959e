"""Support's manual block: cancels queued messages, stops delivery, keeps the reason,
is audited, and lifting it never lifts an opt-out. Both engines, and the CLI end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from herald.compliance.manual import BlockError, block, read_address, unblock
from herald.delivery.engine import deliver_due
from herald.delivery.outbox import OutboxMessage, enqueue
from herald.providers.sandbox import SandboxSmsProvider
from herald.warehouse.connection import Warehouse
from tests.conftest import CONFIG_DIR, ENGINES, REPO_ROOT

NOW = datetime(2026, 11, 20, 16, 0)
CLIENT = "bright_smiles_dental"


def sms(key: str, to: str) -> OutboxMessage:
    return OutboxMessage(key, CLIENT, "appointment_reminder", "reminder", "brief", "o1", f"contact-{key}",
                         "appointment_reminder", "transactional", "sms", to, "+15125550100", NOW, body_text="Hi")  # fmt: skip


def statuses(warehouse: Warehouse) -> dict[str, str]:
    with warehouse.session(read_only=True) as s:
        return dict(s.query("select message_key, status from herald_ops.outbox")[1])


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_a_block_cancels_queued_messages_and_is_audited(warehouse: Warehouse) -> None:
    address = read_address("(312) 555-0101", "US")
    assert (address.channel, address.value) == ("sms", "+13125550101")
    with warehouse.session() as s:
        enqueue(s, [sms("a", "+13125550101"), sms("b", "+13125550102")], NOW)
        assert block(s, CLIENT, address, "asked by phone on 3 May", "cli:ana", NOW) == 1
    assert statuses(warehouse) == {"a": "cancelled", "b": "queued"}
    provider = SandboxSmsProvider()
    deliver_due(warehouse, {"sms": provider}, now=NOW)
    assert [m.to for m in provider.sent] == ["+13125550102"]
    with warehouse.session(read_only=True) as s:
        (suppression,) = s.query("select reason, note, source, scope from herald_ops.suppressions")[1]
        (entry,) = s.query("select actor, action, subject, reason from herald_ops.audit_log")[1]
    assert suppression == ("manual_block", "asked by phone on 3 May", "manual", "all")
    assert entry == ("cli:ana", "manual_override", "+1•••••••101", "block: asked by phone on 3 May")


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_unblock_lifts_the_block_but_never_an_opt_out(warehouse: Warehouse) -> None:
    address = read_address("+1 312 555 0101", "US")
    with warehouse.session() as s:
        s.execute(
            "insert into herald_ops.suppressions values (?, 'sms', ?, 'all', 'opt_out', 'sms_keyword', 'STOP', null, ?)",
            [CLIENT, address.value, NOW],
        )
        block(s, CLIENT, address, "complaint", "cli:ana", NOW)
        assert unblock(s, CLIENT, address, "resolved", "cli:ana", NOW) == 1
    with warehouse.session(read_only=True) as s:
        assert s.query("select reason from herald_ops.suppressions")[1] == [("opt_out",)]
        assert s.scalar("select count(*) from herald_ops.audit_log where action = 'manual_override'") == 2


def test_addresses_that_are_neither_phone_nor_email_are_refused() -> None:
    with pytest.raises(BlockError, match="'555-01' is neither a valid phone number"):
        read_address("555-01", "US")
    with pytest.raises(BlockError, match="'ana@' is not a valid email address"):
        read_address("ana@", "US")
    assert read_address(" Ana@Example.COM ", "US").value == "ana@example.com"


def test_block_from_the_cli(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "HERALD_HOME": str(tmp_path / "home"),
        "HERALD_CONFIG_DIR": str(CONFIG_DIR),
        "HERALD_WAREHOUSE_URL": "",
    }
    herald = str(Path(sys.executable).parent / "herald")
    done = subprocess.run([herald, "block", CLIENT, "312-555-0101", "--reason", "asked by phone"],
                          env=env, cwd=REPO_ROOT, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "blocked +1•••••••101 for bright_smiles_dental (sms): 0 queued messages cancelled" in done.stdout
    rows = subprocess.run([herald, "sql", "--format", "json", "select reason, note from herald_ops.suppressions"],
                          env=env, cwd=REPO_ROOT, capture_output=True, text=True)  # fmt: skip
    assert json.loads(rows.stdout) == [{"reason": "manual_block", "note": "asked by phone"}]
    bad = subprocess.run([herald, "block", "nope", "312-555-0101", "--reason", "x"],
                         env=env, cwd=REPO_ROOT, capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 1 and "unknown client 'nope'" in bad.stderr
