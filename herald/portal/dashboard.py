"""The dashboard's figures for one client: its row of ``analytics.client_dashboard`` and its
latest packets, read through the portal's read path (:mod:`herald.portal.reads`).

On the embedded DuckDB that is the latest snapshot the runs published, so a run holding the
warehouse never makes the page wait: the figures are those of the snapshot's time, which the page
shows. Only a warehouse that has no snapshot yet while a run holds it (the first minutes of a new
deployment) gives ``available=False`` with the reason, never a failed page.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from herald.portal.reads import PortalReader, reader_for
from herald.settings import Settings

log = logging.getLogger("herald.portal.dashboard")
NOT_COMPUTED = "the figures have not been computed yet"
RECENT_PACKETS = 5
FIGURES = (
    "client_id", "client_name", "as_of_at", "is_metered", "credit_balance", "delivered_24h", "delivered_3d",
    "delivered_7d", "delivered_30d", "failed_30d", "delivery_rate_30d", "replied_30d", "response_pct_30d",
    "opt_outs_30d", "credit_alerts_30d", "last_credit_alert_at",
)  # fmt: skip
DASHBOARD_SQL = f"select {', '.join(FIGURES)} from analytics.client_dashboard where client_id = {{p}}"
PACKETS_SQL = (
    "select packet_id, file_name, packet_type, status, received_at, rows_landed, rows_rejected from herald_ops.packets "
    f"where client_id = {{p}} order by received_at desc limit {RECENT_PACKETS}"
)


@dataclass(frozen=True)
class Dashboard:
    """``figures`` is the client's row of the mart (None when the mart has no row for it yet);
    ``available`` is False when the warehouse could not be read now (``reason`` says why)."""

    client_id: str
    available: bool
    figures: dict[str, Any] | None = None
    packets: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None

    @property
    def as_of(self) -> datetime | None:
        return self.figures["as_of_at"] if self.figures else None

    @property
    def low_credit(self) -> bool:
        """A low-credit alert went out in the last 30 days, or a metered balance is spent."""
        f = self.figures
        if not f or not f["is_metered"]:
            return False
        return bool(f["credit_alerts_30d"]) or (f["credit_balance"] is not None and f["credit_balance"] <= 0)


def read_dashboard(settings: Settings, client_id: str, reader: PortalReader | None = None) -> Dashboard:
    """The client's dashboard figures; never raises for a busy or unbuilt warehouse."""
    try:
        with (reader or reader_for(settings.warehouse)).session() as session:
            if not session.has_table("analytics.client_dashboard"):
                return Dashboard(client_id, available=False, reason=NOT_COMPUTED)
            figures = session.query(DASHBOARD_SQL.format(p="?"), [client_id]).dicts()
            packets = session.query(PACKETS_SQL.format(p="?"), [client_id]).dicts()
    except Exception as exc:  # the page says the figures are unavailable; it never fails for it
        log.info("dashboard of %s not read (%s: %s)", client_id, type(exc).__name__, str(exc)[:200])
        busy = any(w in str(exc).lower() for w in ("lock", "conflicting", "held the warehouse"))
        return Dashboard(client_id, available=False, reason="a run is updating the warehouse" if busy else NOT_COMPUTED)
    return Dashboard(client_id, available=True, figures=figures[0] if figures else None, packets=packets)
