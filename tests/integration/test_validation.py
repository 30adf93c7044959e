"""A landed packet's checks, evaluated by the warehouse, against the same rules computed in Python.

The oracle is what the checks meant when Great Expectations ran them on a pandas copy of the
rows: values trimmed of spaces (empty: missing), Python's ``re`` for emails, libphonenumber's
verdict from ``phone_numbers`` for phones (a number landing never checked counts as missing),
and Great Expectations' ``mostly`` rule. Headers with a colon, a percent sign and a quote go
through the query as literals.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime
from typing import Any

import pytest

from herald.config.models import LoadMap
from herald.packets.validation import (
    CHECK_EMAILS,
    CHECK_MANIFEST,
    CHECK_PHONES,
    CHECK_REQUIRED,
    EMAIL_PATTERN,
    EMAIL_REGEX,
    aggregate_counts,
    mostly_passes,
    outcomes,
    validate_packet,
)
from herald.warehouse.connection import Warehouse
from tests.conftest import ENGINES

pytestmark = pytest.mark.parametrize("warehouse", ENGINES, indirect=True)

ID, PHONE, EMAIL = "Patient: ID", "Cell % Phone", "E-mail 'primary'"
REGION = "US"
VALID, INVALID, UNCHECKED = "+1 512 555 0101", "+1 999 000 0000", "555"
NOW = datetime(2026, 11, 20, 9, 30)

# (id, phone, email); None: the cell is not in the row at all
ROWS: list[tuple[Any, Any, Any]] = [
    ("P1", VALID, "a@b.com"),
    ("P2", f"  {VALID} ", "bad-email"),
    ("P3", INVALID, ""),
    ("P4", UNCHECKED, None),
    ("   ", "", "x@y.c"),
    (None, None, "Ünï@exämple.com"),
    ("P7", VALID, "  a@b.com  "),
    ("P8", VALID, "a b@c.com"),
    ("P9", VALID, "a\u00a0b@c.com"),  # no-break space: whitespace to Python, not to RE2
    ("P10", INVALID, "a@b.com\n"),  # Python's $ matches before a final newline
    ("P11", VALID, "a@b.co\t"),
    ("P12", VALID, "a@b.com\n\n"),
    ("P13", VALID, "a@b\u2003c.com"),
    ("P14", VALID, "foo@bar.COM"),
    ("P15", VALID, "a\u0085b@c.com"),
]

LOAD_MAP = LoadMap(
    packet_type="odd_headers",
    columns={ID: {"field": "external_id"}, PHONE: {"field": "phone"}, EMAIL: {"field": "email"}},
    required=["external_id", "phone"],
)


def _land(warehouse: Warehouse, packet_id: str, rows: list[tuple[Any, Any, Any]]) -> None:
    landed = []
    for line, (ident, phone, email) in enumerate(rows, start=2):
        data = {k: v for k, v in ((ID, ident), (PHONE, phone), (EMAIL, email), ("Visit", "x")) if v is not None}
        landed.append((packet_id, "c", "odd_headers", line, json.dumps(data), NOW))
    with warehouse.session() as s:
        s.insert_rows(
            "herald_raw.packet_rows",
            ["packet_id", "client_id", "packet_type", "line_number", "row_data", "landed_at"],
            landed,
        )
        s.insert_rows(
            "herald_raw.phone_numbers",
            ["raw_value", "default_region", "phone_e164", "is_valid", "checked_at"],
            [(VALID, REGION, "+15125550101", True, NOW), (INVALID, REGION, None, False, NOW)],
            ignore_existing=True,
        )


def _present(value: Any) -> str | None:
    value = None if value is None else value.strip(" ")
    return value or None


def _oracle(load_map: LoadMap, rows_rejected: int, manifest_rows: int | None) -> list[tuple[str, bool, str, dict]]:
    verdicts = {VALID: True, INVALID: False}
    ids = [_present(i) for i, _, _ in ROWS]
    phones = [_present(p) for _, p, _ in ROWS]
    phone_valid = [verdicts.get(p) for p in phones]
    emails = [e for e in (_present(e) for _, _, e in ROWS) if e is not None]
    missing = {"external_id": ids.count(None), "phone": phones.count(None)}
    checked_phones = [v for v in phone_valid if v is not None]
    bad_phones = checked_phones.count(False)
    bad_emails = sum(1 for e in emails if not re.search(EMAIL_REGEX, e))
    v = load_map.validation

    def share(name: str, field: str, checked: int, invalid: int, minimum: float) -> tuple[str, bool, str, dict]:
        s = (checked - invalid) / checked
        return (
            name,
            mostly_passes(checked, invalid, minimum),
            f"{s:.1%} of {checked} {field}s are valid (minimum {minimum:.0%})",
            {"valid_share": round(s, 4), "checked": checked, "invalid": invalid, "minimum_share": minimum},
        )

    manifest = (
        (CHECK_MANIFEST, True, "no manifest was sent with this packet", {"manifest_rows": None})
        if manifest_rows is None
        else (
            CHECK_MANIFEST,
            manifest_rows - rows_rejected == len(ROWS),
            f"manifest says {manifest_rows} rows; file had {len(ROWS) + rows_rejected}",
            {"manifest_rows": manifest_rows, "rows_in_file": len(ROWS) + rows_rejected},
        )
    )
    # what THRESHOLDS were chosen for
    assert (missing, len(checked_phones), bad_phones, len(emails), bad_emails) == (
        {"external_id": 2, "phone": 2},
        12,
        2,
        13,
        8,
    )
    return [
        (
            CHECK_REQUIRED,
            False,
            "every landed row has external_id, phone",
            {"required_fields": "external_id, phone", **{f"rows_missing_{f}": n for f, n in missing.items()}},
        ),
        share(CHECK_PHONES, "phone", len(checked_phones), bad_phones, v.min_valid_phone_share),
        share(CHECK_EMAILS, "email", len(emails), bad_emails, v.min_valid_email_share),
        manifest,
    ]


# thresholds: the defaults, exactly the measured shares (10/12 phones, 5/13 emails: >= passes),
# and a hair above them
THRESHOLDS = [(0.9, 0.8), (10 / 12, 5 / 13), (10 / 12 + 1e-12, 5 / 13 + 1e-12)]


@pytest.mark.parametrize(("manifest_rows", "rows_rejected"), [(None, 0), (17, 2), (16, 0)])
def test_checks_match_the_rules_computed_in_python(
    warehouse: Warehouse, manifest_rows: int | None, rows_rejected: int
) -> None:
    _land(warehouse, "pk1", ROWS)
    for phone_share, email_share in THRESHOLDS:
        validation = {"min_valid_phone_share": phone_share, "min_valid_email_share": email_share}
        load_map = LoadMap.model_validate({**LOAD_MAP.model_dump(), "validation": validation})
        expected = _oracle(load_map, rows_rejected, manifest_rows)
        got = validate_packet(warehouse, "pk1", load_map, REGION, rows_rejected, manifest_rows)
        assert [(c.name, c.passed, c.summary, c.metadata) for c in got] == expected
        # on PostgreSQL Great Expectations measured them: the one-query path agrees with it
        expected_rows = None if manifest_rows is None else manifest_rows - rows_rejected
        again = outcomes(
            aggregate_counts(warehouse, "pk1", load_map, REGION, expected_rows), load_map, rows_rejected, manifest_rows
        )
        assert [(c.name, c.passed, c.summary, c.metadata) for c in again] == expected


def test_email_pattern_is_pythons_regex_on_the_engine(warehouse: Warehouse) -> None:
    emails = [e for _, _, e in ROWS if e] + ["a@b.c\u3000", "\u2028a@b.cd", "a@@b.cd", "a@b.cd\r\n"]
    python = [bool(re.search(EMAIL_REGEX, e)) for e in emails]
    matches = "regexp_matches(?, ?)" if warehouse.engine == "duckdb" else "? ~ ?"
    with warehouse.session(read_only=True) as s:
        engine = [bool(s.scalar(f"select {matches}", [e, EMAIL_PATTERN])) for e in emails]
    assert engine == python


def test_a_packet_without_rows_is_settled_without_great_expectations(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "great_expectations", None)  # importing it now raises
    got = validate_packet(warehouse, "nothing", LOAD_MAP, REGION, 3, 3)
    assert [(c.name, c.passed) for c in got] == [
        (CHECK_REQUIRED, True),
        (CHECK_PHONES, True),
        (CHECK_EMAILS, True),
        (CHECK_MANIFEST, True),
    ]
    assert got[1].summary == "100.0% of 0 phones are valid (minimum 90%)"
