"""``analytics.client_dashboard``, ``analytics.packet_report`` and ``marts.credit_transactions``
on a real warehouse, once per engine: hand-made outbox rows, replies, opt-outs, ledger entries,
alerts, packets, packet steps and contact sources in; one ``dbt build`` (with the data tests)
out, with the dashboard's windows ending at a fixed ``dashboard_as_of``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import ENGINES
from tests.dbt_harness import CLIENTS, Built, MartBuild, build_marts, failed_nodes, outbox_row, row, rows

AS_OF = datetime(2024, 3, 20, 0, 0)
MODELS = ("deliveries", "credit_transactions", "client_dashboard", "packet_report")
SOURCE_TABLES = (
    "herald_ops.clients", "herald_ops.outbox", "herald_raw.inbound_messages", "herald_ops.provider_event_processing",
    "herald_ops.inbound_processing", "herald_ops.suppressions", "herald_ops.credit_ledger", "herald_ops.credit_alerts",
    "herald_ops.packets", "herald_ops.packet_events",
)  # fmt: skip
SENDER = "+13125559999"


def ago(**delta: float) -> datetime:
    return AS_OF - timedelta(**delta)


def sent(key: str, n: int, at: datetime, **values: Any) -> tuple[Any, ...]:
    return outbox_row(key, to_address=f"+1312555{n:04d}", status="sent", provider="twilio",
                      provider_message_id=f"id-{key}", sent_at=at, attempts=1, **values)  # fmt: skip


def delivered(key: str, n: int, at: datetime) -> tuple[Any, ...]:
    return sent(key, n, at - timedelta(minutes=1), provider_status="delivered", provider_status_at=at, delivered_at=at)


OUTBOX = [
    delivered("d-2h", 1, ago(hours=2)),  # 24 h, 3 d, 7 d, 30 d; replied
    sent("s-2d", 2, ago(days=2)),  # no receipt: accepted, but not delivered
    delivered("d-5d", 3, ago(days=5)),  # 7 d, 30 d; replied
    delivered("d-20d", 4, ago(days=20)),  # 30 d
    delivered("d-40d", 5, ago(days=40)),  # outside every window (its reply too)
    sent("u-1h", 6, ago(hours=1), provider_status="undelivered", provider_status_at=ago(hours=1)),  # never counts
    delivered("late", 7, AS_OF + timedelta(hours=1)),  # after as_of
    outbox_row("q-queued", to_address="+13125550008"),
]


def inbound(inbound_id: str, sender: str, received_at: datetime) -> tuple[Any, ...]:
    return (inbound_id, "sms", sender, SENDER, "thanks", "twilio", received_at, received_at)


INBOUND = [
    inbound("in-1", "+13125550001", ago(hours=1)),
    inbound("in-2", "+13125550001", ago(minutes=30)),  # the same message again: counted once
    inbound("in-3", "+13125550003", ago(days=4)),
    inbound("in-5", "+13125550005", ago(days=39)),
]


def processing(inbound_id: str, kind: str, action: str, at: datetime) -> tuple[Any, ...]:
    return (inbound_id, "clinic", None, kind, "standard", "STOP", action, "all", 0, None, at)


INBOUND_PROCESSING = [
    processing("stop-1", "opt_out", "suppressed", ago(days=3)),  # counts
    processing("stop-old", "opt_out", "suppressed", ago(days=31)),
    processing("stop-again", "opt_out", "ignored", ago(days=1)),  # already suppressed
    processing("help-1", "help", "helped", ago(days=1)),
]


def suppression(address: str, reason: str, source: str, at: datetime) -> tuple[Any, ...]:
    return ("clinic", "sms", address, "all", reason, source, None, None, at)


SUPPRESSIONS = [
    suppression("+13125550011", "opt_out", "web", ago(days=1)),  # counts
    suppression("+13125550012", "opt_out", "provider", ago(days=10)),  # carrier STOP: counts
    suppression("+13125550013", "opt_out", "sms_keyword", ago(days=3)),  # counted through stop-1
    suppression("+13125550014", "hard_bounce", "provider", ago(days=2)),  # not an opt-out
]


def entry(entry_id: str, kind: str, amount: str, at: datetime, key: str | None = None) -> tuple[Any, ...]:
    return (entry_id, "clinic", kind, Decimal(amount), key, None, "test", at)


LEDGER = [
    entry("purchase:1", "purchase", "100", ago(days=10)),
    entry("debit:d-2h", "debit", "-1", ago(hours=2), "d-2h"),
    entry("debit:u-1h", "debit", "-2", ago(hours=1), "u-1h"),
    entry("release:u-1h", "release", "2", ago(minutes=30), "u-1h"),
    entry("adjustment:1", "adjustment", "-20.5", ago(days=1)),
    entry("purchase:2", "purchase", "50", AS_OF + timedelta(days=1)),  # after as_of
]

ALERTS = [
    ("clinic", ago(days=5), Decimal("15"), Decimal("20"), "purchase:1", "credit-alert-a", "sent", None),
    ("clinic", ago(days=45), Decimal("5"), Decimal("20"), "purchase:0", "credit-alert-b", "sent", None),
]


def packet(packet_id: str, rows_in_file: int) -> tuple[Any, ...]:
    return row("herald_ops.packets", packet_id=packet_id, client_id="clinic", packet_type="patients",
               file_name=f"{packet_id}.csv", file_path=f"/in/{packet_id}.csv", status="landed",
               rows_in_file=rows_in_file, rows_landed=rows_in_file - 1, rows_rejected=1, received_at=ago(days=1),
               updated_at=ago(days=1))  # fmt: skip


PACKET_EVENTS = [
    ("p-1", "received", ago(days=1), 10, None),
    ("p-1", "landed", ago(days=1) + timedelta(seconds=1), 200, None),
    ("p-1", "mapped", ago(days=1) + timedelta(seconds=5), 50, None),
    ("p-1", "mapped", ago(days=1) + timedelta(seconds=9), 30, None),  # a re-run: summed
]
CONTACT_SOURCE_COLUMNS = [("packet_id", "varchar"), ("line_number", "bigint"), ("contact_id", "varchar"),
                          ("client_id", "varchar"), ("packet_type", "varchar"), ("identity_kind", "varchar"),
                          ("packet_received_at", "timestamp")]  # fmt: skip
CONTACT_SOURCES = [
    ("p-1", 2, "c-1", "clinic", "patients", "phone", ago(days=1)),
    ("p-1", 3, "c-2", "clinic", "patients", "phone", ago(days=1)),
    ("p-1", 4, "c-1", "clinic", "patients", "email", ago(days=1)),  # merged into the same contact
]


BUILD = MartBuild(
    name="dashboard",
    models=MODELS,
    sources=SOURCE_TABLES,
    hand_made={"marts.contact_sources": CONTACT_SOURCE_COLUMNS},
    rows={
        "herald_ops.clients": list(CLIENTS),
        "herald_ops.outbox": OUTBOX,
        "herald_raw.inbound_messages": INBOUND,
        "herald_ops.inbound_processing": INBOUND_PROCESSING,
        "herald_ops.suppressions": SUPPRESSIONS,
        "herald_ops.credit_ledger": LEDGER,
        "herald_ops.credit_alerts": ALERTS,
        "herald_ops.packets": [packet("p-1", 4), packet("p-2", 1)],
        "herald_ops.packet_events": PACKET_EVENTS,
        "marts.contact_sources": CONTACT_SOURCES,
    },
    dbt_args=("--vars", json.dumps({"dashboard_as_of": f"{AS_OF:%Y-%m-%d %H:%M:%S}"})),
)


@pytest.fixture(scope="module", params=ENGINES)
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    with build_marts(request, tmp_path_factory, BUILD) as result:
        yield result


def test_the_models_and_their_data_tests_pass(built: Built) -> None:
    statuses = {r["unique_id"]: r["status"] for r in built.run["results"]}
    assert failed_nodes(built) == {}
    assert {"model.herald.client_dashboard", "model.herald.packet_report", "model.herald.credit_transactions"} <= set(
        statuses
    )


def test_the_dashboard_counts_deliveries_replies_opt_outs_and_credit_alerts_per_window(built: Built) -> None:
    dashboard = {r["client_id"]: r for r in rows(built.warehouse, "select * from analytics.client_dashboard")}
    clinic = dashboard["clinic"]
    got = {k: clinic[k] for k in ("as_of_at", "is_metered", "delivered_24h", "delivered_3d", "delivered_7d",
                                   "delivered_30d", "replied_30d", "opt_outs_30d", "credit_alerts_30d",
                                   "last_credit_alert_at")}  # fmt: skip
    assert got == {
        "as_of_at": AS_OF, "is_metered": True, "delivered_24h": 1, "delivered_3d": 1, "delivered_7d": 2,
        "delivered_30d": 3, "replied_30d": 2, "opt_outs_30d": 3, "credit_alerts_30d": 1,
        "last_credit_alert_at": ago(days=5),
    }  # fmt: skip
    assert float(clinic["credit_balance"]) == 78.5  # 100 - 1 - 2 + 2 - 20.5; the later purchase is after as_of
    assert float(clinic["response_pct_30d"]) == 66.7  # 2 replies over 3 delivered
    realty = dashboard["realty"]
    assert (realty["is_metered"], realty["credit_balance"], realty["delivered_30d"], realty["response_pct_30d"]) == (
        False, None, 0, None,
    )  # fmt: skip


def test_credit_transactions_carry_the_running_balance(built: Built) -> None:
    history = rows(built.warehouse, "select entry_id, kind, amount, balance_after from marts.credit_transactions "
                                    "order by created_at, entry_id")  # fmt: skip
    assert [(h["entry_id"], float(h["balance_after"])) for h in history] == [
        ("purchase:1", 100.0), ("adjustment:1", 79.5), ("debit:d-2h", 78.5), ("debit:u-1h", 76.5),
        ("release:u-1h", 78.5), ("purchase:2", 128.5),
    ]  # fmt: skip


def test_the_packet_report_counts_contacts_and_times_each_step(built: Built) -> None:
    report = rows(built.warehouse, "select packet_id, step, step_number, step_duration_ms, packet_duration_ms, "
                                   "contacts, contact_rows, rows_rejected from analytics.packet_report "
                                   "order by packet_id, step_number")  # fmt: skip
    assert [tuple(r.values()) for r in report] == [
        ("p-1", "received", 1, 10, 290, 2, 3, 1),
        ("p-1", "landed", 2, 200, 290, 2, 3, 1),
        ("p-1", "mapped", 3, 80, 290, 2, 3, 1),
        ("p-2", "none recorded", 1, 0, 0, 0, 0, 1),
    ]
