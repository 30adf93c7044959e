"""Two delivery runs at once on PostgreSQL share the outbox without sending anything twice
(``for update skip locked`` claims)."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from herald.delivery.engine import DeliveryOptions, DeliveryReport, deliver_due
from herald.delivery.outbox import ATTEMPTS, OutboxMessage, enqueue, status_counts
from herald.providers.sandbox import SandboxEmailProvider, SandboxSmsProvider, read_journal
from herald.warehouse.connection import Warehouse

NOW = datetime(2026, 11, 23, 15, 0)
MESSAGES = 500


def message(n: int) -> OutboxMessage:
    email = n % 5 == 0
    return OutboxMessage(
        message_key=f"m-{n:04d}", client_id="acme", campaign="welcome", step="hello", variant="a",
        occurrence="o1", contact_id=f"c{n}", message_type="welcome", category="marketing",
        channel="email" if email else "sms",
        to_address=f"p{n}@example.com" if email else f"+1555300{n:04d}",
        sender="news@herald.example" if email else "+15550000000",
        send_after=NOW - timedelta(minutes=n % 7), subject="Hi" if email else None,
        body_text=f"Hello {n}",
    )  # fmt: skip


@pytest.mark.postgres
@pytest.mark.parametrize("warehouse", ["postgres"], indirect=True)
def test_two_runs_at_once_never_send_a_message_twice(warehouse: Warehouse, tmp_path: Path) -> None:
    with warehouse.session() as s:
        enqueue(s, [message(n) for n in range(MESSAGES)], NOW - timedelta(hours=1))
    journal_dir = tmp_path / "sandbox"
    start = threading.Barrier(2)
    reports: list[DeliveryReport] = []
    errors: list[BaseException] = []

    def run() -> None:
        providers = {
            "sms": SandboxSmsProvider(journal_dir=journal_dir, send_delay_seconds=0.001),
            "email": SandboxEmailProvider(journal_dir=journal_dir, send_delay_seconds=0.001),
        }
        start.wait()
        try:
            reports.append(deliver_due(warehouse, providers, now=NOW, options=DeliveryOptions(batch_size=25)))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors

    journal = read_journal(journal_dir / "sms.jsonl") + read_journal(journal_dir / "email.jsonl")
    counts = Counter(e["message_key"] for e in journal)
    assert len(counts) == MESSAGES
    assert max(counts.values()) == 1
    assert status_counts(warehouse) == {"sent": MESSAGES}
    assert sum(r.sent for r in reports) == sum(r.claimed for r in reports) == MESSAGES
    assert all(r.claimed > 0 for r in reports), [r.claimed for r in reports]  # both did work
    with warehouse.session(read_only=True) as s:
        assert s.scalar(f"select count(*) from {ATTEMPTS}") == MESSAGES
        assert s.scalar(f"select count(distinct message_key) from {ATTEMPTS} where outcome = 'sent'") == MESSAGES
