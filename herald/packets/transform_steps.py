"""After a dbt build: the mapped and cleaned steps of each packet it took in.

``packet_events`` answers "how long did this packet take to get into the system, per step";
dbt builds all waiting packets at once, so each packet gets the build's staging time as its
``mapped`` step and the intermediate + marts time as its ``cleaned`` step. Their times are when
the build's last staging model and its last model finished (from dbt's own timings), so the
portal's timeline shows when a packet was mapped, not when the events were written; and only
packets that had landed when the build started are marked (one landing beside a build on
PostgreSQL waits for the next build).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
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


def _timing(result: dict[str, Any], edge: str) -> datetime | None:
    """A model's execution start or end (``started_at`` / ``completed_at``), naive UTC."""
    for phase in result.get("timing") or []:
        if phase.get("name") == "execute" and phase.get(edge):
            moment = datetime.fromisoformat(str(phase[edge]).replace("Z", "+00:00"))
            return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
    return None


def layer_times(run_results: dict[str, Any]) -> tuple[datetime | None, datetime | None, datetime | None]:
    """(first model started, last staging model finished, last model finished) of a build, in
    dbt's real UTC time; None where dbt gave no timing."""
    models = [r for r in run_results.get("results", []) if r.get("unique_id", "").startswith("model.")]
    starts = [t for r in models if (t := _timing(r, "started_at"))]
    staged = [
        t for r in models if r["unique_id"].split(".")[-1].startswith("stg_") and (t := _timing(r, "completed_at"))
    ]
    ends = [t for r in models if (t := _timing(r, "completed_at"))]
    return min(starts, default=None), max(staged, default=None), max(ends, default=None)


def record_transform_steps(warehouse: Warehouse, run_results: dict[str, Any]) -> list[str]:
    """Append ``mapped`` and ``cleaned`` events for packets that had landed when the build
    started and have none yet."""
    mapped, cleaned = layer_seconds(run_results)
    staging_ran = any(r.get("unique_id", "").split(".")[-1].startswith("stg_") for r in run_results.get("results", []))
    if not staging_ran:
        # a dbt run of other models (a send pass, the delivery marts) did not map anything: a
        # packet that landed meanwhile waits for the transform that maps it, and its receipt too
        return []
    now = utcnow()
    # dbt's timings are real time; Herald's clock may be shifted (the demo): carry them over as
    # "so long before now"
    real_now = datetime.now(UTC).replace(tzinfo=None)
    started, staged, finished = layer_times(run_results)

    def herald_time(moment: datetime | None) -> datetime:
        return now if moment is None else now - max(timedelta(0), real_now - moment)

    build_started = herald_time(started) if started else None
    with warehouse.session() as s:
        where = "" if build_started is None else " and p.landed_at <= ?"
        _, rows = s.query(
            f"select packet_id from {PACKETS_TABLE} p where status = 'landed'{where} and not exists "
            f"(select 1 from {EVENTS_TABLE} e where e.packet_id = p.packet_id and e.step = 'cleaned')",
            [] if build_started is None else [build_started],
        )
        packet_ids = [r[0] for r in rows]
        events = []
        for packet_id in packet_ids:
            events.append((packet_id, "mapped", herald_time(staged), int(mapped * 1000), "dbt staging models"))
            events.append(
                (packet_id, "cleaned", herald_time(finished), int(cleaned * 1000), "dbt intermediate and marts models")
            )
        s.insert_rows(EVENTS_TABLE, column_names(EVENTS_TABLE), events)
    return packet_ids
