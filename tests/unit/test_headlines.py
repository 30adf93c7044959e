"""Headline tables of the analytics marts for the Dagster UI."""

from __future__ import annotations

from pathlib import Path

from herald.reports.headlines import headline, markdown_table
from herald.settings import parse_warehouse_url
from herald.warehouse.connection import Warehouse


def test_markdown_table_escapes_pipes_and_caps_rows() -> None:
    table = markdown_table(["a", "b"], [("x|y", 1.23456), *[(str(i), i) for i in range(30)]])
    lines = table.splitlines()
    assert lines[0] == "| a | b |" and lines[2] == "| x\\|y | 1.235 |"
    assert lines[-1] == "… 11 more rows"
    assert markdown_table(["a"], []) == "no rows yet"


def test_headline_sums_the_campaign_mart_per_client(tmp_path: Path) -> None:
    warehouse = Warehouse(parse_warehouse_url("", tmp_path))
    with warehouse.session() as s:
        s.execute("create schema analytics")
        s.execute(
            "create table analytics.campaign_performance_daily (client_id varchar, planned int, excluded int, "
            "sent int, delivered int, replied int, failed int)"
        )
        s.execute(
            "insert into analytics.campaign_performance_daily values ('a', 5, 1, 4, 3, 1, 1), ('a', 2, 0, 2, 2, 0, 0)"
        )
    assert headline(warehouse, "campaign_performance_daily").splitlines()[2] == "| a | 7 | 1 | 6 | 5 | 1 | 1 |"
    assert headline(warehouse, "client_dashboard") is None  # the table is not there: no headline, no error
    assert headline(warehouse, "no_such_model") is None
