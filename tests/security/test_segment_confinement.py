"""Segment SQL is confined by the engine, per client: the attacks an outsider ran
through `sql` and `function` segments, on both engines, with two clients.

Each attack is tried twice: as a configured segment (the guard may refuse it first, with a clear
message) and straight on the confined database, past the guard, to prove the engine itself
refuses it. Either way the innocent client's data never appears — not in rows, not in the error,
not in a member count. PostgreSQL runs as a non-superuser application role, as in production.
"""

from __future__ import annotations

import shutil
import traceback
from datetime import datetime
from pathlib import Path

import psycopg2
import pytest

from herald.config import ConfigError, Deployment, load_deployment
from herald.config.models import Client
from herald.config.segments import SegmentConfig
from herald.segments import SegmentError, evaluate_segment
from herald.segments.confine import SegmentQueryFailed, confined_database
from herald.settings import Settings
from herald.warehouse.connection import Warehouse
from tests.conftest import CONFIG_DIR, ENGINES, PG_APP_ROLE

ATTACKER = "lakeside_realty"
VICTIM = "northfield_college"
VICTIM_EMAIL = "victim.secret@globex.example"
VICTIM_BODY = "VICTIM-OUTBOX-BODY-7731"
FILE_SECRET = "FILE-SECRET-4242"

CONTACTS_DDL = """create table marts.contacts (
    contact_id varchar primary key, client_id varchar not null, external_id varchar,
    email varchar, phone_e164 varchar, is_phone_valid boolean
)"""
CONTACTS = [
    ("a-1", ATTACKER, "A-1", "ann@lakeside.example", "+13035550100", True),
    ("a-2", ATTACKER, "A-2", "bob@lakeside.example", "+13035550101", True),
    ("v-1", VICTIM, "V-1", VICTIM_EMAIL, "+17205550142", True),
    ("v-2", VICTIM, "V-2", "other@globex.example", "+17205550143", True),
]


@pytest.fixture
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Warehouse:
    """Two clients' marts, another client's message in the outbox; PostgreSQL as `herald_app`."""
    engine = request.param
    url = request.getfixturevalue("pg_database_factory")(owner=PG_APP_ROLE) if engine == "postgres" else ""
    env = {"HERALD_HOME": str(tmp_path / "home"), "HERALD_CONFIG_DIR": str(CONFIG_DIR), "HERALD_WAREHOUSE_URL": url}
    w = Warehouse(Settings.from_env(env).warehouse)
    w.ensure_schema()
    now = datetime(2026, 3, 2, 15)
    with w.session() as s:
        if engine == "postgres":  # superuser rights must not hide a hole
            assert s.scalar("select rolsuper from pg_roles where rolname = current_user") is False
        s.execute(CONTACTS_DDL)
        s.insert_rows(
            "marts.contacts",
            ["contact_id", "client_id", "external_id", "email", "phone_e164", "is_phone_valid"],
            CONTACTS,
        )
        s.execute(
            "insert into herald_ops.outbox (message_key, client_id, campaign, step, variant, occurrence, contact_id, "
            "message_type, category, channel, to_address, body_text, send_after, status, attempts, enqueued_at, "
            "updated_at) values ('k1', ?, 'c', 's', 'a', 'o', 'v-1', 'campaign', 'marketing', 'email', ?, ?, ?, "
            "'sent', 1, ?, ?)",
            [VICTIM, VICTIM_EMAIL, VICTIM_BODY, now, now, now],
        )
    return w


@pytest.fixture
def secret_files(tmp_path: Path) -> dict[str, Path]:
    """Files outside the warehouse, as another client's archived packet and receipt would be."""
    folder = tmp_path / "dropzone" / VICTIM / "archive"
    folder.mkdir(parents=True)
    csv = folder / "contacts.csv"
    csv.write_text(f"contact_id,email\na-1,{FILE_SECRET}\n")
    receipt = folder / "receipt.json"
    receipt.write_text(f'{{"contact_id": "a-1", "secret": "{FILE_SECRET}"}}\n')
    return {"csv": csv, "json": receipt}


def _segment(sql: str) -> SegmentConfig:
    return SegmentConfig(name="probe", type="sql", sql=sql, timeout_seconds=10)


def _no_leak(text: str) -> None:
    for secret in (VICTIM_EMAIL, VICTIM_BODY, FILE_SECRET, "globex", "v-1", "v-2"):
        assert secret not in text


def _refused(warehouse: Warehouse, client: Client, sql: str) -> SegmentError:
    """The segment fails (guard or engine) and neither its message nor its traceback leaks."""
    with pytest.raises(SegmentError) as caught:
        evaluate_segment(warehouse, client, _segment(sql))
    _no_leak("".join(traceback.format_exception(caught.value)))
    return caught.value


def _engine_refuses(warehouse: Warehouse, sql: str) -> SegmentQueryFailed:
    """Past the guard, straight on the confined database: the engine refuses the statement."""
    with confined_database(warehouse, ATTACKER, 10) as db, pytest.raises(SegmentQueryFailed) as caught:
        db.query(sql)
    _no_leak("".join(traceback.format_exception(caught.value)))
    return caught.value


DUCKDB_FILE_ATTACKS = [
    # a replacement scan hidden in a CTE body
    "with leads as (select * from '{csv}') select contact_id from leads",
    "with r as (select * from read_csv('{csv}')) select contact_id from r",
    "select contact_id from read_json('{json}')",
    "select content as contact_id from read_text('{csv}')",
    "select * from glob('{csv}')",
]


@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
@pytest.mark.parametrize("attack", DUCKDB_FILE_ATTACKS)
def test_duckdb_segment_reads_no_file(
    warehouse: Warehouse, deployment: Deployment, secret_files: dict[str, Path], attack: str
) -> None:
    sql = attack.format(**secret_files)
    _refused(warehouse, deployment.clients[ATTACKER], sql)
    assert _engine_refuses(warehouse, sql).kind in ("permission error", "catalog error")


@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_duckdb_segment_reaches_no_database_setting_or_python_value(warehouse: Warehouse) -> None:
    path = warehouse.target.duckdb_path
    assert _engine_refuses(warehouse, f"attach '{path}' as w (read_only)").kind == "permission error"
    _engine_refuses(warehouse, "set enable_external_access = true")
    _engine_refuses(warehouse, "install httpfs")
    secret_rows = [VICTIM_EMAIL]  # a Python value in the caller's frame is no table
    assert secret_rows
    _engine_refuses(warehouse, "select * from secret_rows")
    # the confined copy holds nothing of Herald's own tables
    _engine_refuses(warehouse, "select * from herald_ops.outbox")


POSTGRES_ATTACKS = [
    # read any relation through the XML functions (the outbox's bodies came back)
    "select contact_id from marts.contacts where table_to_xml('herald_ops.outbox', true, true, '')::text like '%VICTIM%'",
    "select contact_id from marts.contacts where query_to_xml('select * from herald_ops.outbox', true, true, '') is not null",
    # the catalog of passwords
    "with r as (select rolname from pg_authid) select contact_id from marts.contacts, r",
    # files on the server
    "select contact_id from marts.contacts where pg_read_file('/etc/passwd') is not null",
    # back to the application role, or into another client's views
    "select contact_id from marts.contacts where set_config('role', 'herald_app', true) is not null",
    "select contact_id from seg_northfield_college_marts.contacts",
    "select contact_id from herald_ops.outbox",
]


@pytest.mark.postgres
@pytest.mark.parametrize("warehouse", ["postgres"], indirect=True)
@pytest.mark.parametrize("attack", POSTGRES_ATTACKS)
def test_postgres_segment_reads_nothing_outside_its_views(
    warehouse: Warehouse, deployment: Deployment, attack: str
) -> None:
    with confined_database(warehouse, VICTIM, 10) as victim:  # the other client's views exist too
        assert victim.query("select count(*) from marts.contacts") == [(2,)]
    _refused(warehouse, deployment.clients[ATTACKER], attack)
    failure = _engine_refuses(warehouse, attack)
    assert failure.kind == "insufficient privilege"


@pytest.mark.postgres
@pytest.mark.parametrize("warehouse", ["postgres"], indirect=True)
def test_postgres_segment_cannot_signal_another_backend(warehouse: Warehouse, deployment: Deployment) -> None:
    t = warehouse.target
    other = psycopg2.connect(host=t.pg_host, port=t.pg_port, user=t.pg_user, dbname=t.pg_database)
    try:
        pid = other.get_backend_pid()
        for function in ("pg_terminate_backend", "pg_cancel_backend"):
            attack = f"select contact_id from marts.contacts where {function}({pid})"
            _refused(warehouse, deployment.clients[ATTACKER], attack)
            assert _engine_refuses(warehouse, attack).kind == "insufficient privilege"
        with other.cursor() as cur:  # the other session is alive
            cur.execute("select 1")
            assert cur.fetchone() == (1,)
    finally:
        other.close()


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_a_segment_sees_only_its_clients_rows(warehouse: Warehouse, deployment: Deployment) -> None:
    with confined_database(warehouse, ATTACKER, 10) as db:
        rows = db.query("select contact_id, client_id, email from marts.contacts order by contact_id")
        assert rows == [
            ("a-1", ATTACKER, "ann@lakeside.example"),
            ("a-2", ATTACKER, "bob@lakeside.example"),
        ]
        assert db.query("select count(*) from marts.contacts where client_id = ?", [VICTIM]) == [(0,)]
    client = deployment.clients[ATTACKER]
    assert (
        evaluate_segment(
            warehouse, client, _segment(f"select contact_id from marts.contacts where client_id = '{VICTIM}'")
        )
        == []
    )


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_an_error_names_its_kind_and_position_never_the_data(warehouse: Warehouse, deployment: Deployment) -> None:
    client = deployment.clients[ATTACKER]
    # a failing cast: the engines' own text quotes the value ('ann@lakeside.example')
    error = _refused(warehouse, client, "select contact_id from marts.contacts\nwhere cast(email as int) = 1")
    assert "@" not in str(error)
    assert str(error).startswith("segment lakeside_realty/probe: the SQL failed: ")
    assert "conversion" in str(error) or "invalid text representation" in str(error)
    # a mistake in the SQL: kind, line, column and the SQL's own word there
    error = _refused(warehouse, client, "select contact_id\nfrom marts.contacts where no_such_column")
    assert "at line 2, column 27 (near `no_such_column`)" in str(error)


ORACLES = [
    # yes/no questions about the other client's contacts, answered by the member count
    f"select contact_id from marts.contacts where exists (select 1 from marts.contacts where email = '{VICTIM_EMAIL}')",
    "select contact_id from marts.contacts where (select count(*) from marts.contacts) > 2",
    "select contact_id from marts.contacts where (select count(distinct client_id) from marts.contacts) > 1",
]


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_member_counts_do_not_depend_on_another_clients_data(warehouse: Warehouse, deployment: Deployment) -> None:
    client = deployment.clients[ATTACKER]
    before = [evaluate_segment(warehouse, client, _segment(sql)) for sql in ORACLES]
    with warehouse.session() as s:
        s.execute("delete from marts.contacts where client_id = ?", [VICTIM])
    after = [evaluate_segment(warehouse, client, _segment(sql)) for sql in ORACLES]
    assert before == after == [[], [], []]


def _reads_everything(db, client_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    rows = db.query("select contact_id, email from marts.contacts")
    assert all(VICTIM_EMAIL not in str(row) for row in rows)
    return [str(r[0]) for r in rows]


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_a_function_segment_gets_the_same_confined_handle(warehouse: Warehouse, deployment: Deployment) -> None:
    client = deployment.clients[ATTACKER].model_copy(update={"segment_functions_package": "tests.security"})
    segment = SegmentConfig(
        name="fn", type="function", function="tests.security.test_segment_confinement:_reads_everything"
    )
    assert evaluate_segment(warehouse, client, segment) == ["a-1", "a-2"]


@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
@pytest.mark.parametrize("function", ["os:system", "subprocess:getoutput", "builtins:exec", "shutil:rmtree"])
def test_a_function_outside_the_package_is_refused_at_evaluation(
    warehouse: Warehouse, deployment: Deployment, function: str
) -> None:
    segment = SegmentConfig(name="evil", type="function", function=function)
    with pytest.raises(SegmentError, match=r"is not in the segment functions package 'herald.segments.examples'"):
        evaluate_segment(warehouse, deployment.clients[ATTACKER], segment)


@pytest.fixture
def config_copy(tmp_path: Path) -> Path:
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    return config


@pytest.mark.parametrize("function", ["os:system", "subprocess:getoutput", "builtins:exec", "shutil:rmtree"])
def test_config_check_refuses_a_function_outside_the_package(config_copy: Path, function: str) -> None:
    (config_copy / "clients" / ATTACKER / "segments" / "evil.yaml").write_text(
        f"type: function\nfunction: {function}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_deployment(config_copy)
    assert [str(p) for p in caught.value.problems] == [
        f"config/clients/{ATTACKER}/segments/evil.yaml: function: {function!r} is not in the segment functions package "
        "'herald.segments.examples' (herald.yaml: segment_functions_package); segment functions must be the "
        "deployment's own code"
    ]


def test_config_check_finds_the_callable_without_importing_the_module(
    config_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "site" / "acme_segments"
    package.mkdir(parents=True)
    ran = tmp_path / "module_ran"
    (package / "__init__.py").write_text(f"open({str(ran)!r}, 'w').close()\n")
    (package / "lists.py").write_text(f"open({str(ran)!r}, 'w').close()\n\ndef vip(db, client_id):\n    return []\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    herald_yaml = config_copy / "herald.yaml"
    herald_yaml.write_text(herald_yaml.read_text() + "segment_functions_package: acme_segments\n")
    college = config_copy / "clients" / VICTIM / "segments"
    # the example's function moves to the deployment's package; a second names a missing callable
    for file, name in (("admitted_not_enrolled", "vip"), ("missing_callable", "missing_callable")):
        (college / f"{file}.yaml").write_text(f"type: function\nfunction: acme_segments.lists:{name}\n")
    with pytest.raises(ConfigError) as caught:
        load_deployment(config_copy)
    problems = [str(p) for p in caught.value.problems]
    assert problems == [
        f"config/clients/{VICTIM}/segments/missing_callable.yaml: function: module 'acme_segments.lists' (lists.py) "
        "defines no 'missing_callable' at its top level"
    ]
    assert not ran.exists()


@pytest.mark.parametrize("warehouse", ["postgres"], indirect=True)
def test_a_table_dbt_is_swapping_gets_no_segment_view(warehouse: Warehouse, deployment: Deployment) -> None:
    """A dbt build in another run renames the old table to ``<name>__dbt_backup`` and drops it at
    the end: a client's view made over it meanwhile would fail ("relation … does not exist")."""
    from herald.warehouse.segment_roles import ensure_segment_schema, readable_relations

    with warehouse.session() as s:
        s.execute("create table marts.suppressions__dbt_backup (client_id varchar, address varchar)")
        s.execute("create table marts.contacts__dbt_tmp (client_id varchar, contact_id varchar)")
        names = {(r.schema, r.name) for r in readable_relations(s)}
        assert ("marts", "contacts") in names
        assert not {n for _, n in names if n.endswith(("__dbt_backup", "__dbt_tmp"))}
        ensure_segment_schema(s, ATTACKER)
        s.execute("drop table marts.suppressions__dbt_backup")  # dbt's last step: nothing depends on it
        s.execute("drop table marts.contacts__dbt_tmp")
    client = deployment.clients[ATTACKER]
    members = evaluate_segment(warehouse, client, _segment("select contact_id from marts.contacts"))
    assert sorted(members) == ["a-1", "a-2"]
