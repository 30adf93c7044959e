"""Benchmark: delivery on PostgreSQL by concurrent workers (separate processes), with and
without a provider rate limit that all of them share.

A fresh database ``bench_delivery_<pid>`` on the server gets N queued SMS in the outbox; then
``--workers`` processes start at the same instant, each calling ``deliver_due`` with the sandbox
SMS provider (journal on, one journal file shared by all, as on one host) until nothing is due.
Two cases:

1. **unlimited** — no rate limit: aggregate messages per second (N ÷ first start to last end);
2. **rate limited** — ``--rate`` requests per second per sender (one sender), counted in the
   shared storage (``--rate-limit-storage``, a Redis): the rate achieved at the provider, from
   the journal's acceptance times, against the limit: the mean of the run's whole seconds and
   the most in any one-second window, held when both are within 5% of it.

Both count duplicates three ways (journal lines per message key, ``sent`` attempt rows per key,
outbox rows not ``sent``), each must be 0, and every message must be sent exactly once. One
JSON line per case on stdout; all of them in ``bench/out/delivery_workers.json``. The database
is dropped at the end.

    .venv/bin/python bench/delivery_workers.py                       # 100,000 + 20,000 messages, 4 workers
    .venv/bin/python bench/delivery_workers.py --messages 20000 --rate-messages 6000 --repeat 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import psycopg2  # noqa: E402

from herald.delivery.engine import DeliveryOptions, deliver_due  # noqa: E402
from herald.delivery.outbox import ATTEMPTS, OUTBOX, OutboxMessage, enqueue  # noqa: E402
from herald.providers.sandbox import SandboxSmsProvider, read_journal  # noqa: E402
from herald.settings import parse_warehouse_url  # noqa: E402
from herald.warehouse.connection import Warehouse  # noqa: E402

OUT = REPO / "bench" / "out"
NOW = datetime(2026, 11, 20, 16, 0)
SENDER = "+15125550100"
BODY = (
    "Hi {n}, this is Bright Smiles Dental: your cleaning is tomorrow at 10:15 AM. "
    "Reply C to confirm or R to reschedule. Reply STOP to opt out."
)
TARGET_PER_SECOND = 10_000
RATE_TOLERANCE = 0.05


def _message(n: int) -> OutboxMessage:
    return OutboxMessage(
        message_key=f"bench-{n:07d}", client_id="bright_smiles_dental", campaign="appointment_reminder",
        step="reminder", variant="brief", occurrence="bench", contact_id=f"contact-{n:07d}",
        message_type="appointment_reminder", category="transactional", channel="sms",
        to_address=f"+1312{5550000 + n:07d}", sender=SENDER, send_after=NOW - timedelta(minutes=n % 60),
        body_text=BODY.format(n=n), sms_segments=1, sms_encoding="GSM-7",
    )  # fmt: skip


def _admin(server: str):
    conn = psycopg2.connect(server.rstrip("/") + "/postgres")
    conn.autocommit = True
    return conn


def _fill(url: str, n: int) -> Warehouse:
    warehouse = Warehouse(parse_warehouse_url(url, Path(tempfile.gettempdir())))
    warehouse.ensure_schema()
    with warehouse.session() as s:
        s.execute(f"truncate {OUTBOX}, {ATTEMPTS}")
        for start in range(0, n, 50_000):
            enqueue(s, [_message(i) for i in range(start, min(n, start + 50_000))], NOW - timedelta(hours=1))
    with warehouse.session() as s:
        s.execute(f"analyze {OUTBOX}")
    return warehouse


def worker(args: argparse.Namespace) -> None:
    """One worker process: waits for the common start, delivers until nothing is due."""
    warehouse = Warehouse(parse_warehouse_url(args.url, Path(tempfile.gettempdir())))
    provider = SandboxSmsProvider(journal_dir=args.journal)
    options = DeliveryOptions(
        batch_size=args.batch_size,
        rate_per_second={"sms": args.rate},
        rate_limit_storage=args.rate_limit_storage,
        rate_limit_key_prefix=args.key_prefix,
        pricing=None,
    )
    time.sleep(max(0.0, args.start_at - time.time()))
    started = time.time()
    report = deliver_due(warehouse, {"sms": provider}, now=NOW, options=options)
    ended = time.time()
    print(json.dumps({"started": started, "ended": ended, "claimed": report.claimed, "sent": report.sent}))


def _run_workers(args: argparse.Namespace, url: str, journal: Path, rate: float, prefix: str) -> list[dict]:
    start_at = time.time() + 3.0  # every worker imported and connected before the clock starts
    command = [sys.executable, __file__, "--worker", "--url", url, "--journal", str(journal),
               "--rate", str(rate), "--rate-limit-storage", args.rate_limit_storage, "--key-prefix", prefix,
               "--batch-size", str(args.batch_size), "--start-at", str(start_at)]  # fmt: skip
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(args.workers)]
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=900)
        if proc.returncode != 0:
            raise SystemExit(f"a worker failed (exit {proc.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def _duplicates(warehouse: Warehouse, journal: Path, n: int) -> dict:
    entries = read_journal(journal / "sms.jsonl")
    per_key = Counter(e["message_key"] for e in entries)
    with warehouse.session(read_only=True) as s:
        sent_twice = s.scalar(
            f"select count(*) from (select message_key from {ATTEMPTS} where outcome = 'sent' "
            "group by message_key having count(*) > 1) as t"
        )
        sent_attempts = s.scalar(f"select count(distinct message_key) from {ATTEMPTS} where outcome = 'sent'")
        not_sent = s.scalar(f"select count(*) from {OUTBOX} where status <> 'sent'")
    return {
        "journal_duplicates": sum(c - 1 for c in per_key.values() if c > 1),
        "attempt_duplicates": int(sent_twice),
        "outbox_not_sent": int(not_sent),
        "exactly_once": len(per_key) == n and max(per_key.values(), default=0) == 1 and int(sent_attempts) == n,
        "entries": entries,
    }


def _provider_rate(entries: list[dict]) -> dict:
    """The rate the provider saw, from its acceptance times: the mean count of the run's whole
    seconds (from the first acceptance; the last, partial second left out), the most in any
    one-second window, and (for reference) count ÷ first-to-last time, which a moving window's
    burst at the start inflates by up to one window's worth over a short run."""
    times = sorted(datetime.fromisoformat(e["accepted_at"]).timestamp() for e in entries)
    if len(times) < 2:
        return {"achieved_per_second": 0.0, "max_in_any_second": len(times), "first_to_last_per_second": 0.0}
    most, left = 0, 0
    for right, t in enumerate(times):
        while t - times[left] >= 1.0:
            left += 1
        most = max(most, right - left + 1)
    whole = int(times[-1] - times[0])
    buckets = Counter(int(t - times[0]) for t in times if t - times[0] < whole)
    achieved = sum(buckets.values()) / whole if whole else float(len(times))
    return {
        "achieved_per_second": round(achieved, 1),
        "max_in_any_second": most,
        "first_to_last_per_second": round((len(times) - 1) / (times[-1] - times[0]), 1),
    }


def run_case(args: argparse.Namespace, url: str, n: int, rate: float, label: str) -> dict:
    runs = []
    for repeat in range(args.repeat):
        warehouse = _fill(url, n)
        with tempfile.TemporaryDirectory(prefix="herald-bench-journal-") as tmp:
            journal = Path(tmp)
            results = _run_workers(args, url, journal, rate, f"herald-bench-{os.getpid()}-{label}-{repeat}")
            seconds = max(r["ended"] for r in results) - min(r["started"] for r in results)
            checks = _duplicates(warehouse, journal, n)
            entries = checks.pop("entries")
            run = {"seconds": round(seconds, 3), "per_second": round(n / seconds), **checks,
                   "per_worker_sent": [r["sent"] for r in results]}  # fmt: skip
            if rate:
                run.update(_provider_rate(entries))
            runs.append(run)
        print(f"  {label} run {repeat + 1}: {json.dumps(run)}", file=sys.stderr, flush=True)
    middle = sorted(runs, key=lambda r: r["per_second"])[len(runs) // 2]
    result = {
        "case": f"delivery_postgres_{args.workers}_workers" + ("_rate_limited" if rate else ""),
        "messages": n,
        "workers": args.workers,
        "batch_size": args.batch_size,
        "runs": len(runs),
        "median_per_second": round(statistics.median(r["per_second"] for r in runs)),
        "per_second_each": [r["per_second"] for r in runs],
        "duplicates": max(r["journal_duplicates"] + r["attempt_duplicates"] for r in runs),
        "outbox_not_sent": max(r["outbox_not_sent"] for r in runs),
        "exactly_once": all(r["exactly_once"] for r in runs),
    }
    if rate:
        deviation = [abs(r["achieved_per_second"] / rate - 1) for r in runs]
        burst = [r["max_in_any_second"] / rate - 1 for r in runs]
        result.update(
            rate_limit_per_second=rate,
            rate_limit_storage=args.rate_limit_storage,
            achieved_per_second_each=[r["achieved_per_second"] for r in runs],
            max_in_any_second_each=[r["max_in_any_second"] for r in runs],
            worst_deviation_pct=round(100 * max(deviation), 2),
            worst_burst_over_limit_pct=round(100 * max(burst), 2),
            rate_held=max(deviation) <= RATE_TOLERANCE and max(burst) <= RATE_TOLERANCE,
        )
    else:
        result.update(target_per_second=TARGET_PER_SECOND, median_run=middle)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=2000.0, help="the rate-limited case's limit (per second)")
    parser.add_argument("--rate-messages", type=int, default=20_000)
    parser.add_argument("--rate-limit-storage", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    # a worker's own arguments
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--journal", help=argparse.SUPPRESS)
    parser.add_argument("--key-prefix", help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    name = f"bench_delivery_{os.getpid()}"
    admin = _admin(args.server)
    admin.cursor().execute(f"create database {name}")
    url = f"{args.server.rstrip('/')}/{name}"
    print(f"delivery on PostgreSQL: {args.workers} workers, database {name}", file=sys.stderr, flush=True)
    results = []
    try:
        results.append(run_case(args, url, args.messages, 0.0, "unlimited"))
        print(json.dumps(results[-1]), flush=True)
        if args.rate > 0 and args.rate_messages > 0:
            results.append(run_case(args, url, args.rate_messages, args.rate, "rate_limited"))
            print(json.dumps(results[-1]), flush=True)
    finally:
        admin.cursor().execute(f"drop database if exists {name} with (force)")
        admin.close()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "delivery_workers.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
