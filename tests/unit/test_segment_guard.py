"""The segment SQL guard and manual-list matching keys: pure functions, no warehouse."""

from __future__ import annotations

import pytest

from herald.config.segments import SegmentConfig
from herald.segments import SegmentError, check_segment_sql
from herald.segments.engine import manual_keys
from herald.segments.guard import SegmentSqlRefused, check_sql

DIALECTS = ["duckdb", "postgres"]

ALLOWED = [
    "select contact_id from marts.contacts where is_phone_valid",
    "select contact_id from marts.contacts;",
    "with admitted as (select contact_id from marts.funnel_events where to_stage = 'admitted') "
    "select a.contact_id from admitted a join marts.contacts c using (contact_id)",
    "select c.* from marts.contacts c",
    "select contact_id from analytics.campaign_performance_daily",
]

REFUSED = [
    ("delete from marts.contacts", "must be a SELECT, not DELETE"),
    ("select 1; drop table x", "exactly one SELECT statement, found 2"),
    ("select * from herald_ops.packets", "only read tables in marts or analytics, not herald_ops.packets"),
    ("select * from read_csv('/etc/passwd')", "may not call read_csv()"),
    ("select contact_id, read_text('/etc/passwd') from marts.contacts", "may not call read_text()"),
    ("select * from '/etc/passwd'", "only read tables in marts or analytics"),
    ("copy marts.contacts to '/tmp/out.csv'", "must be a SELECT, not COPY"),
    ("select email from marts.contacts", "must return a contact_id column; it returns email"),
    ("select contact_id from other.marts.contacts", "only read tables in marts or analytics"),
    ("select contact_id into stolen from marts.contacts", "INTO is not allowed"),
    ("select contact_id from contacts", "only read tables in marts or analytics, not contacts"),
    ("select from where", "does not parse"),
]


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("sql", ALLOWED)
def test_the_guard_allows_one_select_over_the_marts(sql: str, dialect: str) -> None:
    check_sql(sql, dialect)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(("sql", "reason"), REFUSED)
def test_the_guard_refuses_everything_else_saying_why(sql: str, reason: str, dialect: str) -> None:
    with pytest.raises(SegmentSqlRefused, match=reason.replace("(", r"\(").replace(")", r"\)")):
        check_sql(sql, dialect)


def test_a_refused_segment_error_names_the_segment() -> None:
    segment = SegmentConfig(name="stolen", type="sql", sql="select * from herald_ops.packets")
    with pytest.raises(SegmentError) as caught:
        check_segment_sql("acme", segment, "duckdb")
    assert str(caught.value) == (
        "segment acme/stolen: the SQL may only read tables in marts or analytics, not herald_ops.packets"
    )


def test_manual_members_match_as_ids_phones_and_emails() -> None:
    external_ids, phones, emails = manual_keys(
        ["LS-1001", " +1 720 555 0142 ", "(720) 555-0142", "  Jose.Pena@Example.com ", "", "not a phone"], "US"
    )
    assert phones == ["+17205550142"]
    assert emails == ["jose.pena@example.com"]
    assert "LS-1001" in external_ids and "not a phone" in external_ids
    assert "" not in external_ids
