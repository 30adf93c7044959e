"""The dashboard's figures for one client: its row of ``analytics.client_dashboard`` and its
latest packets, read from the warehouse read-only.

On the embedded DuckDB a run may hold the file's write lock; a read-only connection then waits a
short moment (as :mod:`herald.web.pages` does) and gives up with ``available=False`` rather than
failing the page. :func:`read_dashboard` is the one place the portal reads these figures, so a
read path that never waits behind a writer can replace it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from herald.settings import Settings

log = logging.getLogger("herald.portal.dashboard")
READ_WAIT_SECONDS = 1.0
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


@contextmanager
def _read_only(settings: Settings) -> Iterator[tuple[Any, str]]:
    """A read-only cursor on the warehouse and its placeholder; waits at most READ_WAIT_SECONDS
    for a DuckDB writer, and PostgreSQL statements at most 2 s."""
    target = settings.warehouse
    if target.engine == "duckdb":
        import duckdb

        assert target.duckdb_path is not None
        if not target.duckdb_path.exists():
            raise FileNotFoundError("the warehouse has not been built yet")
        deadline = time.monotonic() + READ_WAIT_SECONDS
        while True:  # read-only never takes the write lock; a writer holding it makes us wait briefly
            try:
                con = duckdb.connect(str(target.duckdb_path), read_only=True)
                break
            except duckdb.IOException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        try:
            yield con, "?"
        finally:
            con.close()
        return
    import psycopg2

    conn = psycopg2.connect(
        host=target.pg_host, port=target.pg_port, user=target.pg_user, password=target.pg_password,
        dbname=target.pg_database, connect_timeout=2, options="-c statement_timeout=2000",
    )  # fmt: skip
    try:
        conn.set_session(readonly=True)
        with conn.cursor() as cur:
            yield cur, "%s"
    finally:
        conn.close()


def _dicts(cursor: Any, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    cursor.execute(sql, params)
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def read_dashboard(settings: Settings, client_id: str) -> Dashboard:
    """The client's dashboard figures; never raises for a busy or unbuilt warehouse."""
    try:
        with _read_only(settings) as (cursor, p):
            figures = _dicts(cursor, DASHBOARD_SQL.format(p=p), [client_id])
            packets = _dicts(cursor, PACKETS_SQL.format(p=p), [client_id])
    except Exception as exc:  # the page says the figures are unavailable; it never fails for it
        log.info("dashboard of %s not read (%s: %s)", client_id, type(exc).__name__, str(exc)[:200])
        busy = "lock" in str(exc).lower() or "conflicting" in str(exc).lower()
        reason = "a run is updating the warehouse" if busy else "the figures have not been computed yet"
        return Dashboard(client_id, available=False, reason=reason)
    return Dashboard(client_id, available=True, figures=figures[0] if figures else None, packets=packets)
