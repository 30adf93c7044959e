"""Segments on a real warehouse (DuckDB and PostgreSQL): the marts they read are created with
plain DDL and a handful of rows, so each test says exactly who should be in a segment."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import dagster as dg
import pytest

from herald.config import Deployment, load_deployment
from herald.config.segments import SegmentConfig
from herald.segments import SegmentError, evaluate_segment, snapshot_segment
from herald.settings import Settings
from herald.warehouse.connection import Warehouse
from tests.conftest import CONFIG_DIR, ENGINES, PG_APP_ROLE

REALTY = "lakeside_realty"
COLLEGE = "northfield_college"

MARTS_DDL = [
    """create table marts.contacts (
        contact_id varchar primary key, client_id varchar not null, external_id varchar,
        first_name varchar, last_name varchar, email varchar, phone_e164 varchar, is_phone_valid boolean
    )""",
    """create table marts.contact_attributes (
        contact_id varchar, client_id varchar not null, attribute_name varchar, attribute_type varchar,
        timestamp_value timestamp, raw_value varchar
    )""",
    """create table marts.funnel_events (
        event_id varchar, client_id varchar not null, contact_id varchar, funnel_type varchar,
        from_stage varchar, to_stage varchar, occurred_at timestamp
    )""",
]
CONTACTS = [
    # contact_id, client_id, external_id, first_name, last_name, email, phone_e164, is_phone_valid
    ("r-id", REALTY, "LS-1001", "Ana", "Ruiz", "ana@example.com", None, False),
    ("r-phone", REALTY, "LS-2000", "Ben", "Okafor", None, "+17205550142", True),
    ("r-email", REALTY, "LS-3000", "Jose", "Pena", " Jose.Pena@Example.com", "+13035550100", True),
    ("r-other", REALTY, "LS-4000", "Cy", "Dunn", "cy@example.com", "+13035550111", True),
    # another client's contacts share an external id and the phone: never in a realty segment
    ("n-1", COLLEGE, "LS-1002", "Dee", "Li", "jose.pena@example.com", "+17205550142", True),
    ("n-2", COLLEGE, "NC-2", "Eve", "Moss", "eve@example.com", None, False),
    ("n-3", COLLEGE, "NC-3", "Fay", "Ng", "fay@example.com", None, False),
    ("n-4", COLLEGE, "NC-4", "Gus", "Oh", "gus@example.com", None, False),
]
FUNNEL = [
    # n-1: admitted, then enrolled → out; n-2: admitted last → in; n-3: admitted then withdrew → out
    ("e1", COLLEGE, "n-1", "admissions", "applied", "admitted", datetime(2026, 1, 1)),
    ("e2", COLLEGE, "n-1", "admissions", "admitted", "enrolled", datetime(2026, 2, 1)),
    ("e3", COLLEGE, "n-2", "admissions", "applied", "admitted", datetime(2026, 1, 5)),
    ("e4", COLLEGE, "n-3", "admissions", "applied", "admitted", datetime(2026, 1, 1)),
    ("e5", COLLEGE, "n-3", "admissions", "admitted", "withdrawn", datetime(2026, 1, 9)),
    # a realty contact admitted (absurd, but proves the client filter)
    ("e6", REALTY, "r-other", "admissions", "applied", "admitted", datetime(2026, 1, 1)),
]
SLOW_SQL = (
    "with recursive r(n) as (select 1 union all select n + 1 from r where n < 1000000000) "
    "select c.contact_id from marts.contacts c join r on r.n = -1"
)


@pytest.fixture
def herald_env(tmp_path: Path, request: pytest.FixtureRequest) -> Callable[[str], dict[str, str]]:
    """As tests/conftest.py's, but PostgreSQL as the non-superuser application role (segments
    run confined by that role's grants, so superuser rights must not hide a hole)."""

    def make(engine: str) -> dict[str, str]:
        url = request.getfixturevalue("pg_database_factory")(owner=PG_APP_ROLE) if engine == "postgres" else ""
        return {
            "HERALD_HOME": str(tmp_path / "home"),
            "HERALD_CONFIG_DIR": str(CONFIG_DIR),
            "HERALD_WAREHOUSE_URL": url,
        }

    return make


@pytest.fixture
def marts(warehouse: Warehouse) -> Warehouse:
    _create_marts(warehouse)
    return warehouse


def _create_marts(warehouse: Warehouse) -> None:
    with warehouse.session() as s:
        for ddl in MARTS_DDL:
            s.execute(ddl)
        s.insert_rows(
            "marts.contacts",
            [
                "contact_id",
                "client_id",
                "external_id",
                "first_name",
                "last_name",
                "email",
                "phone_e164",
                "is_phone_valid",
            ],
            CONTACTS,
        )
        s.insert_rows(
            "marts.funnel_events",
            ["event_id", "client_id", "contact_id", "funnel_type", "from_stage", "to_stage", "occurred_at"],
            FUNNEL,
        )


def _sql_segment(sql: str, timeout_seconds: int = 30) -> SegmentConfig:
    return SegmentConfig(name="adhoc", type="sql", sql=sql, timeout_seconds=timeout_seconds)


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_manual_members_match_by_id_phone_and_email_of_the_client_only(
    marts: Warehouse, deployment: Deployment
) -> None:
    client = deployment.clients[REALTY]
    # vip_buyers lists LS-1001, LS-1002 (another client's id), +1 720 555 0142 and jose.pena@example.com
    ids = evaluate_segment(marts, client, client.segments["vip_buyers"])
    assert ids == ["r-email", "r-id", "r-phone"]


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_manual_list_dropped_as_a_packet_follows_the_latest_packet(marts: Warehouse, deployment: Deployment) -> None:
    client = deployment.clients[REALTY]
    packets = [
        # packet_id, client, type, status, received_at: the newest landed list wins
        ("list-old", REALTY, "segment_list", "landed", datetime(2026, 1, 1)),
        ("list-new", REALTY, "segment_list", "landed", datetime(2026, 2, 1)),
        ("list-broken", REALTY, "segment_list", "rejected", datetime(2026, 3, 1)),
        ("other-client", COLLEGE, "segment_list", "landed", datetime(2026, 4, 1)),
    ]
    with marts.session() as s:
        s.execute("create table marts.contact_sources (packet_id varchar, line_number bigint, contact_id varchar)")
        s.insert_rows("marts.contact_sources", ["packet_id", "line_number", "contact_id"], [
            ("list-old", 1, "r-other"), ("list-new", 1, "r-phone"), ("list-new", 2, "r-email"), ("other-client", 1, "n-2"),
        ])  # fmt: skip
        for packet_id, client_id, packet_type, status, at in packets:
            s.execute(
                "insert into herald_ops.packets (packet_id, client_id, packet_type, file_name, file_path, status, "
                "received_at, updated_at) values (?, ?, ?, 'list.csv', 'list.csv', ?, ?, ?)",
                [packet_id, client_id, packet_type, status, at, at],
            )
    from_packets = SegmentConfig(name="dropped", type="manual", packet_type="segment_list")
    assert evaluate_segment(marts, client, from_packets) == ["r-email", "r-phone"]
    both = SegmentConfig(name="both", type="manual", members=["LS-1001"], packet_type="segment_list")
    assert evaluate_segment(marts, client, both) == ["r-email", "r-id", "r-phone"]


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_sql_segment_keeps_only_the_clients_contacts(marts: Warehouse, deployment: Deployment) -> None:
    client = deployment.clients[REALTY]
    segment = _sql_segment("select contact_id from marts.contacts where is_phone_valid  -- all valid phones\n;\n")
    assert evaluate_segment(marts, client, segment) == ["r-email", "r-other", "r-phone"]


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_a_refused_or_failing_sql_segment_raises_naming_it(marts: Warehouse, deployment: Deployment) -> None:
    client = deployment.clients[REALTY]
    with pytest.raises(SegmentError, match=r"segment lakeside_realty/adhoc: the SQL may only read tables in marts"):
        evaluate_segment(marts, client, _sql_segment("select * from herald_ops.packets"))
    with pytest.raises(SegmentError, match=r"segment lakeside_realty/adhoc: the SQL failed: .*no_such_column"):
        evaluate_segment(marts, client, _sql_segment("select contact_id from marts.contacts where no_such_column"))


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_function_segment_admitted_not_enrolled(marts: Warehouse, deployment: Deployment) -> None:
    client = deployment.clients[COLLEGE]
    assert evaluate_segment(marts, client, client.segments["admitted_not_enrolled"]) == ["n-2"]


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_function_segment_must_return_strings(marts: Warehouse, deployment: Deployment) -> None:
    # a deployment whose segment functions package is this test folder
    client = deployment.clients[COLLEGE].model_copy(update={"segment_functions_package": "tests.integration"})
    segment = SegmentConfig(name="bad", type="function", function="tests.integration.test_segments:_returns_numbers")
    with pytest.raises(SegmentError, match=r"returned 1 \(int\); contact ids are strings"):
        evaluate_segment(marts, client, segment)
    segment = SegmentConfig(
        name="foreign", type="function", function="tests.integration.test_segments:_returns_everyone"
    )
    assert evaluate_segment(marts, client, segment) == ["n-1", "n-2", "n-3", "n-4"]


def _returns_numbers(db: object, client_id: str) -> list[int]:
    return [1, 2]


def _returns_everyone(db, client_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [r[0] for r in db.query("select contact_id from marts.contacts")]


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_a_slow_sql_segment_times_out(marts: Warehouse, deployment: Deployment) -> None:
    client = deployment.clients[REALTY]
    started = time.monotonic()
    with pytest.raises(SegmentError, match=r"segment lakeside_realty/adhoc: timed out after 1 s"):
        evaluate_segment(marts, client, _sql_segment(SLOW_SQL, timeout_seconds=1))
    assert time.monotonic() - started < 10
    # the warehouse is usable afterwards
    assert evaluate_segment(marts, client, _sql_segment("select contact_id from marts.contacts")) == [
        "r-email",
        "r-id",
        "r-other",
        "r-phone",
    ]


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_snapshot_records_entries_and_exits_and_is_idempotent(marts: Warehouse) -> None:
    first, second = datetime(2026, 3, 1, 9), datetime(2026, 3, 2, 9)
    result = snapshot_segment(marts, REALTY, "vip_buyers", ["r-id", "r-phone"], now=first)
    assert (result.size, result.entered, result.exited, result.preview_ids) == (2, 2, 0, ["r-id", "r-phone"])

    again = snapshot_segment(marts, REALTY, "vip_buyers", ["r-phone", "r-id"], now=second)
    assert (again.size, again.entered, again.exited) == (2, 0, 0)

    changed = snapshot_segment(marts, REALTY, "vip_buyers", ["r-phone", "r-email"], now=second)
    assert (changed.size, changed.entered, changed.exited) == (2, 1, 1)
    # another segment of the same name for another client is independent
    snapshot_segment(marts, COLLEGE, "vip_buyers", ["n-1"], now=second)

    with marts.session(read_only=True) as s:
        _, members = s.query(
            "select contact_id, entered_at, snapshot_at from marts.segment_members "
            "where client_id = ? and segment_name = ? order by contact_id",
            [REALTY, "vip_buyers"],
        )
        _, events = s.query(
            "select contact_id, event, occurred_at from herald_ops.segment_membership_events "
            "where client_id = ? order by occurred_at, event, contact_id",
            [REALTY],
        )
    assert members == [("r-email", second, second), ("r-phone", first, second)]
    assert events == [
        ("r-id", "entered", first),
        ("r-phone", "entered", first),
        ("r-email", "entered", second),
        ("r-id", "exited", second),
    ]


BAD_SEGMENT = "description: Reads Herald's own tables.\ntype: sql\nsql: select contact_id from herald_ops.packets\n"


@pytest.fixture
def deployment_env(
    request: pytest.FixtureRequest, herald_env: Callable[[str], dict[str, str]], tmp_path: Path
) -> tuple[dict[str, str], Warehouse]:
    """A deployment whose config is the example's plus one refused segment, over seeded marts."""
    config = tmp_path / "config"
    shutil.copytree(Path(__file__).resolve().parents[2] / "config", config)
    (config / "clients" / REALTY / "segments" / "reads_ops.yaml").write_text(BAD_SEGMENT)
    env = {**herald_env(request.param), "HERALD_CONFIG_DIR": str(config)}
    warehouse = Warehouse(Settings.from_env(env).warehouse)
    warehouse.ensure_schema()
    _create_marts(warehouse)
    return env, warehouse


@pytest.mark.parametrize("deployment_env", ENGINES, indirect=True)
def test_segment_assets_materialize_and_a_refused_one_fails_alone(
    deployment_env: tuple[dict[str, str], Warehouse], monkeypatch: pytest.MonkeyPatch
) -> None:
    from assets.segments.segments import build_segment_assets, segment_asset_key
    from assets.transform.dbt import load_dbt_models
    from resources import HeraldConfigResource, WarehouseResource

    env, warehouse = deployment_env
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assets = build_segment_assets(load_deployment(Path(env["HERALD_CONFIG_DIR"])), load_dbt_models())
    resources = {"warehouse": WarehouseResource(), "herald_config": HeraldConfigResource()}

    result = dg.materialize(assets, resources=resources, raise_on_error=False)

    assert not result.success
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert [e.step_key for e in failures] == ["segments__lakeside_realty__reads_ops"]
    assert "segment lakeside_realty/reads_ops: the SQL may only read tables in marts or analytics" in str(
        failures[0].step_failure_data.error
    )
    metadata = {
        e.asset_key: e.event_specific_data.materialization.metadata for e in result.get_asset_materialization_events()
    }
    vip = metadata[segment_asset_key(REALTY, "vip_buyers")]
    assert (vip["size"].value, vip["entered"].value, vip["exited"].value, vip["type"].value) == (3, 3, 0, "manual")
    preview = vip["preview"].value
    assert "| r-phone | +1•••••••142 |" in preview and "| r-id |  | a•••@example.com |" in preview
    assert "+17205550142" not in preview
    college = metadata[segment_asset_key(COLLEGE, "admitted_not_enrolled")]
    assert (college["size"].value, college["type"].value) == (1, "function")
    assert segment_asset_key("bright_smiles_dental", "upcoming_appointments") in metadata

    # a second refresh with the same marts changes nothing
    again = dg.materialize([a for a in assets if a.key == segment_asset_key(REALTY, "vip_buyers")], resources=resources)
    vip_again = again.get_asset_materialization_events()[0].event_specific_data.materialization.metadata
    assert (vip_again["size"].value, vip_again["entered"].value, vip_again["exited"].value) == (3, 0, 0)
    with warehouse.session(read_only=True) as s:
        assert s.scalar("select count(*) from herald_ops.segment_membership_events") == 4


def _herald(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    herald = Path(sys.executable).parent / "herald"
    return subprocess.run([str(herald), *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("deployment_env", ENGINES, indirect=True)
def test_segment_preview_cli_prints_members_and_writes_nothing(
    deployment_env: tuple[dict[str, str], Warehouse],
) -> None:
    env, warehouse = deployment_env
    shown = _herald(env, "segment", "preview", REALTY, "vip_buyers", "--limit", "2")
    assert shown.returncode == 0, shown.stderr
    assert "segment lakeside_realty/vip_buyers (manual): 3 members" in shown.stdout
    assert "r-email" in shown.stdout and "LS-3000" in shown.stdout and "Jose Pena" in shown.stdout
    assert "+1•••••••100" in shown.stdout and "+13035550100" not in shown.stdout
    assert "… 1 more" in shown.stdout

    refused = _herald(env, "segment", "preview", REALTY, "reads_ops")
    assert refused.returncode == 1
    assert "segment lakeside_realty/reads_ops: the SQL may only read tables in marts or analytics" in refused.stderr

    unknown = _herald(env, "segment", "preview", REALTY, "nope")
    assert unknown.returncode == 1 and "has no segment 'nope'" in unknown.stderr
    unknown_client = _herald(env, "segment", "preview", "nobody", "vip_buyers")
    assert unknown_client.returncode == 1 and "unknown client 'nobody'" in unknown_client.stderr
    with warehouse.session(read_only=True) as s:
        assert s.scalar("select count(*) from marts.segment_members") == 0
