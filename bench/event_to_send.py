"""Benchmark: a funnel event posted to the ingest API → the first message accepted by the provider.

A copy of the example configuration gains one campaign: Northfield College welcomes a student by
email the moment a funnel event moves them to ``admitted``. In a fresh HERALD_HOME on the
embedded default, with the web service on 127.0.0.1 (port 0): post the student and the event
(the clock starts), then ``herald tick --force`` one tick at a time — as the daemon iterates,
without its pauses — until the outbox holds the welcome as sent (the sandbox provider accepted
it). Reported: the work (the ticks' wall time) and how many ticks the chain crossed, and the
pacing the daemon adds on top: the sum of the minimum intervals of the sensors the chain
crosses, read from the definitions (the worst case; on average half of it).

    .venv/bin/python bench/event_to_send.py --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
BIN = Path(sys.executable).parent
OUT = REPO / "bench" / "out"
CLIENT = "northfield_college"
MAX_TICKS = 8
CAMPAIGN = """description: A welcome email the moment a student is admitted (funnel event).
message_type: lead_nurture
status: active
audience: admitted_not_enrolled
trigger:
  type: funnel_event
  to_stage: admitted
steps:
  - name: welcome
    channel: email
    subject: "Welcome to {{ client_name }}, {{ first_name }}"
    variants:
      - {name: standard, template: nurture_welcome_campus.mjml.j2}
"""
# the sensors an API event crosses before its message is sent (the send run delivers at once)
CHAIN = ("packet_arrival_sensor", "packet_landed_sensor", "contacts_refreshed_sensor", "campaign_triggers_sensor")


def _herald(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(BIN / "herald"), *args], env=env, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"herald {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def _sent(env: dict[str, str]) -> int:
    tables = _herald(env, "sql", "select table_name from information_schema.tables where table_name = 'outbox'")
    if "outbox" not in tables:
        return 0
    out = _herald(env, "sql", "--format", "json",
                  f"select count(*) as n from herald_ops.outbox where client_id = '{CLIENT}' and status = 'sent'")  # fmt: skip
    return json.loads(out)[0]["n"]


def paced_seconds() -> float:
    from orchestration.definitions import defs

    sensors = {s.name: s for s in defs().sensors or []}
    return float(sum(sensors[name].minimum_interval_seconds or 30 for name in CHAIN))


def once(workdir: Path) -> dict:
    from herald.packets.api import ensure_home_key
    from herald.settings import Settings
    from herald.web.app import create_app
    from herald.web.server import running_server

    config = workdir / "config"
    shutil.copytree(REPO / "config", config)
    (config / "clients" / CLIENT / "campaigns" / "admitted_welcome.yaml").write_text(CAMPAIGN)
    # a Tuesday at 10:00 in New York: inside every send window
    now = datetime.now(UTC)
    target = (now + timedelta(days=(1 - now.weekday()) % 7 + 7)).replace(hour=15, minute=0, second=0, microsecond=0)
    env = {**os.environ, "HERALD_HOME": str(workdir / "home"), "HERALD_CONFIG_DIR": str(config),
           "HERALD_WAREHOUSE_URL": "", "HERALD_CLOCK_OFFSET": str(int((target - now).total_seconds()))}  # fmt: skip
    key = ensure_home_key(workdir / "home", CLIENT).read_text(encoding="utf-8").strip()
    app = create_app(Settings.from_env(env), environ=env)
    auth = {"Authorization": f"Bearer {key}"}
    student = {"customers": [{"external_id": "BENCH-1", "first_name": "Ana", "email": "ana.bench@example.com"}]}
    event = {"events": [{"external_id": "BENCH-1", "funnel_type": "sales", "from_stage": "applied",
                         "to_stage": "admitted", "occurred_at": target.isoformat()}]}  # fmt: skip
    ticks: list[float] = []
    with running_server(app) as url:
        started = time.perf_counter()
        for path, body in (("customers", student), ("funnel-events", event)):
            answer = httpx.post(f"{url}/api/v1/clients/{CLIENT}/{path}", json=body, headers=auth, timeout=30)
            answer.raise_for_status()
        posted_s = time.perf_counter() - started
        for _ in range(MAX_TICKS):
            begun = time.perf_counter()
            _herald(env, "tick", "--force")
            ticks.append(time.perf_counter() - begun)
            if _sent(env):
                break
        else:
            raise SystemExit(f"no message was sent within {MAX_TICKS} ticks")
    return {"posted_s": round(posted_s, 3), "ticks": len(ticks), "tick_s": [round(t, 2) for t in ticks],
            "compute_s": round(posted_s + sum(ticks), 2)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs (the median is reported)")
    args = parser.parse_args()
    runs = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="herald-bench-event-") as tmp:
            runs.append(once(Path(tmp)))
        print(json.dumps(runs[-1]), flush=True)
    middle = sorted(runs, key=lambda r: r["compute_s"])[len(runs) // 2]
    result = {**middle, "compute_s_all": [r["compute_s"] for r in runs],
              "compute_s": statistics.median(r["compute_s"] for r in runs), "paced_s": paced_seconds(), "chain": list(CHAIN),
              "floor": "the drop → marts.contacts path plus one send run"}  # fmt: skip
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "event_to_send.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
