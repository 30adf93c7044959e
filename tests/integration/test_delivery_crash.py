"""A delivery run killed mid-batch (SIGKILL after some sends, before the batch is recorded):
the next run reconciles with the sandbox journal and every message goes out exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from herald.delivery.engine import DeliveryOptions, deliver_due
from herald.delivery.outbox import ATTEMPTS, OUTBOX, OutboxMessage, enqueue, status_counts
from herald.providers.factory import providers_from_env
from herald.providers.sandbox import read_journal
from herald.settings import Settings
from herald.warehouse.connection import Warehouse
from tests.conftest import ENGINES, REPO_ROOT

SMS, EMAILS = 24, 8
RUN_DELIVERY = """
import sys
from herald.delivery.engine import DeliveryOptions, deliver_due
from herald.providers.factory import providers_from_env
from herald.settings import Settings
from herald.warehouse.connection import Warehouse

settings = Settings.from_env()
deliver_due(Warehouse(settings.warehouse), providers_from_env(home=settings.home),
            options=DeliveryOptions(batch_size=int(sys.argv[1])))
"""


def message(n: int, channel: str, send_after: datetime) -> OutboxMessage:
    email = channel == "email"
    return OutboxMessage(
        message_key=f"{channel}-{n:03d}", client_id="acme", campaign="welcome", step="hello",
        variant="a", occurrence="o1", contact_id=f"c{n}", message_type="welcome",
        category="marketing", channel=channel,
        to_address=f"p{n}@example.com" if email else f"+1555200{n:04d}",
        sender="news@herald.example" if email else "+15550000000", send_after=send_after,
        subject="Hi" if email else None, body_text=f"Hello {n}",
    )  # fmt: skip


def journal(home: Path) -> list[dict]:
    return read_journal(home / "sandbox" / "sms.jsonl") + read_journal(home / "sandbox" / "email.jsonl")


@pytest.mark.parametrize("engine", ENGINES)
def test_killed_run_is_reconciled_and_nothing_is_sent_twice(
    engine: str, herald_env: Callable[[str], dict[str, str]]
) -> None:
    env = herald_env(engine)
    settings = Settings.from_env(env)
    warehouse = Warehouse(settings.warehouse)
    warehouse.ensure_schema()
    now = datetime.now(UTC).replace(tzinfo=None)
    with warehouse.session() as s:
        enqueue(s, [message(n, "sms", now - timedelta(minutes=1)) for n in range(SMS)], now)
        enqueue(s, [message(n, "email", now - timedelta(minutes=1)) for n in range(EMAILS)], now)

    child_env = {**os.environ, **env, "HERALD_SANDBOX_SEND_DELAY_SECONDS": "0.05", "PYTHONPATH": str(REPO_ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", RUN_DELIVERY, str(SMS + EMAILS)], env=child_env, cwd=REPO_ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while len(journal(settings.home)) < 6:
            assert child.poll() is None, child.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "the delivery run journaled nothing in 30 s"
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL

    journaled = {e["message_key"] for e in journal(settings.home)}
    assert 6 <= len(journaled) < SMS + EMAILS
    # the batch was claimed but never recorded
    assert status_counts(warehouse) == {"sending": SMS + EMAILS}

    providers = providers_from_env(env, home=settings.home)
    report = deliver_due(warehouse, providers, options=DeliveryOptions(lease_seconds=0))

    counts = Counter(e["message_key"] for e in journal(settings.home))
    assert len(counts) == SMS + EMAILS
    assert set(counts.values()) == {1}, [k for k, n in counts.items() if n > 1]
    assert status_counts(warehouse) == {"sent": SMS + EMAILS}
    assert report.reconciled_sent == len(journaled)
    assert report.reconciled_not_sent == report.sent == SMS + EMAILS - len(journaled)
    with warehouse.session(read_only=True) as s:
        _, outcomes = s.query(f"select message_key, outcome from {ATTEMPTS} order by message_key, started_at")
        _, ids = s.query(f"select message_key, provider_message_id from {OUTBOX}")
    by_key: dict[str, list[str]] = {}
    for key, outcome in outcomes:
        by_key.setdefault(key, []).append(outcome)
    for key, seen in by_key.items():
        expected = ["reconciled_sent"] if key in journaled else ["reconciled_not_sent", "sent"]
        assert sorted(seen) == sorted(expected), key
    journal_ids = {e["message_key"]: e["provider_message_id"] for e in journal(settings.home)}
    assert dict(ids) == journal_ids
