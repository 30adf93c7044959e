"""A PostgreSQL connection the server closes in the middle of a session (a terminated backend, a
restart, a network cut) ends it with a WarehouseError that names the warehouse and says nothing
was committed — not psycopg2's "connection already closed" from the rollback that follows."""

from __future__ import annotations

import psycopg2
import pytest

from herald.delivery.outbox import OUTBOX
from herald.warehouse.connection import Warehouse, WarehouseError

pytestmark = pytest.mark.postgres


def terminate_others(warehouse: Warehouse) -> int:
    t = warehouse.target
    conn = psycopg2.connect(host=t.pg_host, port=t.pg_port, user=t.pg_user, dbname=t.pg_database)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(
                "select count(pg_terminate_backend(pid)) from pg_stat_activity "
                "where datname = current_database() and pid <> pg_backend_pid()"
            )
            return cur.fetchone()[0]
    finally:
        conn.close()


@pytest.mark.parametrize("warehouse", ["postgres"], indirect=True)
@pytest.mark.parametrize("read_only", [False, True], ids=["write", "read-only"])
def test_a_terminated_backend_is_a_warehouse_error_naming_the_warehouse(warehouse: Warehouse, read_only: bool) -> None:
    t = warehouse.target
    with pytest.raises(WarehouseError) as lost, warehouse.session(read_only=read_only) as s:
        if not read_only:
            s.execute(f"update {OUTBOX} set status = 'sent'")  # a change in flight
        assert terminate_others(warehouse) == 1
        s.query(f"select count(*) from {OUTBOX}")
    message = str(lost.value)
    assert message.startswith(
        f"lost the connection to the PostgreSQL warehouse {t.pg_user}@{t.pg_host}:{t.pg_port}/{t.pg_database} ("
    )
    assert message.endswith("this session's transaction was not committed")
    assert isinstance(lost.value.__cause__, psycopg2.OperationalError)
    # the next session works, and nothing of the lost one was kept
    with warehouse.session(read_only=True) as s:
        assert s.scalar(f"select count(*) from {OUTBOX} where status = 'sent'") == 0


@pytest.mark.parametrize("warehouse", ["postgres"], indirect=True)
def test_other_errors_pass_through_and_roll_back(warehouse: Warehouse) -> None:
    with pytest.raises(psycopg2.errors.UndefinedTable), warehouse.session() as s:
        s.execute("select * from herald_ops.no_such_table")
    with warehouse.session(read_only=True) as s:
        assert s.scalar("select 1") == 1
