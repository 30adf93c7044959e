"""PII retention through the retention asset, both engines: a contact and its packet rows are
purged ``contact_days`` after the person's opt-out or last activity (a client.yaml may set its
own), exactly those and no others, with the counts in the materialization's metadata."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from herald.clock import utcnow
from herald.settings import Settings
from herald.warehouse.connection import Session, Warehouse
from tests.conftest import CONFIG_DIR, ENGINES

CLINIC = "bright_smiles_dental"  # contact_days: 100 in its client.yaml (below)
REALTY = "lakeside_realty"  # herald.yaml's default, 1096 days
MART_DDL = [
    """create table marts.contacts (contact_id varchar, client_id varchar, phone_e164 varchar, email varchar,
        created_at timestamp, updated_at timestamp)""",
    "create table marts.contact_sources (packet_id varchar, line_number bigint, contact_id varchar)",
    "create table marts.contact_attributes (contact_id varchar, client_id varchar, attribute_name varchar)",
]


def days_ago(n: int):
    return utcnow() - timedelta(days=n)


# contact, client, phone, last packet row (days ago), opt-out (days ago), last message, last reply
CONTACTS = [
    ("k1", CLINIC, "+13125550201", 150, None, None, None),  # inactive 150 days > 100: purged
    ("k2", CLINIC, "+13125550202", 150, None, 20, None),  # a message 20 days ago: kept
    ("k3", CLINIC, "+13125550203", 5, 120, None, None),  # opted out 120 days ago: purged
    ("k4", CLINIC, "+13125550204", 5, 30, None, None),  # opted out 30 days ago: kept
    ("k5", CLINIC, "+13125550205", 150, None, None, 10),  # replied 10 days ago: kept
    ("k6", REALTY, "+13125550206", 150, None, None, None),  # 150 < 1096: kept
    ("k7", REALTY, "+13125550207", 1200, None, None, None),  # 1200 > 1096: purged
]
PURGED = {"k1", "k3", "k7"}


def _fill(s: Session) -> None:
    json_type = "json" if s.engine == "duckdb" else "jsonb"
    for ddl in MART_DDL:
        s.execute(ddl)
    for line, (contact, client, phone, seen, opted_out, messaged, replied) in enumerate(CONTACTS, start=2):
        seen_at = days_ago(seen)
        s.execute("insert into marts.contacts values (?, ?, ?, null, ?, ?)", [contact, client, phone, seen_at, seen_at])
        s.execute("insert into marts.contact_sources values (?, ?, ?)", [f"p-{client}", line, contact])
        s.execute("insert into marts.contact_attributes values (?, ?, 'tier')", [contact, client])
        s.execute(
            f"insert into herald_raw.packet_rows values (?, ?, 'patients', ?, cast(? as {json_type}), ?)",
            [f"p-{client}", client, line, json.dumps({"Phone": phone, "Name": contact}), days_ago(seen)],
        )
        if opted_out is not None:
            s.execute(
                "insert into herald_ops.suppressions values (?, 'sms', ?, 'all', 'opt_out', 'sms_keyword', null, ?, ?)",
                [client, phone, contact, days_ago(opted_out)],
            )
        if messaged is not None:
            s.execute(
                "insert into herald_ops.outbox (message_key, client_id, campaign, step, variant, occurrence, "
                "contact_id, message_type, category, channel, to_address, send_after, status, attempts, enqueued_at, "
                "sent_at, updated_at) values (?, ?, 'c', 's', 'a', 'o', ?, 'reminder', 'transactional', 'sms', ?, ?, "
                "'sent', 1, ?, ?, ?)",
                [f"m-{contact}", client, contact, phone, *[days_ago(messaged)] * 4],
            )
        if replied is not None:
            s.execute(
                "insert into herald_ops.inbound_processing (inbound_id, client_id, contact_id, kind, action, "
                "messages_cancelled, processed_at) values (?, ?, ?, 'other', 'ignored', 0, ?)",
                [f"in-{contact}", client, contact, days_ago(replied)],
            )


@pytest.mark.parametrize("engine", ENGINES)
def test_the_retention_asset_purges_exactly_the_contacts_past_their_days(
    engine: str, herald_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from assets.compliance.retention import retention_purge
    from resources import HeraldConfigResource, WarehouseResource

    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    with (config / "clients" / CLINIC / "client.yaml").open("a", encoding="utf-8") as f:
        f.write("\nretention:\n  contact_days: 100\n")
    env = {**herald_env(engine), "HERALD_CONFIG_DIR": str(config)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    warehouse = Warehouse(Settings.from_env(env).warehouse)
    warehouse.ensure_schema()
    with warehouse.session() as s:
        _fill(s)

    def run() -> dict[str, Any]:
        result = dg.materialize(
            [retention_purge], resources={"warehouse": WarehouseResource(), "herald_config": HeraldConfigResource()}
        )
        assert result.success
        [materialization] = result.asset_materializations_for_node(retention_purge.node_def.name)
        return {k: v.value for k, v in materialization.metadata.items()}

    metadata = run()
    assert (metadata["contacts_purged"], metadata["packet_rows_purged"]) == (3, 3)
    assert "| marts.contact_attributes | 3 |" in metadata["personal_data_purged"]
    assert metadata["client_contact_days"] == {CLINIC: 100}
    with warehouse.session(read_only=True) as s:
        kept = {r[0] for r in s.query("select contact_id from marts.contacts")[1]}
        assert kept == {c[0] for c in CONTACTS} - PURGED
        assert {r[0] for r in s.query("select contact_id from marts.contact_attributes")[1]} == kept
        assert {r[0] for r in s.query("select contact_id from marts.contact_sources")[1]} == kept
        rows = s.query("select line_number, cast(row_data as varchar) from herald_raw.packet_rows")[1]
        emptied = {CONTACTS[line - 2][0] for line, data in rows if data == "{}"}
        assert emptied == PURGED and len(rows) == len(CONTACTS)  # every line still there
        # the opt-out keeps blocking: suppressions follow their own rule
        assert s.scalar("select count(*) from herald_ops.suppressions") == 2
        audits = s.query("select client_id, detail from herald_ops.audit_log where actor = 'retention' "
                         "and subject = 'contacts' order by client_id")[1]  # fmt: skip
        assert [(c, json.loads(d)["rows"]["contacts"]) for c, d in audits] == [(CLINIC, 2), (REALTY, 1)]
    again = run()
    assert (again["contacts_purged"], again["packet_rows_purged"]) == (0, 0)
