"""The checks on a landed packet, evaluated by the warehouse itself.

The suite looks at the landed rows' mapped columns: required fields present, the share of
valid phone numbers (libphonenumber's verdict from landing) and of well-formed emails against
the load map's thresholds, and the row count against the client's optional manifest.
Each outcome becomes a Dagster asset check with its numbers in the metadata.

The landed rows are never copied out of the warehouse. On PostgreSQL, Great Expectations runs
the suite through its SQL datasource over a query of the packet's rows, so PostgreSQL computes
the counts. On DuckDB, Great Expectations' SQL path does not work (GE 1.24 with duckdb-engine:
its ``execute_query`` commits before it fetches, which discards DuckDB's pending result, and
every metric fails with ``MetricResolutionError: list index out of range``), so the same
expectations are one aggregate query on a read-only connection. Both paths give the same counts
and the same pass/fail rule as Great Expectations' ``mostly``; a packet with no landed rows is
settled without importing Great Expectations at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from herald.config.models import LoadMap
from herald.warehouse.connection import Warehouse
from herald.warehouse.schema import RAW_SCHEMA

# What a well-formed email is, in Python's regex dialect (kept for readers and for tests).
EMAIL_REGEX = r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$"
# Python's ``\s`` for text (what ``str.isspace`` calls whitespace), spelled out character by
# character: DuckDB's RE2 and PostgreSQL read ``\s`` as ASCII (or locale) whitespace only.
_PY_WHITESPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace())
# EMAIL_REGEX for any engine: literal whitespace characters instead of ``\s``, and a newline
# allowed before the end, since Python's ``$`` also matches there and the engines' does not.
EMAIL_PATTERN = f"^[^@{_PY_WHITESPACE}]+@[^@{_PY_WHITESPACE}]+\\.[A-Za-z]{{2,}}\n?$"

CHECK_REQUIRED = "required_fields_present"
CHECK_PHONES = "phones_mostly_valid"
CHECK_EMAILS = "emails_mostly_valid"
CHECK_MANIFEST = "row_count_matches_manifest"
VALIDATION_CHECKS = (CHECK_REQUIRED, CHECK_PHONES, CHECK_EMAILS, CHECK_MANIFEST)


@dataclass
class CheckOutcome:
    name: str
    passed: bool
    summary: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class ShareCount:
    """A ``mostly`` expectation's numbers: values present, values unexpected, the verdict."""

    checked: int
    invalid: int
    passed: bool


@dataclass
class PacketCounts:
    """What the suite measured on a packet's landed rows."""

    rows: int
    missing: dict[str, int]  # required field → rows without it
    required_passed: bool
    phones: ShareCount | None  # None: the load map maps no phone column
    emails: ShareCount | None
    manifest_passed: bool | None  # None: no manifest


def checked_fields(load_map: LoadMap) -> dict[str, str]:
    """The canonical fields the suite reads (phone, email, the required ones) → source column."""
    return {f: c for f, c in load_map.field_columns().items() if f in ("phone", "email") or f in load_map.required}


def landed_rows_query(packet_id: str, load_map: LoadMap, region: str) -> tuple[str, list[Any]]:
    """The packet's landed rows as canonical fields plus phone validity (``?`` placeholders).

    An empty phone is missing, not invalid: its validity is null, so ``mostly`` counts only
    the numbers present. A number landing never checked is missing too (left join, null)."""
    fields = checked_fields(load_map)
    # each field is taken out of the JSON once, in the inner select
    raw = ", ".join(f"r.row_data ->> ? as raw_{f}" for f in fields)
    params: list[Any] = [*fields.values(), packet_id]
    selects = ["x.line_number"] + [f"nullif(trim(x.raw_{f}), '') as {f}" for f in fields]
    join = ""
    if "phone" in fields:
        selects.append("case when nullif(trim(x.raw_phone), '') is not null then p.is_valid end as phone_is_valid")
        join = f" left join {RAW_SCHEMA}.phone_numbers p on p.raw_value = trim(x.raw_phone) and p.default_region = ?"
        params.append(region)
    inner = f"select r.line_number, {raw} from {RAW_SCHEMA}.packet_rows r where r.packet_id = ?"
    return f"select {', '.join(selects)} from ({inner}) x{join}", params


def validate_packet(
    warehouse: Warehouse,
    packet_id: str,
    load_map: LoadMap,
    region: str,
    rows_rejected: int,
    manifest_rows: int | None,
) -> list[CheckOutcome]:
    """Run the load map's suite on the packet's landed rows, in the warehouse."""
    expected_rows = None if manifest_rows is None else manifest_rows - rows_rejected
    if warehouse.engine != "postgres":
        counts = aggregate_counts(warehouse, packet_id, load_map, region, expected_rows)
    else:
        with warehouse.session(read_only=True) as s:
            rows = int(s.scalar(f"select count(*) from {RAW_SCHEMA}.packet_rows where packet_id = ?", [packet_id]))
        # Great Expectations (and its import, seconds) only for a packet that landed rows
        counts = (
            ge_counts(warehouse, packet_id, load_map, region, expected_rows)
            if rows
            else _counts_from(load_map, 0, {}, expected_rows)
        )
    return outcomes(counts, load_map, rows_rejected, manifest_rows)


def outcomes(
    counts: PacketCounts, load_map: LoadMap, rows_rejected: int, manifest_rows: int | None
) -> list[CheckOutcome]:
    """The four check outcomes, worded and numbered as operators see them."""
    required = list(counts.missing)
    result = [
        CheckOutcome(
            CHECK_REQUIRED,
            counts.required_passed,
            "every landed row has " + (", ".join(required) or "no required fields"),
            {"required_fields": ", ".join(required), **{f"rows_missing_{f}": n for f, n in counts.missing.items()}},
        ),
        _share_outcome(CHECK_PHONES, "phone", counts.phones, load_map.validation.min_valid_phone_share),
        _share_outcome(CHECK_EMAILS, "email", counts.emails, load_map.validation.min_valid_email_share),
    ]
    if manifest_rows is None:
        result.append(
            CheckOutcome(CHECK_MANIFEST, True, "no manifest was sent with this packet", {"manifest_rows": None})
        )
    else:
        # the manifest counts every row the client sent; rejected rows were sent too
        in_file = counts.rows + rows_rejected
        result.append(
            CheckOutcome(
                CHECK_MANIFEST,
                bool(counts.manifest_passed),
                f"manifest says {manifest_rows} rows; file had {in_file}",
                {"manifest_rows": manifest_rows, "rows_in_file": in_file},
            )
        )
    return result


def _share_outcome(name: str, fieldname: str, count: ShareCount | None, minimum: float) -> CheckOutcome:
    if count is None:
        return CheckOutcome(name, True, f"the load map maps no {fieldname} column", {"minimum_share": minimum})
    checked, invalid = count.checked, count.invalid
    share = (checked - invalid) / checked if checked else 1.0
    return CheckOutcome(
        name,
        count.passed,
        f"{share:.1%} of {checked} {fieldname}s are valid (minimum {minimum:.0%})",
        {"valid_share": round(share, 4), "checked": checked, "invalid": invalid, "minimum_share": minimum},
    )


def mostly_passes(checked: int, invalid: int, minimum: float) -> bool:
    """Great Expectations' ``mostly`` rule, to the float: no value present passes."""
    return checked == 0 or (float(checked) - float(invalid)) / float(checked) >= minimum


def aggregate_counts(
    warehouse: Warehouse,
    packet_id: str,
    load_map: LoadMap,
    region: str,
    expected_rows: int | None,
) -> PacketCounts:
    """The suite as one aggregate query per packet (one scan of its rows), on a read-only
    session that is closed on return: DuckDB's file is free for the next writer at once."""
    fields = checked_fields(load_map)
    rows_sql, params = landed_rows_query(packet_id, load_map, region)
    matches = "regexp_matches(email, ?)" if warehouse.engine == "duckdb" else "email ~ ?"
    aggregates = ["count(*)"] + [f"count(*) - count({f})" for f in fields if f in load_map.required]
    extra: list[Any] = []
    if "phone" in fields:
        aggregates += ["count(phone_is_valid)", "count(*) filter (where not phone_is_valid)"]
    if "email" in fields:
        aggregates += ["count(email)", f"count(*) filter (where not {matches})"]
        extra.append(EMAIL_PATTERN)
    with warehouse.session(read_only=True) as s:
        _, result = s.query(f"select {', '.join(aggregates)} from ({rows_sql}) landed", extra + params)
    values = iter(int(v or 0) for v in result[0])
    rows = next(values)
    missing = {f: next(values) for f in fields if f in load_map.required}
    numbers = {k: (next(values), next(values)) for k in ("phone", "email") if k in fields}
    return _counts_from(load_map, rows, missing, expected_rows, numbers)


def _counts_from(
    load_map: LoadMap,
    rows: int,
    missing: dict[str, int],
    expected_rows: int | None,
    numbers: dict[str, tuple[int, int]] | None = None,
) -> PacketCounts:
    """Counts with Great Expectations' verdicts (``numbers``: (checked, invalid) per share;
    left out: none checked)."""
    fields = checked_fields(load_map)
    numbers = numbers or {k: (0, 0) for k in ("phone", "email") if k in fields}
    missing = {f: missing.get(f, 0) for f in load_map.required if f in fields}
    v = load_map.validation
    shares = {
        k: ShareCount(checked, invalid, mostly_passes(checked, invalid, minimum))
        for k, minimum in (("phone", v.min_valid_phone_share), ("email", v.min_valid_email_share))
        if k in numbers
        for checked, invalid in [numbers[k]]
    }
    return PacketCounts(
        rows=rows,
        missing=missing,
        required_passed=not any(missing.values()),
        phones=shares.get("phone"),
        emails=shares.get("email"),
        manifest_passed=None if expected_rows is None else rows == expected_rows,
    )


def ge_counts(
    warehouse: Warehouse, packet_id: str, load_map: LoadMap, region: str, expected_rows: int | None
) -> PacketCounts:
    """The suite through Great Expectations' SQL datasource on PostgreSQL: a query asset over
    the packet's landed rows, every expectation in one validation, computed by PostgreSQL on a
    read-only connection that is closed on return."""
    import great_expectations as gx
    import sqlalchemy as sa
    from great_expectations.data_context.types.base import ProgressBarsConfig

    t = warehouse.target
    url = sa.engine.URL.create(
        "postgresql+psycopg2",
        username=t.pg_user,
        password=t.pg_password or None,
        host=t.pg_host,
        port=t.pg_port,
        database=t.pg_database,
    ).render_as_string(hide_password=False)
    fields = checked_fields(load_map)
    rows_sql, params = landed_rows_query(packet_id, load_map, region)

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_postgres(
        "warehouse",
        connection_string=url,
        kwargs={"connect_args": {"options": "-c default_transaction_read_only=on"}},
    )
    batch = (
        source.add_query_asset(load_map.packet_type, query=_inline(rows_sql, params))
        .add_batch_definition_whole_table("landed_rows")
        .get_batch()
    )
    expect = gx.expectations
    v = load_map.validation
    required = [f for f in load_map.required if f in fields]
    expectations: dict[str, Any] = {f: expect.ExpectColumnValuesToNotBeNull(column=f) for f in required}
    if "phone" in fields:
        expectations["phone_is_valid"] = expect.ExpectColumnValuesToBeInSet(
            column="phone_is_valid", value_set=[True], mostly=v.min_valid_phone_share
        )
    if "email" in fields:
        expectations["email"] = expect.ExpectColumnValuesToMatchRegex(
            column="email", regex=EMAIL_PATTERN, mostly=v.min_valid_email_share
        )
    # the row count is measured with or without a manifest (-1: never met, without one)
    expectations[_ROW_COUNT] = expect.ExpectTableRowCountToEqual(value=-1 if expected_rows is None else expected_rows)
    try:
        suite = gx.ExpectationSuite(f"{load_map.packet_type}_landed_rows", expectations=list(expectations.values()))
        # counts only: no query for examples of unexpected values (a scan each, unread here)
        validation = batch.validate(suite, result_format={"result_format": "BASIC", "partial_unexpected_count": 0})
    finally:
        batch.data.execution_engine.engine.dispose()  # the connections close here, not at exit
    results = {}
    for r in validation.results:
        # a metric that failed leaves no counts: say so rather than report a check as failed
        info = r.exception_info or {}
        problems = [info, *(i for i in info.values() if isinstance(i, dict))]
        raised = [p.get("exception_message") for p in problems if p.get("raised_exception")]
        if raised:
            raise RuntimeError(f"Great Expectations could not evaluate {r.expectation_config.type}: {raised[0]}")
        results[r.expectation_config.kwargs.get("column", _ROW_COUNT)] = r

    def share(column: str) -> ShareCount | None:
        if column not in results:
            return None
        r = results[column]
        checked = int(r.result.get("element_count", 0)) - int(r.result.get("missing_count", 0) or 0)
        return ShareCount(checked, int(r.result.get("unexpected_count", 0) or 0), bool(r.success))

    missing = {f: int(results[f].result.get("unexpected_count", 0)) for f in required}
    return PacketCounts(
        rows=int(results[_ROW_COUNT].result["observed_value"]),
        missing=missing,
        required_passed=all(results[f].success for f in required),
        phones=share("phone_is_valid"),
        emails=share("email"),
        manifest_passed=None if expected_rows is None else bool(results[_ROW_COUNT].success),
    )


_ROW_COUNT = "table.row_count"


def _inline(sql: str, params: list[Any]) -> str:
    """``sql`` with its ``?`` placeholders replaced by literals: a query asset is SQL text.

    A ``:`` or ``%`` in a value (a header such as "Cell % Phone") is spelled ``chr(…)``:
    SQLAlchemy's ``text()`` reads ``:name`` as a parameter, and with psycopg2 it doubles ``%``
    into the statement, which reaches PostgreSQL as ``%%`` when a query has no parameters."""
    values = iter(params)

    def literal(value: Any) -> str:
        parts = [p for p in re.split(r"([%:])", str(value)) if p]
        quoted = [f"chr({ord(p)})" if p in ("%", ":") else "'" + p.replace("'", "''") + "'" for p in parts]
        return "(" + (" || ".join(quoted) or "''") + ")"

    return re.sub(r"\?", lambda _m: literal(next(values)), sql)
