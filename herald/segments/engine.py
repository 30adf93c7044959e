"""Evaluate a configured segment to the sorted, distinct contact ids of one client.

- ``manual``: members matched against ``marts.contacts`` by external id, by phone (E.164 in the
  client's region) and by email (trimmed, lower-case);
- ``sql``: the guarded SELECT, run confined to the client's rows (``herald/segments/confine.py``)
  with the segment's timeout;
- ``function``: ``module:callable(db, client_id)`` from the deployment's segment functions
  package, given the same confined handle.

Whatever a segment returns, only the client's own contacts are kept. A failing segment's error
names the kind of error and its position in the SQL, never values from the data.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from herald.config.models import Client
from herald.config.segments import SegmentConfig, in_functions_package
from herald.contacts.phones import PhoneNormalizer
from herald.segments.confine import ConfinedDatabase, SegmentQueryFailed, confined_database, describe_failure
from herald.segments.guard import SegmentSqlRefused, check_sql, referenced_relations
from herald.warehouse.build_lock import models_stable
from herald.warehouse.connection import Session, Warehouse

CONTACTS = "marts.contacts"


class SegmentError(RuntimeError):
    """A segment cannot be evaluated; the message names the segment and what is wrong."""

    def __init__(self, client_id: str, segment_name: str, problem: str):
        self.client_id = client_id
        self.segment_name = segment_name
        self.problem = problem
        super().__init__(f"segment {client_id}/{segment_name}: {problem}")


# what a ``function`` segment receives (the name it had when it was a read-only session)
ReadOnlyDatabase = ConfinedDatabase


def check_segment_sql(client_id: str, segment: SegmentConfig, engine: str = "postgres") -> set[tuple[str, str]]:
    """The ``(schema, name)`` relations a ``sql`` segment reads; :class:`SegmentError` when the
    guard refuses its SQL."""
    try:
        return referenced_relations(check_sql(segment.sql or "", dialect=engine))
    except SegmentSqlRefused as exc:
        raise SegmentError(client_id, segment.name, str(exc)) from None


def evaluate_segment(warehouse: Warehouse, client: Client, segment: SegmentConfig) -> list[str]:
    """The segment's members: contact ids of ``client``, sorted and distinct. On PostgreSQL the
    whole evaluation (the client's views over ``marts``, then the query) holds the dbt build lock
    shared, so no build swaps a model under it (:mod:`herald.warehouse.build_lock`)."""
    evaluate: dict[str, Callable[[Warehouse, Client, SegmentConfig], list[str]]] = {
        "manual": _manual,
        "sql": _sql,
        "function": _function,
    }
    with models_stable(warehouse):
        return evaluate[segment.type](warehouse, client, segment)


def manual_keys(members: Sequence[str], region: str) -> tuple[list[str], list[str], list[str]]:
    """``(external_ids, phones_e164, emails)`` to match for a manual list: every entry is tried
    as an external id; one with ``@`` as an email, any other that normalizes as a phone."""
    normalizer = PhoneNormalizer(region)
    external_ids, phones, emails = [], [], []
    for raw in members:
        text = raw.strip()
        if not text:
            continue
        external_ids.append(text)
        if "@" in text:
            emails.append(text.lower())
            continue
        e164, valid = normalizer.normalize(text)
        if valid and e164:
            phones.append(e164)
    return sorted(set(external_ids)), sorted(set(phones)), sorted(set(emails))


def _in(column: str, values: list[str]) -> tuple[str, list[str]]:
    if not values:
        return "false", []
    return f"{column} in ({', '.join('?' for _ in values)})", values


def _manual(warehouse: Warehouse, client: Client, segment: SegmentConfig) -> list[str]:
    external_ids, phones, emails = manual_keys(segment.members, client.default_region)
    conditions, params = [], []
    for column, values in (("external_id", external_ids), ("phone_e164", phones), ("lower(trim(email))", emails)):
        condition, values_ = _in(column, values)
        conditions.append(condition)
        params.extend(values_)
    sql = f"select contact_id from {CONTACTS} where client_id = ? and ({' or '.join(conditions)})"
    params = [client.client_id, *params]
    if segment.packet_type:
        # the list as the client last sent it: every contact of the latest landed packet of the type
        sql += """
            union
            select sources.contact_id from marts.contact_sources as sources
            where sources.packet_id = (
                select packet_id from herald_ops.packets
                where client_id = ? and packet_type = ? and status = 'landed'
                order by received_at desc, packet_id desc limit 1
            )"""
        params += [client.client_id, segment.packet_type]
    with _read_only(warehouse, client, segment) as session:
        rows = session.query(f"select distinct contact_id from ({sql}) as members order by contact_id", params)[1]
    return [str(r[0]) for r in rows]


# the segment's SELECT becomes the body of this one; only the client's contacts can come out
_SQL_HEAD = "select distinct cast(s.contact_id as varchar) as contact_id from (\n"
_SQL_TAIL = "\n) as s join marts.contacts as c on c.contact_id = s.contact_id"


def _sql(warehouse: Warehouse, client: Client, segment: SegmentConfig) -> list[str]:
    relations = check_segment_sql(client.client_id, segment, warehouse.engine)
    # parse succeeded with exactly one statement, so only trailing semicolons can follow it;
    # the newline keeps a trailing `-- comment` from swallowing the closing parenthesis
    body = (segment.sql or "").strip().rstrip(";").rstrip()
    sql = _SQL_HEAD + body + _SQL_TAIL
    try:
        with confined_database(warehouse, client.client_id, segment.timeout_seconds, relations) as db:
            rows = db.query(sql)
    except SegmentQueryFailed as failure:
        raise _failed(client, segment, failure, sql, len(_SQL_HEAD)) from None
    return sorted({str(r[0]) for r in rows})


def _failed(client: Client, segment: SegmentConfig, failure: SegmentQueryFailed, sql: str, start: int) -> SegmentError:
    if failure.timed_out:
        seconds = segment.timeout_seconds
        return SegmentError(client.client_id, segment.name, f"timed out after {seconds} s (timeout_seconds: {seconds})")
    return SegmentError(client.client_id, segment.name, f"the SQL failed: {describe_failure(failure, sql, start)}")


def _function(warehouse: Warehouse, client: Client, segment: SegmentConfig) -> list[str]:
    func = _import_function(client, segment)
    try:
        with confined_database(warehouse, client.client_id, segment.timeout_seconds) as db:
            result = func(db, client.client_id)
            ids = _validate_ids(client.client_id, segment, result)
            if not ids:
                return []
            own = {str(r[0]) for r in db.query("select contact_id from marts.contacts")}
    except SegmentQueryFailed as failure:  # a query of the function failed and it did not catch it
        raise _failed(client, segment, failure, "", 0) from None
    return sorted(ids & own)


def _import_function(client: Client, segment: SegmentConfig) -> Callable[..., Any]:
    function = segment.function or ""
    package = client.segment_functions_package
    if not in_functions_package(function, package):
        raise SegmentError(
            client.client_id,
            segment.name,
            f"{function!r} is not in the segment functions package {package!r} (herald.yaml: segment_functions_package)",
        )
    module_name, _, attr = function.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SegmentError(client.client_id, segment.name, f"cannot import {module_name!r}: {exc}") from None
    func = getattr(module, attr, None)
    if not callable(func):
        raise SegmentError(client.client_id, segment.name, f"{module_name!r} has no callable {attr!r}")
    return func


def _validate_ids(client_id: str, segment: SegmentConfig, result: Any) -> set[str]:
    if result is None or isinstance(result, (str, bytes)) or not hasattr(result, "__iter__"):
        raise SegmentError(
            client_id,
            segment.name,
            f"{segment.function} must return an iterable of contact ids, not {type(result).__name__}",
        )
    ids: set[str] = set()
    for value in result:
        if not isinstance(value, str):
            raise SegmentError(
                client_id,
                segment.name,
                f"{segment.function} returned {value!r} ({type(value).__name__}); contact ids are strings",
            )
        ids.add(value)
    return ids


@contextmanager
def _read_only(warehouse: Warehouse, client: Client, segment: SegmentConfig) -> Iterator[Session]:
    """A read-only session that gives up after the segment's ``timeout_seconds``
    (PostgreSQL: ``statement_timeout``; DuckDB: the connection is interrupted by a timer)."""
    seconds = segment.timeout_seconds
    timed_out = threading.Event()
    timer: threading.Timer | None = None
    try:
        with warehouse.session(read_only=True) as session:
            if warehouse.engine == "postgres":
                session.execute(f"set local statement_timeout = {int(seconds * 1000)}")
            else:
                # Session keeps its DuckDB connection private; interrupting it is the only way
                # DuckDB offers to stop a running query from outside.
                conn = session._conn

                def interrupt() -> None:
                    timed_out.set()
                    conn.interrupt()

                timer = threading.Timer(seconds, interrupt)
                timer.daemon = True
                timer.start()
            yield session
    except SegmentError:
        raise
    except Exception as exc:
        if timed_out.is_set() or _is_query_canceled(exc):
            raise SegmentError(
                client.client_id, segment.name, f"timed out after {seconds} s (timeout_seconds: {seconds})"
            ) from None
        raise
    finally:
        if timer is not None:
            timer.cancel()


def _is_query_canceled(exc: BaseException) -> bool:
    try:
        import psycopg2.errors
    except ImportError:  # pragma: no cover - psycopg2 is a dependency
        return False
    return isinstance(exc, psycopg2.errors.QueryCanceled)
