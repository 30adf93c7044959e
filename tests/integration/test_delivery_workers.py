"""Concurrent delivery workers: separate processes, as production runs them.

- Four workers on PostgreSQL, each calling ``deliver_due`` on one outbox at once, send every
  message exactly once (the provider's journal, the attempt rows and the outbox agree), with or
  without a rate limit they share.
- A rate limit kept in a shared storage (Redis) holds one rate across processes: three
  processes asking for slots as fast as they can get, together, what one would.
"""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from herald.delivery.engine import DeliveryOptions, deliver_due
from herald.delivery.outbox import ATTEMPTS, enqueue, status_counts
from herald.delivery.ratelimit import SendRateLimiter, rate_limit_storage
from herald.providers.sandbox import SandboxEmailProvider, SandboxSmsProvider, read_journal
from herald.settings import parse_warehouse_url
from herald.warehouse.connection import Warehouse
from tests.integration.test_delivery_concurrency import message  # the same outbox rows

NOW = datetime(2026, 11, 23, 15, 0)
WORKERS = 4
MESSAGES = 2000


def _deliver(url: str, home: str, journal: str, options: DeliveryOptions, start, results) -> None:
    """One worker process: waits for the others, then delivers until nothing is due."""
    warehouse = Warehouse(parse_warehouse_url(url, Path(home)))
    providers = {"sms": SandboxSmsProvider(journal_dir=journal), "email": SandboxEmailProvider(journal_dir=journal)}
    start.wait(timeout=60)
    report = deliver_due(warehouse, providers, now=NOW, options=options)
    results.put((report.claimed, report.sent))


def _run_workers(warehouse: Warehouse, tmp_path: Path, options: DeliveryOptions) -> tuple[list[tuple], list[dict]]:
    with warehouse.session() as s:
        enqueue(s, [message(n) for n in range(MESSAGES)], NOW - timedelta(hours=1))
    journal = tmp_path / "sandbox"
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(WORKERS), ctx.Queue()
    args = (warehouse.target.url, str(tmp_path / "home"), str(journal), options, start, results)
    procs = [ctx.Process(target=_deliver, args=args) for _ in range(WORKERS)]
    for proc in procs:
        proc.start()
    reports = [results.get(timeout=180) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
        assert proc.exitcode == 0
    return reports, read_journal(journal / "sms.jsonl") + read_journal(journal / "email.jsonl")


def _assert_every_message_exactly_once(warehouse: Warehouse, reports: list[tuple], journal: list[dict]) -> None:
    sends = Counter(e["message_key"] for e in journal)
    assert len(sends) == MESSAGES and max(sends.values()) == 1  # the provider saw each once
    assert status_counts(warehouse) == {"sent": MESSAGES}
    assert sum(claimed for claimed, _ in reports) == sum(sent for _, sent in reports) == MESSAGES
    assert sum(1 for claimed, _ in reports if claimed) >= 2, reports  # they did run side by side
    with warehouse.session(read_only=True) as s:
        assert s.scalar(f"select count(*) from {ATTEMPTS}") == MESSAGES
        assert s.scalar(f"select count(distinct message_key) from {ATTEMPTS} where outcome = 'sent'") == MESSAGES


@pytest.mark.postgres
@pytest.mark.parametrize("warehouse", ["postgres"], indirect=True)
def test_four_worker_processes_send_every_message_exactly_once(warehouse: Warehouse, tmp_path: Path) -> None:
    options = DeliveryOptions(batch_size=50, rate_per_second={"sms": 0, "email": 0}, pricing=None)
    reports, journal = _run_workers(warehouse, tmp_path, options)
    _assert_every_message_exactly_once(warehouse, reports, journal)


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.parametrize("warehouse", ["postgres"], indirect=True)
def test_four_workers_under_one_shared_rate_limit_send_every_message_once_at_that_rate(
    warehouse: Warehouse, tmp_path: Path, redis_url: str
) -> None:
    rate = 1000  # SMS per second for all four together; 1,500 SMS take at least half a second
    options = DeliveryOptions(
        batch_size=100,
        rate_per_second={"sms": rate, "email": 0},
        rate_limit_storage=redis_url,
        rate_limit_key_prefix=f"herald-test-{uuid.uuid4().hex}",
        pricing=None,
    )
    reports, journal = _run_workers(warehouse, tmp_path, options)
    _assert_every_message_exactly_once(warehouse, reports, journal)
    # when the provider accepted each text (the run's own clock is frozen at NOW)
    times = sorted(datetime.fromisoformat(e["accepted_at"]).timestamp() for e in journal if e["channel"] == "sms")
    assert times[-1] - times[0] >= 0.9 * (len(times) - rate) / rate  # 1,500 texts: at least ~0.5 s
    # no one-second window holds more than the rate (and a few of the last blocks' slots, 0.5% of
    # it per worker, taken just before their calls)
    most, left = 0, 0
    for right, t in enumerate(times):
        while t - times[left] >= 1.0:
            left += 1
        most = max(most, right - left + 1)
    assert most <= rate * 1.05, most


def _take_slots(url: str, prefix: str, rate: int, seconds: float, start, results) -> None:
    limiter = SendRateLimiter({"twilio": rate}, storage=rate_limit_storage(url, key_prefix=prefix))
    start.wait(timeout=60)
    deadline = time.time() + seconds
    taken = []
    while time.time() < deadline:
        limiter.acquire("twilio", "+15550000000")
        taken.append(time.time())
    results.put(taken)


@pytest.mark.redis
def test_a_shared_rate_limit_holds_one_rate_across_processes(redis_url: str) -> None:
    rate, seconds, processes = 40, 2.5, 3
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(processes), ctx.Queue()
    args = (redis_url, f"herald-test-{uuid.uuid4().hex}", rate, seconds, start, results)
    procs = [ctx.Process(target=_take_slots, args=args) for _ in range(processes)]
    for proc in procs:
        proc.start()
    taken = sorted(t for _ in procs for t in results.get(timeout=60))
    for proc in procs:
        proc.join(timeout=30)
    # each process alone would take 40 a second: together they take 40 a second, not 120
    assert len(taken) <= rate * (seconds + 1) + processes
    assert len(taken) >= rate * seconds * 0.5  # and they did get slots while they waited
    most, left = 0, 0
    for right, t in enumerate(taken):
        while t - taken[left] >= 1.0:
            left += 1
        most = max(most, right - left + 1)
    assert most <= rate + processes, most  # any one second: the rate (a slot's timestamp is taken just after it)
