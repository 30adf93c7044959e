"""Benchmark: the fixed costs every process pays, and ``herald demo`` end to end.

- ``import orchestration.definitions``: what every run the daemon launches in its own process
  pays before its first step (median of 3), beside ``import dagster`` alone (the floor a Dagster
  code location cannot go under) and whether any process was started during the import;
- ``herald demo`` (what ``make demo`` runs) in a fresh HERALD_HOME on the embedded default, wall
  time and peak memory (median of ``--repeat`` runs).

    .venv/bin/python bench/fixed_and_demo.py                 # import x3, demo x3
    .venv/bin/python bench/fixed_and_demo.py --repeat 1      # quick
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
OUT = REPO / "bench" / "out"
PROBE = (
    "import os, subprocess, time\n"
    "started = []\n"
    "real = subprocess.Popen.__init__\n"
    "subprocess.Popen.__init__ = lambda self, *a, **k: started.append(str(a[0] if a else k)) or real(self, *a, **k)\n"
    "t = time.perf_counter()\n"
    "import {module}\n"
    "print(time.perf_counter() - t, len(started))\n"
)


def timed_import(module: str) -> tuple[float, int]:
    out = subprocess.run([sys.executable, "-c", PROBE.format(module=module)], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout.split()  # fmt: skip
    return float(out[0]), int(out[1])


def demo_once(home: Path) -> tuple[float, int]:
    env = {
        **os.environ,
        "HERALD_HOME": str(home),
        "HERALD_CONFIG_DIR": str(REPO / "config"),
        "HERALD_WAREHOUSE_URL": "",
    }
    started = time.perf_counter()
    done = subprocess.run([str(BIN / "herald"), "demo", "--fresh"], env=env, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"herald demo failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="demo runs (the median is reported)")
    parser.add_argument("--no-demo", action="store_true", help="the import figures only")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    imports = {m: [timed_import(m) for _ in range(3)] for m in ("dagster", "orchestration.definitions")}
    result: dict = {
        "import_dagster_s": round(statistics.median(t for t, _ in imports["dagster"]), 2),
        "import_definitions_s": round(statistics.median(t for t, _ in imports["orchestration.definitions"]), 2),
        "import_definitions_processes_started": max(n for _, n in imports["orchestration.definitions"]),
    }
    print(json.dumps(result), flush=True)
    if not args.no_demo:
        with tempfile.TemporaryDirectory(prefix="herald-bench-demo-") as tmp:
            runs = [demo_once(Path(tmp) / f"home-{i}") for i in range(args.repeat)]
        result["demo_s_all"] = [round(s, 1) for s, _ in runs]
        result["demo_s"] = round(statistics.median(s for s, _ in runs), 1)
        result["demo_peak_rss_mb"] = max(mb for _, mb in runs)
        print(json.dumps(result), flush=True)
    (OUT / "fixed_and_demo.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
