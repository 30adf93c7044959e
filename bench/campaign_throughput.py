"""Benchmark: render + enqueue + sandbox delivery throughput for a 100,000-recipient campaign.

A fresh warehouse gets a message plan of N planned SMS reminders (the dental campaign's real
template, variables per recipient, an appointment timestamp converted to the client's time
zone), then:

1. **render + enqueue** — ``enqueue_planned``: read the plan, render every message in the Jinja
   sandbox, insert the outbox in one transaction;
2. **deliver** — ``deliver_due`` with the sandbox SMS provider (journal on, rate limit off):
   claim in batches of ``--batch-size`` (5,000), re-check suppressions, send, record every
   attempt (outbox status, ``delivery_attempts`` rows, the journal fsynced once per batch);
3. **bare loop** — the same number of ``SandboxSmsProvider.send`` calls and nothing else: the
   ceiling the delivery engine is measured against.

    make bench                                   # part of the benchmark suite
    .venv/bin/python bench/campaign_throughput.py --recipients 100000
    .venv/bin/python bench/campaign_throughput.py --recipients 20000 --warehouse postgresql://postgres@127.0.0.1:5432/bench

The PostgreSQL case with concurrent workers and a shared rate limit: ``bench/delivery_workers.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from herald.campaigns.enqueue import enqueue_planned  # noqa: E402
from herald.campaigns.links import Links  # noqa: E402
from herald.config import load_deployment  # noqa: E402
from herald.delivery.engine import DeliveryOptions, deliver_due  # noqa: E402
from herald.providers.base import OutboundMessage  # noqa: E402
from herald.providers.sandbox import SandboxSmsProvider  # noqa: E402
from herald.settings import parse_warehouse_url  # noqa: E402
from herald.warehouse.connection import Warehouse  # noqa: E402

OUT = REPO / "bench" / "out"
CONFIG_DIR = REPO / "config"
NOW = datetime(2026, 11, 20, 16, 0)
PLAN_DDL = """create table marts.message_plan (
    message_key varchar, client_id varchar, campaign varchar, step varchar, occurrence varchar,
    contact_id varchar, message_type varchar, category varchar, channel varchar, to_address varchar,
    variant varchar, template varchar, subject_template varchar, send_after timestamp,
    variables {json}, status varchar)"""
NAMES = ["Ana", "Bob", "Chen", "Dee", "Eli", "Fatima", "Gus", "Hana", "Ivan", "José"]


def plan_rows(n: int) -> list[tuple]:
    rows = []
    for i in range(n):
        variant = "friendly" if i % 2 else "brief"
        appointment = NOW + timedelta(hours=24, minutes=15 * (i % 32))
        variables = json.dumps(
            {"first_name": NAMES[i % 10], "client_name": "Bright Smiles Dental",
             "appointment_at": appointment.isoformat(sep=" ")}
        )  # fmt: skip
        rows.append((
            f"bench-{i:07d}", "bright_smiles_dental", "appointment_reminder", "reminder", "bench",
            f"contact-{i:07d}", "appointment_reminder", "transactional", "sms", f"+1312{5550000 + i % 10_000_000:07d}",
            variant, f"appointment_reminder_{variant}.sms.j2", None, NOW, variables, "planned",
        ))  # fmt: skip
    return rows


def load_plan(warehouse: Warehouse, n: int) -> None:
    warehouse.ensure_schema()
    json_type = "json" if warehouse.engine == "duckdb" else "jsonb"
    columns = ["message_key", "client_id", "campaign", "step", "occurrence", "contact_id", "message_type",
               "category", "channel", "to_address", "variant", "template", "subject_template", "send_after",
               "variables", "status"]  # fmt: skip
    with warehouse.session() as s:
        s.execute("drop table if exists marts.message_plan")
        s.execute(PLAN_DDL.format(json=json_type))
        s.insert_rows("marts.message_plan", columns, plan_rows(n))


def bare_loop(n: int) -> float:
    provider = SandboxSmsProvider()
    started = time.perf_counter()
    for i in range(n):
        provider.send(OutboundMessage(f"bare-{i}", "sms", f"+1312{5550000 + i:07d}", "+15125550100", body="Hi"))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--warehouse", default="", help="HERALD_WAREHOUSE_URL (default: a fresh DuckDB file)")
    parser.add_argument("--batch-size", type=int, default=5000, help="messages claimed per batch")
    args = parser.parse_args()
    n = args.recipients
    with tempfile.TemporaryDirectory(prefix="herald-bench-") as tmp:
        home = Path(tmp)
        warehouse = Warehouse(parse_warehouse_url(args.warehouse, home))
        print(f"campaign throughput: {n:,} recipients on {warehouse.engine}", flush=True)
        load_plan(warehouse, n)
        deployment = load_deployment(CONFIG_DIR)

        started = time.perf_counter()
        with warehouse.session() as s:
            report = enqueue_planned(s, deployment, CONFIG_DIR, Links("https://herald.example", "bench"), NOW)
        enqueue_seconds = time.perf_counter() - started
        assert report.enqueued == n and report.held == 0, report.summary()
        print(f"  render + enqueue: {enqueue_seconds:.1f} s ({n / enqueue_seconds:,.0f} msg/s)", flush=True)

        provider = SandboxSmsProvider(journal_dir=home / "sandbox")
        options = DeliveryOptions(batch_size=args.batch_size, rate_per_second={"sms": 0})
        started = time.perf_counter()
        delivered = deliver_due(warehouse, {"sms": provider}, now=NOW, options=options)
        deliver_seconds = time.perf_counter() - started
        assert delivered.sent == n, delivered.summary()
        with warehouse.session(read_only=True) as s:  # every attempt recorded, nothing twice
            attempts = s.scalar("select count(*) from herald_ops.delivery_attempts where outcome = 'sent'")
            keys = s.scalar(
                "select count(distinct message_key) from herald_ops.delivery_attempts where outcome = 'sent'"
            )
            outbox_sent = s.scalar("select count(*) from herald_ops.outbox where status = 'sent'")
        journaled = len(provider.journal_counts())
        assert attempts == keys == outbox_sent == journaled == n, (attempts, keys, outbox_sent, journaled)
        print(f"  sandbox delivery: {deliver_seconds:.1f} s ({n / deliver_seconds:,.0f} msg/s)", flush=True)

        bare_seconds = bare_loop(n)
        print(f"  bare sandbox loop: {bare_seconds:.2f} s ({n / bare_seconds:,.0f} msg/s)", flush=True)
        total = enqueue_seconds + deliver_seconds
        print(f"  end to end: {total:.1f} s ({n / total:,.0f} msg/s)", flush=True)

    OUT.mkdir(parents=True, exist_ok=True)
    result = {
        "case": f"campaign_throughput_{warehouse.engine}",
        "recipients": n,
        "batch_size": args.batch_size,
        "engine": warehouse.engine,
        "render_enqueue_seconds": round(enqueue_seconds, 2),
        "render_enqueue_per_second": round(n / enqueue_seconds),
        "deliver_seconds": round(deliver_seconds, 2),
        "deliver_per_second": round(n / deliver_seconds),
        "end_to_end_per_second": round(n / total),
        "bare_sandbox_loop_seconds": round(bare_seconds, 3),
        "bare_sandbox_loop_per_second": round(n / bare_seconds),
    }
    (OUT / f"campaign_throughput_{warehouse.engine}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
