"""The tables Herald's Python side owns: ``herald_raw`` (landed data) and ``herald_ops``
(transactional state and the configuration loaded for dbt to join).

One definition serves both engines; only the JSON type differs. All ``*_at`` columns hold
naive timestamps in UTC.
"""

from __future__ import annotations

RAW_SCHEMA = "herald_raw"
OPS_SCHEMA = "herald_ops"
MARTS_SCHEMA = "marts"

# (table, [(column, type)], primary key columns). ``JSON`` is replaced per engine.
TABLES: list[tuple[str, list[tuple[str, str]], tuple[str, ...]]] = [
    (
        f"{OPS_SCHEMA}.packets",
        [
            ("packet_id", "varchar not null"),
            ("client_id", "varchar not null"),
            ("packet_type", "varchar not null"),
            ("file_name", "varchar not null"),
            ("file_path", "varchar not null"),
            ("file_size_bytes", "bigint"),
            ("sha256", "varchar"),
            ("encoding", "varchar"),
            ("status", "varchar not null"),  # received | landed | rejected | duplicate | failed
            ("status_reason", "varchar"),
            ("duplicate_of", "varchar"),
            ("rows_in_file", "bigint"),
            ("rows_landed", "bigint"),
            ("rows_rejected", "bigint"),
            ("received_at", "timestamp not null"),
            ("landed_at", "timestamp"),
            ("updated_at", "timestamp not null"),
        ],
        ("packet_id",),
    ),
    (
        f"{OPS_SCHEMA}.packet_events",
        [
            ("packet_id", "varchar not null"),
            ("step", "varchar not null"),  # received | verified | landed | validated | mapped | cleaned | ...
            ("occurred_at", "timestamp not null"),
            ("duration_ms", "bigint"),
            ("detail", "varchar"),
        ],
        (),
    ),
    (
        f"{RAW_SCHEMA}.packet_rows",
        [
            ("packet_id", "varchar not null"),
            ("client_id", "varchar not null"),
            ("packet_type", "varchar not null"),
            ("line_number", "bigint not null"),
            ("row_data", "JSON not null"),  # {"<header as in the file>": "<raw text>", ...}
            ("landed_at", "timestamp not null"),
        ],
        ("packet_id", "line_number"),
    ),
    (
        f"{RAW_SCHEMA}.packet_rejects",
        [
            ("packet_id", "varchar not null"),
            ("client_id", "varchar not null"),
            ("packet_type", "varchar not null"),
            ("line_number", "bigint not null"),
            ("reason", "varchar not null"),
            ("raw_text", "varchar"),
            ("rejected_at", "timestamp not null"),
        ],
        ("packet_id", "line_number"),
    ),
    (
        f"{RAW_SCHEMA}.phone_numbers",
        [
            ("raw_value", "varchar not null"),
            ("default_region", "varchar not null"),
            ("phone_e164", "varchar"),
            ("is_valid", "boolean not null"),
            ("checked_at", "timestamp not null"),
        ],
        ("raw_value", "default_region"),
    ),
    (
        f"{OPS_SCHEMA}.clients",
        [
            ("client_id", "varchar not null"),
            ("name", "varchar not null"),
            ("industry", "varchar"),
            ("time_zone", "varchar not null"),
            ("default_region", "varchar not null"),
            ("loaded_at", "timestamp not null"),
        ],
        ("client_id",),
    ),
    (
        f"{OPS_SCHEMA}.load_maps",
        [
            ("client_id", "varchar not null"),
            ("packet_type", "varchar not null"),
            ("entity", "varchar not null"),  # contacts | funnel_events
            ("description", "varchar"),
            ("keep_unmapped", "boolean not null"),
            ("loaded_at", "timestamp not null"),
        ],
        ("client_id", "packet_type"),
    ),
    (
        f"{OPS_SCHEMA}.load_map_columns",
        [
            ("client_id", "varchar not null"),
            ("packet_type", "varchar not null"),
            ("source_column", "varchar not null"),
            ("target_kind", "varchar not null"),  # field | attribute
            ("target_name", "varchar not null"),
            ("data_type", "varchar not null"),  # string | numeric | date | timestamp | boolean | array
            ("array_separator", "varchar"),
            ("is_required", "boolean not null"),
            ("position", "bigint not null"),
        ],
        ("client_id", "packet_type", "source_column"),
    ),
    (
        f"{OPS_SCHEMA}.canonical_fields",
        [
            ("field_name", "varchar not null"),
            ("data_type", "varchar not null"),
            ("stored_in", "varchar not null"),  # contact | attribute | funnel_event
            ("description", "varchar not null"),
        ],
        ("field_name",),
    ),
    (
        f"{OPS_SCHEMA}.segment_membership_events",
        [
            ("client_id", "varchar not null"),
            ("segment_name", "varchar not null"),
            ("contact_id", "varchar not null"),
            ("event", "varchar not null"),  # entered | exited
            ("occurred_at", "timestamp not null"),
        ],
        (),
    ),
    # The one Python-owned table in dbt's ``marts`` schema (issue 3 names it there): current
    # members of each segment, written by the segment assets; dbt never builds a model of this name.
    (
        f"{MARTS_SCHEMA}.segment_members",
        [
            ("client_id", "varchar not null"),
            ("segment_name", "varchar not null"),
            ("contact_id", "varchar not null"),
            ("entered_at", "timestamp not null"),
            ("snapshot_at", "timestamp not null"),
        ],
        ("client_id", "segment_name", "contact_id"),
    ),
]

JSON_TYPE = {"duckdb": "json", "postgres": "jsonb"}


def ddl_statements(engine: str) -> list[str]:
    """``create schema`` / ``create table if not exists`` for every Python-owned table."""
    statements = [
        f"create schema if not exists {RAW_SCHEMA}",
        f"create schema if not exists {OPS_SCHEMA}",
        f"create schema if not exists {MARTS_SCHEMA}",
    ]
    for table, columns, key in TABLES:
        cols = [f"{name} {type_.replace('JSON', JSON_TYPE[engine])}" for name, type_ in columns]
        if key:
            cols.append(f"primary key ({', '.join(key)})")
        statements.append(f"create table if not exists {table} (\n  " + ",\n  ".join(cols) + "\n)")
    if engine == "postgres":
        statements.append(
            f"create index if not exists packets_client_sha on {OPS_SCHEMA}.packets (client_id, packet_type, sha256)"
        )
    return statements


def column_names(table: str) -> list[str]:
    for name, columns, _ in TABLES:
        if name == table:
            return [c for c, _ in columns]
    raise KeyError(table)
