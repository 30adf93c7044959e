"""Benchmark: the portal's page queries on the embedded default while a dbt build holds DuckDB.

Setup (not timed): a warehouse in a temporary home with two clients' sized packets uploaded
through ``upload_packet``, ingested and built (in-process dbt, the asset's after-build steps),
and the portal snapshot published.

Then a second process runs a dbt build of the contacts models on the same file — a writer that
holds DuckDB's lock for its whole run — while this process calls the portal's page functions
in a loop (packets list, a packet's rejects CSV and receipt, contact search by phone, contact
detail, missed contacts), each timed. Whether the live file is locked is read from
``/proc/locks`` (which takes no lock: a probe that opened the file would itself make the build
fail). Only calls that start and end while the writer holds the lock count toward the
figures; the run fails if there were none.

The same loop also drives the portal's web pages through the real app (FastAPI's test client, the
product's argon2 parameters): a whole sign-in (the sign-in page, the password, the 2FA page, the
code) and the dashboard, each of which writes the portal's own store (a session, an audit row):
on DuckDB that store is a separate SQLite file no run holds (herald/portal/store.py).

    .venv/bin/python bench/portal_reads.py                 # 2 × 5,000 rows
    .venv/bin/python bench/portal_reads.py --rows 1000
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from herald.config import load_deployment  # noqa: E402
from herald.demo.packets import sized_packet  # noqa: E402
from herald.dropzone import open_dropzone  # noqa: E402
from herald.dropzone.readiness import sort_pending  # noqa: E402
from herald.packets.ingest import ingest_packet  # noqa: E402
from herald.packets.transform_steps import record_transform_steps  # noqa: E402
from herald.portal import accounts, contacts, packets  # noqa: E402
from herald.portal.reads import PortalReader, publish_snapshot  # noqa: E402
from herald.portal.store import PortalStore  # noqa: E402
from herald.settings import Settings  # noqa: E402
from herald.warehouse.config_tables import load_config_tables  # noqa: E402
from herald.warehouse.connection import Warehouse  # noqa: E402
from herald.warehouse.dbt_run import run_models  # noqa: E402

OUT = REPO / "bench" / "out"
CONFIG_DIR = REPO / "config"
MODELS = ["+contacts", "+contact_sources"]
CLIENTS = [("northfield_college", "leads"), ("lakeside_realty", "buyer_leads")]
DASHBOARD_MODELS = ["+client_dashboard"]
TARGET_P95_MS = 500.0
WEB_PASSWORD = "a bench password, long enough"
ARGON2_SAMPLE = accounts.hash_password(WEB_PASSWORD)
WRITER = """
import sys
from pathlib import Path
from herald.settings import Settings
from herald.warehouse.dbt_run import run_models
settings = Settings.from_env({"HERALD_HOME": sys.argv[1], "HERALD_CONFIG_DIR": sys.argv[2], "HERALD_WAREHOUSE_URL": ""})
run_models(settings.warehouse, sys.argv[4:], Path(sys.argv[3]))
"""


def locked(path: Path) -> bool:
    """Whether a process other than this one holds a POSIX lock on ``path`` (from /proc/locks)."""
    st = path.stat()
    wanted = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in Path("/proc/locks").read_text().splitlines():
        parts = line.split()
        if len(parts) > 5 and parts[5] == wanted and parts[4] != str(os.getpid()):
            return True
    return False


PUBLISH: dict[str, float] = {}


def live_size(settings: Settings) -> int:
    assert settings.warehouse.duckdb_path is not None
    return settings.warehouse.duckdb_path.stat().st_size


def setup(home: Path, rows: int) -> tuple[Settings, str, str]:
    env = {"HERALD_HOME": str(home), "HERALD_CONFIG_DIR": str(CONFIG_DIR), "HERALD_WAREHOUSE_URL": ""}
    settings = Settings.from_env(env)
    deployment = load_deployment(CONFIG_DIR)
    for n, (client, ptype) in enumerate(CLIENTS):
        sample = sized_packet(deployment, client, ptype, rows=rows, bad_rows=rows // 100, seed=n + 1)
        packets.upload_packet(settings, client, ptype, f"{ptype}.csv", io.BytesIO(sample.content))
    warehouse = Warehouse(settings.warehouse)
    warehouse.ensure_schema()
    with warehouse.session() as s:
        load_config_tables(s, deployment)
    zone = open_dropzone(settings.dropzone)
    for pending in sort_pending(zone.list_pending(), {}, {}, {}).ready:
        ingest_packet(warehouse, zone, deployment, pending)
    run_models(settings.warehouse, MODELS + DASHBOARD_MODELS, home / "dbt")
    record_transform_steps(warehouse, json.loads((home / "dbt" / "target" / "run_results.json").read_text()))
    # the publish itself, timed again on the built warehouse (what each build adds)
    publish_snapshot(settings.warehouse)
    info = publish_snapshot(settings.warehouse)
    assert info is not None
    PUBLISH.update(seconds=round(info.seconds, 3), snapshot_mb=round(info.size_bytes / 1e6, 1),
                   warehouse_mb=round(live_size(settings) / 1e6, 1), tables=len(info.tables))  # fmt: skip
    with warehouse.session(read_only=True) as s:
        phone = s.scalar("select phone_e164 from marts.contacts where client_id = ? and phone_e164 is not null "
                         "order by contact_id limit 1", [CLIENTS[0][0]])  # fmt: skip
        contact_id = s.scalar("select contact_id from marts.contacts where phone_e164 = ?", [phone])
    return settings, phone, contact_id


def pages(settings: Settings, reader: PortalReader, phone: str, contact_id: str) -> dict[str, Callable[[], object]]:
    client = CLIENTS[0][0]
    packet_id = packets.list_packets(settings, client, reader=reader)[0].packet_id
    return {
        "packets list": lambda: packets.list_packets(settings, client, reader=reader),
        "rejects csv": lambda: packets.rejects_csv(settings, client, packet_id, reader=reader),
        "receipt": lambda: packets.receipt(settings, client, packet_id, reader=reader),
        "contact search (phone)": lambda: contacts.search_contacts(settings, client, phone[2:], reader=reader),
        "contact search (name)": lambda: contacts.search_contacts(settings, client, "a", reader=reader),
        "contact detail": lambda: contacts.contact_detail(settings, client, contact_id, reader=reader),
        "missed contacts": lambda: contacts.missed_contacts(settings, client, reader=reader),
    }


def web_pages(settings: Settings, env: dict[str, str]) -> Callable[[], dict[str, float]]:
    """One sign-in and a dashboard view through the app; returns each request's milliseconds."""
    import re

    import pyotp
    from fastapi.testclient import TestClient

    from herald.web.app import create_app

    client = CLIENTS[0][0]
    store = PortalStore(settings.warehouse)
    secret = pyotp.random_base32()
    with store.session() as s:
        user = accounts.add_user(s, "bench@example.com", WEB_PASSWORD, "staff", client)
        accounts.enroll_totp(s, user, secret, pyotp.TOTP(secret).now())
    app = create_app(settings, environ=env)

    def token(page: str) -> str:
        found = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert found, page[:300]
        return found.group(1)

    def timed(fn: Callable[[], object], times: dict[str, float], name: str) -> object:
        t0 = time.perf_counter()
        answer = fn()
        times[name] = (time.perf_counter() - t0) * 1000
        status = getattr(answer, "status_code", 0)
        assert status in (200, 303), (name, status, getattr(answer, "text", "")[:300])
        return answer

    def sign_in_and_dashboard() -> dict[str, float]:
        with store.session() as s:  # not timed: a code works once per 30 s step; the bench signs in often
            s.execute("update herald_ops.portal_users set totp_last_step = 0 where user_id = ?", [user.user_id])
        browser = TestClient(app, base_url="http://127.0.0.1")
        times: dict[str, float] = {}
        page: Any = timed(lambda: browser.get("/app/login"), times, "web: sign-in page")
        timed(lambda: browser.post("/app/login", data={"email": user.email, "password": WEB_PASSWORD,
                                                       "csrf_token": token(page.text)}, follow_redirects=False),
              times, "web: password (argon2id)")  # fmt: skip
        page = timed(lambda: browser.get("/app/login/2fa"), times, "web: 2fa page")
        timed(lambda: browser.post("/app/login/2fa", data={"code": pyotp.TOTP(secret).now(),
                                                           "csrf_token": token(page.text)}, follow_redirects=False),
              times, "web: 2fa code")  # fmt: skip
        board: Any = timed(lambda: browser.get(f"/app/c/{client}/"), times, "web: dashboard")
        assert "data-figure" in board.text, board.text[:500]  # the figures, from the snapshot
        browser.close()
        return times

    return sign_in_and_dashboard


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5000, help="rows per client's packet")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="herald-bench-portal-") as tmp:
        home = Path(tmp) / "home"
        started = time.perf_counter()
        settings, phone, contact_id = setup(home, args.rows)
        print(f"setup: {time.perf_counter() - started:.1f} s", flush=True)
        live = settings.warehouse.duckdb_path
        assert live is not None
        reader = PortalReader(settings.warehouse)
        calls = pages(settings, reader, phone, contact_id)
        for call in calls.values():  # warm: the snapshot connection is opened once per thread
            call()
        env = {"HERALD_HOME": str(home), "HERALD_CONFIG_DIR": str(CONFIG_DIR), "HERALD_WAREHOUSE_URL": "",
               "HERALD_SECRET_KEY": "bench-secret", "HERALD_PUBLIC_URL": "http://127.0.0.1:8000"}  # fmt: skip
        web = web_pages(settings, env)
        web()  # warm
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(home), str(CONFIG_DIR), str(home / "dbt-writer"), *MODELS],
            cwd=REPO,
        )
        held: list[tuple[str, float]] = []  # (page, ms) of calls made entirely while the lock was held
        held_web: list[dict[str, float]] = []  # each web round (sign-in + dashboard) made while it was held
        argon2_alone: list[float] = []
        other = 0
        lock_seen = 0.0
        last = time.perf_counter()
        while writer.poll() is None:
            for name, call in calls.items():
                before = locked(live)
                t0 = time.perf_counter()
                call()
                ms = (time.perf_counter() - t0) * 1000
                after = locked(live)
                if before and after:
                    held.append((name, ms))
                else:
                    other += 1
                now = time.perf_counter()
                if before and after:
                    lock_seen += now - last
                last = now
            before = locked(live)
            t0 = time.perf_counter()
            accounts.password_matches(ARGON2_SAMPLE, WEB_PASSWORD)  # the hash alone, for comparison
            argon2_alone.append((time.perf_counter() - t0) * 1000)
            web_times = web()
            if before and locked(live):
                held_web.append(web_times)
            time.sleep(0.01)
        reader.close()
        if writer.returncode != 0:
            sys.exit(f"the writer's dbt build failed (exit {writer.returncode})")
        if not held:
            sys.exit("no page call overlapped the writer's lock: nothing measured")
        times = [ms for _, ms in held]
        per_page = {
            name: {"n": len(v), "p50_ms": statistics.median(v), "p95_ms": percentile(v, 0.95)}
            for name in calls
            if (v := [ms for n, ms in held if n == name])
        }
        web_result: dict[str, Any] = {"rounds_while_locked": len(held_web)}
        if held_web:
            sign_ins = [sum(v for k, v in w.items() if k != "web: dashboard") for w in held_web]
            requests = [v for w in held_web for v in w.values()]
            web_result |= {
                "sign_in_total_p50_ms": statistics.median(sign_ins),
                "sign_in_total_p95_ms": percentile(sign_ins, 0.95),
                "requests_p95_ms": percentile(requests, 0.95),
                "requests_max_ms": max(requests),
                "pages": {name: {"p50_ms": statistics.median(v := [w[name] for w in held_web]),
                                 "p95_ms": percentile(v, 0.95)} for name in held_web[0]},
                "argon2_verify_alone_p50_ms": statistics.median(argon2_alone),
                "dashboard_met": percentile([w["web: dashboard"] for w in held_web], 0.95) < TARGET_P95_MS,
            }  # fmt: skip
        result = {
            "rows_per_client": args.rows,
            "calls_while_locked": len(times),
            "calls_outside_lock": other,
            "lock_held_s": round(lock_seen, 1),
            "p50_ms": statistics.median(times),
            "p95_ms": percentile(times, 0.95),
            "max_ms": max(times),
            "target_p95_ms": TARGET_P95_MS,
            "met": percentile(times, 0.95) < TARGET_P95_MS,
            "pages": per_page,
            "web": web_result,
            "publish": PUBLISH,
        }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "portal_reads.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
