"""Benchmark: a STOP accepted by the web service → the next claim for that address refuses it.

For each mode — embedded (DuckDB; the service lands the reply as a file under
``$HERALD_HOME/landing/inbound``) and PostgreSQL (the service inserts it into
``herald_raw.inbound_messages``) — ``herald serve``'s app runs on 127.0.0.1 (an OS-chosen port)
and each trial:

1. queues due texts to a fresh address (nothing applied, no suppression: only the landed STOP
   can stop them);
2. POSTs a Twilio-signed inbound "STOP" from that address to ``/webhooks/twilio/inbound`` and
   notes when the 200 came back (the STOP is *accepted*: landed, fsynced, committed);
3. runs a delivery (``deliver_due``, the delivery run's engine) at once and notes when it
   returned: its claim found the address's messages and left them queued (``deferred``),
   sending none of them.

``accept_to_refusal`` is step 3's end minus step 2's: an upper bound of the time from acceptance to a refusing claim
(the whole delivery call, not only its claim). ``post_to_refusal`` adds the HTTP request itself.
A second scenario posts the STOP while a delivery run is mid-batch (a slowed sandbox provider,
every eighth message to the address) and counts texts to the address that started after the
STOP was accepted (must be 0).

The STOP is never applied here: the claim reads it where it landed (:mod:`herald.compliance.stops`).

    .venv/bin/python bench/stop_latency.py                       # both modes, 20 trials each
    .venv/bin/python bench/stop_latency.py --modes duckdb --trials 50
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import psycopg2  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402

from herald.clock import utcnow  # noqa: E402
from herald.delivery.engine import DeliveryOptions, deliver_due  # noqa: E402
from herald.delivery.outbox import OUTBOX, OutboxMessage, enqueue  # noqa: E402
from herald.providers.base import OutboundMessage, SendResult  # noqa: E402
from herald.providers.sandbox import SandboxSmsProvider  # noqa: E402
from herald.settings import Settings  # noqa: E402
from herald.warehouse.connection import Warehouse  # noqa: E402
from herald.web.app import create_app  # noqa: E402
from herald.web.server import running_server  # noqa: E402

OUT = REPO / "bench" / "out"
CONFIG_DIR = REPO / "config"
PUBLIC_URL = "https://herald.example"
AUTH_TOKEN = "bench-twilio-auth-token"
CLIENT = "bright_smiles_dental"
SENDER = "+15125550100"  # the client's sms_from
PATH = "/webhooks/twilio/inbound"
PG_ADMIN = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "postgres"}
OPTIONS = DeliveryOptions(batch_size=200, initial_backoff_seconds=0.001, max_backoff_seconds=0.01,
                          rate_per_second={"sms": 0}, pricing=None)  # fmt: skip
TARGET_SECONDS = 1.0


class Recorder(SandboxSmsProvider):
    """The sandbox provider, noting when each text to an address started (monotonic), optionally slowed."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__()
        self.delay = delay
        self.started: list[tuple[str, float]] = []

    def send(self, message: OutboundMessage) -> SendResult:
        self.started.append((message.to, time.monotonic()))
        if self.delay:
            time.sleep(self.delay)
        return super().send(message)


def _message(key: str, address: str, due: datetime) -> OutboxMessage:
    return OutboxMessage(
        message_key=key, client_id=CLIENT, campaign="recall", step="s1", variant="", occurrence="bench",
        contact_id=f"c-{address}", message_type="recall", category="marketing", channel="sms",
        to_address=address, sender=SENDER, send_after=due, body_text=f"Recall {key}",
    )  # fmt: skip


def _messages(prefix: str, addresses: list[str], count: int) -> list[OutboxMessage]:
    due = utcnow() - timedelta(minutes=1)
    return [_message(f"{prefix}-{i:04d}", addresses[i % len(addresses)], due) for i in range(count)]


def _post_stop(client: httpx.Client, url: str, address: str) -> None:
    params = {"MessageSid": "SM" + uuid.uuid4().hex, "From": address, "To": SENDER, "Body": "STOP",
              "AccountSid": "AC" + "0" * 32}  # fmt: skip
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_URL + PATH, params)
    response = client.post(url + PATH, data=params, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200, (response.status_code, response.text)


def _address(n: int) -> str:
    return f"+1312555{n:04d}"


def claim_after_accept(warehouse: Warehouse, home: Path, url: str, trials: int) -> dict:
    """Scenario 1: STOP accepted, then one delivery: its claim must refuse the address."""
    accept, post, http = [], [], []
    with httpx.Client(timeout=10) as client:
        for trial in range(trials):
            victim = _address(1000 + trial)
            with warehouse.session() as s:
                enqueue(s, _messages(f"t{trial}", [victim], 3), utcnow())
            started = time.monotonic()
            _post_stop(client, url, victim)
            accepted = time.monotonic()
            provider = Recorder()
            report = deliver_due(warehouse, {"sms": provider}, options=OPTIONS, inbound_home=home)
            refused = time.monotonic()
            # (an earlier trial's address may be refused again once its 30-second wait is over)
            assert provider.started == [] and report.deferred >= 3 and report.sent == 0, report.summary()
            accept.append(refused - accepted)
            post.append(refused - started)
            http.append(accepted - started)
    return {"trials": trials, "accept_to_refusal": _stats(accept), "post_to_refusal": _stats(post),
            "http_accept": _stats(http)}  # fmt: skip


def mid_batch(warehouse: Warehouse, home: Path, url: str, count: int = 200, delay: float = 0.005) -> dict:
    """Scenario 2: the STOP arrives while a delivery run sends a batch with every eighth text to the address."""
    victim = _address(9000)
    addresses = [_address(9001 + i) for i in range(7)] + [victim]
    with warehouse.session() as s:
        enqueue(s, _messages("batch", addresses, count), utcnow())
    provider = Recorder(delay)
    run = threading.Thread(target=lambda: deliver_due(warehouse, {"sms": provider}, options=OPTIONS, inbound_home=home))
    run.start()
    while len(provider.started) < count // 4:  # a quarter of the batch is out
        time.sleep(0.001)
    with httpx.Client(timeout=10) as client:
        _post_stop(client, url, victim)
    accepted = time.monotonic()
    run.join()
    to_victim = [at for to, at in provider.started if to == victim]
    late = [at - accepted for at in to_victim if at > accepted]
    with warehouse.session(read_only=True) as s:
        queued = s.scalar(f"select count(*) from {OUTBOX} where to_address = ? and status = 'queued'", [victim])
    return {"messages": count, "to_address_sent_before_accept": len(to_victim) - len(late),
            "to_address_started_after_accept": len(late), "to_address_left_queued": int(queued)}  # fmt: skip


def _stats(values: list[float]) -> dict:
    ms = sorted(v * 1000 for v in values)
    return {"median_ms": round(statistics.median(ms), 2), "p95_ms": round(ms[max(0, round(0.95 * len(ms)) - 1)], 2),
            "max_ms": round(ms[-1], 2)}  # fmt: skip


def run_mode(mode: str, trials: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="herald-bench-stop-") as tmp:
        home = Path(tmp) / "home"
        database = None
        url = ""
        if mode == "postgres":
            database = f"herald_bench_{uuid.uuid4().hex[:10]}"
            admin = psycopg2.connect(**PG_ADMIN)
            admin.autocommit = True
            admin.cursor().execute(f"create database {database}")
            admin.close()
            url = f"postgresql://postgres@127.0.0.1:5432/{database}"
        env = {"HERALD_HOME": str(home), "HERALD_CONFIG_DIR": str(CONFIG_DIR), "HERALD_WAREHOUSE_URL": url,
               "HERALD_PUBLIC_URL": PUBLIC_URL, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "HERALD_SECRET_KEY": "bench"}  # fmt: skip
        try:
            settings = Settings.from_env(env)
            warehouse = Warehouse(settings.warehouse)
            warehouse.ensure_schema()
            with running_server(create_app(settings, environ=env)) as base:
                result = {"mode": mode, **claim_after_accept(warehouse, home, base, trials)}
                result["mid_batch"] = mid_batch(warehouse, home, base)
        finally:
            if database:
                admin = psycopg2.connect(**PG_ADMIN)
                admin.autocommit = True
                admin.cursor().execute(f"drop database if exists {database} with (force)")
                admin.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default="duckdb,postgres", help="comma-separated: duckdb, postgres")
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    results = []
    for mode in args.modes.split(","):
        try:
            results.append(run_mode(mode.strip(), args.trials))
        except psycopg2.OperationalError as exc:
            results.append({"mode": mode, "skipped": f"PostgreSQL on 127.0.0.1:5432: {str(exc).strip()}"})
    measured = [r for r in results if "accept_to_refusal" in r]
    summary = {
        "bench": "stop_latency",
        "target_ms": TARGET_SECONDS * 1000,
        "met": bool(measured) and all(
            r["accept_to_refusal"]["max_ms"] <= TARGET_SECONDS * 1000 and r["mid_batch"]["to_address_started_after_accept"] == 0
            for r in measured
        ),
        **{r["mode"]: {k: v for k, v in r.items() if k != "mode"} for r in results},
    }  # fmt: skip
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "stop_latency.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, separators=(",", ":")))


if __name__ == "__main__":
    main()
