"""`herald backup` / `herald restore` on both engines, as a user runs them.

One warehouse per engine: Herald's own tables (the real DDL) with rows in several of them, and
``marts.contacts`` built by a real ``dbt run`` (its description lands as a comment); on
PostgreSQL also a client's segment schemas. HERALD_HOME holds a landing file waiting to be
loaded and a ``secret_key``. The module backs it up once, then: the round trip (change and
delete data, restore, every table's row count and some values as before the backup), and the
refusals — a backup of the other engine, a warehouse with rows without --force, missing or
damaged backups, a backup whose import or row-count check fails — each leaving the warehouse
exactly as it was.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from herald.settings import Settings
from herald.warehouse.backup import MANIFEST, row_counts
from herald.warehouse.connection import Warehouse
from herald.warehouse.schema import ddl_statements
from tests.conftest import ENGINES, REPO_ROOT
from tests.dbt_harness import MartBuild, build_marts, insert, outbox_row, row, rows

SECRET = "not-a-real-password-7f3a"  # put in the PostgreSQL URL (trust auth ignores it): never shown
RECEIVED_AT = datetime(2024, 3, 1, 12, 0)
UPSTREAM_COLUMNS = [
    ("contact_id", "varchar"), ("client_id", "varchar"), ("external_id", "varchar"), ("first_name", "varchar"),
    ("last_name", "varchar"), ("email", "varchar"), ("is_email_valid", "boolean"), ("phone_e164", "varchar"),
    ("is_phone_valid", "boolean"), ("postal_code", "varchar"), ("time_zone", "varchar"),
    ("first_packet_id", "varchar"), ("first_line_number", "bigint"), ("last_packet_id", "varchar"),
    ("last_line_number", "bigint"), ("source_row_count", "bigint"), ("created_at", "timestamp"),
    ("updated_at", "timestamp"),
]  # fmt: skip
NAMES = ["Ann", "Bea", "Cal", "Dov", "Eli"]


def _contact(n: int, name: str) -> tuple[Any, ...]:
    return (f"c{n}", "clinic", f"P{n}", name, "Lee", f"{name.lower()}@example.com", True, f"+1312555010{n}", True,
            "60601", None, "p1", n, "p1", n, 1, RECEIVED_AT, RECEIVED_AT)  # fmt: skip


HERALD_TABLES = [
    m.group(1) for m in (re.match(r"create table if not exists (\S+) \(", st) for st in ddl_statements("duckdb")) if m
]
BUILD = MartBuild(
    name="backup",
    models=["contacts"],
    sources=HERALD_TABLES,
    hand_made={"intermediate.int_contacts_deduplicated": UPSTREAM_COLUMNS},
    rows={
        "intermediate.int_contacts_deduplicated": [
            (
                f"c{n}",
                "clinic",
                f"P{n}",
                name,
                "Lee",
                f"{name.lower()}@example.com",
                True,
                f"+1312555010{n}",
                True,
                "60601",
                None,
                "p1",
                n,
                "p1",
                n,
                1,
                RECEIVED_AT,
                RECEIVED_AT,
            )
            for n, name in enumerate(NAMES, start=1)
        ],
        "herald_ops.outbox": [
            outbox_row("k1", status="sent"),
            outbox_row("k2", status="queued", body_text="It's 'quoted', with a comma\nand a new line"),
            outbox_row("k3", status="failed", channel="email", to_address="ann@example.com"),
        ],
        "herald_ops.packet_events": [
            row("herald_ops.packet_events", packet_id="p1", step=step, occurred_at=RECEIVED_AT)
            for step in ("received", "verified", "landed")
        ],
    },
    command="run",
)
LANDED = "20240301T120000__0001.jsonl"


@dataclass
class Deployment:
    engine: str
    warehouse: Warehouse
    env: dict[str, str]
    home: Path
    backup: Path
    counts: dict[str, int]  # every table's rows when the backup was taken
    backup_output: str

    def herald(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "herald.cli", *args],
            env=env or self.env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    def counts_now(self) -> dict[str, int]:
        with self.warehouse.session(read_only=True) as s:
            return row_counts(s)


def _env(home: Path, url: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HERALD_", "PG"))}
    return {**clean, "HERALD_HOME": str(home), "HERALD_WAREHOUSE_URL": url, "COLUMNS": "200"}


def _url(warehouse: Warehouse) -> str:
    if warehouse.engine == "duckdb":
        return str(warehouse.target.duckdb_path)
    return warehouse.target.url.replace("herald_app@", f"herald_app:{SECRET}@", 1)


@pytest.fixture(scope="module", params=ENGINES)
def deployment(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with build_marts(request, tmp_path_factory, BUILD) as built:
        warehouse = built.warehouse
        if warehouse.engine == "postgres":
            from herald.warehouse.segment_roles import ensure_segment_schema

            with warehouse.session() as s:
                ensure_segment_schema(s, "clinic")
        home = built.tmp / "home"
        (home / "landing" / "inbound").mkdir(parents=True)
        (home / "landing" / "inbound" / LANDED).write_text('{"inbound_id": "i1"}\n')
        (home / "secret_key").write_text("the-link-signing-key\n")
        env = _env(home, _url(warehouse))
        with warehouse.session(read_only=True) as s:
            counts = row_counts(s)
        target = built.tmp / "backups" / "first"
        target.parent.mkdir()
        deployment = Deployment(warehouse.engine, warehouse, env, home, target, counts, "")
        done = deployment.herald("backup", str(target))
        assert done.returncode == 0, done.stderr
        deployment.backup_output = done.stdout + done.stderr
        yield deployment


def _assert_error(done: subprocess.CompletedProcess[str], *says: str) -> None:
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stdout + done.stderr
    for text in says:
        assert text in done.stderr, done.stderr


def _copy_backup(deployment: Deployment, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(deployment.backup, copy)
    return copy


def _rewrite_manifest(backup: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads((backup / MANIFEST).read_text())
    change(data)
    (backup / MANIFEST).write_text(json.dumps(data))


def test_the_manifest_describes_the_backup(deployment: Deployment) -> None:
    manifest = json.loads((deployment.backup / MANIFEST).read_text())
    assert manifest["engine"] == deployment.engine
    assert manifest["schema_version"] is None  # no herald_ops.schema_migrations in this warehouse
    assert datetime.fromisoformat(manifest["created_at"]).tzinfo is not None
    assert manifest["tables"] == deployment.counts  # every table, with its rows
    assert manifest["tables"]["marts.contacts"] == len(NAMES)
    assert manifest["tables"]["herald_ops.outbox"] == 3
    assert len(manifest["tables"]) >= len(HERALD_TABLES) + 1
    assert manifest["home"]["files"] == [f"landing/inbound/{LANDED}", "secret_key"]
    data_file = "warehouse.dump" if deployment.engine == "postgres" else "warehouse/load.sql"
    assert data_file in manifest["files"]
    assert set(manifest["files"]) == {
        p.relative_to(deployment.backup).as_posix()
        for p in deployment.backup.rglob("*")
        if p.is_file() and p.name != MANIFEST
    }
    assert f"{len(deployment.counts)} tables" in deployment.backup_output
    # the password never reaches the backup, its manifest or the output
    assert SECRET not in deployment.backup_output
    for path in deployment.backup.rglob("*"):
        assert not path.is_file() or SECRET.encode() not in path.read_bytes(), path
    if deployment.engine == "postgres":
        assert "***" in manifest["source"]
        assert not any(name.startswith("seg_") for name in {t.split(".")[0] for t in manifest["tables"]})


def test_restore_refuses_a_warehouse_with_rows_without_force(deployment: Deployment) -> None:
    before = deployment.counts_now()
    done = deployment.herald("restore", str(deployment.backup))
    _assert_error(done, "is not empty", "pass --force", "marts.contacts")
    assert deployment.counts_now() == before


def test_restore_refuses_a_backup_of_the_other_engine(deployment: Deployment, tmp_path: Path) -> None:
    other = "duckdb" if deployment.engine == "postgres" else "postgres"
    copy = _copy_backup(deployment, tmp_path)
    _rewrite_manifest(copy, lambda m: m.update(engine=other))
    before = deployment.counts_now()
    done = deployment.herald("restore", str(copy), "--force")
    names = {"duckdb": "DuckDB", "postgres": "PostgreSQL"}
    _assert_error(
        done,
        f"is a backup of a {names[other]} warehouse",
        "the configured warehouse",
        f"is {names[deployment.engine]}",
    )
    assert deployment.counts_now() == before


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        ("missing folder", "no such backup folder"),
        ("no manifest", "is not a complete Herald backup"),
        ("manifest not json", "is not a readable backup manifest"),
        ("a file changed", "does not match its checksum"),
        ("a file missing", "is missing from the backup"),
    ],
)
def test_a_missing_or_damaged_backup_is_a_clear_error(
    deployment: Deployment, tmp_path: Path, damage: str, says: str
) -> None:
    copy = _copy_backup(deployment, tmp_path)
    data_file = copy / ("warehouse.dump" if deployment.engine == "postgres" else "warehouse/herald_ops_outbox.parquet")
    if damage == "missing folder":
        shutil.rmtree(copy)
    elif damage == "no manifest":
        (copy / MANIFEST).unlink()
    elif damage == "manifest not json":
        (copy / MANIFEST).write_text("{ half a manifest")
    elif damage == "a file changed":
        data_file.write_bytes(data_file.read_bytes()[:-10] + b"0123456789")
    else:
        data_file.unlink()
    before = deployment.counts_now()
    _assert_error(deployment.herald("restore", str(copy), "--force"), says)
    assert deployment.counts_now() == before


def test_a_restore_that_fails_its_row_count_check_changes_nothing(deployment: Deployment, tmp_path: Path) -> None:
    copy = _copy_backup(deployment, tmp_path)
    _rewrite_manifest(copy, lambda m: m["tables"].update({"marts.contacts": 99}))
    with deployment.warehouse.session() as s:
        s.execute("delete from marts.contacts where contact_id = 'c1'")
    before = deployment.counts_now()
    done = deployment.herald("restore", str(copy), "--force")
    _assert_error(done, "marts.contacts", "99", "not changed")
    assert deployment.counts_now() == before  # still without c1: nothing of the backup was applied
    assert before["marts.contacts"] == len(NAMES) - 1
    if deployment.engine == "duckdb":
        assert not list(deployment.warehouse.target.duckdb_path.parent.glob("*.restoring-*"))  # type: ignore[union-attr]


def test_a_restore_that_fails_midway_leaves_the_old_warehouse_working(deployment: Deployment, tmp_path: Path) -> None:
    """DuckDB: IMPORT DATABASE fails on a broken parquet file; PostgreSQL: pg_restore fails on a
    cut-off dump after psql has begun — in both the checksum matches, so the failure is the
    restore's own, and the warehouse must stay as it was and keep working."""
    copy = _copy_backup(deployment, tmp_path)
    if deployment.engine == "duckdb":
        name = "warehouse/herald_ops_outbox.parquet"
        (copy / name).write_bytes(b"PAR1 this is not a parquet file PAR1")
        says = ("importing", "failed, the warehouse", "was not changed")
    else:
        name = "warehouse.dump"
        data = (copy / name).read_bytes()
        (copy / name).write_bytes(data[: len(data) * 3 // 4])
        says = ("pg_restore failed", "was not changed (the restore rolled back)")
    _rewrite_manifest(copy, lambda m: m["files"].update({name: _sha(copy / name)}))
    before = deployment.counts_now()
    done = deployment.herald("restore", str(copy), "--force")
    _assert_error(done, *says)
    assert deployment.counts_now() == before
    if deployment.engine == "duckdb":
        folder = deployment.warehouse.target.duckdb_path.parent  # type: ignore[union-attr]
        assert sorted(p.name for p in folder.iterdir() if p.name.startswith("warehouse")) == ["warehouse.duckdb"]
    with deployment.warehouse.session() as s:  # the old warehouse still takes writes
        s.execute("insert into herald_ops.packet_events values ('p2', 'received', now()::timestamp, null, null)")
        s.execute("delete from herald_ops.packet_events where packet_id = 'p2'")


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_round_trip_restores_every_table(deployment: Deployment) -> None:
    wh = deployment.warehouse
    with wh.session() as s:  # change, delete and add data after the backup
        s.execute("delete from marts.contacts where contact_id in ('c1', 'c2')")
        s.execute("update marts.contacts set first_name = 'Changed' where contact_id = 'c3'")
        s.execute("update herald_ops.outbox set status = 'cancelled'")
        s.execute("delete from herald_ops.packet_events")
        s.execute("create table herald_ops.made_after_backup (x integer)")
        s.execute("insert into herald_ops.made_after_backup values (1)")
    insert(wh, {"herald_ops.outbox": (BUILD.columns("herald_ops.outbox"), [outbox_row("k4")])})
    if wh.engine == "postgres":
        with wh.session() as s:
            s.execute("drop table herald_ops.audit_log")
    landing = deployment.home / "landing" / "inbound"
    (landing / "loaded").mkdir()
    (landing / LANDED).rename(landing / "loaded" / LANDED)  # loaded after the backup was taken
    (landing / "20240301T130000__0002.jsonl").write_text('{"inbound_id": "i2"}\n')  # arrived after
    assert deployment.counts_now() != deployment.counts

    done = deployment.herald("restore", str(deployment.backup), "--force")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr

    assert deployment.counts_now() == deployment.counts  # every table of every schema
    assert [r["first_name"] for r in rows(wh, "select first_name from marts.contacts order by contact_id")] == NAMES
    outbox = rows(wh, "select message_key, status, body_text from herald_ops.outbox order by message_key")
    assert [(r["message_key"], r["status"]) for r in outbox] == [("k1", "sent"), ("k2", "queued"), ("k3", "failed")]
    assert outbox[1]["body_text"] == "It's 'quoted', with a comma\nand a new line"
    steps = rows(wh, "select step from herald_ops.packet_events order by occurred_at, step")
    assert sorted(r["step"] for r in steps) == ["landed", "received", "verified"]
    assert "herald_ops.made_after_backup" not in deployment.counts_now()  # the warehouse is the backup's
    # dbt's description of marts.contacts (a comment) came back too
    comment_sql = (
        "select comment from duckdb_tables() where schema_name = 'marts' and table_name = 'contacts'"
        if wh.engine == "duckdb"
        else "select obj_description('marts.contacts'::regclass, 'pg_class')"
    )
    with wh.session(read_only=True) as s:
        assert str(s.scalar(comment_sql)).startswith("One row per contact")

    # the printed table names every table with both counts
    for table in ("marts.contacts", "herald_ops.outbox", "herald_ops.packet_events"):
        line = next(li for li in done.stdout.splitlines() if f" {table} " in li)
        assert re.search(rf"{deployment.counts[table]}\s+.*{deployment.counts[table]}\s+.*ok", line), line
    assert f"{len(deployment.counts)} tables" in done.stdout
    assert SECRET not in done.stdout + done.stderr

    # HERALD_HOME: the file loaded after the backup is waiting again, the newer one is untouched
    assert sorted(p.name for p in landing.glob("*.jsonl")) == [LANDED, "20240301T130000__0002.jsonl"]
    assert "1 file loaded since it put back" in done.stdout
    if wh.engine == "duckdb":
        kept = [p for p in wh.target.duckdb_path.parent.iterdir() if ".before-restore-" in p.name]  # type: ignore[union-attr]
        assert len(kept) == 1 and kept[0].name in done.stdout
        old = Warehouse(Settings.from_env({"HERALD_WAREHOUSE_URL": str(kept[0])}).warehouse)
        with old.session(read_only=True) as s:  # the old file is kept as it was just before
            assert s.scalar("select count(*) from herald_ops.made_after_backup") == 1
            assert s.scalar("select count(*) from marts.contacts") == len(NAMES) - 2
        kept[0].unlink()
    else:
        from herald.warehouse.segment_roles import ensure_segment_schema, runner_schema, segment_role

        with wh.session() as s:  # the segment schemas are rebuilt as before a segment evaluation
            ensure_segment_schema(s, "clinic")
            owner = s.scalar(
                "select pg_get_userbyid(p.proowner) from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
                "where n.nspname = ? and p.proname = 'run_segment'",
                [runner_schema("clinic")],
            )
        assert owner == segment_role("clinic")


def test_restore_into_an_empty_warehouse_needs_no_force(
    deployment: Deployment, tmp_path: Path, pg_database_factory_if_postgres: Callable[[], str]
) -> None:
    home = tmp_path / "new-home"
    url = pg_database_factory_if_postgres() if deployment.engine == "postgres" else str(home / "warehouse.duckdb")
    env = _env(home, url)
    done = deployment.herald("restore", str(deployment.backup), env=env)
    assert done.returncode == 0, done.stderr
    restored = Warehouse(Settings.from_env(env).warehouse)
    with restored.session(read_only=True) as s:
        assert row_counts(s) == deployment.counts
    assert (home / "secret_key").read_text() == "the-link-signing-key\n"
    assert (home / "landing" / "inbound" / LANDED).is_file()
    assert not [p for p in home.iterdir() if ".before-restore-" in p.name]  # nothing to keep


@pytest.fixture
def pg_database_factory_if_postgres(request: pytest.FixtureRequest) -> Callable[[], str]:
    def create() -> str:
        return request.getfixturevalue("pg_database_factory")()

    return create


def test_a_damaged_duckdb_file_is_replaced_only_with_force(tmp_path: Path) -> None:
    """The embedded warehouse file itself is what a restore is for when it no longer opens:
    without --force the restore says it cannot check it; with --force the backup replaces it
    and the damaged file is kept beside it."""
    home = tmp_path / "home"
    env = _env(home, "")
    warehouse = Warehouse(Settings.from_env(env).warehouse)
    warehouse.ensure_schema()
    insert(warehouse, {"herald_ops.outbox": (BUILD.columns("herald_ops.outbox"), [outbox_row("k1")])})
    with warehouse.session(read_only=True) as s:
        counts = row_counts(s)
    deployment = Deployment("duckdb", warehouse, env, home, tmp_path / "backup", counts, "")
    assert deployment.herald("backup", str(deployment.backup)).returncode == 0
    path = warehouse.target.duckdb_path
    assert path is not None
    path.write_bytes(b"not a database any more" * 100)

    _assert_error(deployment.herald("restore", str(deployment.backup)), "cannot check that the warehouse", "--force")
    done = deployment.herald("restore", str(deployment.backup), "--force")
    assert done.returncode == 0, done.stderr
    assert deployment.counts_now() == counts
    kept = [p for p in home.iterdir() if ".before-restore-" in p.name]
    assert len(kept) == 1 and kept[0].read_bytes().startswith(b"not a database any more")
