"""What analysts see of the warehouse, on both engines: the dbt descriptions land as table and
column comments (persist_docs), and ``herald.warehouse.catalog`` lists and describes tables
from them.

One warehouse per engine with Herald's own tables (the real DDL), a hand-made
``intermediate.int_contacts_deduplicated`` and one ``dbt run`` of ``marts.contacts`` over it
(its data tests belong to test_dbt_models).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime

import pytest

from herald.settings import Settings
from herald.warehouse.catalog import UnknownTable, describe_table, docs_dir, generate_docs, list_tables
from herald.warehouse.schema import ddl_statements
from tests.conftest import ENGINES
from tests.dbt_harness import Built, MartBuild, build_marts

CONTACTS_DESCRIPTION = "One row per contact: a person a client sent us, deduplicated within the client"
CONTACT_ID_DESCRIPTION = "md5 of client_id and the contact's identity; stable across runs."
CONTACT_COUNT = 3

# the columns of int_contacts_deduplicated marts.contacts selects, in its order
UPSTREAM_COLUMNS = [
    ("contact_id", "varchar"), ("client_id", "varchar"), ("external_id", "varchar"), ("first_name", "varchar"),
    ("last_name", "varchar"), ("email", "varchar"), ("is_email_valid", "boolean"), ("phone_e164", "varchar"),
    ("is_phone_valid", "boolean"), ("postal_code", "varchar"), ("time_zone", "varchar"),
    ("first_packet_id", "varchar"), ("first_line_number", "bigint"), ("last_packet_id", "varchar"),
    ("last_line_number", "bigint"), ("source_row_count", "bigint"), ("created_at", "timestamp"),
    ("updated_at", "timestamp"),
]  # fmt: skip
RECEIVED_AT = datetime(2024, 3, 1, 12, 0)


def _contact(n: int) -> tuple:
    return (f"c{n}", "clinic", f"P{n}", "Ann", "Lee", f"ann{n}@example.com", True, f"+1312555010{n}", True,
            "60601", None, "p1", n, "p1", n, 1, RECEIVED_AT, RECEIVED_AT)  # fmt: skip


# every table of Herald's own DDL, so the catalog lists the raw and ops schemas too
HERALD_TABLES = [
    m.group(1) for m in (re.match(r"create table if not exists (\S+) \(", st) for st in ddl_statements("duckdb")) if m
]
BUILD = MartBuild(
    name="catalog",
    models=["contacts"],
    sources=HERALD_TABLES,
    hand_made={"intermediate.int_contacts_deduplicated": UPSTREAM_COLUMNS},
    rows={"intermediate.int_contacts_deduplicated": [_contact(n) for n in range(1, CONTACT_COUNT + 1)]},
    command="run",
)


@pytest.fixture(scope="module", params=ENGINES)
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    with build_marts(request, tmp_path_factory, BUILD) as result:
        yield result


def test_descriptions_land_as_comments_in_the_database(built: Built) -> None:
    if built.warehouse.engine == "duckdb":
        table_sql = "select comment from duckdb_tables() where schema_name = 'marts' and table_name = 'contacts'"
        column_sql = (
            "select comment from duckdb_columns() "
            "where schema_name = 'marts' and table_name = 'contacts' and column_name = 'contact_id'"
        )
    else:
        table_sql = "select obj_description('marts.contacts'::regclass, 'pg_class')"
        column_sql = (
            "select col_description('marts.contacts'::regclass, attnum) from pg_attribute "
            "where attrelid = 'marts.contacts'::regclass and attname = 'contact_id'"
        )
    with built.warehouse.session(read_only=True) as s:
        table_comment = s.scalar(table_sql)
        column_comment = s.scalar(column_sql)
    assert table_comment.startswith(CONTACTS_DESCRIPTION)
    assert "Python reads this table" in table_comment  # the whole description, not only its first line
    assert column_comment == CONTACT_ID_DESCRIPTION


def test_list_tables_gives_each_table_its_description_and_row_count(built: Built) -> None:
    marts = {t.name: t for t in list_tables(built.warehouse, "marts")}
    contacts = marts["contacts"]
    assert (contacts.schema, contacts.kind, contacts.row_count) == ("marts", "table", CONTACT_COUNT)
    # the first sentence only
    assert contacts.description == (
        "One row per contact: a person a client sent us, deduplicated within the client by valid "
        "phone, then valid email, then the client's external id."
    )
    assert marts["segment_members"].row_count == 0  # Python's own table in marts

    everything = list_tables(built.warehouse)
    schemas = {t.schema for t in everything}
    assert {"herald_raw", "herald_ops", "intermediate", "marts", "analytics"} <= schemas
    assert [(t.schema, t.name) for t in everything] == sorted((t.schema, t.name) for t in everything)
    rejects = next(t for t in everything if (t.schema, t.name) == ("herald_raw", "packet_rejects"))
    assert rejects.description is not None and rejects.description.startswith("One row per packet row that could not")


def test_describe_table_shows_columns_with_types_and_descriptions(built: Built) -> None:
    described = describe_table(built.warehouse, "marts.contacts")
    assert (described.schema, described.name, described.row_count) == ("marts", "contacts", CONTACT_COUNT)
    assert described.description is not None and "Python reads this table" in described.description
    assert [c.name for c in described.columns] == [name for name, _ in UPSTREAM_COLUMNS]
    by_name = {c.name: c for c in described.columns}
    assert by_name["contact_id"].description == CONTACT_ID_DESCRIPTION
    assert by_name["contact_id"].data_type.lower() in ("varchar", "character varying")
    assert by_name["created_at"].data_type.lower() in ("timestamp", "timestamp without time zone")
    assert by_name["source_row_count"].data_type.lower() == "bigint"
    assert all(c.description for c in described.columns), [c.name for c in described.columns if not c.description]
    # a bare name that only one schema has is enough
    assert describe_table(built.warehouse, "contacts").schema == "marts"


def test_unknown_table_names_the_table_and_suggests_close_ones(built: Built) -> None:
    with pytest.raises(UnknownTable) as typo:
        describe_table(built.warehouse, "marts.contact")
    assert str(typo.value).startswith("no table 'marts.contact' in the warehouse's schemas")
    assert "did you mean marts.contacts" in str(typo.value)

    with pytest.raises(UnknownTable, match=r"no table 'nothing_like_it' .*: `herald tables` lists them"):
        describe_table(built.warehouse, "nothing_like_it")


# one engine is enough for dbt's own docs site (~20 s a build)
@pytest.mark.parametrize("built", ["duckdb"], indirect=True)
def test_generate_docs_writes_the_docs_site_under_the_deployment_home(built: Built) -> None:
    settings = Settings(home=built.tmp / "home", config_dir=built.tmp, warehouse=built.warehouse.target,
                        dropzone=Settings.from_env({"HERALD_HOME": str(built.tmp / "home")}).dropzone)  # fmt: skip
    folder = generate_docs(settings)
    assert folder == docs_dir(settings) == built.tmp / "home" / "dbt-docs" / "duckdb"
    assert (folder / "index.html").exists() and (folder / "static_index.html").exists()
    catalog = (folder / "catalog.json").read_text()
    assert '"model.herald.contacts"' in catalog
