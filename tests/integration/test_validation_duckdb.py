"""On DuckDB a packet's checks are one aggregate query: Great Expectations is never imported and
the warehouse file is let go at once (PostgreSQL validates through Great Expectations, tested in
test_validation.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from herald.packets.validation import validate_packet
from herald.warehouse.connection import Warehouse
from tests.integration.test_validation import LOAD_MAP, REGION, ROWS, _land


def test_duckdb_validates_without_great_expectations_and_lets_go_of_the_file(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert warehouse.engine == "duckdb"
    _land(warehouse, "pk1", ROWS)
    monkeypatch.setitem(sys.modules, "great_expectations", None)
    got = validate_packet(warehouse, "pk1", LOAD_MAP, REGION, 0, None)
    assert [c.passed for c in got] == [False, False, False, True]
    # another process can take the write lock at once: no connection was left open
    subprocess.run(
        [sys.executable, "-c", f"import duckdb; duckdb.connect({str(warehouse.target.duckdb_path)!r}).close()"],
        check=True,
        timeout=60,
    )
