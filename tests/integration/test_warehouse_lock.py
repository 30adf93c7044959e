"""Embedded mode: DuckDB has one writer; Herald's sessions wait for it instead of failing."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from herald.settings import Settings
from herald.warehouse.connection import Warehouse

HOLD_SECONDS = 2.0
HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("begin transaction")
con.execute("insert into herald_ops.packet_events values ('p', 'held', now()::timestamp, null, null)")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.commit()
con.close()
"""


def test_a_session_waits_for_another_process_holding_the_write_lock(tmp_path: Path) -> None:
    warehouse = Warehouse(Settings.from_env({"HERALD_HOME": str(tmp_path)}).warehouse)
    warehouse.ensure_schema()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(warehouse.target.duckdb_path), str(HOLD_SECONDS)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        with warehouse.session(read_only=True) as s:
            held = s.scalar("select count(*) from herald_ops.packet_events where step = 'held'")
        waited = time.monotonic() - started
    finally:
        holder.wait(timeout=30)
    assert holder.returncode == 0
    assert held == 1  # it read after the writer committed, not a half-applied state
    assert waited > 0.5  # it really had to wait for the lock rather than failing
