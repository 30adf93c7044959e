"""PostgreSQL roles and schemas that confine one client's segment SQL (docs/security.md).

For a client ``<c>`` Herald keeps, created or brought up to date lazily before each evaluation:

- the role ``herald_seg_<c>``: NOLOGIN, no attributes, granted to the application role (the
  warehouse user) so that it may ``SET ROLE`` to it;
- the schemas ``seg_<c>_marts`` and ``seg_<c>_analytics``: one ``security_barrier`` view per
  readable relation of ``marts`` / ``analytics``, named like it and filtered to the client's rows
  (``client_id = '<c>'``, or, for a relation without ``client_id``, its ``contact_id`` among the
  client's contacts), owned by the application role. The client's role gets ``USAGE`` on these
  two schemas and ``SELECT`` on their views — nothing else, on anything;
- the schema ``seg_<c>`` with ``run_segment(text)``: a ``SECURITY DEFINER`` function owned by the
  client's role that executes the statement and returns its rows as JSON. PostgreSQL refuses
  ``SET ROLE`` and ``set_config('role', …)`` inside a security-definer function, so a statement
  cannot switch back to the application role the session logged in as (``SET ROLE`` alone
  would not stop that: the permission to change role is checked against the session user).

Roles are cluster-wide, schemas per database. Creating the role needs ``CREATEROLE`` (or an
administrator creates it once, NOLOGIN, and grants it to the warehouse user).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from herald.warehouse.connection import Session, WarehouseError

READABLE_SCHEMAS = ("marts", "analytics")
RUN_FUNCTION = "run_segment"
# run_segment executes RUN_PREFIX + statement + ") as r": error positions are offsets in that text
RUN_PREFIX = "select row_to_json(r) from ("
_PG_NAME_MAX = 63
# first key of PostgreSQL's two-key advisory lock for this module (credits use their own class)
_ADVISORY_LOCK_CLASS = 18_001


@dataclass(frozen=True)
class Relation:
    """A relation a segment may read: ``schema.name``, filtered by ``client_id`` or ``contact_id``."""

    schema: str
    name: str
    columns: tuple[str, ...]

    @property
    def filter_column(self) -> str | None:
        for column in ("client_id", "contact_id"):
            if column in self.columns:
                return column
        return None


def _pg_name(prefix: str, client_id: str, suffix: str = "") -> str:
    name = f"{prefix}{client_id}{suffix}"
    if len(name) <= _PG_NAME_MAX:
        return name
    digest = hashlib.md5(client_id.encode()).hexdigest()[:8]
    keep = _PG_NAME_MAX - len(prefix) - len(suffix) - len(digest) - 1
    return f"{prefix}{client_id[:keep]}_{digest}{suffix}"


def segment_role(client_id: str) -> str:
    return _pg_name("herald_seg_", client_id)


def segment_schema(client_id: str, schema: str) -> str:
    """The client's schema of views standing for ``schema`` (``marts`` / ``analytics``)."""
    return _pg_name("seg_", client_id, f"_{schema}")


def runner_schema(client_id: str) -> str:
    return _pg_name("seg_", client_id)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# What dbt names a table while it swaps in a new build (``x__dbt_tmp``, then the old one as
# ``x__dbt_backup``, dropped at the end). A build in another run may be mid-swap while a client's
# views are made: a view over one of these would name a table about to vanish.
DBT_TRANSIENT_SUFFIXES = ("__dbt_tmp", "__dbt_backup")


def readable_relations(session: Session) -> list[Relation]:
    """Every table or view of ``marts`` / ``analytics`` with a ``client_id`` or ``contact_id``
    column (a relation with neither cannot be split by client, so no segment reads it)."""
    _, rows = session.query(
        "select table_schema, table_name, column_name from information_schema.columns "
        f"where table_schema in ({', '.join('?' for _ in READABLE_SCHEMAS)}) "
        "order by table_schema, table_name, ordinal_position",
        list(READABLE_SCHEMAS),
    )
    columns: dict[tuple[str, str], list[str]] = {}
    for schema, name, column in rows:
        columns.setdefault((str(schema), str(name)), []).append(str(column))
    relations = [
        Relation(schema, name, tuple(cols))
        for (schema, name), cols in columns.items()
        if not name.endswith(DBT_TRANSIENT_SUFFIXES)
    ]
    return [r for r in relations if r.filter_column is not None]


def filter_sql(relation: Relation, client_id: str) -> str:
    """``select * from <relation>`` restricted to the client's rows (the client id inlined)."""
    source = f"{_ident(relation.schema)}.{_ident(relation.name)}"
    if relation.filter_column == "client_id":
        return f"select * from {source} where client_id = {_literal(client_id)}"
    return (
        f"select * from {source} where contact_id in "
        f"(select contact_id from marts.contacts where client_id = {_literal(client_id)})"
    )


def ensure_segment_schema(session: Session, client_id: str) -> list[Relation]:
    """Create or bring up to date the client's role, view schemas and runner (idempotent; run in
    a read-write session of the application role). Returns the relations the client may read."""
    session.execute("select pg_advisory_xact_lock(?, hashtext(?))", [_ADVISORY_LOCK_CLASS, client_id])
    role = segment_role(client_id)
    _ensure_role(session, role)
    relations = readable_relations(session)
    has_contacts = any(r.schema == "marts" and r.name == "contacts" for r in relations)
    if not has_contacts:  # a contact_id filter needs marts.contacts
        relations = [r for r in relations if r.filter_column == "client_id"]
    for schema in READABLE_SCHEMAS:
        target = segment_schema(client_id, schema)
        session.execute(f"create schema if not exists {_ident(target)}")
        session.execute(f"grant usage on schema {_ident(target)} to {_ident(role)}")
    existing = _view_columns(session, client_id)
    for relation in relations:
        view = f"{_ident(segment_schema(client_id, relation.schema))}.{_ident(relation.name)}"
        if existing.get((relation.schema, relation.name)) == relation.columns:
            continue
        session.execute(f"drop view if exists {view}")
        session.execute(f"create view {view} with (security_barrier) as {filter_sql(relation, client_id)}")
        session.execute(f"grant select on {view} to {_ident(role)}")
    wanted = {(r.schema, r.name) for r in relations}
    for schema, name in existing.keys() - wanted:  # the mart is gone: so is its view
        session.execute(f"drop view if exists {_ident(segment_schema(client_id, schema))}.{_ident(name)}")
    _ensure_runner(session, client_id, role)
    return relations


def _ensure_role(session: Session, role: str) -> None:
    for _ in range(3):  # roles are cluster-wide: another database's set-up may race to create it
        if session.scalar("select count(*) from pg_roles where rolname = ?", [role]) == 0:
            session.execute("savepoint herald_seg_role")
            try:
                session.execute(f"create role {_ident(role)} nologin noinherit")
            except Exception as exc:
                session.execute("rollback to savepoint herald_seg_role")
                if _sqlstate(exc) == "42501":
                    raise WarehouseError(
                        f"the warehouse user cannot create the segment role {role}: give it CREATEROLE, or "
                        f"create the role once (CREATE ROLE {role} NOLOGIN) and grant it to the warehouse user"
                    ) from None
                continue  # created meanwhile by another session: check again
            session.execute("release savepoint herald_seg_role")
        if session.scalar("select pg_has_role(current_user, ?, 'MEMBER')", [role]):
            return
        session.execute("savepoint herald_seg_role")
        try:
            session.execute(f"grant {_ident(role)} to current_user")
        except Exception as exc:
            session.execute("rollback to savepoint herald_seg_role")
            if _sqlstate(exc) == "42501":
                raise WarehouseError(
                    f"the warehouse user is not a member of the segment role {role} and cannot grant it "
                    f"to itself: grant {role} to the warehouse user"
                ) from None
            continue
        session.execute("release savepoint herald_seg_role")
        return
    raise WarehouseError(f"could not set up the segment role {role}: concurrent changes, try again")


def _sqlstate(exc: BaseException) -> str | None:
    return getattr(exc, "pgcode", None)


def _view_columns(session: Session, client_id: str) -> dict[tuple[str, str], tuple[str, ...]]:
    by_schema = {segment_schema(client_id, s): s for s in READABLE_SCHEMAS}
    _, rows = session.query(
        "select c.table_schema, c.table_name, c.column_name from information_schema.columns c "
        "join information_schema.views v on v.table_schema = c.table_schema and v.table_name = c.table_name "
        f"where c.table_schema in ({', '.join('?' for _ in by_schema)}) "
        "order by c.table_schema, c.table_name, c.ordinal_position",
        list(by_schema),
    )
    columns: dict[tuple[str, str], list[str]] = {}
    for schema, name, column in rows:
        columns.setdefault((by_schema[str(schema)], str(name)), []).append(str(column))
    return {key: tuple(cols) for key, cols in columns.items()}


def _ensure_runner(session: Session, client_id: str, role: str) -> None:
    schema = runner_schema(client_id)
    function = f"{_ident(schema)}.{RUN_FUNCTION}(text)"
    session.execute(f"create schema if not exists {_ident(schema)}")
    session.execute(f"grant usage on schema {_ident(schema)} to {_ident(role)}")
    exists = session.scalar(
        "select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
        "where n.nspname = ? and p.proname = ? and pg_get_userbyid(p.proowner) = ?",
        [schema, RUN_FUNCTION, role],
    )
    if exists:
        return
    search_path = ", ".join(["pg_catalog", *(_ident(segment_schema(client_id, s)) for s in READABLE_SCHEMAS)])
    session.execute(f"drop function if exists {function}")
    session.execute(
        f"create function {function} returns setof json language plpgsql security definer "
        f"set search_path = {search_path} as $herald$ begin "
        f"return query execute '{RUN_PREFIX}' || $1 || ') as r'; "
        "end $herald$"
    )
    session.execute(f"revoke all on function {function} from public")
    # the new owner needs CREATE on the schema only for the change of owner
    session.execute(f"grant create on schema {_ident(schema)} to {_ident(role)}")
    session.execute(f"alter function {function} owner to {_ident(role)}")
    session.execute(f"revoke create on schema {_ident(schema)} from {_ident(role)}")
