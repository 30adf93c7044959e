"""Where a segment's SQL runs: a database that holds only one client's rows of the marts.

- **DuckDB**: a separate in-memory connection filled (through Arrow) with the client's rows of
  the ``marts`` / ``analytics`` relations the segment may read, then locked:
  ``enable_external_access = false`` (no file, no ``ATTACH``, no extension install) and
  ``lock_configuration = true`` (no setting can be changed back). Python replacement scans are off.
  A timer interrupts the query after the segment's ``timeout_seconds``.
- **PostgreSQL**: the statement runs in a ``READ ONLY`` transaction with ``statement_timeout``,
  under the client's own role (``herald/warehouse/segment_roles.py``): ``marts.x`` and
  ``analytics.x`` are rewritten to the client's schemas of filtered views, and the statement
  executes inside the client's security-definer runner, where it cannot change role.

Errors say what kind of error and where in the SQL (line, column, the SQL's own word there),
never the engine's text, which can quote values from the data.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlglot.dialects.dialect import Dialect
from sqlglot.tokens import TokenType

from herald.warehouse.connection import Session, Warehouse
from herald.warehouse.segment_roles import (
    READABLE_SCHEMAS,
    RUN_FUNCTION,
    RUN_PREFIX,
    ensure_segment_schema,
    filter_sql,
    readable_relations,
    runner_schema,
    segment_role,
    segment_schema,
)

CONTACTS = ("marts", "contacts")
_WORD = re.compile(r'"[^"\n]*"|[\w.]+|\S')


class SegmentQueryFailed(RuntimeError):
    """A segment's query failed: ``kind`` of error and the 0-based ``position`` in the SQL given
    to :meth:`ConfinedDatabase.query` (None when the engine did not say)."""

    def __init__(self, kind: str, position: int | None, timed_out: bool = False):
        self.kind = kind
        self.position = position
        self.timed_out = timed_out
        super().__init__(kind if position is None else f"{kind} at offset {position}")


class ConfinedDatabase:
    """What a segment's SQL and a ``function`` segment see: queries over the client's rows only."""

    engine: str

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Rows of a query (``?`` placeholders on both engines); :class:`SegmentQueryFailed` when
        it fails. On PostgreSQL values come back as JSON would carry them (timestamps as text)."""
        raise NotImplementedError


def describe_failure(failure: SegmentQueryFailed, sql: str, start: int = 0) -> str:
    """``<kind> at line L, column C (near `word`)`` — the position counted in ``sql[start:]``,
    the word taken from the SQL itself, never from the data."""
    if failure.position is None or not start <= failure.position < len(sql):
        return failure.kind
    text = sql[start:]
    offset = failure.position - start
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    word = _WORD.match(text, offset)
    near = f" (near `{word.group(0)}`)" if word else ""
    return f"{failure.kind} at line {line}, column {column}{near}"


def _kind(exc: BaseException) -> str:
    name = type(exc).__name__
    for suffix in ("Exception", "Error"):
        name = name.removesuffix(suffix)
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower().strip()
    if words in ("", "database", "programming", "operational", "internal"):
        return "database error"
    return f"{words} error" if type(exc).__module__.startswith(("duckdb", "_duckdb")) else words


@contextmanager
def confined_database(
    warehouse: Warehouse,
    client_id: str,
    timeout_seconds: int,
    relations: set[tuple[str, str]] | None = None,
) -> Iterator[ConfinedDatabase]:
    """A confined database for ``client_id``; ``relations`` (``(schema, name)``) limits what the
    DuckDB copy holds (None: every readable relation; ``marts.contacts`` always)."""
    if warehouse.engine == "postgres":
        with _postgres(warehouse, client_id, timeout_seconds) as db:
            yield db
    else:
        with _duckdb(warehouse, client_id, timeout_seconds, relations) as db:
            yield db


# --- DuckDB -------------------------------------------------------------------------------------


class _DuckDBConfined(ConfinedDatabase):
    engine = "duckdb"

    def __init__(self, conn: Any, timed_out: threading.Event):
        self._conn = conn
        self._timed_out = timed_out

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        try:
            return [tuple(r) for r in self._conn.execute(sql, list(params or [])).fetchall()]
        except Exception as exc:
            if self._timed_out.is_set():
                raise SegmentQueryFailed("timed out", None, timed_out=True) from None
            raise SegmentQueryFailed(_kind(exc), _duckdb_position(str(exc), sql)) from None


def _duckdb_position(message: str, sql: str) -> int | None:
    """The offset DuckDB's ``LINE n: …`` / ``^^^`` marker points at (its snippet may be cut
    with ``...`` around the error)."""
    found = re.search(r"^(LINE (\d+): )(.*)\n( *)\^", message, re.MULTILINE)
    if not found:
        return None
    lines = sql.split("\n")
    number = int(found.group(2))
    if not 1 <= number <= len(lines):
        return None
    snippet, column = found.group(3), len(found.group(4)) - len(found.group(1))
    lead = 3 if snippet.startswith("...") else 0
    core = snippet[lead:].removesuffix("...")
    start = lines[number - 1].find(core)
    if start < 0 or column < lead:
        return None
    return sum(len(line) + 1 for line in lines[: number - 1]) + start + column - lead


@contextmanager
def _duckdb(
    warehouse: Warehouse, client_id: str, timeout_seconds: int, relations: set[tuple[str, str]] | None
) -> Iterator[ConfinedDatabase]:
    import duckdb

    conn = duckdb.connect(":memory:")
    timer: threading.Timer | None = None
    try:
        for setting in (
            "python_enable_replacements = false",  # no Python variable is readable as a table
            "autoinstall_known_extensions = false",
            "autoload_known_extensions = false",
            "allow_community_extensions = false",
        ):
            conn.execute(f"set {setting}")
        for schema in READABLE_SCHEMAS:
            conn.execute(f"create schema {schema}")
        with warehouse.session(read_only=True) as source:
            available = {(r.schema, r.name): r for r in readable_relations(source)}
            wanted = set(available) if relations is None else ({*relations, CONTACTS} & set(available))
            source_conn = source._conn  # Arrow is DuckDB's bulk path out of the warehouse
            for key in sorted(wanted):
                relation = available[key]
                if relation.filter_column == "contact_id" and CONTACTS not in available:
                    continue
                rows = source_conn.sql(filter_sql(relation, client_id)).to_arrow_table()
                conn.register("_herald_rows", rows)
                conn.execute(f'create table {relation.schema}."{relation.name}" as select * from _herald_rows')
                conn.unregister("_herald_rows")
        # from here on nothing outside this in-memory database is reachable, and this cannot be undone
        conn.execute("set enable_external_access = false")
        conn.execute("set lock_configuration = true")
        timed_out = threading.Event()

        def interrupt() -> None:
            timed_out.set()
            conn.interrupt()

        timer = threading.Timer(timeout_seconds, interrupt)
        timer.daemon = True
        timer.start()
        yield _DuckDBConfined(conn, timed_out)
    finally:
        if timer is not None:
            timer.cancel()
        conn.close()


# --- PostgreSQL ---------------------------------------------------------------------------------


class _PostgresConfined(ConfinedDatabase):
    engine = "postgres"

    def __init__(self, session: Session, client_id: str):
        self._session = session
        self._client_id = client_id
        self._runner = f'"{runner_schema(client_id)}".{RUN_FUNCTION}'
        self._schemas = {s: segment_schema(client_id, s) for s in READABLE_SCHEMAS}

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        import psycopg2

        statement = sql
        if params:
            cursor = self._session._cur
            statement = cursor.mogrify(sql.replace("%", "%%").replace("?", "%s"), list(params)).decode()
        rewritten, to_original = rewrite_schemas(statement, self._schemas)
        self._session.execute("savepoint herald_segment_query")
        try:
            _, rows = self._session.query(f"select r from {self._runner}(?) as r", [rewritten])
        except psycopg2.Error as exc:
            self._session.execute("rollback to savepoint herald_segment_query")
            if isinstance(exc, psycopg2.errors.QueryCanceled):
                raise SegmentQueryFailed("timed out", None, timed_out=True) from None
            position = None
            diag = exc.diag
            if diag.internal_position and (diag.internal_query or "").startswith(RUN_PREFIX):
                position = to_original(int(diag.internal_position) - 1 - len(RUN_PREFIX))
            raise SegmentQueryFailed(_kind(exc), None if params else position) from None
        self._session.execute("release savepoint herald_segment_query")
        return [tuple(row[0].values()) if isinstance(row[0], dict) else (row[0],) for row in rows]


def rewrite_schemas(sql: str, schemas: dict[str, str]) -> tuple[str, Callable[[int], int | None]]:
    """``sql`` with every schema qualifier ``marts.`` / ``analytics.`` (quoted or not) replaced by
    the client's schema, and a map from an offset in the result back to one in ``sql``. The text
    is edited token by token, so everything else stays exactly as written."""
    tokens = Dialect.get_or_raise("postgres").tokenize(sql)
    pieces: list[str] = []
    spans: list[tuple[int, int, int, int]] = []  # (new start, new end, old start, old end)
    last = 0
    shift = 0
    for i, token in enumerate(tokens):
        if token.token_type not in (TokenType.VAR, TokenType.IDENTIFIER):
            continue
        target = schemas.get(token.text.lower())
        follows_dot = i > 0 and tokens[i - 1].token_type == TokenType.DOT
        before_dot = i + 1 < len(tokens) and tokens[i + 1].token_type == TokenType.DOT
        if target is None or follows_dot or not before_dot:
            continue
        replacement = f'"{target}"'
        old_end = token.end + 1
        pieces += [sql[last : token.start], replacement]
        new_start = token.start + shift
        spans.append((new_start, new_start + len(replacement), token.start, old_end))
        shift += len(replacement) - (old_end - token.start)
        last = old_end
    pieces.append(sql[last:])

    def to_original(offset: int) -> int | None:
        delta = 0
        for new_start, new_end, old_start, old_end in spans:
            if offset < new_start:
                break
            if offset < new_end:
                return old_start
            delta = new_end - old_end
        original = offset - delta
        return original if 0 <= original < len(sql) else None

    return "".join(pieces), to_original


@contextmanager
def _postgres(warehouse: Warehouse, client_id: str, timeout_seconds: int) -> Iterator[ConfinedDatabase]:
    with warehouse.session() as setup:
        ensure_segment_schema(setup, client_id)
    with warehouse.session(read_only=True) as session:
        session.execute(f"set local statement_timeout = {int(timeout_seconds * 1000)}")
        session.execute(f'set local role "{segment_role(client_id)}"')
        path = ", ".join(["pg_catalog", *(f'"{segment_schema(client_id, s)}"' for s in READABLE_SCHEMAS)])
        session.execute(f"set local search_path = {path}")
        yield _PostgresConfined(session, client_id)
