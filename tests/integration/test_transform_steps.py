"""The mapped and cleaned steps a dbt build records: at the times dbt finished the staging
models and the whole build (not when the events were written), and only for packets that had
landed when the build started."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from herald.packets.transform_steps import record_transform_steps
from herald.warehouse.connection import Warehouse
from tests.conftest import ENGINES


def model(name: str, started: datetime, completed: datetime) -> dict:
    stamp = lambda t: t.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")  # noqa: E731 (as dbt writes them)
    return {
        "unique_id": f"model.herald.{name}",
        "execution_time": (completed - started).total_seconds(),
        "timing": [{"name": "compile", "started_at": stamp(started), "completed_at": stamp(started)},
                   {"name": "execute", "started_at": stamp(started), "completed_at": stamp(completed)}],
    }  # fmt: skip


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_steps_carry_dbt_times_and_skip_packets_landed_during_the_build(warehouse: Warehouse) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    start = now - timedelta(seconds=60)
    staged, built = start + timedelta(seconds=10), start + timedelta(seconds=40)
    with warehouse.session() as s:
        for packet_id, landed_at in (
            ("before", start - timedelta(seconds=5)),
            ("during", start + timedelta(seconds=20)),
        ):
            s.execute(
                "insert into herald_ops.packets (packet_id, client_id, packet_type, file_name, file_path, status, "
                "received_at, landed_at, updated_at) values (?, 'c', 't', 'f.csv', 'p', 'landed', ?, ?, ?)",
                [packet_id, landed_at, landed_at, landed_at],
            )
    results = {"results": [model("stg_packets__rows", start, staged), model("contacts", staged, built)]}
    assert record_transform_steps(warehouse, results) == ["before"]
    with warehouse.session(read_only=True) as s:
        _, rows = s.query(
            "select packet_id, step, occurred_at, duration_ms from herald_ops.packet_events order by step"
        )
    assert [(p, step, ms) for p, step, _, ms in rows] == [("before", "cleaned", 30000), ("before", "mapped", 10000)]
    at = {step: when for _, step, when, _ in rows}
    assert abs((at["mapped"] - staged).total_seconds()) < 2 and abs((at["cleaned"] - built).total_seconds()) < 2
