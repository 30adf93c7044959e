"""After a dbt build: the mapped and cleaned steps of each packet it took in.

``packet_events`` answers "how long did this packet take to get into the system, per step";
dbt builds all waiting packets at once, so each packet gets the build's staging time as its
``mapped`` step and the intermediate + marts time as its ``cleaned`` step.
"""

from __future__ import annotations

from typing import Any

from herald.packets.landing import EVENTS_TABLE, PACKETS_TABLE, utcnow
from herald.warehouse.connection import Warehouse
from herald.warehouse.schema import column_names


def layer_seconds(run_results: dict[str, Any]) -> tuple[float, float]:
    """(staging seconds, intermediate + marts seconds) of the models in a dbt build."""
    mapped = cleaned = 0.0
    for result in run_results.get("results", []):
        unique_id: str = result.get("unique_id", "")
        if not unique_id.startswith("model."):
            continue
        seconds = float(result.get("execution_time") or 0.0)
        if unique_id.split(".")[-1].startswith("stg_"):
            mapped += seconds
        else:
            cleaned += seconds
    return mapped, cleaned


def record_transform_steps(warehouse: Warehouse, run_results: dict[str, Any]) -> list[str]:
    """Append ``mapped`` and ``cleaned`` events for landed packets that have none yet."""
    mapped, cleaned = layer_seconds(run_results)
    staging_ran = any(r.get("unique_id", "").split(".")[-1].startswith("stg_") for r in run_results.get("results", []))
    if not staging_ran:
        # a dbt run of other models (a send pass, the delivery marts) did not map anything: a
        # packet that landed meanwhile waits for the transform that maps it, and its receipt too
        return []
    with warehouse.session() as s:
        _, rows = s.query(
            f"select packet_id from {PACKETS_TABLE} p where status = 'landed' and not exists "
            f"(select 1 from {EVENTS_TABLE} e where e.packet_id = p.packet_id and e.step = 'cleaned')"
        )
        packet_ids = [r[0] for r in rows]
        now = utcnow()
        events = []
        for packet_id in packet_ids:
            events.append((packet_id, "mapped", now, int(mapped * 1000), "dbt staging models"))
            events.append((packet_id, "cleaned", now, int(cleaned * 1000), "dbt intermediate and marts models"))
        s.insert_rows(EVENTS_TABLE, column_names(EVENTS_TABLE), events)
    return packet_ids
